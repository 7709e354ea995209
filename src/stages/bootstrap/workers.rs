//! The workers: each installed (or refreshed, outside the cluster) while the controller
//! converges, and joined as soon as it is installed and the controller is ready (`join.rs`);
//! those in the cluster on another channel follow the controller one at a time (`upgrade.rs`),
//! after the controller has repaired what a stopped upgrade left on a worker's node (its
//! cordon, or Jeeves' mark).

use std::sync::Mutex;

use anyhow::{Result, anyhow, bail};

use crate::ssh::{RemoteCommand, SshSession};

use super::controller::{Controller, Phase, wait_nodes_ready};
use super::plan::{MarkRepair, Plan, Snap, WorkerPlan, WorkerSnap, join_or_start};
use super::probe::probe_host;
use super::{Apply, first_line, join, parallel, snap, upgrade};

/// A worker's name and why it failed.
pub type Failure = (String, anyhow::Error);

/// Workers a stopped run left cordoned, uncordoned (a stale mark removed); then those in the
/// cluster on another channel: cordoned, drained, refreshed, uncordoned and Ready, one at a
/// time, the controller draining them. Called once the controller is ready.
pub fn upgrade_in_cluster(a: &Apply, controller: &SshSession, plan: &Plan) -> Vec<Failure> {
    let mut failed = Vec::new();
    for w in &plan.workers {
        let name = w.name();
        let (cmd, done) = match w.mark {
            Some(MarkRepair::Uncordon) => (
                upgrade::set_cordoned(name, false, a.sudo()),
                "uncordoned (a stopped run had left it cordoned)",
            ),
            Some(MarkRepair::Unmark) => (
                upgrade::unmark(name, a.sudo()),
                "Jeeves' mark removed (it was uncordoned by hand)",
            ),
            None => continue,
        };
        match a.run(controller, cmd) {
            Ok(()) => a.progress(name, done),
            Err(e) => {
                a.progress(name, &format!("failed: {}", first_line(&e)));
                failed.push((name.to_string(), e.context("repairing its cordon mark")));
            }
        }
    }
    for w in &plan.workers {
        let WorkerSnap::Known(Snap::Upgrade { from }) = &w.snap else {
            continue;
        };
        let name = w.name();
        let steps = if w.keep_cordoned {
            "drain; cordoned by someone else"
        } else {
            "cordon, drain"
        };
        a.progress(
            name,
            &format!("refreshing microk8s {from} → {} ({steps})", plan.channel),
        );
        let refreshed = a.hosts.connect(&w.host).and_then(|session| {
            upgrade::refresh_worker(
                a,
                controller,
                &session,
                name,
                &plan.channel,
                w.keep_cordoned,
            )
        });
        let done = if w.keep_cordoned {
            "Ready, left cordoned as found"
        } else {
            "uncordoned, Ready"
        };
        match refreshed {
            Ok(()) => {
                a.settled(&w.host);
                a.progress(name, &format!("on {}, {done}", plan.channel))
            }
            Err(e) => {
                a.progress(name, &format!("failed: {}", first_line(&e)));
                failed.push((name.to_string(), e));
            }
        }
    }
    failed
}

/// One worker: probed again when the plan could not probe it, its snap installed or refreshed
/// outside the cluster, its kubelite started when stopped, then joined. Returns whether it joined
/// or was started (and is to be awaited Ready).
fn converge(a: &Apply, w: &WorkerPlan, channel: &str, controller: &Controller) -> Result<bool> {
    let name = w.name();
    let session = a.hosts.connect(&w.host)?;
    // Unprobed in the plan (which then joined it unless its node was Ready): decided again now.
    let (mut join, mut start) = (w.join, w.start);
    let snap_step = match &w.snap {
        WorkerSnap::Known(s) => s.clone(),
        WorkerSnap::Unprobed { .. } => {
            let facts = probe_host(
                &session,
                a.hosts.user(),
                a.mk.ready_timeout,
                super::probe::Role::Worker,
                &[],
            )?;
            (join, start) = join_or_start(&facts, !w.join);
            Snap::decide(facts.channel.as_deref(), channel, w.in_cluster)
        }
    };
    let probed_again = matches!(w.snap, WorkerSnap::Unprobed { .. });
    match &snap_step {
        Snap::Install => {
            a.progress(name, &format!("installing microk8s {channel}"));
            a.run(&session, snap("install", channel))?;
            a.settled(&w.host);
        }
        Snap::Refresh { from } => {
            a.progress(name, &format!("refreshing microk8s {from} → {channel}"));
            a.run(&session, snap("refresh", channel))?;
            a.settled(&w.host);
        }
        Snap::Upgrade { from } if probed_again => bail!(
            "{name} runs microk8s {from}, not {channel}, and was unreachable when the plan was made: a re-run drains and refreshes it"
        ),
        Snap::Current if probed_again => a.settled(&w.host),
        // Planned: refreshed by `upgrade_in_cluster`, which this worker's join waits for.
        Snap::Upgrade { .. } | Snap::Current => {}
    }
    if start {
        a.progress(name, "starting kubelite (its service was stopped)");
        a.run(
            &session,
            RemoteCommand::new("snap").args(["start", "--enable", "microk8s.daemon-kubelite"]),
        )?;
    }
    if !join {
        if start {
            a.progress(name, "waiting for the node to be Ready");
        } else {
            a.progress(name, "already in the cluster");
        }
        return Ok(start);
    }
    let phase = if matches!(snap_step, Snap::Upgrade { .. }) {
        Phase::Upgraded
    } else {
        Phase::Ready
    };
    if !controller.reached(&phase) {
        a.progress(name, "waiting for the controller");
    }
    let token = controller.wait_token(&phase)?;
    a.progress(name, "joining");
    join::join(
        &session,
        false,
        a.sudo(),
        token,
        a.mk.ready_timeout,
        a.reporter,
        &|m| a.progress(name, m),
    )?;
    a.progress(name, "waiting for the node to be Ready");
    Ok(true)
}

/// Every worker with something to do, on at most `microk8s.concurrency` threads, while the
/// controller converges. One token with a TTL serves them all (join.rs). Returns the workers
/// that joined (to be awaited Ready) and those that failed.
pub fn converge_all(
    a: &Apply,
    plan: &Plan,
    controller: &Controller,
) -> (Vec<String>, Vec<Failure>) {
    let joined = Mutex::new(Vec::new());
    let work: Vec<&WorkerPlan> = plan.workers.iter().filter(|w| w.on_host()).collect();
    let failed = parallel(
        &work,
        a.mk.concurrency as usize,
        |w| w.name().to_string(),
        |w| {
            let this = converge(a, w, &plan.channel, controller)
                .inspect_err(|e| a.progress(w.name(), &format!("failed: {}", first_line(e))))?;
            if this {
                joined
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(w.name().to_string());
            }
            Ok(())
        },
    );
    (
        joined.into_inner().unwrap_or_else(|e| e.into_inner()),
        failed,
    )
}

/// The joined (or started) workers, awaited Ready once for all of them: the controller's one
/// session never becomes the queue the workers wait in.
pub fn await_ready(a: &Apply, controller: &SshSession, joined: &[String]) -> Result<Vec<Failure>> {
    let not_ready = wait_nodes_ready(controller, a.sudo(), joined, a.mk.ready_timeout)?;
    let mut failed = Vec::new();
    for name in joined {
        if not_ready.contains(name) {
            a.progress(name, "failed: not Ready");
            failed.push((
                name.clone(),
                anyhow!(
                    "{name} is not Ready after {}s (microk8s.ready_timeout); its node's conditions: microk8s kubectl describe node {name} (on the controller)",
                    a.mk.ready_timeout.as_secs()
                ),
            ));
        } else {
            a.progress(name, "joined, Ready");
        }
    }
    Ok(failed)
}
