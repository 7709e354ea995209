//! Which record sets and health checks the dns stage takes as its own (three controllers).

use super::*;
use aws_sdk_route53::types::{AliasTarget, ResourceRecord, ResourceRecordSet, RrType};

fn settings() -> Settings {
    Settings::load(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
        &crate::config::Env::from_pairs([("MONGO_URI", "m"), ("JEEVES_CLUSTER_CONTROLLERS", "3")]),
    )
    .unwrap()
}

fn controllers() -> Vec<Host> {
    ["10.77.0.10", "10.77.0.102", "10.77.0.103"]
        .iter()
        .enumerate()
        .map(|(i, ip)| Host {
            id: format!("i-{i}"),
            hostname: if i == 0 {
                "controller".into()
            } else {
                format!("controller-{}", i + 1)
            },
            public_ip: ip.to_string(),
            private_ip: ip.to_string(),
        })
        .collect()
}

/// A set as Route 53 lists it, through the same reading as `a_record_sets`.
fn set(
    f: impl FnOnce(
        aws_sdk_route53::types::builders::ResourceRecordSetBuilder,
    ) -> aws_sdk_route53::types::builders::ResourceRecordSetBuilder,
    ip: &str,
) -> ARecordSet {
    let b = ResourceRecordSet::builder()
        .name("chat.jeeves.test.")
        .r#type(RrType::A)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(ip).build().unwrap());
    ARecordSet::of(&f(b).build().unwrap())
}

fn multivalue(id: &str, ip: &str, check: &str) -> ARecordSet {
    set(
        |b| {
            b.set_identifier(id)
                .multi_value_answer(true)
                .health_check_id(check)
        },
        ip,
    )
}

fn check(s: &Settings, c: &Host, id: &str, ip: &str) -> HealthCheck {
    HealthCheck {
        id: id.into(),
        caller_reference: format!("{}{}", controller_prefix(s, c), unique()),
        kind: "TCP".into(),
        ip: ip.into(),
        port: 443,
    }
}

/// Converged: every controller's set names a check of its own prefix, address, port and type.
fn converged(s: &Settings) -> (Vec<ARecordSet>, Vec<HealthCheck>) {
    let cs = controllers();
    let checks: Vec<HealthCheck> = cs
        .iter()
        .enumerate()
        .map(|(i, c)| check(s, c, &format!("h{i}"), &c.public_ip))
        .collect();
    let sets = cs
        .iter()
        .zip(&checks)
        .map(|(c, h)| multivalue(&c.hostname, &c.public_ip, &h.id))
        .collect();
    (sets, checks)
}

#[test]
fn each_creation_has_a_caller_reference_of_its_own() {
    let s = settings();
    let c = &controllers()[0];
    let (a, b) = (
        format!("{}{}", controller_prefix(&s, c), unique()),
        format!("{}{}", controller_prefix(&s, c), unique()),
    );
    assert_ne!(a, b, "Route 53 refuses a deleted check's CallerReference");
    assert!(a.starts_with(&prefix(&s)) && a.len() <= 64, "{a}");
}

#[test]
fn checks_are_reused_only_with_the_right_address_port_and_type() {
    let s = settings();
    let cs = controllers();
    let (sets, checks) = converged(&s);
    let d = Decision::decide(&s, &cs, &sets, &checks, 60).unwrap();
    assert!(
        d.wanted
            .iter()
            .all(|w| w.check.is_some() && w.record.is_none()),
        "{d:?}"
    );
    assert!(d.deletes.is_empty() && d.stale.is_empty());

    // controller-3's check is of another address, or another port, or HTTP: a new one.
    for broken in [
        HealthCheck {
            ip: "10.77.0.99".into(),
            ..checks[2].clone()
        },
        HealthCheck {
            port: 80,
            ..checks[2].clone()
        },
        HealthCheck {
            kind: "HTTP".into(),
            ..checks[2].clone()
        },
        // Another controller's prefix (controller-2's), though its address is right.
        HealthCheck {
            caller_reference: checks[1].caller_reference.clone(),
            ..checks[2].clone()
        },
    ] {
        let checks = [checks[0].clone(), checks[1].clone(), broken];
        let d = Decision::decide(&s, &cs, &sets, &checks, 60).unwrap();
        assert!(
            d.wanted[2].check.is_none() && d.wanted[2].record.is_some(),
            "{d:?}"
        );
        assert_eq!(d.stale.len(), 1, "{d:?}");
    }
}

#[test]
fn only_record_sets_jeeves_made_are_changed() {
    let s = settings();
    let cs = controllers();
    let (mut sets, checks) = converged(&s);

    // 1 → 3: the single controller's simple record (first controller's address) is replaced.
    let simple = set(|b| b, "10.77.0.10");
    let d = Decision::decide(&s, &cs, std::slice::from_ref(&simple), &[], 60).unwrap();
    assert_eq!(d.deletes, [simple]);
    // Deleted exactly as listed.
    assert_eq!(d.deletes[0].listed.ttl(), Some(60));

    // A controller gone (5 → 3): its set names one of the stack's checks; deleted.
    let gone = multivalue("controller-5", "10.77.0.105", "h0");
    sets.push(gone.clone());
    let d = Decision::decide(&s, &cs, &sets, &checks, 60).unwrap();
    assert_eq!(d.deletes, [gone]);
    sets.pop();

    // Anything else at the name stops the stage, named, before anything changes.
    let others = [
        set(|b| b, "192.0.2.1"),
        set(|b| b.set_identifier("blue").weight(10), "10.77.0.10"),
        set(
            |b| {
                b.set_identifier("controller")
                    .failover(aws_sdk_route53::types::ResourceRecordSetFailover::Primary)
            },
            "10.77.0.10",
        ),
        multivalue("elsewhere", "192.0.2.1", "theirs"),
        ARecordSet::of(
            &ResourceRecordSet::builder()
                .name("chat.jeeves.test.")
                .r#type(RrType::A)
                .alias_target(
                    AliasTarget::builder()
                        .hosted_zone_id("Z2")
                        .dns_name("lb.example.com")
                        .evaluate_target_health(false)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        ),
    ];
    let said = [
        "simple record → 192.0.2.1",
        "set blue (weighted, weight 10) → 10.77.0.10",
        "set controller (failover PRIMARY) → 10.77.0.10",
        "set elsewhere (multivalue answer) → 192.0.2.1, health check theirs",
        "simple record alias to lb.example.com",
    ];
    for (other, said) in others.iter().zip(said) {
        let mut all = sets.clone();
        all.push(other.clone());
        let e = Decision::decide(&s, &cs, &all, &checks, 60)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("did not make: {said}.")), "{e}");
        assert!(
            e.contains("changed nothing") && e.contains("then re-run"),
            "{e}"
        );
        assert_eq!(owner(other, &cs, &checks), Owner::Foreign);
    }
}
