use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use super::Session;
use crate::aws::dns_record::{self, Removal};
use crate::aws::ec2::Ec2;
use crate::aws::route53::Route53;
use crate::aws::sdk_config;
use crate::cli::{DownArgs, GlobalArgs};
use crate::config::Settings;
use crate::report::{Event, Redactor};
use crate::stage::StageLog;
use crate::stage_name::StageName;
use crate::stages::terraform;
use crate::state::{Inventory, StageResult};

/// Teardown: the DNS record (only while it points at this stack), then terraform destroy.
pub async fn run(
    g: &GlobalArgs,
    settings: &Arc<Settings>,
    redactor: Redactor,
    args: &DownArgs,
) -> Result<u8> {
    super::confirm_by_name(
        settings,
        args.yes,
        "jeeves down",
        "destroys the stack",
        "Destroy every resource",
        "nothing was destroyed",
    )?;
    crate::interrupt::install()?;
    let session = Session::open(g, settings, redactor, "down").await?;
    let reporter = &session.reporter;
    let started = Instant::now();
    let mut state = session.state_dir.load()?;
    reporter.emit(Event::RunStarted {
        command: "down".into(),
        pipeline: settings.name.clone(),
        stages: if args.keep_dns {
            vec![StageName::Terraform]
        } else {
            vec![StageName::Dns, StageName::Terraform]
        },
    });
    let result = teardown(settings, &session, &mut state, args.keep_dns).await;
    super::finish_run(&session, started, result)
}

async fn teardown(
    settings: &Arc<Settings>,
    session: &Session,
    state: &mut crate::state::State,
    keep_dns: bool,
) -> Result<()> {
    let reporter = &session.reporter;
    let step = |stage: StageName, result: StageResult, started: Instant, error: Option<String>| {
        reporter.emit(Event::StageFinished {
            stage,
            result,
            duration_ms: started.elapsed().as_millis() as u64,
            error,
        });
    };
    if !keep_dns {
        let started = Instant::now();
        reporter.emit(Event::StageStarted {
            stage: StageName::Dns,
        });
        let log = StageLog {
            reporter,
            stage: StageName::Dns,
        };
        if let Err(e) = remove_record(settings, &state.inventory, log).await {
            step(
                StageName::Dns,
                StageResult::Failed,
                started,
                Some(format!("{e:#}")),
            );
            return Err(e.context(
                "removing the DNS record failed; nothing was destroyed (re-run, or pass --keep-dns to leave the record)",
            ));
        }
        step(StageName::Dns, StageResult::Changed, started, None);
    }
    let started = Instant::now();
    reporter.emit(Event::StageStarted {
        stage: StageName::Terraform,
    });
    let log = StageLog {
        reporter,
        stage: StageName::Terraform,
    };
    let outcome = async {
        let tf = terraform::terraform(settings, &session.state_dir)?;
        tf.init(|s| log.tool_said(s, true)).await?;
        let kept = tf.destroy_keeping(terraform::report(log)).await?;
        if kept {
            log.info(format!(
                "kept {} (the backup bucket): its archives outlive the stack; the next `up` finds it in the terraform state",
                crate::terraform::KEPT_MODULE
            ));
        }
        anyhow::Ok(kept)
    }
    .await;
    match outcome {
        Ok(kept) => {
            step(StageName::Terraform, StageResult::Changed, started, None);
            // The hosts are gone; a kept bucket is not: `backup --list` and `restore` read it
            // from the inventory (config/backup_outputs.rs) when the pipeline names none.
            let (backup_bucket, backup_prefix) = match kept {
                true => (
                    state.inventory.backup_bucket.take(),
                    state.inventory.backup_prefix.take(),
                ),
                false => (None, None),
            };
            state.inventory = Inventory {
                backup_bucket,
                backup_prefix,
                ..Inventory::default()
            };
            state.stages.clear();
            state.worker_channels.clear();
            session.state_dir.save(state)?;
            Ok(())
        }
        Err(e) => {
            step(
                StageName::Terraform,
                StageResult::Failed,
                started,
                Some(format!("{e:#}")),
            );
            Err(e.context(
                "terraform destroy failed; the state is unchanged, re-run `jeeves down` to retry",
            ))
        }
    }
}

/// Deletes the domain's record only while it points at this stack's controller (from the
/// inventory, or found in EC2 by its tags when the state was lost).
async fn remove_record(settings: &Settings, inv: &Inventory, log: StageLog<'_>) -> Result<()> {
    if !settings.cluster.single() {
        let mut controllers: Vec<_> = inv.controllers().into_iter().cloned().collect();
        if controllers.is_empty() {
            // The inventory lost: the controllers by their tags, so that their records go before
            // terraform releases their addresses (a lookup that fails stops the teardown).
            controllers = Ec2::new(&sdk_config().await)
                .find_controllers(&settings.project.name)
                .await
                .context("the inventory has no controllers, and looking them up in EC2 failed")?
                .into_iter()
                .map(|i| crate::state::Host {
                    id: i.id,
                    hostname: i.hostname,
                    public_ip: i.public_ip,
                    private_ip: i.private_ip,
                })
                .collect();
        }
        for line in crate::stages::dns::remove_multivalue(settings, &controllers).await? {
            log.host(&settings.domain, line);
        }
        return Ok(());
    }
    let config = sdk_config().await;
    let ip = match &inv.controller {
        Some(c) => c.public_ip.clone(),
        None => match Ec2::new(&config)
            .find_controller(&settings.project.name)
            .await
        {
            Ok(found) => found.public_ip,
            Err(e) => {
                log.warn(format!(
                    "record {} left in place: the inventory has no controller and EC2 does not know it ({e:#})",
                    settings.domain
                ));
                return Ok(());
            }
        },
    };
    let removal = dns_record::remove_if_points_at(
        &Route53::new(&config),
        &settings.domain,
        settings.dns.zone_id.as_deref(),
        &ip,
        &format!("jeeves {} down", settings.name),
        settings.dns.wait_timeout,
    )
    .await?;
    match removal {
        Removal::Absent { zone } => {
            log.info(format!("no A record {} in zone {zone}", settings.domain))
        }
        Removal::Deleted => log.host(&settings.domain, format!("deleted (pointed at {ip})")),
        Removal::LeftInPlace { points_at } => log.warn(format!(
            "record {} left in place: it points at {points_at}, not at this stack's controller {ip}",
            settings.domain
        )),
    }
    Ok(())
}
