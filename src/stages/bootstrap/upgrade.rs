//! Every node follows `microk8s.channel`. The controller is refreshed first; then each worker
//! already in the cluster, one at a time, so that the others keep serving: cordon, drain,
//! `snap refresh`, uncordon, wait until Ready. A channel on an older track than a node runs is
//! refused before anything changes: MicroK8s does not support downgrades.
//!
//! Jeeves cordons with one patch that also marks the node (`CORDONED`) and uncordons with one
//! that unmarks it, so a node a stopped run left cordoned is told from one an operator cordoned:
//! the next run uncordons the first and leaves the second alone.

use anyhow::{Result, bail};

use crate::kube::CORDONED;
use crate::ssh::{RemoteCommand, SshSession};

use super::controller::wait_nodes_ready;
use super::{Apply, run_logged, snap};

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

/// `microk8s kubectl` on the controller.
fn kubectl(args: &[&str], sudo: bool) -> RemoteCommand {
    RemoteCommand::new("microk8s")
        .arg("kubectl")
        .args(args.iter().copied())
        .sudo(sudo)
}

/// Cordons (`true`) or uncordons `node`, marking it as cordoned by Jeeves or unmarking it, in one
/// patch (as `kubectl cordon` does, a patch of `spec.unschedulable`; the API server updates
/// both fields at once, so no stop between two commands leaves the one without the other).
pub fn set_cordoned(node: &str, cordoned: bool, sudo: bool) -> RemoteCommand {
    patch_node(
        node,
        serde_json::json!({
            "metadata": {"annotations": {CORDONED: if cordoned { Some("upgrade") } else { None }}},
            "spec": {"unschedulable": cordoned},
        }),
        sudo,
    )
}

/// Removes Jeeves' mark alone from `node`, which someone uncordoned by hand since.
pub fn unmark(node: &str, sudo: bool) -> RemoteCommand {
    patch_node(
        node,
        serde_json::json!({"metadata": {"annotations": {CORDONED: null}}}),
        sudo,
    )
}

/// `kubectl patch node NODE` with a merge patch (JSON merge patch: `null` removes a key).
fn patch_node(node: &str, patch: serde_json::Value, sudo: bool) -> RemoteCommand {
    let patch = patch.to_string();
    kubectl(
        &["patch", "node", node, "--type", "merge", "--patch", &patch],
        sudo,
    )
}

/// Moves one worker that is in the cluster to `channel`, the controller draining it first.
/// A drain or refresh that fails uncordons the worker again (on its old channel) and fails; an
/// error says when a worker is left cordoned. A worker someone else had cordoned
/// (`keep_cordoned`: cordoned without Jeeves' mark) is drained and refreshed but left cordoned,
/// as it was found: whatever they are doing on it is theirs to end.
pub fn refresh_worker(
    a: &Apply,
    controller: &SshSession,
    worker: &SshSession,
    node: &str,
    channel: &str,
    keep_cordoned: bool,
) -> Result<()> {
    let sudo = a.sudo();
    let (drain_timeout, ready_timeout) = (a.mk.drain_timeout, a.mk.ready_timeout);
    let run = |s: &SshSession, cmd: RemoteCommand| run_logged(s, &cmd, a.reporter);
    // After a failure: what became of the cordon, for the error.
    let uncordon = |again: &str| -> Result<String> {
        if keep_cordoned {
            return Ok("left cordoned, as it was found".into());
        }
        run(controller, set_cordoned(node, false, sudo))?;
        Ok(format!("uncordoned{again}"))
    };
    if !keep_cordoned {
        run(controller, set_cordoned(node, true, sudo))?;
    }
    // Every MicroK8s node runs a calico-node DaemonSet pod: without --ignore-daemonsets a drain
    // never succeeds. The timeout needs its unit.
    let timeout = format!("--timeout={}s", drain_timeout.as_secs().max(1));
    let drained = run(
        controller,
        kubectl(
            &[
                "drain",
                node,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                &timeout,
            ],
            sudo,
        ),
    );
    if let Err(e) = drained {
        let note = match uncordon("") {
            Ok(done) => format!("{done}, still on its old channel"),
            Err(u) => format!("and it could not be uncordoned: {u:#}"),
        };
        return Err(e.context(format!(
            "draining {node} failed within {}s (microk8s.drain_timeout); {note}",
            drain_timeout.as_secs()
        )));
    }
    if let Err(e) = run(worker, snap("refresh", channel).sudo(sudo)) {
        let note = match uncordon(" again") {
            Ok(done) => done,
            Err(u) => format!("and it is still cordoned: {u:#}"),
        };
        return Err(e.context(format!("refreshing {node} to {channel} failed; {note}")));
    }
    uncordon("").map_err(|e| {
        e.context(format!(
            "{node} is on {channel} but still cordoned (a re-run uncordons it)"
        ))
    })?;
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

    /// One merge patch both marks and cordons, or unmarks (null removes) and uncordons.
    #[test]
    fn cordoning_marks_the_node_in_the_same_patch() {
        let on = set_cordoned("worker-1", true, false).to_shell().unwrap();
        let off = set_cordoned("worker-1", false, true).to_shell().unwrap();
        for (cmd, want) in [
            (
                &on,
                r#"{"metadata":{"annotations":{"jeeves.io/cordoned":"upgrade"}},"spec":{"unschedulable":true}}"#,
            ),
            (
                &off,
                r#"{"metadata":{"annotations":{"jeeves.io/cordoned":null}},"spec":{"unschedulable":false}}"#,
            ),
        ] {
            assert!(
                cmd.contains("kubectl patch node worker-1 --type merge --patch"),
                "{cmd}"
            );
            assert!(cmd.contains(want), "{cmd}");
        }
        assert!(off.starts_with("sudo -n "), "{off}");
        let unmark = unmark("worker-1", false).to_shell().unwrap();
        assert!(
            unmark.contains(r#"{"metadata":{"annotations":{"jeeves.io/cordoned":null}}}"#),
            "{unmark}"
        );
    }

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
