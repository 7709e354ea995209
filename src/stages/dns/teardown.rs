//! `jeeves down` with controllers ≥ 3: the record sets Jeeves made (`multivalue::owner`), then
//! the stack's health checks that no record left in place names.

use anyhow::Result;

use crate::aws::multivalue::{ARecordSet, HealthCheck, RecordChange};
use crate::aws::route53::{Route53, Zone};
use crate::config::Settings;
use crate::state::Host;

use super::multivalue::{Owner, owner, prefix};

/// What `down` does at the domain.
#[derive(Debug)]
struct Teardown {
    /// Record sets Jeeves made: deleted.
    ours: Vec<ARecordSet>,
    /// The others: left in place.
    left: Vec<ARecordSet>,
    /// The stack's health checks, each with whether a set left in place names it (then it
    /// stays: deleting it would leave that set unchecked).
    checks: Vec<(HealthCheck, bool)>,
}

impl Teardown {
    fn decide(sets: Vec<ARecordSet>, controllers: &[Host], checks: Vec<HealthCheck>) -> Teardown {
        let (ours, left): (Vec<ARecordSet>, Vec<ARecordSet>) = sets
            .into_iter()
            .partition(|s| owner(s, controllers, &checks) != Owner::Foreign);
        let checks = checks
            .into_iter()
            .map(|h| {
                let named = left.iter().any(|s| s.health_check.as_ref() == Some(&h.id));
                (h, named)
            })
            .collect();
        Teardown { ours, left, checks }
    }
}

/// Deletes this stack's record sets (a multivalue set that names one of its health checks or
/// is one of `controllers` at its address, or the single controller's simple record; others
/// stay), then each of its health checks that no set left in place names. Returns what it did,
/// as lines for the log.
pub async fn remove(
    settings: &Settings,
    controllers: &[Host],
    route53: &Route53,
    zone: &Zone,
) -> Result<Vec<String>> {
    let d = &settings.domain;
    let sets = route53.a_record_sets(zone, d).await?;
    let checks = route53.health_checks(&prefix(settings)).await?;
    let Teardown { ours, left, checks } = Teardown::decide(sets, controllers, checks);
    let mut said = Vec::new();
    if !ours.is_empty() {
        let batch: Vec<RecordChange> = ours
            .into_iter()
            .map(|s| RecordChange::Delete(Box::new(s)))
            .collect();
        let comment = format!("jeeves {} down", settings.name);
        let change = route53.change_a_sets(zone, d, &batch, &comment).await?;
        route53
            .wait_insync(&change, settings.dns.wait_timeout)
            .await?;
        said.push(format!("{} A record set(s) deleted", batch.len()));
    }
    for s in &left {
        said.push(format!(
            "A {d} {} left in place: Jeeves did not make it",
            s.describe()
        ));
    }
    for (h, kept) in checks {
        if kept {
            said.push(format!(
                "health check {} of {}:{} kept: a record set left in place names it",
                h.id, h.ip, h.port
            ));
            continue;
        }
        route53.delete_health_check(&h.id).await?;
        said.push(format!(
            "health check {} of {}:{} deleted",
            h.id, h.ip, h.port
        ));
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_route53::types::{
        ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType,
    };

    fn set(id: &str, multi: bool, ip: &str, check: &str) -> ARecordSet {
        let mut b = ResourceRecordSet::builder()
            .name("chat.jeeves.test.")
            .r#type(RrType::A)
            .set_identifier(id)
            .ttl(60)
            .health_check_id(check)
            .resource_records(ResourceRecord::builder().value(ip).build().unwrap());
        b = if multi {
            b.multi_value_answer(true)
        } else {
            b.failover(ResourceRecordSetFailover::Primary)
        };
        ARecordSet::of(&b.build().unwrap())
    }

    fn check(id: &str) -> HealthCheck {
        HealthCheck {
            id: id.into(),
            caller_reference: format!("jeeves-x-{id}"),
            kind: "TCP".into(),
            ip: "10.77.0.10".into(),
            port: 443,
        }
    }

    /// The inventory lost (no controllers known): the sets naming the stack's checks go; a
    /// check that a set left in place names stays.
    #[test]
    fn records_go_by_their_checks_and_a_check_still_named_stays() {
        let sets = vec![
            set("controller", true, "10.77.0.10", "h1"),
            set("controller-2", true, "10.77.0.102", "h2"),
            set("theirs", false, "192.0.2.1", "h3"),
        ];
        let t = Teardown::decide(sets, &[], vec![check("h1"), check("h2"), check("h3")]);
        let ids = |v: &[ARecordSet]| -> Vec<String> {
            v.iter().filter_map(|s| s.set_identifier.clone()).collect()
        };
        assert_eq!(ids(&t.ours), ["controller", "controller-2"]);
        assert_eq!(ids(&t.left), ["theirs"]);
        let kept: Vec<(&str, bool)> = t.checks.iter().map(|(h, k)| (h.id.as_str(), *k)).collect();
        assert_eq!(kept, [("h1", false), ("h2", false), ("h3", true)]);
    }
}
