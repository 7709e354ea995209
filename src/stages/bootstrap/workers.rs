//! The workers: those in the cluster on another channel follow the controller one at a time
//! (`upgrade.rs`); the others are installed (or refreshed) and joined in parallel (`join.rs`).

use std::sync::Mutex;

use anyhow::{Result, anyhow, bail};

use crate::ssh::SshSession;

use super::controller::{JoinToken, wait_nodes_ready};
use super::plan::{Plan, Snap, WorkerPlan, WorkerSnap};
use super::probe::probe_host;
use super::{Apply, first_line, join, parallel, snap, upgrade};

/// A worker's name and why it failed.
pub type Failure = (String, anyhow::Error);

/// Workers in the cluster on another channel: cordoned, drained, refreshed, uncordoned and
/// Ready, one at a time, the controller draining them.
pub fn upgrade_in_cluster(a: &Apply, controller: &SshSession, plan: &Plan) -> Vec<Failure> {
    let mut failed = Vec::new();
    for w in &plan.workers {
        let WorkerSnap::Known(Snap::Upgrade { from }) = &w.snap else {
            continue;
        };
        let name = w.name();
        a.progress(
            name,
            &format!(
                "refreshing microk8s {from} → {} (cordon, drain)",
                plan.channel
            ),
        );
        let refreshed = a.hosts.connect(&w.host).and_then(|session| {
            upgrade::refresh_worker(
                controller,
                &session,
                name,
                &plan.channel,
                a.sudo(),
                a.mk.drain_timeout,
                a.mk.ready_timeout,
                a.reporter,
            )
        });
        match refreshed {
            Ok(()) => a.progress(name, &format!("on {}, uncordoned, Ready", plan.channel)),
            Err(e) => {
                a.progress(name, &format!("failed: {}", first_line(&e)));
                failed.push((name.to_string(), e));
            }
        }
    }
    failed
}

/// One worker: probed again when the plan could not probe it, its snap installed or refreshed
/// outside the cluster, then joined. Returns whether it joined (and is to be awaited Ready).
fn converge(a: &Apply, w: &WorkerPlan, channel: &str, token: &Mutex<JoinToken>) -> Result<bool> {
    let name = w.name();
    let session = a.hosts.connect(&w.host)?;
    let snap_step = match &w.snap {
        WorkerSnap::Known(s) => s.clone(),
        WorkerSnap::Unprobed { .. } => {
            let facts = probe_host(&session, a.hosts.user(), a.mk.ready_timeout, &[])?;
            Snap::decide(facts.channel.as_deref(), channel, w.in_cluster)
        }
    };
    match &snap_step {
        Snap::Install => {
            a.progress(name, &format!("installing microk8s {channel}"));
            a.run(&session, snap("install", channel))?;
        }
        Snap::Refresh { from } => {
            a.progress(name, &format!("refreshing microk8s {from} → {channel}"));
            a.run(&session, snap("refresh", channel))?;
        }
        Snap::Upgrade { from } if matches!(w.snap, WorkerSnap::Unprobed { .. }) => bail!(
            "{name} runs microk8s {from}, not {channel}, and was unreachable when the plan was made: a re-run drains and refreshes it"
        ),
        // Planned: refreshed by `upgrade_in_cluster` before the joins.
        Snap::Upgrade { .. } | Snap::Current => {}
    }
    if !w.join {
        a.progress(name, "already in the cluster");
        return Ok(false);
    }
    a.progress(name, "joining");
    join::join(
        &session,
        a.sudo(),
        token,
        a.mk.ready_timeout,
        a.reporter,
        &|m| a.progress(name, m),
    )?;
    a.progress(name, "waiting for the node to be Ready");
    Ok(true)
}

/// Workers in parallel: install (or refresh, outside the cluster), then join. One token with
/// a TTL serves them all (join.rs), issued while they install; readiness is awaited once for
/// all of them afterwards: the controller's one session never becomes the queue the workers
/// wait in.
pub fn join_all(a: &Apply, controller: SshSession, plan: &Plan) -> Result<Vec<Failure>> {
    let cname = &plan.controller.host.hostname;
    let token = Mutex::new(JoinToken::new(
        controller,
        a,
        &plan.controller.host.private_ip,
    ));
    let joining = Mutex::new(Vec::new());
    let work: Vec<&WorkerPlan> = plan.workers.iter().filter(|w| w.has_work()).collect();
    let mut failed = std::thread::scope(|scope| {
        // The token is issued while the workers install: the controller's round trip overlaps
        // the longest step instead of following it. A failure here is not lost: the workers'
        // own request for the token meets it again and reports it.
        if plan.needs_join() {
            scope.spawn(|| {
                if let Err(e) = token.lock().unwrap_or_else(|e| e.into_inner()).url() {
                    a.progress(cname, &format!("issuing a join token: {}", first_line(&e)));
                }
            });
        }
        parallel(
            &work,
            a.mk.concurrency as usize,
            |w| w.name().to_string(),
            |w| {
                let joined = converge(a, w, &plan.channel, &token)
                    .inspect_err(|e| a.progress(w.name(), &format!("failed: {}", first_line(e))))?;
                if joined {
                    joining
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(w.name().to_string());
                }
                Ok(())
            },
        )
    });
    let controller = token
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .session;
    let joining = joining.into_inner().unwrap_or_else(|e| e.into_inner());
    let not_ready = wait_nodes_ready(&controller, a.sudo(), &joining, a.mk.ready_timeout)?;
    for name in &joining {
        if not_ready.contains(name) {
            a.progress(name, "failed: joined but not Ready");
            failed.push((
                name.clone(),
                anyhow!(
                    "{name} joined but is not Ready after {}s (microk8s.ready_timeout)",
                    a.mk.ready_timeout.as_secs()
                ),
            ));
        } else {
            a.progress(name, "joined, Ready");
        }
    }
    Ok(failed)
}
