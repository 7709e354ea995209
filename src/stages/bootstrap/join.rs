//! Joining workers as MicroK8s 1.32 lets them join (tests/lab/standins/README.md cites each
//! behaviour):
//! - A token made with `--token-ttl` serves any number of joins until it expires; only tokens
//!   without a TTL are consumed (canonical/microk8s-cluster-agent 1.32, `pkg/snap/snap.go`
//!   `ConsumeClusterToken`). So one token serves every worker: normally one `add-node` round
//!   trip (another only past half the TTL, or after a refused token).
//! - A failed join prints the agent's answer on stdout and exits 6 (canonical/microk8s 1.32,
//!   `scripts/wrappers/join.py`). While the API server restarts (an addon or a refresh restarts
//!   kubelite) the agent answers `Failed to retrieve list of control plane nodes` (500, the
//!   agent's `pkg/api/v2/join.go`); an agent restarting itself refuses the connection (exit 1,
//!   `ConnectionRefusedError`). Both pass: wait for the controller, then join again.

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
    /// The controller's API or agent is restarting: wait for it and join again.
    Restarting,
    /// The token expired (or was never valid): a new one, once.
    InvalidToken,
    Other,
}

pub fn classify(status: i32, output: &str) -> JoinFailure {
    if status == 6 && output.contains("Failed to retrieve list of control plane nodes")
        || output.contains("ConnectionRefusedError")
    {
        JoinFailure::Restarting
    } else if status == 6 && output.contains("Invalid token") {
        JoinFailure::InvalidToken
    } else {
        JoinFailure::Other
    }
}

/// `microk8s join <url> --worker` on `worker`, through the failures that pass: a restarting
/// controller (waited for, then joined again with backoff, for at most `ready_timeout`) and an
/// expired token (replaced once). Any other failure, or one that outlasts the bound, is the
/// join's own message.
pub fn join(
    worker: &SshSession,
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
            JoinFailure::Restarting if Instant::now() + delay < deadline => {
                progress("the controller's API is restarting; waiting for it, then joining again");
                // Bounded by what is left of the one budget; other workers wait for the lock
                // meanwhile, and would meet the same restarting controller anyway.
                let left = deadline.saturating_duration_since(Instant::now());
                lock().wait_ready(left).context(message())?;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            JoinFailure::Restarting => bail!(
                "{}\nthe controller was still restarting after {}s (microk8s.ready_timeout)",
                message(),
                ready_timeout.as_secs()
            ),
            _ => bail!("{}", message()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_failures_are_told_apart_as_microk8s_prints_them() {
        assert_eq!(
            classify(
                6,
                "Contacting cluster at 10.0.0.10\nConnection failed. Failed to retrieve list of control plane nodes: connection refused (500).\n"
            ),
            JoinFailure::Restarting
        );
        assert_eq!(
            classify(
                1,
                "Traceback (most recent call last):\nConnectionRefusedError: [Errno 111] Connection refused\n"
            ),
            JoinFailure::Restarting
        );
        assert_eq!(
            classify(6, "Connection failed. Invalid token (500).\n"),
            JoinFailure::InvalidToken
        );
        assert_eq!(
            classify(
                4,
                "Joining cluster failed. Could not verify the identity of 10.0.0.10."
            ),
            JoinFailure::Other
        );
    }
}
