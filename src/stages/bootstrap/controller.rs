//! The controller: the snap at the configured channel, the SSH user in the `microk8s` group,
//! ready, addons one per command, hosts entries for the workers; then the join token its
//! `add-node` issues and the node list the workers are awaited in. The workers wait for it
//! through `Controller`, while they install.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::fleet::Lease;
use crate::report::Reporter;
use crate::ssh::{RemoteCommand, SshSession};

use super::plan::{ControllerPlan, Snap};
use super::probe::parse_nodes;
use super::{Apply, exec_logged, snap};

/// Idempotent /etc/hosts entries, one `IP NAME` pair after another, in one round trip.
const HOSTS_ENTRIES: &str = include_str!("scripts/hosts-entries.sh");
const REVOKE_TOKENS: &str = include_str!("scripts/revoke-tokens.sh");

/// Carries out the controller's part of the plan and waits until its API answers; `phase`
/// hears when the snap is in place.
pub fn converge(
    a: &Apply,
    session: &SshSession,
    plan: &ControllerPlan,
    channel: &str,
    phase: &Controller,
) -> Result<()> {
    let name = &plan.host.hostname;
    match &plan.snap {
        Snap::Install => {
            a.progress(name, &format!("installing microk8s {channel}"));
            a.run(session, snap("install", channel))?;
        }
        Snap::Refresh { .. } | Snap::Upgrade { .. } => {
            a.progress(name, &format!("refreshing microk8s to {channel}"));
            a.run(session, snap("refresh", channel))?;
        }
        Snap::Current => {}
    }
    phase.advance(Phase::Installed);
    if let Some(user) = &plan.add_to_group {
        a.run(
            session,
            RemoteCommand::new("usermod").args(["-a", "-G", "microk8s", user.as_str()]),
        )?;
    }
    a.progress(name, "waiting for microk8s to be ready");
    a.run(session, wait_ready(a.mk.ready_timeout))?;
    for addon in &plan.addons {
        a.progress(name, &format!("enabling {addon}"));
        a.run(
            session,
            RemoteCommand::new("microk8s").args(["enable", addon.as_str()]),
        )?;
    }
    if !plan.addons.is_empty() {
        // `enable rbac` restarts kubelite and `enable` waits for it only 30 s
        // (microk8s 1.32 scripts/wrappers/common/utils.py): the joins must not meet it down.
        a.progress(name, "waiting for microk8s to be ready after the addons");
        a.run(session, wait_ready(a.mk.ready_timeout))?;
    }
    if !plan.hosts_entries.is_empty() {
        let mut cmd = RemoteCommand::new("sh").args(["-c", HOSTS_ENTRIES, "hosts-entries"]);
        for (ip, host) in &plan.hosts_entries {
            cmd = cmd.args([ip.as_str(), host.as_str()]);
        }
        a.run(session, cmd)?;
    }
    a.progress(name, "ready");
    Ok(())
}

/// How far the controller is, as the workers wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Converging,
    /// The snap is on the configured channel: `add-node` can issue the join token.
    Installed,
    /// Converged and its API answering: workers may join.
    Ready,
    /// The workers in the cluster on another channel have been refreshed (or failed to be):
    /// such a worker that is also to join again may now.
    Upgraded,
    /// Not ready; why, in one line.
    Failed(String),
}

impl Phase {
    fn rank(&self) -> u8 {
        match self {
            Phase::Converging => 0,
            Phase::Installed => 1,
            Phase::Ready => 2,
            Phase::Upgraded => 3,
            Phase::Failed(_) => 4,
        }
    }
}

/// The controller as the workers and the token's thread see it: its phase, and the join token
/// (on a session of its own, so that issuing it overlaps the addons).
pub struct Controller<'a> {
    phase: Mutex<Phase>,
    changed: Condvar,
    /// The join token, or why there is none.
    token: OnceLock<Result<Mutex<JoinToken<'a>>, String>>,
}

impl<'a> Controller<'a> {
    pub fn new() -> Controller<'a> {
        Controller {
            phase: Mutex::new(Phase::Converging),
            changed: Condvar::new(),
            token: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves on to `phase`; never back, and never out of `Failed`.
    pub fn advance(&self, phase: Phase) {
        let mut now = self.lock();
        if phase.rank() > now.rank() {
            *now = phase;
            self.changed.notify_all();
        }
    }

    /// The token, or why there is none; the first answer counts.
    pub fn set_token(&self, token: Result<JoinToken<'a>, String>) {
        let _ = self.token.set(token.map(Mutex::new));
        let _now = self.lock();
        self.changed.notify_all();
    }

    /// Revokes the join tokens issued in this run, if any (the joins are over).
    pub fn revoke_tokens(&self) -> Result<()> {
        match self.token.get() {
            Some(Ok(token)) => token.lock().unwrap_or_else(|e| e.into_inner()).revoke(),
            _ => Ok(()),
        }
    }

    /// Whether waiting for `phase` would return at once (a failure included).
    pub fn reached(&self, phase: &Phase) -> bool {
        self.lock().rank() >= phase.rank()
    }

    /// Waits until the controller reaches `phase`, and (`token`) its join token is issued;
    /// the token, or why the wait is over without one.
    fn wait_for(&self, phase: &Phase, token: bool) -> Result<Option<&Mutex<JoinToken<'a>>>> {
        let mut now = self.lock();
        loop {
            if let Phase::Failed(why) = &*now {
                bail!("the controller is not ready: {why}");
            }
            if now.rank() >= phase.rank() {
                match self.token.get() {
                    _ if !token => return Ok(None),
                    Some(Ok(t)) => return Ok(Some(t)),
                    Some(Err(why)) => bail!("no join token: {why}"),
                    None => {}
                }
            }
            // Woken at least every 250 ms to see a Ctrl-C.
            now = self
                .changed
                .wait_timeout(now, Duration::from_millis(250))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            crate::interrupt::check()?;
        }
    }

    /// Waits until the controller reaches `phase`, or fails.
    pub fn wait(&self, phase: &Phase) -> Result<()> {
        self.wait_for(phase, false).map(|_| ())
    }

    /// Waits until the controller reaches `phase` with its join token issued.
    pub fn wait_token(&self, phase: &Phase) -> Result<&Mutex<JoinToken<'a>>> {
        self.wait_for(phase, true)?
            .ok_or_else(|| anyhow!("no join token"))
    }

    /// The controller's thread is over: a phase short of `Ready` becomes `Failed` (an error
    /// moved it there already, with its reason; a panic did not), `Ready` becomes `Upgraded`.
    pub fn finish(&self) {
        let now = self.lock().clone();
        match now {
            Phase::Converging | Phase::Installed => {
                self.advance(Phase::Failed("its thread stopped".into()))
            }
            Phase::Ready => self.advance(Phase::Upgraded),
            Phase::Upgraded | Phase::Failed(_) => {}
        }
    }
}

pub fn wait_ready(timeout: Duration) -> RemoteCommand {
    RemoteCommand::new("microk8s")
        .args(["status", "--wait-ready", "--timeout"])
        .arg(timeout.as_secs().max(1).to_string())
}

/// Polls the controller's node list until every name in `names` is Ready or `timeout`
/// passes; returns the names still not Ready.
pub fn wait_nodes_ready(
    controller: &SshSession,
    sudo: bool,
    names: &[String],
    timeout: Duration,
) -> Result<BTreeSet<String>> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(250);
    loop {
        crate::interrupt::check()?;
        let mut pending: BTreeSet<String> = names.iter().cloned().collect();
        if pending.is_empty() {
            return Ok(pending);
        }
        let out = controller.run(
            &RemoteCommand::new("microk8s")
                .args(["kubectl", "get", "nodes", "-o", "json"])
                .sudo(sudo),
        )?;
        let nodes = parse_nodes(&out.stdout);
        pending.retain(|n| !nodes.get(n).is_some_and(|n| n.ready));
        if pending.is_empty() || Instant::now() + delay > deadline {
            return Ok(pending);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The controller's session, and the join URL its `add-node` issued (join.rs says why one
/// token serves every worker).
pub struct JoinToken<'a> {
    /// Every token this run issued (the secret part), revoked once the joins are over.
    secrets: Vec<String>,
    pub session: Lease,
    issued: Option<(Instant, String)>,
    sudo: bool,
    ttl: Duration,
    ready_timeout: Duration,
    private_ip: &'a str,
    reporter: &'a Reporter,
}

impl<'a> JoinToken<'a> {
    pub fn new(session: Lease, a: &Apply<'a>, private_ip: &'a str) -> JoinToken<'a> {
        JoinToken {
            secrets: Vec::new(),
            session,
            issued: None,
            sudo: a.sudo(),
            ttl: a.mk.token_ttl,
            ready_timeout: a.mk.ready_timeout,
            private_ip,
            reporter: a.reporter,
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
    pub fn renew(&mut self, stale: &str) -> Result<String> {
        if self.issued.as_ref().is_some_and(|(_, u)| u == stale) {
            self.issued = None;
        }
        self.url()
    }

    /// Revokes every token this run issued (`scripts/revoke-tokens.sh`, the tokens on its
    /// standard input), once no worker of the run will join with one any more.
    pub fn revoke(&mut self) -> Result<()> {
        if self.secrets.is_empty() {
            return Ok(());
        }
        let out = self.session.exec(
            &RemoteCommand::new("sh")
                .args(["-c", REVOKE_TOKENS, "revoke-tokens"])
                .sudo(self.sudo)
                .stdin(format!("{}\n", self.secrets.join("\n")).into_bytes()),
            &mut |_, _| {},
        )?;
        if out.status != 0 {
            bail!(
                "revoking this run's join tokens exited with status {}:\n{}",
                out.status,
                self.reporter.redactor().redact(&out.tail(10))
            );
        }
        self.secrets.clear();
        self.issued = None;
        Ok(())
    }

    /// `<controller private ip>:25000/<token>/<check>`, the token registered with the
    /// redactor before anything can print it.
    fn add_node(&mut self) -> Result<String> {
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
        self.secrets.push(secret.to_string());
        Ok(if check.is_empty() {
            format!("{}:25000/{secret}", self.private_ip)
        } else {
            format!("{}:25000/{secret}/{check}", self.private_ip)
        })
    }

    /// `microk8s status --wait-ready` on the controller, for at most `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
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
