//! The bootstrap stage: MicroK8s on the controller (`controller.rs`), the other controllers
//! joined to it as full nodes (`peers.rs`), the workers joined to it in parallel (`workers.rs`,
//! `join.rs`), workers on another channel following the controller one at a time (`upgrade.rs`). The probe (`probe.rs`) costs one command per host, none on a
//! worker the cluster vouches for; the plan (`plan.rs`) is the data apply executes.

mod controller;
mod join;
mod peers;
mod plan;
mod probe;
mod upgrade;
mod workers;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;

use crate::config::Microk8sSettings;
use crate::fleet::{Fleet, Lease};
use crate::report::{Change, Reporter};
use crate::ssh::{ExecOutput, RemoteCommand, SshSession, Stream};
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::state::{Host, Inventory};

use controller::{Controller, JoinToken, Phase};
use plan::Plan;
use probe::Seen;

/// How the stage reaches its hosts: sessions lent by the run's hosts layer (one connection
/// per host, a second only while two are in use at once, as the controller's is while its
/// token is issued).
#[derive(Clone)]
struct Hosts {
    fleet: Fleet,
    user: String,
}

impl Hosts {
    fn new(cx: &StageContext<'_>) -> Hosts {
        Hosts {
            fleet: cx.fleet.clone(),
            user: cx.settings.ssh.user.clone(),
        }
    }

    fn connect(&self, host: &Host) -> Result<Lease> {
        self.fleet.lease(host)
    }

    fn user(&self) -> &str {
        &self.user
    }

    fn sudo(&self) -> bool {
        self.fleet.sudo()
    }
}

/// What every step of apply works with.
struct Apply<'a> {
    mk: &'a Microk8sSettings,
    hosts: &'a Hosts,
    reporter: &'a Reporter,
    /// Instance ids of the workers this run put on `microk8s.channel` (a snap install or
    /// refresh that succeeded) or found on it when probing one again: recorded as a probe's
    /// finding is (`record_channels`), whatever becomes of the rest of the run.
    settled: Mutex<Vec<String>>,
}

impl Apply<'_> {
    /// `worker` tracks `microk8s.channel` now.
    fn settled(&self, worker: &Host) {
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker.id.clone());
    }

    fn sudo(&self) -> bool {
        self.hosts.sudo()
    }

    fn progress(&self, host: &str, message: &str) {
        host_progress(self.reporter, host, message);
    }

    /// Runs a command (under sudo when needed), its output into the log; fails on a non-zero
    /// status with the command's own message.
    fn run(&self, session: &SshSession, cmd: RemoteCommand) -> Result<()> {
        run_logged(session, &cmd.sudo(self.sudo()), self.reporter)
    }
}

#[derive(Default)]
pub struct BootstrapStage {
    plan: Option<Plan>,
}

fn inventory(inv: &Inventory) -> Result<(Host, Vec<Host>, Vec<Host>)> {
    Ok((
        inv.controller()?.clone(),
        inv.more_controllers.clone(),
        inv.workers.clone(),
    ))
}

#[async_trait]
impl Stage for BootstrapStage {
    fn name(&self) -> StageName {
        StageName::Bootstrap
    }

    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>> {
        let (controller, peers, workers) = inventory(&cx.state.inventory)?;
        let mut all = vec![controller.clone()];
        all.extend(peers.iter().cloned());
        all.extend(workers.iter().cloned());
        cx.pin(&all).await?;
        let hosts = Hosts::new(cx);
        let limit = cx.settings.microk8s.concurrency as usize;
        let wait = cx.settings.microk8s.ready_timeout;
        let reporter = cx.reporter.clone();
        let want = cx.settings.microk8s.channel.clone();
        // Workers an earlier run found on the configured channel; `--force bootstrap` trusts
        // no such record and probes every worker.
        let recorded: BTreeSet<String> = workers
            .iter()
            .filter(|w| !cx.force && cx.state.worker_channels.get(&w.id) == Some(&want))
            .map(|w| w.id.clone())
            .collect();
        let probe = tokio::task::spawn_blocking(move || {
            probe::probe_all(
                &hosts, controller, peers, workers, &recorded, &want, limit, wait, &reporter,
            )
        })
        .await
        .context("the probe thread panicked")??;
        let want = &cx.settings.microk8s.channel;
        probe::record_channels(&mut cx.state.worker_channels, &probe, want);
        let vouched: Vec<&str> = probe
            .workers
            .iter()
            .filter(|(_, seen)| *seen == Seen::Vouched)
            .map(|(w, _)| w.hostname.as_str())
            .collect();
        if !vouched.is_empty() {
            cx.log().info(format!(
                "{} worker(s) not logged in to, the cluster vouching for them (Ready nodes on the controller's kubelet version whose Lease was renewed recently, on {want} as last found or set; `up --force bootstrap` logs in): {}",
                vouched.len(),
                vouched.join(", ")
            ));
        }
        // A channel on an older track than any node runs: refused before anything changes.
        let hosts = std::iter::once((&probe.controller, Some(&probe.facts))).chain(
            probe
                .peers
                .iter()
                .chain(&probe.workers)
                .map(|(w, seen)| match seen {
                    Seen::Probed(f) => (w, Some(f)),
                    _ => (w, None),
                }),
        );
        let downgrades: Vec<String> = hosts
            .filter_map(|(h, f)| upgrade::downgrade(&h.hostname, f?.channel.as_deref()?, want))
            .collect();
        if !downgrades.is_empty() {
            return Err(cx
                .settings
                .config_error("microk8s.channel", downgrades.join("; "))
                .into());
        }
        let plan = Plan::new(&cx.settings.microk8s, &cx.settings.ssh.user, probe);
        let changes = plan.changes();
        self.plan = Some(plan);
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let plan = self.plan.take().context("apply without probe")?;
        let mk = cx.settings.microk8s.clone();
        let hosts = Hosts::new(cx);
        let reporter = cx.reporter.clone();
        let (done, settled) = tokio::task::spawn_blocking(move || {
            let a = Apply {
                mk: &mk,
                hosts: &hosts,
                reporter: &reporter,
                settled: Mutex::default(),
            };
            let done = apply(&a, &plan);
            (
                done,
                a.settled.into_inner().unwrap_or_else(|e| e.into_inner()),
            )
        })
        .await
        .context("the bootstrap thread panicked")?;
        let want = &cx.settings.microk8s.channel;
        for id in settled {
            cx.state.worker_channels.insert(id, want.clone());
        }
        done
    }
}

/// Every host at once: the workers install while the controller converges, the join token is
/// issued as soon as the controller is installed, and each worker joins as soon as it is
/// installed and the controller is ready. Workers in the cluster on another channel follow the
/// controller, one at a time.
fn apply(a: &Apply, plan: &Plan) -> Result<()> {
    let controller = Controller::new();
    let (converged, (joined, mut failed), peers) = std::thread::scope(|scope| {
        let converged = scope.spawn(|| converge_controller(a, plan, &controller));
        if plan.needs_join() {
            scope.spawn(|| issue_token(a, plan, &controller));
        }
        let peers = scope.spawn(|| peers::converge_all(a, plan, &controller));
        let workers = workers::converge_all(a, plan, &controller);
        (converged.join(), workers, peers.join())
    });
    let peers = peers.map_err(|_| anyhow!("the controllers' thread panicked"))?;
    // Every join of this run is over: its tokens open nothing from now on. Failing to revoke
    // them leaves them valid until they expire (microk8s.token_ttl), as before: said, not fatal.
    if let Err(e) = controller.revoke_tokens() {
        a.progress(
            &plan.controller.host.hostname,
            &format!(
                "the join token stays valid until it expires: {}",
                first_line(&e)
            ),
        );
    }
    let converged = converged.map_err(|_| anyhow!("the controller's thread panicked"))?;
    let (session, upgrades) = match converged {
        Ok(done) => done,
        // The workers that were to join failed waiting for it and say so; the stage's error is
        // the controller's own.
        Err(e) if !failed.is_empty() => {
            return Err(e.context(format!(
                "{}: MicroK8s is not ready; {} worker(s) not joined (a re-run joins them)",
                plan.controller.host.hostname,
                failed.len()
            )));
        }
        Err(e) => return Err(e),
    };
    failed.extend(upgrades);
    failed.extend(workers::await_ready(a, &session, &joined)?);
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    if !peers.is_empty() {
        let list: Vec<String> = peers.iter().map(|(h, e)| format!("{h}: {e:#}")).collect();
        let workers: Vec<String> = failed.iter().map(|(h, e)| format!("{h}: {e:#}")).collect();
        bail!(
            "{} of {} controller(s) not in the control plane{}:\n  {}",
            peers.len(),
            1 + plan.peers.len(),
            if workers.is_empty() {
                String::new()
            } else {
                format!("; {} worker(s) failed too", workers.len())
            },
            list.into_iter()
                .chain(workers)
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|(h, e)| format!("{h}: {e:#}")).collect();
        bail!(
            "{} of {} worker(s) failed (the others are in the cluster; a re-run retries only these):\n  {}",
            failed.len(),
            plan.workers.len(),
            list.join("\n  ")
        );
    }
    Ok(())
}

/// Runs a closure when dropped: whichever way a thread ends, a panic included.
struct Defer<F: FnMut()>(F);

impl<F: FnMut()> Drop for Defer<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// The controller's thread: converged and ready for the joins; then the workers in the cluster
/// on another channel, one at a time. Returns its session and their failures.
fn converge_controller(
    a: &Apply,
    plan: &Plan,
    controller: &Controller,
) -> Result<(Lease, Vec<workers::Failure>)> {
    let _finish = Defer(|| controller.finish());
    let c = &plan.controller;
    let converged = a.hosts.connect(&c.host).and_then(|session| {
        controller::converge(a, &session, c, &plan.channel, controller)?;
        Ok(session)
    });
    let session = converged.inspect_err(|e| controller.advance(Phase::Failed(first_line(e))))?;
    controller.advance(Phase::Ready);
    let failed = workers::upgrade_in_cluster(a, &session, plan);
    Ok((session, failed))
}

/// The join token's thread: its own session to the controller, made while the controller
/// installs; the token issued once it is installed, while it enables its addons. A failure
/// to issue it is not lost: the workers' own request for the token meets it again.
fn issue_token<'a>(a: &Apply<'a>, plan: &'a Plan, controller: &Controller<'a>) {
    let _unset = Defer(|| controller.set_token(Err("the thread issuing it stopped".into())));
    let c = &plan.controller.host;
    let token = a.hosts.connect(c).and_then(|session| {
        controller.wait(&Phase::Installed)?;
        let mut token = JoinToken::new(session, a, &c.private_ip);
        if let Err(e) = token.url() {
            a.progress(
                &c.hostname,
                &format!("issuing a join token: {}", first_line(&e)),
            );
        }
        Ok(token)
    });
    controller.set_token(token.map_err(|e| first_line(&e)));
}

fn host_progress(reporter: &Reporter, host: &str, message: &str) {
    reporter.emit(crate::report::Event::HostProgress {
        stage: StageName::Bootstrap,
        host: host.to_string(),
        message: message.to_string(),
    });
}

/// Runs `f` for every item on at most `limit` threads; returns the errors by item name.
fn parallel<T: Sync>(
    items: &[T],
    limit: usize,
    name: impl Fn(&T) -> String + Sync,
    f: impl Fn(&T) -> Result<()> + Sync,
) -> Vec<(String, anyhow::Error)> {
    let queue = Mutex::new(items.iter().collect::<VecDeque<_>>());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..limit.min(items.len()).max(1) {
            scope.spawn(|| {
                loop {
                    // Its own statement: the queue's lock must not be held while `f` runs.
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some(item) = next else { break };
                    if let Err(e) = f(item) {
                        errors
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((name(item), e));
                    }
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    errors.sort_by(|a, b| a.0.cmp(&b.0));
    errors
}

/// Runs a command, streaming its output into the log (redacted there).
fn exec_logged(s: &SshSession, cmd: &RemoteCommand, reporter: &Reporter) -> Result<ExecOutput> {
    let host = s.target.name.clone();
    s.exec(cmd, &mut |stream, line| {
        let tag = if stream == Stream::Stderr { "!" } else { "" };
        reporter.log(
            Some(StageName::Bootstrap),
            crate::report::Level::Output,
            format!("{host}{tag}: {line}"),
        );
    })
}

/// `exec_logged`, failing on a non-zero status with the command's own message.
fn run_logged(s: &SshSession, cmd: &RemoteCommand, reporter: &Reporter) -> Result<()> {
    let out = exec_logged(s, cmd, reporter)?;
    if out.status != 0 {
        bail!(
            "`{}` on {} exited with status {}:\n{}",
            cmd.describe(),
            s.target.name,
            out.status,
            reporter.redactor().redact(&out.tail(20))
        );
    }
    Ok(())
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn snap(verb: &str, channel: &str) -> RemoteCommand {
    let cmd = RemoteCommand::new("snap").args([verb, "microk8s"]);
    let cmd = if verb == "install" {
        cmd.arg("--classic")
    } else {
        cmd
    };
    cmd.arg(format!("--channel={channel}"))
}
