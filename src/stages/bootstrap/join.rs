//! Joining workers as MicroK8s 1.32 lets them join (tests/lab/standins/README.md cites each
//! behaviour):
//! - A token made with `--token-ttl` serves any number of joins until it expires; only tokens
//!   without a TTL are consumed (canonical/microk8s-cluster-agent 1.32, `pkg/snap/snap.go`
//!   `ConsumeClusterToken`). So one token serves every worker: one `add-node` round trip.
//! - A failed join prints the agent's answer on stdout and exits 6 (canonical/microk8s 1.32,
//!   `scripts/wrappers/join.py`). While the API server restarts (an addon or a refresh restarts
//!   kubelite) the agent answers `Failed to retrieve list of control plane nodes` (500, the
//!   agent's `pkg/api/v2/join.go`); an agent restarting itself refuses the connection (exit 1,
//!   `ConnectionRefusedError`). Both pass: wait for the controller, then join again.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::fleet::Lease;
use crate::report::Reporter;
use crate::ssh::{RemoteCommand, SshSession};

use super::{exec_logged, wait_ready};

const JOIN: &str = include_str!("scripts/join.sh");

/// The controller's session, and the join URL its `add-node` issued.
pub struct JoinToken<'a> {
    pub session: Lease,
    issued: Option<(Instant, String)>,
    sudo: bool,
    ttl: Duration,
    ready_timeout: Duration,
    private_ip: &'a str,
    reporter: &'a Reporter,
}

impl<'a> JoinToken<'a> {
    pub fn new(
        session: Lease,
        sudo: bool,
        ttl: Duration,
        ready_timeout: Duration,
        private_ip: &'a str,
        reporter: &'a Reporter,
    ) -> JoinToken<'a> {
        JoinToken {
            session,
            issued: None,
            sudo,
            ttl,
            ready_timeout,
            private_ip,
            reporter,
        }
    }

    /// The join URL: the current token while it is younger than half its TTL (a slow install
    /// never meets an expired one), else a new one.
    pub fn url(&mut self) -> Result<String> {
        match &self.issued {
            Some((at, url)) if at.elapsed() < self.ttl / 2 => Ok(url.clone()),
            _ => {
                let url = self.add_node()?;
                self.issued = Some((Instant::now(), url.clone()));
                Ok(url)
            }
        }
    }

    /// A new token, unless another worker already replaced `stale`.
    fn renew(&mut self, stale: &str) -> Result<String> {
        if self.issued.as_ref().is_some_and(|(_, u)| u == stale) {
            self.issued = None;
        }
        self.url()
    }

    /// `<controller private ip>:25000/<token>/<check>`, the token registered with the
    /// redactor before anything can print it.
    fn add_node(&self) -> Result<String> {
        let out = self.session.exec(
            &RemoteCommand::new("microk8s")
                .args(["add-node", "--token-ttl"])
                .arg(self.ttl.as_secs().max(1).to_string())
                .args(["--format", "json"])
                .sudo(self.sudo),
            &mut |_, _| {},
        )?;
        let token = serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_string));
        let Some(token) = token.filter(|_| out.status == 0) else {
            bail!(
                "`microk8s add-node` on {} exited with status {} without a token:\n{}",
                self.session.target.name,
                out.status,
                self.reporter.redactor().redact(&out.tail(20))
            );
        };
        let (secret, check) = token.split_once('/').unwrap_or((&token, ""));
        self.reporter.redactor().add(secret.to_string());
        self.reporter.redactor().add(token.clone());
        Ok(if check.is_empty() {
            format!("{}:25000/{secret}", self.private_ip)
        } else {
            format!("{}:25000/{secret}/{check}", self.private_ip)
        })
    }

    /// `microk8s status --wait-ready` on the controller, for at most `timeout`.
    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let out = exec_logged(
            &self.session,
            &wait_ready(timeout).sudo(self.sudo),
            self.reporter,
        )?;
        if out.status != 0 {
            bail!(
                "the controller's MicroK8s is not ready within microk8s.ready_timeout ({}s):\n{}",
                self.ready_timeout.as_secs(),
                out.tail(10)
            );
        }
        Ok(())
    }
}

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
