//! The dns stage: the domain's A record → the controller's public IP. `ensure_record` is also
//! what the tls stage calls before asking for a certificate. With controllers ≥ 3: one
//! multivalue answer record per controller, each tied to a health check (`multivalue`).

mod multivalue;
mod teardown;

use anyhow::{Context, Result};
use async_trait::async_trait;

use crate::aws::ec2::Ec2;
use crate::aws::route53::{ARecord, Route53, Zone};
use crate::aws::sdk_config;
use crate::config::Settings;
use crate::report::Change;
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::state::State;

/// What the probe found: the one controller's simple record, or (controllers ≥ 3) one
/// multivalue answer record per controller.
pub enum RecordProbe {
    Single(SingleRecord),
    Multi(multivalue::Records),
}

/// Where the record lives, what it is, what it should be.
pub struct SingleRecord {
    route53: Route53,
    zone: Zone,
    current: Option<ARecord>,
    ip: String,
}

impl RecordProbe {
    pub async fn run(settings: &Settings, state: &mut State) -> Result<RecordProbe> {
        let config = sdk_config().await;
        if !settings.cluster.single() {
            // Each controller's record is its own; EC2's tags find only the first.
            state.inventory.controller()?;
            let controllers: Vec<crate::state::Host> =
                state.inventory.controllers().into_iter().cloned().collect();
            let route53 = Route53::new(&config);
            let zone = route53
                .find_zone(&settings.domain, settings.dns.zone_id.as_deref())
                .await?;
            return Ok(RecordProbe::Multi(
                multivalue::Records::probe(settings, &controllers, route53, zone).await?,
            ));
        }
        let ip = controller_ip(settings, state, &config).await?;
        let route53 = Route53::new(&config);
        let zone = route53
            .find_zone(&settings.domain, settings.dns.zone_id.as_deref())
            .await?;
        let current = route53.a_record(&zone, &settings.domain).await?;
        Ok(RecordProbe::Single(SingleRecord {
            route53,
            zone,
            current,
            ip,
        }))
    }

    pub fn changes(&self, settings: &Settings) -> Vec<Change> {
        match self {
            RecordProbe::Single(r) => r.changes(settings),
            RecordProbe::Multi(r) => r.changes(settings),
        }
    }

    pub async fn apply(&self, settings: &Settings, cx: &StageContext<'_>) -> Result<()> {
        match self {
            RecordProbe::Single(r) => r.apply(settings, cx).await,
            RecordProbe::Multi(r) => r.apply(settings, cx).await,
        }
    }

    /// What the domain answers after apply.
    fn ips(&self) -> String {
        match self {
            RecordProbe::Single(r) => r.ip.clone(),
            RecordProbe::Multi(r) => r.ips().join(", "),
        }
    }
}

impl SingleRecord {
    pub fn changes(&self, settings: &Settings) -> Vec<Change> {
        let ttl = i64::from(settings.dns.ttl);
        match &self.current {
            Some(r) if r.is(&self.ip, ttl) => Vec::new(),
            current => {
                let was = match current {
                    None => String::new(),
                    Some(r) if r.alias => ", was an alias".to_string(),
                    Some(r) => format!(
                        ", was {} ttl {}",
                        r.values.join(","),
                        r.ttl.unwrap_or_default()
                    ),
                };
                vec![Change::new(
                    if current.is_some() {
                        "update"
                    } else {
                        "create"
                    },
                    format!(
                        "A {} → {} (ttl {ttl}, zone {}{was})",
                        settings.domain, self.ip, self.zone.name
                    ),
                )]
            }
        }
    }

    /// UPSERTs the record and waits until Route 53 reports it INSYNC.
    pub async fn apply(&self, settings: &Settings, cx: &StageContext<'_>) -> Result<()> {
        let comment = format!("jeeves {}", settings.name);
        let change = self
            .route53
            .upsert_a(
                &self.zone,
                &settings.domain,
                &self.ip,
                i64::from(settings.dns.ttl),
                &comment,
            )
            .await?;
        cx.info(format!("change {change} submitted; waiting for INSYNC"));
        self.route53
            .wait_insync(&change, settings.dns.wait_timeout)
            .await
    }
}

/// The controller's public IP: from the inventory, or (state lost) from EC2 by the tags the
/// terraform configuration sets, which also repairs the inventory.
async fn controller_ip(
    settings: &Settings,
    state: &mut State,
    config: &aws_config::SdkConfig,
) -> Result<String> {
    if let Some(c) = &state.inventory.controller {
        return Ok(c.public_ip.clone());
    }
    let found = Ec2::new(config)
        .find_controller(&settings.project.name)
        .await
        .context("the inventory has no controller, and looking it up in EC2 failed")?;
    let ip = found.public_ip.clone();
    state.inventory.controller = Some(crate::state::Host {
        id: found.id,
        hostname: found.hostname,
        public_ip: found.public_ip,
        private_ip: found.private_ip,
    });
    Ok(ip)
}

/// `jeeves down` with controllers ≥ 3: this stack's multivalue records and health checks
/// deleted (records pointing elsewhere stay); what was done, as lines for the log.
pub async fn remove_multivalue(
    settings: &Settings,
    controllers: &[crate::state::Host],
) -> Result<Vec<String>> {
    let (route53, zone) = route53_zone(settings).await?;
    teardown::remove(settings, controllers, &route53, &zone).await
}

/// Route 53 and the zone that holds the domain (`dns.zone_id`, else the longest suffix).
async fn route53_zone(settings: &Settings) -> Result<(Route53, Zone)> {
    let route53 = Route53::new(&sdk_config().await);
    let zone = route53
        .find_zone(&settings.domain, settings.dns.zone_id.as_deref())
        .await?;
    Ok((route53, zone))
}

/// `jeeves check` with controllers ≥ 3: what the dns stage would change (empty: each
/// controller has its health-checked multivalue record, and nothing else is there).
pub async fn multivalue_drift(
    settings: &Settings,
    controllers: &[crate::state::Host],
) -> Result<Vec<String>> {
    let (route53, zone) = route53_zone(settings).await?;
    let records = multivalue::Records::probe(settings, controllers, route53, zone).await?;
    Ok(records
        .changes(settings)
        .into_iter()
        .map(|c| format!("{} {}", c.action, c.target))
        .collect())
}

/// Makes sure the record points at the controller; true when it had to change it.
pub async fn ensure_record(cx: &mut StageContext<'_>) -> Result<bool> {
    let probe = RecordProbe::run(cx.settings, cx.state).await?;
    if probe.changes(cx.settings).is_empty() {
        return Ok(false);
    }
    probe.apply(cx.settings, cx).await?;
    Ok(true)
}

#[derive(Default)]
pub struct DnsStage {
    probe: Option<RecordProbe>,
}

#[async_trait]
impl Stage for DnsStage {
    fn name(&self) -> StageName {
        StageName::Dns
    }

    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>> {
        let probe = RecordProbe::run(cx.settings, cx.state).await?;
        let changes = probe.changes(cx.settings);
        self.probe = Some(probe);
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let probe = self.probe.as_ref().context("apply without probe")?;
        probe.apply(cx.settings, cx).await?;
        cx.host(&cx.settings.domain, format!("A → {}", probe.ips()));
        Ok(())
    }
}
