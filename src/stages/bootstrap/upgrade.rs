//! Every node follows `microk8s.channel`. The controller is refreshed first; then each worker
//! already in the cluster, one at a time, so that the others keep serving: cordon, drain,
//! `snap refresh`, uncordon, wait until Ready. A channel on an older track than a node runs is
//! refused before anything changes: MicroK8s does not support downgrades.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::report::Reporter;
use crate::ssh::{RemoteCommand, SshSession};

use super::controller::wait_nodes_ready;
use super::{run_logged, snap};

/// A channel's track as a comparable version: `1.32/stable` → (1, 32); `latest/…` is newer
/// than any numbered track. `None` for a track that is neither.
pub fn track(channel: &str) -> Option<(u32, u32)> {
    let track = channel.split('/').next()?;
    if track == "latest" {
        return Some((u32::MAX, u32::MAX));
    }
    let digits: String = track
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (major, minor) = digits.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// `Some(message)` when moving from `have` to `want` is a downgrade.
pub fn downgrade(host: &str, have: &str, want: &str) -> Option<String> {
    match (track(have), track(want)) {
        (Some(h), Some(w)) if w < h => Some(format!(
            "{want} is an older track than the {have} that {host} runs; MicroK8s does not support downgrades (choose {have} or newer, or rebuild the host)"
        )),
        _ => None,
    }
}

/// Moves one worker that is in the cluster to `channel`, the controller draining it first.
/// A drain or refresh that fails uncordons the worker again (on its old channel) and fails; an
/// error says when a worker is left cordoned.
#[allow(clippy::too_many_arguments)]
pub fn refresh_worker(
    controller: &SshSession,
    worker: &SshSession,
    node: &str,
    channel: &str,
    sudo: bool,
    drain_timeout: Duration,
    ready_timeout: Duration,
    reporter: &Reporter,
) -> Result<()> {
    let kubectl = |args: &[&str]| {
        RemoteCommand::new("microk8s")
            .arg("kubectl")
            .args(args.iter().copied())
            .sudo(sudo)
    };
    let run = |s: &SshSession, cmd: RemoteCommand| run_logged(s, &cmd, reporter);
    run(controller, kubectl(&["cordon", node]))?;
    // Every MicroK8s node runs a calico-node DaemonSet pod: without --ignore-daemonsets a drain
    // never succeeds. The timeout needs its unit.
    let timeout = format!("--timeout={}s", drain_timeout.as_secs().max(1));
    let drained = run(
        controller,
        kubectl(&[
            "drain",
            node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            &timeout,
        ]),
    );
    if let Err(e) = drained {
        let back = run(controller, kubectl(&["uncordon", node]));
        let note = match back {
            Ok(()) => "uncordoned, still on its old channel".to_string(),
            Err(u) => format!("and it could not be uncordoned: {u:#}"),
        };
        return Err(e.context(format!(
            "draining {node} failed within {}s (microk8s.drain_timeout); {note}",
            drain_timeout.as_secs()
        )));
    }
    if let Err(e) = run(worker, snap("refresh", channel).sudo(sudo)) {
        let note = match run(controller, kubectl(&["uncordon", node])) {
            Ok(()) => "uncordoned again".to_string(),
            Err(u) => format!("and it is still cordoned: {u:#}"),
        };
        return Err(e.context(format!("refreshing {node} to {channel} failed; {note}")));
    }
    run(controller, kubectl(&["uncordon", node]))
        .map_err(|e| e.context(format!("{node} is on {channel} but still cordoned")))?;
    let not_ready = wait_nodes_ready(controller, sudo, &[node.to_string()], ready_timeout)?;
    if !not_ready.is_empty() {
        bail!(
            "{node} was refreshed to {channel} but is not Ready after {}s (microk8s.ready_timeout)",
            ready_timeout.as_secs()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_compare_as_versions() {
        assert_eq!(track("1.32/stable"), Some((1, 32)));
        assert_eq!(track("1.32-strict/stable"), Some((1, 32)));
        assert!(track("1.9/stable") < track("1.32/stable"));
        assert!(track("latest/edge") > track("1.33/stable"));
        assert_eq!(track("stable"), None);
        assert!(downgrade("controller", "1.32/stable", "1.31/stable").is_some());
        assert!(downgrade("controller", "1.32/stable", "1.32/candidate").is_none());
        assert!(downgrade("controller", "1.31/stable", "1.32/stable").is_none());
        assert!(downgrade("controller", "latest/stable", "1.32/stable").is_some());
    }
}
