//! The controllers after the first (`[cluster] controllers` 3 or 5): each installed while the
//! first converges, then joined to it as a full node of the control plane (`microk8s join`
//! without `--worker`), one at a time; then the run waits until the datastore is highly
//! available.
//!
//! A peer that is a member already and on another channel is refreshed after the first
//! controller and one at a time (each restarts its voter). One join at a time: a joining node's k8s-dqlite asks the leader to add it, and raft takes
//! one configuration change at a time (a second one while the first is uncommitted is refused,
//! canonical/raft `src/client.c` `raft_add`/`raft_assign`: `RAFT_CANTCHANGE`). The wait follows
//! go-dqlite's role management (canonical/go-dqlite `app/roles.go` `RolesChanges.Adjust`, with
//! the defaults of `app/options.go`: 3 voters, 3 stand-bys): a node joins as a spare and the
//! leader promotes it, until 3 are voters and the rest stand-bys; `microk8s status` reports
//! `high-availability: yes` from 3 voters on (canonical/microk8s 1.32
//! `scripts/wrappers/status.py` `ha_cluster_formed`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::ssh::{RemoteCommand, SshSession};

use super::controller::{Controller, Phase, wait_nodes_ready, wait_ready};
use super::plan::{PeerPlan, Plan, Snap, WorkerSnap};
use super::probe::parse_datastore_yaml;
use super::workers::Failure;
use super::{Apply, exec_logged, first_line, join, parallel, snap};

/// How many voters go-dqlite keeps (the module's comment).
const VOTERS: usize = 3;

/// Every peer with something to do, installed at once, joined one at a time once the first
/// controller is ready; then the datastore awaited. Returns the peers that failed.
pub fn converge_all(a: &Apply, plan: &Plan, controller: &Controller) -> Vec<Failure> {
    if plan.peers.is_empty() {
        return Vec::new();
    }
    let one_at_a_time = Mutex::new(());
    let joined = Mutex::new(Vec::new());
    let work: Vec<&PeerPlan> = plan.peers.iter().collect();
    let mut failed = parallel(
        &work,
        a.mk.concurrency as usize,
        |p| p.name().to_string(),
        |p| {
            let this = converge(a, p, &plan.channel, controller, &one_at_a_time)
                .inspect_err(|e| a.progress(p.name(), &format!("failed: {}", first_line(e))))?;
            if this {
                joined
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(p.name().to_string());
            }
            Ok(())
        },
    );
    let joined = joined.into_inner().unwrap_or_else(|e| e.into_inner());
    if !joined.is_empty() {
        let all = 1 + plan.peers.len();
        if let Err(e) = await_datastore(a, plan, all, &joined) {
            failed.push((plan.controller.host.hostname.clone(), e));
        }
    }
    failed
}

/// One peer: its snap, its user's group, then its join. Returns whether it joined.
fn converge(
    a: &Apply,
    p: &PeerPlan,
    channel: &str,
    controller: &Controller,
    one_at_a_time: &Mutex<()>,
) -> Result<bool> {
    let name = p.name();
    let snap_step = match &p.snap {
        WorkerSnap::Known(s) => s,
        WorkerSnap::Unprobed { reason } => bail!(
            "unreachable when the plan was made ({reason}); start its instance (`jeeves start`) or let terraform replace it, then run `jeeves up` again"
        ),
    };
    let needs_host = p.join || p.add_to_group.is_some() || !matches!(snap_step, Snap::Current);
    if !needs_host {
        return Ok(false);
    }
    let session = a.hosts.connect(&p.host)?;
    match snap_step {
        Snap::Install => {
            a.progress(name, &format!("installing microk8s {channel}"));
            a.run(&session, snap("install", channel))?;
        }
        // A member of the datastore: a refresh restarts its voter, so after the first
        // controller's and one at a time, each awaited ready before the next, so that a
        // majority of the voters is always up.
        Snap::Refresh { from } | Snap::Upgrade { from } if !p.join => {
            controller.wait(&Phase::Ready)?;
            let _turn = one_at_a_time.lock().unwrap_or_else(|e| e.into_inner());
            a.progress(name, &format!("refreshing microk8s {from} → {channel}"));
            a.run(&session, snap("refresh", channel))?;
            a.run(&session, wait_ready(a.mk.ready_timeout))?;
            a.progress(name, &format!("on {channel}, ready"));
        }
        Snap::Refresh { from } | Snap::Upgrade { from } => {
            a.progress(name, &format!("refreshing microk8s {from} → {channel}"));
            a.run(&session, snap("refresh", channel))?;
        }
        Snap::Current => {}
    }
    if let Some(user) = &p.add_to_group {
        a.run(
            &session,
            RemoteCommand::new("usermod").args(["-a", "-G", "microk8s", user.as_str()]),
        )?;
    }
    if !p.join {
        return Ok(false);
    }
    a.progress(name, "waiting for microk8s to be ready");
    a.run(&session, wait_ready(a.mk.ready_timeout))?;
    if !controller.reached(&Phase::Ready) {
        a.progress(name, "waiting for the controller");
    }
    let token = controller.wait_token(&Phase::Ready)?;
    let _turn = one_at_a_time.lock().unwrap_or_else(|e| e.into_inner());
    a.progress(name, "joining the control plane");
    join::join(
        &session,
        true,
        a.sudo(),
        token,
        a.mk.ready_timeout,
        a.reporter,
        &|m| a.progress(name, m),
    )?;
    a.progress(name, "joined");
    Ok(true)
}

/// Waits until the first controller's datastore lists every controller, `VOTERS` of them (or
/// all, when fewer) voters, and the joined peers' nodes are Ready.
fn await_datastore(a: &Apply, plan: &Plan, all: usize, joined: &[String]) -> Result<()> {
    let c = &plan.controller.host;
    let session = a.hosts.connect(c)?;
    a.progress(
        &c.hostname,
        &format!("waiting for the datastore's {} voters", VOTERS.min(all)),
    );
    let deadline = Instant::now() + a.mk.ready_timeout;
    let mut delay = Duration::from_millis(250);
    let addresses: Vec<&str> = std::iter::once(c)
        .chain(plan.peers.iter().map(|p| &p.host))
        .map(|h| h.private_ip.as_str())
        .collect();
    loop {
        crate::interrupt::check()?;
        // Not answering yet (its API restarting as a node joins): asked again.
        let seen = datastore(a, &session)?.unwrap_or_default();
        // The inventory's voters only: a dead controller terraform replaced can stay listed
        // (as a voter while no other node can take its place).
        let voters = addresses
            .iter()
            .filter(|ip| seen.get(**ip).is_some_and(|r| r == "voter"))
            .count();
        let missing: Vec<&str> = addresses
            .iter()
            .copied()
            .filter(|ip| !seen.contains_key(*ip))
            .collect();
        if missing.is_empty() && voters >= VOTERS.min(all) {
            break;
        }
        if Instant::now() + delay > deadline {
            bail!(
                "the datastore is not highly available after {}s (microk8s.ready_timeout): {voters} voter(s) of {} expected{}; `microk8s status` on {} lists them",
                a.mk.ready_timeout.as_secs(),
                VOTERS.min(all),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(", not members: {}", missing.join(", "))
                },
                c.hostname
            );
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    let not_ready = wait_nodes_ready(&session, a.sudo(), joined, a.mk.ready_timeout)?;
    if !not_ready.is_empty() {
        let list: Vec<&str> = not_ready.iter().map(String::as_str).collect();
        bail!(
            "not Ready after {}s (microk8s.ready_timeout): {}",
            a.mk.ready_timeout.as_secs(),
            list.join(", ")
        );
    }
    a.progress(
        &c.hostname,
        &format!("high availability: {all} controllers in the datastore"),
    );
    Ok(())
}

/// The datastore's members as the first controller's `microk8s status --format yaml` lists
/// them: IP → role; `None` while it is not running (status exits 1).
fn datastore(
    a: &Apply,
    session: &SshSession,
) -> Result<Option<std::collections::BTreeMap<String, String>>> {
    let cmd = RemoteCommand::new("microk8s")
        .args(["status", "--format", "yaml"])
        .sudo(a.sudo());
    let out = exec_logged(session, &cmd, a.reporter)?;
    Ok((out.status == 0).then(|| parse_datastore_yaml(&out.stdout)))
}
