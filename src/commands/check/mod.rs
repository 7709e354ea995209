//! `jeeves check`: a read-only health report of the live stack, for a person and for a
//! scheduled job, through the same event stream and sinks as `up` (one `check_finished` event,
//! and one JUnit testcase, per check). Exit 0 when nothing failed (warnings allowed), 1 when
//! something did; each warning or failure names what to run to repair it.
//!
//! It holds no run lock while it checks and changes nothing remote (one exception: with an
//! external MongoDB it starts and deletes a short-lived Job of its own, named for the run, to
//! read the server's version), so it may run beside an `up`: a scheduled check must never make
//! a deploy fail with exit 3. With the S3 backend it
//! first refreshes the working copy from the bucket, under a brief hold of the local lock
//! (`RunLock::brief`), which an `up` starting in that moment waits for whatever its
//! `--lock-timeout`; it skips the refresh when a run holds the lock. It writes its own log under
//! `logs/`. When a run holds the lock, the report says so, since
//! what that run is changing may show up as failures.
//!
//! Parts: `cloud` (EC2, Route 53), `hosts` (SSH: each host, disks, HAProxy), `cluster` (kubectl
//! and helm through the tunnel; its pods and Jobs judged in `pods`), `web` (HTTPS, /api/info,
//! the :80 redirect).

mod cloud;
mod cluster;
#[cfg(test)]
mod cluster_tests;
mod hosts;
mod mongodb;
mod pods;
#[cfg(test)]
mod pods_tests;
mod web;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use crate::cli::GlobalArgs;
use crate::config::Settings;
use crate::exit_code;
use crate::fleet::Fleet;
use crate::report::{CheckStatus, Event, Level, Redactor, Reporter};
use crate::ssh::HostKeyPolicy;
use crate::state::{RunLock, StateDir};

/// The longest a host may take to answer SSH (less when `ssh.connect_timeout` is).
pub(super) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    check: String,
    status: CheckStatus,
    message: String,
    repair: Option<String>,
}

impl Finding {
    fn ok(check: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            status: CheckStatus::Ok,
            message: message.into(),
            repair: None,
        }
    }

    fn warn(
        check: impl Into<String>,
        message: impl Into<String>,
        repair: impl Into<String>,
    ) -> Finding {
        Finding {
            status: CheckStatus::Warn,
            repair: Some(repair.into()),
            ..Finding::ok(check, message)
        }
    }

    fn fail(
        check: impl Into<String>,
        message: impl Into<String>,
        repair: impl Into<String>,
    ) -> Finding {
        Finding {
            status: CheckStatus::Fail,
            repair: Some(repair.into()),
            ..Finding::ok(check, message)
        }
    }
}

pub async fn run(g: &GlobalArgs, settings: &Arc<Settings>, redactor: Redactor) -> Result<u8> {
    settings.check_ssh_key()?;
    let started = Instant::now();
    let state_dir = StateDir::open(&settings.state_dir)?;
    super::refresh_working_copy(settings, &state_dir, "check").await?;
    let (reporter, _) = super::run_reporter(g, settings, &state_dir, redactor, "check")?;
    reporter.emit(Event::RunStarted {
        command: "check".into(),
        pipeline: settings.name.clone(),
        stages: Vec::new(),
    });
    if let Some(holder) = RunLock::holder(&state_dir.file("lock")) {
        reporter.log(
            None,
            Level::Warn,
            format!(
                "a run holds the lock ({holder}): what it is changing may show as failures here"
            ),
        );
    }
    let failed = check_all(settings, &reporter, &state_dir).await?;
    let code = if failed {
        exit_code::STAGE_FAILED
    } else {
        exit_code::SUCCESS
    };
    reporter.emit(Event::RunFinished {
        result: if failed { "failed" } else { "success" }.into(),
        duration_ms: started.elapsed().as_millis() as u64,
        exit_code: code,
        error: None,
    });
    reporter.finish()?;
    Ok(code)
}

/// Runs every group at once and reports their findings in a fixed order; true when one failed.
async fn check_all(
    settings: &Arc<Settings>,
    reporter: &Reporter,
    state_dir: &StateDir,
) -> Result<bool> {
    let inv = state_dir.load()?.inventory;
    let Some(controller) = inv.controller.clone() else {
        emit(
            reporter,
            vec![Finding::fail(
                "inventory",
                format!(
                    "no controller in {}",
                    state_dir.file("state.json").display()
                ),
                "jeeves up (the stack has not been stood up from this state directory)",
            )],
            0,
        );
        return Ok(true);
    };
    let hosts: Vec<(&str, crate::state::Host)> =
        std::iter::once(("controller", controller.clone()))
            .chain(
                inv.more_controllers
                    .iter()
                    .map(|c| ("controller", c.clone())),
            )
            .chain(inv.workers.iter().map(|w| ("worker", w.clone())))
            .collect();
    // A host that does not answer within this long fails its check: `ssh.connect_timeout`
    // (minutes, for instances still booting) is for `up`, not for a health report.
    let mut ssh = settings.ssh.clone();
    ssh.connect_timeout = ssh.connect_timeout.min(CONNECT_TIMEOUT);
    let fleet = Fleet::new(&ssh, HostKeyPolicy::Strict);
    let timed = |f: Vec<Finding>, t: Instant| (f, t.elapsed().as_millis() as u64);
    let (cloud, hosts, cluster, web) = tokio::join!(
        async {
            let t = Instant::now();
            timed(cloud::check(settings, &inv).await, t)
        },
        async {
            let t = Instant::now();
            timed(hosts::check(settings, &fleet, &hosts).await, t)
        },
        async {
            let t = Instant::now();
            timed(cluster::check(settings, &fleet, &inv, reporter).await, t)
        },
        async {
            let t = Instant::now();
            timed(web::check(settings, &controller.public_ip).await, t)
        },
    );
    let mut failed = false;
    for (findings, ms) in [cloud, hosts, cluster, web] {
        failed |= findings.iter().any(|f| f.status == CheckStatus::Fail);
        emit(reporter, findings, ms);
    }
    reporter.log(
        None,
        Level::Output,
        format!("ssh: {} handshake(s) in this check", fleet.handshakes()),
    );
    // Closes the SSH sessions and the tunnel (blocking: libssh2 says goodbye to each host).
    tokio::task::spawn_blocking(move || drop(fleet)).await.ok();
    Ok(failed)
}

/// A group's findings as events; the group's time is shared among them (JUnit's times add up).
fn emit(reporter: &Reporter, findings: Vec<Finding>, group_ms: u64) {
    let each = group_ms / findings.len().max(1) as u64;
    for f in findings {
        reporter.emit(Event::CheckFinished {
            check: f.check,
            status: f.status,
            message: f.message,
            repair: f.repair,
            duration_ms: each,
        });
    }
}
