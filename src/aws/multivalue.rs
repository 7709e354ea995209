//! Route 53 multivalue answer records and the health checks they are tied to: every A record
//! set named exactly a domain, Route 53 health checks by their CallerReference, and one change
//! batch of many changes (applied by Route 53 all or nothing).

use anyhow::{Context, Result};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, HealthCheckConfig, HealthCheckType, ResourceRecord,
    ResourceRecordSet, RrType,
};

use super::describe;
use super::route53::{Route53, Zone};

/// One A record set named the domain, as Route 53 holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ARecordSet {
    /// None: a simple record (the one a single controller has).
    pub set_identifier: Option<String>,
    pub values: Vec<String>,
    pub ttl: Option<i64>,
    pub multi_value: bool,
    pub health_check: Option<String>,
    pub alias: bool,
    /// The set exactly as Route 53 listed it: what a DELETE sends (Route 53 deletes only a set
    /// that matches in every field, alias target, weight, failover, location… included).
    pub listed: ResourceRecordSet,
}

impl ARecordSet {
    pub fn of(s: &ResourceRecordSet) -> ARecordSet {
        ARecordSet {
            set_identifier: s.set_identifier().map(String::from),
            values: s
                .resource_records()
                .iter()
                .map(|r| r.value().to_string())
                .collect(),
            ttl: s.ttl(),
            multi_value: s.multi_value_answer().unwrap_or(false),
            health_check: s.health_check_id().map(String::from),
            alias: s.alias_target().is_some(),
            listed: s.clone(),
        }
    }

    /// The set as a user finds it in the console: its identifier, routing policy and answer.
    pub fn describe(&self) -> String {
        let s = &self.listed;
        let routing = if let Some(w) = s.weight() {
            format!("weighted, weight {w}")
        } else if let Some(f) = s.failover() {
            format!("failover {}", f.as_str())
        } else if s.geo_location().is_some() {
            "geolocation".to_string()
        } else if s.geo_proximity_location().is_some() {
            "geoproximity".to_string()
        } else if let Some(r) = s.region() {
            format!("latency, region {}", r.as_str())
        } else if s.cidr_routing_config().is_some() {
            "IP-based".to_string()
        } else if self.multi_value {
            "multivalue answer".to_string()
        } else {
            "simple".to_string()
        };
        let answer = match s.alias_target() {
            Some(a) => format!("alias to {}", a.dns_name()),
            None => format!("→ {}", self.values.join(",")),
        };
        let mut text = match &self.set_identifier {
            Some(id) => format!("set {id} ({routing}) {answer}"),
            None => format!("{routing} record {answer}"),
        };
        if let Some(h) = &self.health_check {
            text.push_str(&format!(", health check {h}"));
        }
        text
    }
}

/// A Route 53 health check: a connection of `kind` (TCP, HTTPS…) to `ip:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub id: String,
    pub caller_reference: String,
    pub kind: String,
    pub ip: String,
    pub port: i32,
}

/// What one change does to a record set.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordChange {
    /// A multivalue answer record: `set_identifier` → `ip`, tied to `health_check`.
    Upsert {
        set_identifier: String,
        ip: String,
        ttl: i64,
        health_check: String,
    },
    /// The set exactly as Route 53 listed it.
    Delete(Box<ARecordSet>),
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Route53 {
    /// Every A record set named exactly `domain` (a multivalue answer name has one per value),
    /// across pages.
    pub async fn a_record_sets(&self, zone: &Zone, domain: &str) -> Result<Vec<ARecordSet>> {
        let mut sets = Vec::new();
        let (mut name, mut id) = (domain.to_string(), None::<String>);
        loop {
            let reply = self
                .client()
                .list_resource_record_sets()
                .hosted_zone_id(&zone.id)
                .start_record_name(&name)
                .start_record_type(RrType::A)
                .set_start_record_identifier(id.clone())
                .send()
                .await
                .map_err(describe)
                .with_context(|| {
                    format!("cannot list records of zone {} ({})", zone.name, zone.id)
                })?;
            let mut past = false;
            for s in reply.resource_record_sets() {
                if normalize(s.name()) != domain || *s.r#type() != RrType::A {
                    past = true;
                    break;
                }
                sets.push(ARecordSet::of(s));
            }
            match (past, reply.is_truncated(), reply.next_record_name()) {
                (false, true, Some(next)) => {
                    name = next.to_string();
                    id = reply.next_record_identifier().map(String::from);
                }
                _ => return Ok(sets),
            }
        }
    }

    /// Every health check of the account whose CallerReference starts with `prefix`.
    pub async fn health_checks(&self, prefix: &str) -> Result<Vec<HealthCheck>> {
        let mut found = Vec::new();
        let mut marker = None::<String>;
        loop {
            let reply = self
                .client()
                .list_health_checks()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(describe)
                .context("cannot list Route 53 health checks")?;
            for h in reply.health_checks() {
                if !h.caller_reference().starts_with(prefix) {
                    continue;
                }
                let config = h.health_check_config();
                found.push(HealthCheck {
                    id: h.id().to_string(),
                    caller_reference: h.caller_reference().to_string(),
                    kind: config
                        .map(|c| c.r#type().as_str().to_string())
                        .unwrap_or_default(),
                    ip: config
                        .and_then(|c| c.ip_address())
                        .unwrap_or_default()
                        .to_string(),
                    port: config.and_then(|c| c.port()).unwrap_or_default(),
                });
            }
            match reply.next_marker() {
                Some(next) if reply.is_truncated() => marker = Some(next.to_string()),
                _ => return Ok(found),
            }
        }
    }

    /// Creates a TCP health check of `ip:port` (every 10 s, unhealthy after 3 failures);
    /// returns its id.
    pub async fn create_tcp_health_check(
        &self,
        caller_reference: &str,
        ip: &str,
        port: i32,
    ) -> Result<String> {
        let config = HealthCheckConfig::builder()
            .r#type(HealthCheckType::Tcp)
            .ip_address(ip)
            .port(port)
            .request_interval(10)
            .failure_threshold(3)
            .build()?;
        let reply = self
            .client()
            .create_health_check()
            .caller_reference(caller_reference)
            .health_check_config(config)
            .send()
            .await
            .map_err(describe)
            .with_context(|| format!("Route 53 refused a health check of {ip}:{port}"))?;
        let check = reply.health_check().with_context(|| {
            format!("Route 53 answered CreateHealthCheck of {ip}:{port} without the health check")
        })?;
        Ok(check.id().to_string())
    }

    pub async fn delete_health_check(&self, id: &str) -> Result<()> {
        self.client()
            .delete_health_check()
            .health_check_id(id)
            .send()
            .await
            .map_err(describe)
            .with_context(|| format!("Route 53 refused to delete health check {id}"))?;
        Ok(())
    }

    /// Applies `changes` to `domain`'s A records in one batch; returns the change id.
    pub async fn change_a_sets(
        &self,
        zone: &Zone,
        domain: &str,
        changes: &[RecordChange],
        comment: &str,
    ) -> Result<String> {
        let mut batch = ChangeBatch::builder().comment(comment);
        for c in changes {
            let (action, set) = match c {
                RecordChange::Upsert {
                    set_identifier,
                    ip,
                    ttl,
                    health_check,
                } => (
                    ChangeAction::Upsert,
                    ResourceRecordSet::builder()
                        .name(domain)
                        .r#type(RrType::A)
                        .set_identifier(set_identifier)
                        .multi_value_answer(true)
                        .ttl(*ttl)
                        .health_check_id(health_check)
                        .resource_records(ResourceRecord::builder().value(ip).build()?)
                        .build()?,
                ),
                RecordChange::Delete(now) => (ChangeAction::Delete, now.listed.clone()),
            };
            batch = batch.changes(
                Change::builder()
                    .action(action)
                    .resource_record_set(set)
                    .build()?,
            );
        }
        let reply = self
            .client()
            .change_resource_record_sets()
            .hosted_zone_id(&zone.id)
            .change_batch(batch.build()?)
            .send()
            .await
            .map_err(describe)
            .with_context(|| {
                format!(
                    "Route 53 refused to change the A records of {domain} in zone {}",
                    zone.name
                )
            })?;
        let info = reply.change_info().with_context(|| {
            format!("Route 53 answered the change of {domain}'s A records without its change id")
        })?;
        Ok(info.id().to_string())
    }
}
