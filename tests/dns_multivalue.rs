//! The dns stage with three controllers, against moto's Route 53: one multivalue answer record
//! per controller, each tied to a TCP health check of its HAProxy (port 443); the single
//! controller's simple record replaced in the same batch; a re-run reuses every health check and
//! changes nothing; a replaced controller's record and health check are deleted; a record set
//! Jeeves did not make stops the stage and is left alone; `down` then `up` makes new health
//! checks (Route 53 refuses a deleted one's CallerReference); `down` with the inventory lost
//! deletes the stack's records and health checks and leaves another's record.

use crate::common;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use common::{Moto, Test, block_on};

const DOMAIN: &str = "chat.sub.example.com";

/// (set identifier, values, multivalue, health check's "ip:port") of each A record of DOMAIN.
fn records(r53: &aws_sdk_route53::Client, zone: &str) -> Vec<(String, Vec<String>, bool, String)> {
    let sets = block_on(r53.list_resource_record_sets().hosted_zone_id(zone).send()).unwrap();
    let mut out: Vec<_> = sets
        .resource_record_sets()
        .iter()
        .filter(|s| *s.r#type() == RrType::A && s.name().trim_end_matches('.') == DOMAIN)
        .map(|s| {
            let check = s.health_check_id().map(|id| {
                let h = block_on(r53.get_health_check().health_check_id(id).send()).unwrap();
                let c = h.health_check().unwrap().health_check_config().unwrap();
                format!(
                    "{} {}:{}",
                    c.r#type().as_str(),
                    c.ip_address().unwrap_or_default(),
                    c.port().unwrap_or_default()
                )
            });
            (
                s.set_identifier().unwrap_or_default().to_string(),
                s.resource_records()
                    .iter()
                    .map(|r| r.value().to_string())
                    .collect(),
                s.multi_value_answer().unwrap_or(false),
                check.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

fn health_checks(r53: &aws_sdk_route53::Client) -> usize {
    block_on(r53.list_health_checks().send())
        .unwrap()
        .health_checks()
        .len()
}

fn host(name: &str, ip: &str) -> String {
    format!(r#"{{"hostname": "{name}", "public_ip": "{ip}", "private_ip": "{ip}"}}"#)
}

fn planned(run: &common::Run) -> Vec<String> {
    run.planned("dns")
}

#[test]
fn three_controllers_get_one_health_checked_multivalue_record_each() {
    let moto = Moto::start();
    let r53 = aws_sdk_route53::Client::new(&moto.sdk());
    let zone = block_on(
        r53.create_hosted_zone()
            .name("sub.example.com")
            .caller_reference("sub")
            .send(),
    )
    .unwrap()
    .hosted_zone()
    .unwrap()
    .id()
    .trim_start_matches("/hostedzone/")
    .to_string();
    let mut t = Test::new();
    moto.env_for(&mut t);
    t.env("DOMAIN", DOMAIN);
    let vars = t.path("hosts.tfvars.json");
    let more = |third: &str| {
        std::fs::write(
            &vars,
            format!(
                r#"{{"more_controllers": [{}, {third}]}}"#,
                host("controller-2", "10.77.0.102")
            ),
        )
        .unwrap()
    };
    more(&host("controller-3", "10.77.0.103"));
    t.env("JEEVES_TERRAFORM_VAR_FILES", &vars.display().to_string());
    let up = |t: &Test| {
        t.run(&[
            "--output",
            "json",
            "up",
            "--only",
            "terraform",
            "--only",
            "dns",
        ])
        .expect(0)
    };

    // One controller: the simple record, as ever.
    up(&t);
    assert_eq!(
        records(&r53, &zone),
        [(
            String::new(),
            vec!["10.77.0.10".to_string()],
            false,
            String::new()
        )]
    );

    // Three: a health-checked multivalue record each; the simple record deleted in the batch.
    t.env("JEEVES_CLUSTER_CONTROLLERS", "3");
    let run = up(&t);
    let plan = planned(&run);
    assert_eq!(plan.len(), 7, "{plan:#?}");
    assert!(
        plan.contains(&format!(
            "delete A {DOMAIN} → 10.77.0.10 (the single controller's simple record)"
        )),
        "{plan:#?}"
    );
    let row = |set: &str, ip: &str| {
        (
            set.to_string(),
            vec![ip.to_string()],
            true,
            format!("TCP {ip}:443"),
        )
    };
    assert_eq!(
        records(&r53, &zone),
        [
            row("controller", "10.77.0.10"),
            row("controller-2", "10.77.0.102"),
            row("controller-3", "10.77.0.103"),
        ]
    );
    assert_eq!(health_checks(&r53), 3);

    // Converged: every health check reused, nothing changed.
    let run = up(&t);
    assert_eq!(planned(&run), Vec::<String>::new());
    assert_eq!(run.stage_result("dns"), "unchanged");
    assert_eq!(health_checks(&r53), 3);

    // controller-3 replaced by controller-4: its record and health check go, the new one's come.
    more(&host("controller-4", "10.77.0.104"));
    let run = up(&t);
    let plan = planned(&run);
    assert!(
        plan.contains(&format!(
            "delete A {DOMAIN} → 10.77.0.103 (set controller-3: no longer a controller)"
        )) && plan.contains(&"create health check TCP 10.77.0.104:443 (controller-4)".to_string())
            && plan.iter().any(
                |c| c.starts_with("delete health check ") && c.ends_with(" of 10.77.0.103:443")
            ),
        "{plan:#?}"
    );
    assert_eq!(
        records(&r53, &zone),
        [
            row("controller", "10.77.0.10"),
            row("controller-2", "10.77.0.102"),
            row("controller-4", "10.77.0.104"),
        ]
    );
    assert_eq!(health_checks(&r53), 3);
    assert_eq!(planned(&up(&t)), Vec::<String>::new());

    // A record set Jeeves did not make at the name stops the stage, named; nothing changes.
    // UPSERT: moto refuses a CREATE it has seen before while any set of the name is there.
    let elsewhere = |action| change(&r53, &zone, action, other_stack());
    elsewhere(ChangeAction::Upsert);
    let before = records(&r53, &zone);
    let run = t.run(&["up", "--only", "dns"]).expect(1);
    assert!(
        run.stderr.contains(&format!(
            "the A records of {DOMAIN} hold record set(s) Jeeves did not make: set elsewhere (multivalue answer) → 192.0.2.1."
        )),
        "{}",
        run.stderr
    );
    assert_eq!(records(&r53, &zone), before);
    assert_eq!(health_checks(&r53), 3);
    elsewhere(ChangeAction::Delete);

    // down, then up again: Route 53 refuses a deleted health check's CallerReference for days
    // (tests/moto/fixes.py), so each new check has a reference of its own.
    t.run(&["down", "--yes"]).expect(0);
    assert_eq!(records(&r53, &zone), []);
    assert_eq!(health_checks(&r53), 0);
    up(&t);
    assert_eq!(records(&r53, &zone).len(), 3);
    assert_eq!(health_checks(&r53), 3);

    // down with the inventory lost (EC2, moto's, knows no controller): the records that name
    // this stack's health checks go with them, before terraform releases the addresses; a
    // record of another stack stays.
    let state = t.path(".jeeves/lab/state.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    json["inventory"] = serde_json::json!({});
    std::fs::write(&state, json.to_string()).unwrap();
    elsewhere(ChangeAction::Upsert);
    t.run(&["down", "--yes"]).expect(0);
    assert_eq!(
        records(&r53, &zone),
        [(
            "elsewhere".to_string(),
            vec!["192.0.2.1".to_string()],
            true,
            String::new()
        )]
    );
    assert_eq!(health_checks(&r53), 0);
}

/// Another stack's multivalue record set at the domain.
fn other_stack() -> ResourceRecordSet {
    ResourceRecordSet::builder()
        .name(DOMAIN)
        .r#type(RrType::A)
        .set_identifier("elsewhere")
        .multi_value_answer(true)
        .ttl(60)
        .resource_records(
            ResourceRecord::builder()
                .value("192.0.2.1")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn change(r53: &aws_sdk_route53::Client, zone: &str, action: ChangeAction, set: ResourceRecordSet) {
    block_on(
        r53.change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(
                ChangeBatch::builder()
                    .changes(
                        Change::builder()
                            .action(action)
                            .resource_record_set(set)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send(),
    )
    .unwrap();
}
