//! Joining workers as MicroK8s 1.32 lets them join (tests/lab/standins/README.md cites each
//! behaviour):
//! - A token made with `--token-ttl` serves any number of joins until it expires; only tokens
//!   without a TTL are consumed (canonical/microk8s-cluster-agent 1.32, `pkg/snap/snap.go`
//!   `ConsumeClusterToken`). So one token serves every worker: normally one `add-node` round
//!   trip (another only past half the TTL, or after a refused token).
//! - A failed join prints the agent's answer on stdout and exits 6 (canonical/microk8s 1.32,
//!   `scripts/wrappers/join.py`). Most failures pass: while the API server restarts (an addon or
//!   a refresh restarts kubelite) the agent answers `Failed to retrieve list of control plane
//!   nodes` (500, the agent's `pkg/api/v2/join.go`); an agent restarting itself refuses the
//!   connection (exit 1, `ConnectionRefusedError`); other 500s are the agent's own passing
//!   trouble. So every failure is retried, as Canonical's Cluster API bootstrap provider does
//!   (canonical/cluster-api-bootstrap-provider-microk8s, `microk8s-join.sh`: every failure, 30
//!   attempts 5 s apart), here within `microk8s.ready_timeout` and after waiting for the
//!   controller, except what no retry changes: a refused token (a new one, once), a server that
//!   is not the one the token came from (exit 4), and the agent's own final refusals (502: a
//!   port other than 25000; 503: joining a node to itself; a cluster that takes no workers).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::report::Reporter;
use crate::ssh::{RemoteCommand, SshSession};

use super::controller::JoinToken;
use super::exec_logged;

const JOIN: &str = include_str!("scripts/join.sh");

/// Why a join failed, from its exit status and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinFailure {
    /// The token expired (or was never valid): a new one, once.
    InvalidToken,
    /// What no retry changes (the module's comment).
    Final,
    /// Anything else: wait for the controller, then join again.
    Passing,
}

pub fn classify(status: i32, output: &str) -> JoinFailure {
    let agent_final = ["(502).", "(503)."];
    if status == 6 && output.contains("Invalid token") {
        JoinFailure::InvalidToken
    } else if status == 4
        || status == 6 && agent_final.iter().any(|a| output.contains(a))
        || output.contains("Invalid connection")
        || output.contains("supports joining worker nodes")
    {
        JoinFailure::Final
    } else {
        JoinFailure::Passing
    }
}

/// `microk8s join <url> --worker` on `worker` (without `--worker` when `full`: a controller
/// after the first), again after any failure that passes (the module's comment): the
/// controller waited for, then joined again with backoff, for at most `ready_timeout`; a
/// refused token is replaced once. A final failure, or one that outlasts the bound, is the
/// join's own message.
#[allow(clippy::too_many_arguments)]
pub fn join(
    worker: &SshSession,
    full: bool,
    sudo: bool,
    token: &std::sync::Mutex<JoinToken<'_>>,
    ready_timeout: Duration,
    reporter: &Reporter,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let lock = || token.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = Instant::now() + ready_timeout;
    let mut delay = Duration::from_secs(1);
    let mut renewed = false;
    let mut attempts = 0;
    let mut url = lock().url()?;
    loop {
        crate::interrupt::check()?;
        attempts += 1;
        let cmd = RemoteCommand::new("sh")
            .args(["-c", JOIN, "join"])
            .arg(if full { "controller" } else { "worker" })
            .sudo(sudo)
            .stdin(format!("{url}\n").into_bytes());
        let out = exec_logged(worker, &cmd, reporter)?;
        if out.status == 0 {
            return Ok(());
        }
        let text = format!("{}\n{}", out.stdout, out.stderr);
        let failure = classify(out.status, &text);
        let message = || {
            reporter.redactor().redact(&format!(
                "`microk8s join` on {} exited with status {} (attempt {attempts}):\n{}",
                worker.target.name,
                out.status,
                out.tail(10)
            ))
        };
        match failure {
            JoinFailure::InvalidToken if !renewed => {
                renewed = true;
                progress("the join token was refused; joining with a new one");
                url = lock().renew(&url)?;
            }
            JoinFailure::Passing if Instant::now() + delay < deadline => {
                progress(&format!(
                    "the join failed ({}); waiting for the controller, then joining again",
                    last_line(&reporter.redactor().redact(&text))
                ));
                // Bounded by what is left of the one budget; other workers wait for the lock
                // meanwhile, and would meet the same restarting controller anyway.
                let left = deadline.saturating_duration_since(Instant::now());
                lock().wait_ready(left).context(message())?;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            JoinFailure::Passing => bail!(
                "{}\nthe join still failed after {}s (microk8s.ready_timeout)",
                message(),
                ready_timeout.as_secs()
            ),
            _ => bail!("{}", message()),
        }
    }
}

/// The last line with something on it: microk8s join's own verdict.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_failures_are_told_apart_as_microk8s_prints_them() {
        let passing = [
            (
                6,
                "Contacting cluster at 10.0.0.10\nConnection failed. Failed to retrieve list of control plane nodes: connection refused (500).\n",
            ),
            (
                1,
                "Traceback (most recent call last):\nConnectionRefusedError: [Errno 111] Connection refused\n",
            ),
            (
                6,
                "Connection failed. Something the code has never seen (500).\n",
            ),
            (
                1,
                "Please ensure the master node is reachable. Remote end closed",
            ),
        ];
        for (status, out) in passing {
            assert_eq!(classify(status, out), JoinFailure::Passing, "{out}");
        }
        assert_eq!(
            classify(6, "Connection failed. Invalid token (500).\n"),
            JoinFailure::InvalidToken
        );
        let final_ = [
            (
                4,
                "Joining cluster failed. Could not verify the identity of 10.0.0.10.",
            ),
            (
                6,
                "Connection failed. The port of the cluster agent port has to be set to 25000 (502).",
            ),
            (
                6,
                "Connection failed. The joining node has the same IP (10.0.0.10) as the node we contact (503).",
            ),
            (1, "Invalid connection: Invalid master IP"),
            (
                1,
                "Joining process failed. Make sure the cluster you connect to supports joining worker nodes.",
            ),
        ];
        for (status, out) in final_ {
            assert_eq!(classify(status, out), JoinFailure::Final, "{out}");
        }
        assert_eq!(last_line("a\nb (500).\n\n"), "b (500).");
    }
}
