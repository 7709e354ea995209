//! The dns stage with controllers ≥ 3: multivalue answer routing, one A record set per
//! controller (SetIdentifier: its hostname), each tied to a Route 53 health check of its
//! HAProxy (TCP to its public IP, port 443). Route 53 answers up to eight healthy values, so a
//! dead controller or a stopped HAProxy drops out of the answers without a Jeeves run.
//! Multivalue rather than failover: failover is active-passive (one primary, one secondary), so
//! one controller would carry all the traffic and a third would never be answered.
//!
//! Health checks are found again by their CallerReference: `jeeves-<stack>-<controller>-` (hashes
//! of the project and domain, and of the controller's hostname), then a suffix unique to each
//! creation, since Route 53 refuses the CallerReference of a deleted check for days. A re-run
//! reuses a check of the controller whose type, address and port are right; a controller that
//! moved or left gets a new one or none, and the old one is deleted once no record uses it.
//! Jeeves changes only the record sets it made (`owner`): its multivalue sets, and the simple
//! record a single controller made, replaced in the same batch. Any other set at the name stops
//! the stage before anything changes.

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};

use crate::aws::multivalue::{ARecordSet, HealthCheck, RecordChange};
use crate::aws::route53::{Route53, Zone};
use crate::config::Settings;
use crate::report::Change;
use crate::stage::StageContext;
use crate::state::Host;

/// Each health check: a TCP connection to HAProxy's TLS listener.
const PORT: i32 = 443;
const KIND: &str = "TCP";

fn short(parts: &[&str]) -> String {
    hex::encode(Sha256::digest(parts.join("\n").as_bytes()))[..16].to_string()
}

/// The CallerReference prefix of this stack's health checks.
pub(super) fn prefix(settings: &Settings) -> String {
    format!(
        "jeeves-{}-",
        short(&[&settings.project.name, &settings.domain])
    )
}

/// The CallerReference prefix of one controller's health checks.
fn controller_prefix(settings: &Settings, c: &Host) -> String {
    format!("{}{}-", prefix(settings), short(&[&c.hostname]))
}

/// The end of a new health check's CallerReference (57 of Route 53's 64 characters in all):
/// unique to the creation. Route 53 answers HealthCheckAlreadyExists to the CallerReference of a
/// deleted check, whatever the settings, until it forgets it days later (Route 53 API reference,
/// CreateHealthCheck, CallerReference), so a deterministic one failed every `up` after a `down`.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}")
}

/// Whose a record set at the domain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// Jeeves' multivalue set of `controllers[i]`.
    Controller(usize),
    /// Jeeves' multivalue set of a controller no longer in the stack.
    Gone,
    /// The simple record a single controller made: no set identifier, the first controller's
    /// address.
    Single,
    /// Not Jeeves': never changed.
    Foreign,
}

/// Jeeves' multivalue sets name one of the stack's health checks, or are a controller's by set
/// identifier and address.
pub(super) fn owner(s: &ARecordSet, controllers: &[Host], checks: &[HealthCheck]) -> Owner {
    if s.multi_value && !s.alias {
        let names_ours = s
            .health_check
            .as_ref()
            .is_some_and(|h| checks.iter().any(|c| &c.id == h));
        let of = controllers
            .iter()
            .position(|c| s.set_identifier.as_deref() == Some(c.hostname.as_str()));
        let at_its_address = of.is_some_and(|i| s.values == [controllers[i].public_ip.clone()]);
        if names_ours || at_its_address {
            return of.map_or(Owner::Gone, Owner::Controller);
        }
    }
    let first = controllers.first().map(|c| c.public_ip.clone());
    if s.set_identifier.is_none() && !s.alias && first.is_some_and(|ip| s.values == [ip]) {
        return Owner::Single;
    }
    Owner::Foreign
}

/// One controller's record as it should be.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Wanted {
    hostname: String,
    ip: String,
    /// Where a new health check's CallerReference starts.
    prefix: String,
    /// Its health check, when one of the right type, address and port exists.
    check: Option<String>,
    /// The record set differs or is missing (what it is now, if anything).
    record: Option<Option<ARecordSet>>,
}

/// What the stage does, decided from what Route 53 holds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decision {
    wanted: Vec<Wanted>,
    /// Jeeves' sets to delete: the simple record, and those of controllers no longer in the stack.
    deletes: Vec<ARecordSet>,
    /// This stack's health checks that no wanted record uses.
    stale: Vec<HealthCheck>,
}

impl Decision {
    /// Fails, naming them, when record sets Jeeves did not make are at the name.
    pub(super) fn decide(
        settings: &Settings,
        controllers: &[Host],
        sets: &[ARecordSet],
        checks: &[HealthCheck],
        ttl: i64,
    ) -> Result<Decision> {
        let foreign: Vec<String> = sets
            .iter()
            .filter(|s| owner(s, controllers, checks) == Owner::Foreign)
            .map(ARecordSet::describe)
            .collect();
        if !foreign.is_empty() {
            bail!(
                "the A records of {} hold record set(s) Jeeves did not make: {}. Jeeves replaces only the simple record a single controller made (→ {}, no set identifier) and its own multivalue records, and changed nothing. Delete or move those sets in Route 53 (or give the domain a zone of its own, dns.zone_id), then re-run",
                settings.domain,
                foreign.join("; "),
                controllers
                    .first()
                    .map_or("the first controller", |c| c.public_ip.as_str())
            );
        }
        let wanted: Vec<Wanted> = controllers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let now = sets
                    .iter()
                    .find(|s| owner(s, controllers, checks) == Owner::Controller(i));
                let prefix = controller_prefix(settings, c);
                let fits = |h: &&HealthCheck| {
                    h.caller_reference.starts_with(&prefix)
                        && h.kind == KIND
                        && h.ip == c.public_ip
                        && h.port == PORT
                };
                // The one the record names, if it fits: nothing to change.
                let check = checks
                    .iter()
                    .filter(fits)
                    .find(|h| now.is_some_and(|s| s.health_check.as_ref() == Some(&h.id)))
                    .or_else(|| checks.iter().find(fits))
                    .map(|h| h.id.clone());
                let right = now.is_some_and(|s| {
                    check.is_some()
                        && s.values == [c.public_ip.clone()]
                        && s.ttl == Some(ttl)
                        && s.health_check == check
                });
                Wanted {
                    hostname: c.hostname.clone(),
                    ip: c.public_ip.clone(),
                    prefix,
                    check,
                    record: (!right).then(|| now.cloned()),
                }
            })
            .collect();
        let deletes = sets
            .iter()
            .filter(|s| matches!(owner(s, controllers, checks), Owner::Gone | Owner::Single))
            .cloned()
            .collect();
        let stale = checks
            .iter()
            .filter(|h| !wanted.iter().any(|w| w.check.as_ref() == Some(&h.id)))
            .cloned()
            .collect();
        Ok(Decision {
            wanted,
            deletes,
            stale,
        })
    }
}

/// What the probe found and what apply does.
pub struct Records {
    route53: Route53,
    zone: Zone,
    ttl: i64,
    decision: Decision,
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
        let decision = Decision::decide(settings, controllers, &sets, &checks, ttl)?;
        Ok(Records {
            route53,
            zone,
            ttl,
            decision,
        })
    }

    pub fn changes(&self, settings: &Settings) -> Vec<Change> {
        let d = &settings.domain;
        let mut changes = Vec::new();
        for w in &self.decision.wanted {
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
        for s in &self.decision.deletes {
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
        for h in &self.decision.stale {
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
            .decision
            .deletes
            .iter()
            .cloned()
            .map(|s| RecordChange::Delete(Box::new(s)))
            .collect();
        for w in &self.decision.wanted {
            let check = match &w.check {
                Some(id) => id.clone(),
                None => {
                    let reference = format!("{}{}", w.prefix, unique());
                    let id = self
                        .route53
                        .create_tcp_health_check(&reference, &w.ip, PORT)
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
        for h in &self.decision.stale {
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
        self.decision.wanted.iter().map(|w| w.ip.clone()).collect()
    }
}

#[cfg(test)]
#[path = "multivalue_tests.rs"]
mod tests;
