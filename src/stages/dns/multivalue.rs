//! The dns stage with controllers ≥ 3: multivalue answer routing, one A record set per
//! controller (SetIdentifier: its hostname), each tied to a Route 53 health check of its
//! HAProxy (TCP to its public IP, port 443). Route 53 answers up to eight healthy values, so a
//! dead controller or a stopped HAProxy drops out of the answers without a Jeeves run.
//! Multivalue rather than failover: failover is active-passive (one primary, one secondary), so
//! one controller would carry all the traffic and a third would never be answered.
//!
//! Health checks are found again by their CallerReference (`jeeves-<stack>-<controller>`, hashes
//! of the project and domain, and of the controller's hostname and address): a re-run reuses
//! them; a controller that moved or left gets a new one or none, and the old one is deleted once
//! no record uses it. The single controller's simple record is replaced in the same batch.

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::aws::multivalue::{ARecordSet, HealthCheck, RecordChange};
use crate::aws::route53::{Route53, Zone};
use crate::config::Settings;
use crate::report::Change;
use crate::stage::StageContext;
use crate::state::Host;

/// The port each health check connects to: HAProxy's TLS listener.
const PORT: i32 = 443;

fn short(parts: &[&str]) -> String {
    hex::encode(Sha256::digest(parts.join("\n").as_bytes()))[..16].to_string()
}

/// The CallerReference prefix of this stack's health checks.
fn prefix(settings: &Settings) -> String {
    format!(
        "jeeves-{}-",
        short(&[&settings.project.name, &settings.domain])
    )
}

fn caller_reference(settings: &Settings, c: &Host) -> String {
    format!(
        "{}{}",
        prefix(settings),
        short(&[&c.hostname, &c.public_ip])
    )
}

/// One controller's record as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Wanted {
    hostname: String,
    ip: String,
    caller_reference: String,
    /// Its health check, when it exists already.
    check: Option<String>,
    /// The record set differs or is missing (what it is now, if anything).
    record: Option<Option<ARecordSet>>,
}

/// What the probe found and what apply does.
pub struct Records {
    route53: Route53,
    zone: Zone,
    ttl: i64,
    wanted: Vec<Wanted>,
    /// Sets to delete: the simple record, and those of controllers no longer in the stack.
    deletes: Vec<ARecordSet>,
    /// This stack's health checks that no wanted record uses.
    stale: Vec<HealthCheck>,
}

impl Records {
    pub async fn probe(
        settings: &Settings,
        controllers: &[Host],
        route53: Route53,
        zone: Zone,
    ) -> Result<Records> {
        let sets = route53.a_record_sets(&zone, &settings.domain).await?;
        let checks = route53.health_checks(&prefix(settings)).await?;
        let ttl = i64::from(settings.dns.ttl);
        Ok(Records::decide(
            settings,
            controllers,
            &sets,
            &checks,
            route53,
            zone,
            ttl,
        ))
    }

    fn decide(
        settings: &Settings,
        controllers: &[Host],
        sets: &[ARecordSet],
        checks: &[HealthCheck],
        route53: Route53,
        zone: Zone,
        ttl: i64,
    ) -> Records {
        let wanted: Vec<Wanted> = controllers
            .iter()
            .map(|c| {
                let caller_reference = caller_reference(settings, c);
                let check = checks
                    .iter()
                    .find(|h| h.caller_reference == caller_reference)
                    .map(|h| h.id.clone());
                let now = sets
                    .iter()
                    .find(|s| s.set_identifier.as_deref() == Some(c.hostname.as_str()));
                let right = now.is_some_and(|s| {
                    check.is_some()
                        && s.values == [c.public_ip.clone()]
                        && s.ttl == Some(ttl)
                        && s.multi_value
                        && !s.alias
                        && s.health_check == check
                });
                Wanted {
                    hostname: c.hostname.clone(),
                    ip: c.public_ip.clone(),
                    caller_reference,
                    check,
                    record: (!right).then(|| now.cloned()),
                }
            })
            .collect();
        let deletes = sets
            .iter()
            .filter(|s| {
                s.set_identifier
                    .as_ref()
                    .is_none_or(|id| !controllers.iter().any(|c| &c.hostname == id))
            })
            .cloned()
            .collect();
        let stale = checks
            .iter()
            .filter(|h| {
                !wanted
                    .iter()
                    .any(|w| w.caller_reference == h.caller_reference)
            })
            .cloned()
            .collect();
        Records {
            route53,
            zone,
            ttl,
            wanted,
            deletes,
            stale,
        }
    }

    pub fn changes(&self, settings: &Settings) -> Vec<Change> {
        let d = &settings.domain;
        let mut changes = Vec::new();
        for w in &self.wanted {
            if w.check.is_none() {
                changes.push(Change::new(
                    "create",
                    format!("health check TCP {}:{PORT} ({})", w.ip, w.hostname),
                ));
            }
            if let Some(now) = &w.record {
                changes.push(Change::new(
                    if now.is_some() { "update" } else { "create" },
                    format!(
                        "A {d} → {} (multivalue answer, set {}, health-checked, ttl {}, zone {})",
                        w.ip, w.hostname, self.ttl, self.zone.name
                    ),
                ));
            }
        }
        for s in &self.deletes {
            changes.push(Change::new(
                "delete",
                format!(
                    "A {d} → {} ({})",
                    s.values.join(","),
                    match &s.set_identifier {
                        None => "the single controller's simple record".to_string(),
                        Some(id) => format!("set {id}: no longer a controller"),
                    }
                ),
            ));
        }
        for h in &self.stale {
            changes.push(Change::new(
                "delete",
                format!("health check {} of {}:{}", h.id, h.ip, h.port),
            ));
        }
        changes
    }

    /// Health checks first (a record names its check), then every record change in one batch
    /// (INSYNC), then the checks no record uses any more.
    pub async fn apply(&self, settings: &Settings, cx: &StageContext<'_>) -> Result<()> {
        // Deletions first, in the one batch (all or nothing): the simple record goes as the
        // multivalue records come, since Route 53 refuses both kinds under one name and type.
        let mut batch: Vec<RecordChange> = self
            .deletes
            .iter()
            .cloned()
            .map(RecordChange::Delete)
            .collect();
        for w in &self.wanted {
            let check = match &w.check {
                Some(id) => id.clone(),
                None => {
                    let id = self
                        .route53
                        .create_tcp_health_check(&w.caller_reference, &w.ip, PORT)
                        .await?;
                    cx.host(
                        &w.hostname,
                        format!("health check {id}: TCP {}:{PORT}", w.ip),
                    );
                    id
                }
            };
            if w.record.is_some() || w.check.is_none() {
                batch.push(RecordChange::Upsert {
                    set_identifier: w.hostname.clone(),
                    ip: w.ip.clone(),
                    ttl: self.ttl,
                    health_check: check,
                });
            }
        }
        if !batch.is_empty() {
            let comment = format!("jeeves {}", settings.name);
            let change = self
                .route53
                .change_a_sets(&self.zone, &settings.domain, &batch, &comment)
                .await?;
            cx.info(format!("change {change} submitted; waiting for INSYNC"));
            self.route53
                .wait_insync(&change, settings.dns.wait_timeout)
                .await?;
        }
        for h in &self.stale {
            self.route53.delete_health_check(&h.id).await?;
            cx.info(format!(
                "health check {} of {}:{} deleted",
                h.id, h.ip, h.port
            ));
        }
        Ok(())
    }

    /// The addresses the records answer with.
    pub fn ips(&self) -> Vec<String> {
        self.wanted.iter().map(|w| w.ip.clone()).collect()
    }
}

/// `jeeves down`: deletes this stack's records (a set named after one of `controllers` that
/// holds exactly its address; others stay), then every health check of this stack. Returns what
/// it did, as lines for the log.
pub async fn remove(
    settings: &Settings,
    controllers: &[Host],
    route53: &Route53,
    zone: &Zone,
) -> Result<Vec<String>> {
    let d = &settings.domain;
    let sets = route53.a_record_sets(zone, d).await?;
    let ours: Vec<RecordChange> = sets
        .iter()
        .filter(|s| {
            controllers.iter().any(|c| {
                s.set_identifier.as_deref() == Some(c.hostname.as_str())
                    && s.values == [c.public_ip.clone()]
            })
        })
        .cloned()
        .map(RecordChange::Delete)
        .collect();
    let mut said = Vec::new();
    if !ours.is_empty() {
        let comment = format!("jeeves {} down", settings.name);
        let change = route53.change_a_sets(zone, d, &ours, &comment).await?;
        route53
            .wait_insync(&change, settings.dns.wait_timeout)
            .await?;
        said.push(format!("{} multivalue A record(s) deleted", ours.len()));
    }
    if sets.len() > ours.len() {
        said.push(format!(
            "{} A record set(s) of {d} left in place: they point at no controller of this stack",
            sets.len() - ours.len()
        ));
    }
    for h in route53.health_checks(&prefix(settings)).await? {
        route53.delete_health_check(&h.id).await?;
        said.push(format!(
            "health check {} of {}:{} deleted",
            h.id, h.ip, h.port
        ));
    }
    Ok(said)
}
