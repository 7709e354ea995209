//! The hosts layer: the run's SSH connections to the stack's hosts. Built once per run from the
//! `[ssh]` settings, it pins new hosts' keys once (from their EC2 console output), connects to
//! each host once and lends that session to every stage that works on the host (a stage that
//! needs two at once on one host gets a second); a host that cannot be reached is reported once
//! and the same error is returned to every later caller. It also holds the run's tunnel to the
//! cluster API, closed with it. Stages never build SSH options or connect on their own.

pub mod api_tunnel;
mod pinning;
mod ssh_config;

use std::collections::{BTreeMap, HashSet};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::config::SshSettings;
use crate::ssh::{HostKeyPolicy, Jump, SshOptions, SshSession, Target, Tunnel};
use crate::state::Host;

/// The run's connections. Cheap to clone (shared); dropping the last clone closes everything.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
    /// A patient handle (`patient`): its leases wait for a session another stage opens.
    patient: Option<Arc<Patience>>,
}

struct Inner {
    ssh: SshSettings,
    policy: HostKeyPolicy,
    /// Idle sessions by host address.
    idle: Mutex<BTreeMap<String, Vec<SshSession>>>,
    /// Signalled when a session goes back to `idle`.
    returned: Condvar,
    /// Hosts that could not be reached in this run, and why.
    failed: Mutex<BTreeMap<String, String>>,
    /// Hosts whose keys were checked against their console output in this run.
    pinned: Mutex<HashSet<String>>,
    tunnel: Mutex<Option<Tunnel>>,
    /// The private kubeconfig file that uses the run's tunnel (`hold_run_tunnel`), removed when
    /// the fleet is dropped.
    kubeconfig: Mutex<Option<tempfile::TempPath>>,
    handshakes: AtomicUsize,
}

/// How a patient fleet handle waits (`Fleet::patient`).
#[derive(Default)]
pub struct Patience {
    /// Stop waiting: the look-ahead was called off.
    pub give_up: AtomicBool,
    /// Stop waiting for others: connect as any lease does (the run has reached the stage).
    pub connect: AtomicBool,
}

/// A session lent by the fleet; back in the pool when dropped.
pub struct Lease {
    session: Option<SshSession>,
    /// The host's address in the inventory: the pool's key.
    key: String,
    fleet: Arc<Inner>,
}

impl Fleet {
    pub fn new(ssh: &SshSettings, policy: HostKeyPolicy) -> Fleet {
        Fleet {
            inner: Arc::new(Inner {
                ssh: ssh.clone(),
                policy,
                idle: Mutex::default(),
                returned: Condvar::new(),
                failed: Mutex::default(),
                pinned: Mutex::default(),
                tunnel: Mutex::default(),
                kubeconfig: Mutex::default(),
                handshakes: AtomicUsize::new(0),
            }),
            patient: None,
        }
    }

    /// The same fleet, for work that may wait (a stage's look-ahead probe): its leases take a
    /// session another stage opened, waiting while it is lent, and never connect on their own
    /// until `patience.connect` is set, so a run still logs in to each host once.
    pub fn patient(&self, patience: Arc<Patience>) -> Fleet {
        Fleet {
            inner: self.inner.clone(),
            patient: Some(patience),
        }
    }

    /// Whether `host`'s keys are pinned in the known_hosts file already (a look-ahead probe
    /// must not pin beside the stage that does).
    pub fn has_host_key(&self, host: &Host) -> bool {
        crate::ssh::host_keys::has_entry(
            &self.inner.ssh.known_hosts,
            &host.public_ip,
            self.inner.ssh.port,
        )
    }

    /// Whether privileged commands go through `sudo -n`.
    pub fn sudo(&self) -> bool {
        self.inner.ssh.sudo && self.inner.ssh.user != "root"
    }

    /// SSH handshakes made so far in this run (the hosts' and any jump host's).
    pub fn handshakes(&self) -> usize {
        self.inner.handshakes.load(Ordering::Relaxed)
    }

    /// Pins the keys of `hosts` not checked yet in this run from their EC2 console output
    /// (`pinning::pin_new_hosts`); `say(host, message)` reports what was pinned.
    pub async fn pin(&self, hosts: &[Host], say: &(dyn Fn(&str, String) + Sync)) -> Result<()> {
        if self.inner.policy != HostKeyPolicy::Strict || !self.inner.ssh.pin_from_console {
            return Ok(());
        }
        let new: Vec<Host> = {
            let pinned = self.inner.pinned.lock().expect("not poisoned");
            hosts
                .iter()
                .filter(|h| !pinned.contains(&h.public_ip))
                .cloned()
                .collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        pinning::pin_new_hosts(&self.inner.ssh, &new, say).await?;
        let mut pinned = self.inner.pinned.lock().expect("not poisoned");
        pinned.extend(new.into_iter().map(|h| h.public_ip));
        Ok(())
    }

    /// A session to `host`: the pooled one, else a new connection (blocking: call from a
    /// blocking thread). A host that failed to connect earlier in the run fails again at once
    /// with the first error.
    pub fn lease(&self, host: &Host) -> Result<Lease> {
        let key = host.public_ip.clone();
        if let Some(why) = self.inner.failed.lock().expect("not poisoned").get(&key) {
            return Err(anyhow!(
                "{} ({key}) could not be reached earlier in this run: {why}",
                host.hostname
            ));
        }
        let pooled = self.pooled(&key, &host.hostname)?;
        let session = match pooled {
            Some(s) => s,
            None => self.connect(host).inspect_err(|e| {
                // Every failure is remembered (an unreachable host, a refused key or login), so
                // a host costs at most one attempt per run; later leases get its text.
                self.inner
                    .failed
                    .lock()
                    .expect("not poisoned")
                    .insert(key.clone(), format!("{e:#}"));
            })?,
        };
        Ok(Lease {
            session: Some(session),
            key,
            fleet: self.inner.clone(),
        })
    }

    /// An idle session to the host at `key`. A patient handle waits for one another stage opened
    /// (never connecting itself) until its `Patience` says connect or give up.
    fn pooled(&self, key: &str, name: &str) -> Result<Option<SshSession>> {
        let mut idle = self.inner.idle.lock().expect("not poisoned");
        loop {
            if let Some(s) = idle.get_mut(key).and_then(Vec::pop) {
                return Ok(Some(s));
            }
            let Some(patience) = &self.patient else {
                return Ok(None);
            };
            if patience.connect.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if patience.give_up.load(Ordering::Relaxed) {
                return Err(anyhow!(
                    "{name}: no session came free before the look-ahead was called off"
                ));
            }
            // Bounded, so `give_up` is seen without a session coming back.
            idle = self
                .inner
                .returned
                .wait_timeout(idle, Duration::from_millis(50))
                .expect("not poisoned")
                .0;
        }
    }

    fn connect(&self, host: &Host) -> Result<SshSession> {
        let (target, opts) = login(&self.inner.ssh, host, self.inner.policy)?;
        let jump = opts.jump.clone();
        let session = SshSession::connect(&target, &opts)?;
        let hops = if jump.is_some() { 2 } else { 1 };
        self.inner.handshakes.fetch_add(hops, Ordering::Relaxed);
        Ok(session)
    }

    /// Keeps the run's tunnel open until the fleet is dropped (the end of the run).
    pub fn hold_tunnel(&self, tunnel: Tunnel) {
        *self.inner.tunnel.lock().expect("not poisoned") = Some(tunnel);
    }

    /// Keeps the run's tunnel and the kubeconfig file that uses it until the fleet is dropped:
    /// the one tunnel of the run, which every stage that reaches the cluster uses
    /// (`run_kubeconfig`). A second would find its local port taken by the first.
    pub fn hold_run_tunnel(&self, tunnel: Tunnel, kubeconfig: tempfile::TempPath) {
        self.hold_tunnel(tunnel);
        *self.inner.kubeconfig.lock().expect("not poisoned") = Some(kubeconfig);
    }

    /// The kubeconfig of the run's tunnel, once one is held (`hold_run_tunnel`).
    pub fn run_kubeconfig(&self) -> Option<PathBuf> {
        let held = self.inner.kubeconfig.lock().expect("not poisoned");
        held.as_ref().map(|p| p.to_path_buf())
    }
}

impl Lease {
    /// The session itself, no longer pooled (the tunnel keeps its own for the run).
    pub fn detach(mut self) -> SshSession {
        self.session.take().expect("a lease holds its session")
    }
}

impl Deref for Lease {
    type Target = SshSession;

    fn deref(&self) -> &SshSession {
        self.session.as_ref().expect("a lease holds its session")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.fleet
                .idle
                .lock()
                .expect("not poisoned")
                .entry(std::mem::take(&mut self.key))
                .or_default()
                .push(s);
            self.fleet.returned.notify_all();
        }
    }
}

/// Where and how to log in to `host`: the pipeline's `[ssh]`, with the ssh_config's entry for
/// the host (if `ssh.ssh_config` is set) applied. The fleet's sessions and `jeeves ssh` use it.
pub fn login(
    ssh: &SshSettings,
    host: &Host,
    policy: HostKeyPolicy,
) -> Result<(Target, SshOptions)> {
    let resolved = match &ssh.ssh_config {
        Some(config) => ssh_config::resolve(config, &host.public_ip)?,
        None => ssh_config::Resolved::default(),
    };
    // The ssh_config's ProxyJump for this host, else ssh.jump_host; its user defaults to
    // the hosts' login user.
    let jump = resolved
        .jump
        .as_ref()
        .or(ssh.jump_host.as_ref())
        .map(|j| Jump {
            target: Target {
                name: j.host.clone(),
                address: j.host.clone(),
                port: j.port,
            },
            user: j.user.clone().unwrap_or_else(|| ssh.user.clone()),
        });
    let opts = SshOptions {
        user: resolved.user.unwrap_or_else(|| ssh.user.clone()),
        key_path: resolved.key_path.unwrap_or_else(|| ssh.key_path.clone()),
        passphrase: ssh.key_passphrase.clone(),
        known_hosts: ssh.known_hosts.clone(),
        host_keys: policy,
        connect_timeout: ssh.connect_timeout,
        command_timeout: ssh.command_timeout,
        keepalive: ssh.keepalive,
        sudo: ssh.sudo,
        jump: jump.clone(),
    };
    let target = Target {
        name: host.hostname.clone(),
        address: resolved.hostname.unwrap_or_else(|| host.public_ip.clone()),
        port: resolved.port.unwrap_or(ssh.port),
    };
    Ok((target, opts))
}
