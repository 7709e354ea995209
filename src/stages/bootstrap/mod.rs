//! The bootstrap stage: MicroK8s on the controller (snap at the configured channel, the SSH user
//! in the `microk8s` group, addons one per command, hosts entries for the workers), then the
//! workers join it in parallel (`join.rs`), and workers on another channel follow the
//! controller one at a time (`upgrade.rs`). The probe costs one command per host.

mod join;
mod upgrade;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;

use crate::config::Settings;
use crate::fleet::Fleet;
use crate::report::{Change, Reporter};
use crate::ssh::probe::{self, Sections};
use crate::ssh::{ExecOutput, HostKeyRejected, RemoteCommand, SshSession, Stream};
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::state::{Host, Inventory};

/// One round trip that tells everything the plan needs about a host (values as positional
/// parameters; checked by shellcheck in the test command).
const PROBE: &str = include_str!("scripts/probe.sh");

/// Idempotent /etc/hosts entries, one `IP NAME` pair after another, in one round trip.
const HOSTS_ENTRIES: &str = include_str!("scripts/hosts-entries.sh");

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct HostFacts {
    /// Tracking channel of the microk8s snap; `None` when not installed.
    channel: Option<String>,
    in_group: bool,
    addons: BTreeSet<String>,
    /// Node name → Ready (controller only).
    nodes: BTreeMap<String, bool>,
    /// Worker names the host resolves to the right address.
    resolves: BTreeSet<String>,
}

/// The sections PROBE prints.
const SECTIONS: &[&str] = &["snap", "groups", "status", "nodes", "hosts"];

fn parse_facts(p: &Sections) -> HostFacts {
    let mut addons = BTreeSet::new();
    let mut addon: Option<String> = None;
    for t in p.lines("status").map(str::trim) {
        if let Some(name) = t.strip_prefix("- name: ") {
            addon = Some(name.trim().to_string());
        } else if let Some(status) = t.strip_prefix("status: ")
            && status.trim() == "enabled"
            && let Some(a) = addon.take()
        {
            addons.insert(a);
        }
    }
    HostFacts {
        channel: p.values("snap").last(),
        in_group: p
            .lines("groups")
            .any(|l| l.split_whitespace().any(|g| g == "microk8s")),
        addons,
        nodes: parse_nodes(&p.lines("nodes").collect::<Vec<_>>().join("\n")),
        resolves: p.values("hosts").collect(),
    }
}

/// `kubectl get nodes -o json` → node name → Ready.
fn parse_nodes(json: &str) -> BTreeMap<String, bool> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return BTreeMap::new();
    };
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let name = item["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let ready = item["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (name, ready)
        })
        .collect()
}

fn probe_host(
    session: &SshSession,
    user: &str,
    wait: Duration,
    pairs: &[(String, String)],
) -> Result<HostFacts> {
    let mut cmd = RemoteCommand::new("sh")
        .arg("-c")
        .arg(PROBE)
        .args(["probe", user])
        .arg(wait.as_secs().max(1).to_string());
    for (name, ip) in pairs {
        cmd = cmd.args([name.as_str(), ip.as_str()]);
    }
    let sudo = session.options().needs_sudo();
    Ok(parse_facts(&probe::run(
        session,
        &cmd.sudo(sudo),
        SECTIONS,
    )?))
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

/// What the probe found, kept for apply.
struct Probe {
    controller: Host,
    facts: HostFacts,
    /// Workers with their facts, or the error that stopped probing them.
    workers: Vec<(Host, Result<HostFacts, String>)>,
}

#[derive(Default)]
pub struct BootstrapStage {
    probe: Option<Probe>,
}

fn inventory(inv: &Inventory) -> Result<(Host, Vec<Host>)> {
    let controller = inv
        .controller
        .clone()
        .context("the inventory has no controller; run `jeeves up --only terraform` first")?;
    Ok((controller, inv.workers.clone()))
}

impl BootstrapStage {
    fn plan(settings: &Settings, p: &Probe) -> Vec<Change> {
        let mut changes = Vec::new();
        let c = &p.controller.hostname;
        let channel = &settings.microk8s.channel;
        match &p.facts.channel {
            None => changes.push(Change::new("install", format!("{c}: microk8s {channel}"))),
            Some(have) if have != channel => changes.push(Change::new(
                "refresh",
                format!("{c}: microk8s {have} → {channel}"),
            )),
            Some(_) => {}
        }
        if settings.ssh.user != "root" && !p.facts.in_group {
            changes.push(Change::new(
                "add",
                format!("{c}: user {} to group microk8s", settings.ssh.user),
            ));
        }
        for addon in &settings.microk8s.addons {
            let name = addon.split(':').next().unwrap_or(addon);
            if !p.facts.addons.contains(name) {
                changes.push(Change::new("enable", format!("{c}: addon {addon}")));
            }
        }
        for (w, facts) in &p.workers {
            if !p.facts.resolves.contains(&w.hostname) {
                changes.push(Change::new(
                    "add",
                    format!("{c}: hosts entry {} {}", w.private_ip, w.hostname),
                ));
            }
            match facts {
                Err(e) => changes.push(Change::new(
                    "repair",
                    format!("{}: unreachable ({e})", w.hostname),
                )),
                Ok(f) => {
                    match &f.channel {
                        None => changes.push(Change::new(
                            "install",
                            format!("{}: microk8s {channel}", w.hostname),
                        )),
                        Some(have) if have != channel => changes.push(Change::new(
                            "refresh",
                            if p.facts.nodes.contains_key(&w.hostname) {
                                format!(
                                    "{}: microk8s {have} → {channel} (cordon, drain, refresh, uncordon; one worker at a time)",
                                    w.hostname
                                )
                            } else {
                                format!("{}: microk8s {have} → {channel}", w.hostname)
                            },
                        )),
                        Some(_) => {}
                    }
                    if p.facts.nodes.get(&w.hostname) != Some(&true) {
                        changes.push(Change::new("join", format!("{} → {}", w.hostname, c)));
                    }
                }
            }
        }
        changes
    }
}

#[async_trait]
impl Stage for BootstrapStage {
    fn name(&self) -> StageName {
        StageName::Bootstrap
    }

    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>> {
        let (controller, workers) = inventory(&cx.state.inventory)?;
        let mut hosts = vec![controller.clone()];
        hosts.extend(workers.iter().cloned());
        cx.pin(&hosts).await?;
        let fleet = cx.fleet.clone();
        let user = cx.settings.ssh.user.clone();
        let limit = cx.settings.microk8s.concurrency as usize;
        let wait = cx.settings.microk8s.ready_timeout;
        let reporter = cx.reporter.clone();
        let probe = tokio::task::spawn_blocking(move || -> Result<Probe> {
            let pairs: Vec<(String, String)> = workers
                .iter()
                .map(|w| (w.hostname.clone(), w.private_ip.clone()))
                .collect();
            let session = fleet.lease(&controller)?;
            let facts = probe_host(&session, &user, wait, &pairs)?;
            let results = Mutex::new(BTreeMap::new());
            let fatal = parallel(
                &workers,
                limit,
                |w| w.hostname.clone(),
                |w| {
                    let r = fleet
                        .lease(w)
                        .and_then(|s| probe_host(&s, &user, wait, &[]));
                    // A wrong or unknown host key stops the stage before anything runs
                    // anywhere; an unreachable worker only stops itself.
                    if let Err(e) = &r
                        && e.chain().any(|c| c.is::<HostKeyRejected>())
                    {
                        return Err(anyhow!("{e:#}"));
                    }
                    let r = r.map_err(|e| format!("{e:#}"));
                    if let Err(e) = &r {
                        host_progress(&reporter, &w.hostname, &format!("probe failed: {e}"));
                    }
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(w.hostname.clone(), r);
                    Ok(())
                },
            );
            if let Some((host, e)) = fatal.into_iter().next() {
                return Err(e.context(format!(
                    "{host}: host key rejected; nothing was changed on any host"
                )));
            }
            let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
            let workers = workers.into_iter().map(|w| {
                let r = results
                    .remove(&w.hostname)
                    .unwrap_or_else(|| Err("not probed".into()));
                (w, r)
            });
            Ok(Probe {
                controller,
                facts,
                workers: workers.collect(),
            })
        })
        .await
        .context("the probe thread panicked")??;
        // A channel on an older track than any node runs: refused before anything changes.
        let want = &cx.settings.microk8s.channel;
        let hosts = std::iter::once((&probe.controller, Some(&probe.facts)))
            .chain(probe.workers.iter().map(|(w, f)| (w, f.as_ref().ok())));
        let downgrades: Vec<String> = hosts
            .filter_map(|(h, f)| upgrade::downgrade(&h.hostname, f?.channel.as_deref()?, want))
            .collect();
        if !downgrades.is_empty() {
            return Err(cx
                .settings
                .config_error("microk8s.channel", downgrades.join("; "))
                .into());
        }
        let changes = Self::plan(cx.settings, &probe);
        self.probe = Some(probe);
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let probe = self.probe.take().context("apply without probe")?;
        let settings = cx.settings.clone();
        let fleet = cx.fleet.clone();
        let reporter = cx.reporter.clone();
        tokio::task::spawn_blocking(move || apply(&settings, &fleet, &reporter, probe))
            .await
            .context("the bootstrap thread panicked")?
    }
}

fn host_progress(reporter: &Reporter, host: &str, message: &str) {
    reporter.emit(crate::report::Event::HostProgress {
        stage: StageName::Bootstrap,
        host: host.to_string(),
        message: message.to_string(),
    });
}

fn apply(settings: &Settings, fleet: &Fleet, reporter: &Reporter, p: Probe) -> Result<()> {
    let sudo = fleet.sudo();
    let user = settings.ssh.user.as_str();
    let mk = &settings.microk8s;
    let cname = p.controller.hostname.clone();
    let progress = |host: &str, msg: &str| host_progress(reporter, host, msg);
    let controller = fleet.lease(&p.controller)?;
    let run = |s: &SshSession, cmd: RemoteCommand| run_logged(s, &cmd.sudo(sudo), reporter);

    match &p.facts.channel {
        None => {
            progress(&cname, &format!("installing microk8s {}", mk.channel));
            run(&controller, snap("install", &mk.channel))?;
        }
        Some(have) if *have != mk.channel => {
            progress(&cname, &format!("refreshing microk8s to {}", mk.channel));
            run(&controller, snap("refresh", &mk.channel))?;
        }
        Some(_) => {}
    }
    if user != "root" && !p.facts.in_group {
        run(
            &controller,
            RemoteCommand::new("usermod").args(["-a", "-G", "microk8s", user]),
        )?;
    }
    progress(&cname, "waiting for microk8s to be ready");
    run(&controller, wait_ready(mk.ready_timeout))?;
    let mut enabled = false;
    for addon in &mk.addons {
        let name = addon.split(':').next().unwrap_or(addon);
        if !p.facts.addons.contains(name) {
            progress(&cname, &format!("enabling {addon}"));
            run(
                &controller,
                RemoteCommand::new("microk8s").args(["enable", addon.as_str()]),
            )?;
            enabled = true;
        }
    }
    if enabled {
        // `enable rbac` restarts kubelite and `enable` waits for it only 30 s
        // (microk8s 1.32 scripts/wrappers/common/utils.py): the joins must not meet it down.
        progress(&cname, "waiting for microk8s to be ready after the addons");
        run(&controller, wait_ready(mk.ready_timeout))?;
    }
    let missing: Vec<&Host> = p
        .workers
        .iter()
        .map(|(w, _)| w)
        .filter(|w| !p.facts.resolves.contains(&w.hostname))
        .collect();
    if !missing.is_empty() {
        let mut cmd = RemoteCommand::new("sh").args(["-c", HOSTS_ENTRIES, "hosts-entries"]);
        for w in &missing {
            cmd = cmd.args([w.private_ip.as_str(), w.hostname.as_str()]);
        }
        run(&controller, cmd)?;
    }
    progress(&cname, "ready");

    // Workers in the cluster on another channel follow the controller, one at a time.
    let mut failed = Vec::new();
    for (w, facts) in &p.workers {
        let Ok(HostFacts {
            channel: Some(have),
            ..
        }) = facts
        else {
            continue;
        };
        if *have == mk.channel || !p.facts.nodes.contains_key(&w.hostname) {
            continue;
        }
        progress(
            &w.hostname,
            &format!(
                "refreshing microk8s {have} → {} (cordon, drain)",
                mk.channel
            ),
        );
        let refreshed = fleet.lease(w).and_then(|session| {
            upgrade::refresh_worker(
                &controller,
                &session,
                &w.hostname,
                &mk.channel,
                sudo,
                mk.drain_timeout,
                mk.ready_timeout,
                reporter,
            )
        });
        match refreshed {
            Ok(()) => progress(
                &w.hostname,
                &format!("on {}, uncordoned, Ready", mk.channel),
            ),
            Err(e) => {
                progress(&w.hostname, &format!("failed: {}", first_line(&e)));
                failed.push((w.hostname.clone(), e));
            }
        }
    }

    // Workers in parallel: install (or refresh, outside the cluster), then join. One token with
    // a TTL serves them all (join.rs), issued while they install; readiness is awaited once for
    // all of them afterwards: the controller's one session never becomes the queue the workers
    // wait in.
    let needing = p
        .workers
        .iter()
        .any(|(w, _)| p.facts.nodes.get(&w.hostname) != Some(&true));
    let token = Mutex::new(join::JoinToken::new(
        controller,
        sudo,
        mk.token_ttl,
        mk.ready_timeout,
        &p.controller.private_ip,
        reporter,
    ));
    let joining = Mutex::new(Vec::new());
    let join = |w: &Host| -> Result<()> {
        let in_cluster = p.facts.nodes.contains_key(&w.hostname);
        let needs_join = p.facts.nodes.get(&w.hostname) != Some(&true);
        let probed = p
            .workers
            .iter()
            .find(|(h, _)| h == w)
            .and_then(|(_, f)| f.as_ref().ok().cloned());
        let session = fleet.lease(w)?;
        // Unreachable at probe time: look again now.
        let facts = match probed {
            Some(f) => f,
            None => probe_host(&session, user, mk.ready_timeout, &[])?,
        };
        match &facts.channel {
            None => {
                progress(&w.hostname, &format!("installing microk8s {}", mk.channel));
                run(&session, snap("install", &mk.channel))?;
            }
            Some(have) if *have != mk.channel && !in_cluster => {
                progress(
                    &w.hostname,
                    &format!("refreshing microk8s {have} → {}", mk.channel),
                );
                run(&session, snap("refresh", &mk.channel))?;
            }
            Some(have) if *have != mk.channel && probed_unreachable(&p, w) => bail!(
                "{} runs microk8s {have}, not {}, and was unreachable when the plan was made: a re-run drains and refreshes it",
                w.hostname,
                mk.channel
            ),
            Some(_) => {}
        }
        if !needs_join {
            progress(&w.hostname, "already in the cluster");
            return Ok(());
        }
        progress(&w.hostname, "joining");
        join::join(&session, sudo, &token, mk.ready_timeout, reporter, &|m| {
            progress(&w.hostname, m)
        })?;
        progress(&w.hostname, "waiting for the node to be Ready");
        joining
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(w.hostname.clone());
        Ok(())
    };
    let hosts: Vec<Host> = p.workers.iter().map(|(h, _)| h.clone()).collect();
    failed.extend(std::thread::scope(|scope| {
        // The token is issued while the workers install: the controller's round trip overlaps
        // the longest step instead of following it. A failure here is not lost: the workers'
        // own request for the token meets it again and reports it.
        if needing {
            scope.spawn(|| {
                if let Err(e) = token.lock().unwrap_or_else(|e| e.into_inner()).url() {
                    progress(&cname, &format!("issuing a join token: {}", first_line(&e)));
                }
            });
        }
        parallel(
            &hosts,
            mk.concurrency as usize,
            |w| w.hostname.clone(),
            |w| {
                join(w)
                    .inspect_err(|e| progress(&w.hostname, &format!("failed: {}", first_line(e))))
            },
        )
    }));
    let controller = token
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .session;
    let joining = joining.into_inner().unwrap_or_else(|e| e.into_inner());
    let not_ready = wait_nodes_ready(&controller, sudo, &joining, mk.ready_timeout)?;
    for name in &joining {
        if not_ready.contains(name) {
            progress(name, "failed: joined but not Ready");
            failed.push((
                name.clone(),
                anyhow!(
                    "{name} joined but is not Ready after {}s (microk8s.ready_timeout)",
                    mk.ready_timeout.as_secs()
                ),
            ));
        } else {
            progress(name, "joined, Ready");
        }
    }
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|(h, e)| format!("{h}: {e:#}")).collect();
        bail!(
            "{} of {} worker(s) failed (the others are in the cluster; a re-run retries only these):\n  {}",
            failed.len(),
            hosts.len(),
            list.join("\n  ")
        );
    }
    Ok(())
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

/// The worker could not be probed when the plan was made.
fn probed_unreachable(p: &Probe, w: &Host) -> bool {
    p.workers.iter().any(|(h, f)| h == w && f.is_err())
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

fn wait_ready(timeout: Duration) -> RemoteCommand {
    RemoteCommand::new("microk8s")
        .args(["status", "--wait-ready", "--timeout"])
        .arg(timeout.as_secs().max(1).to_string())
}

/// Polls the controller's node list until every name in `names` is Ready or `timeout`
/// passes; returns the names still not Ready.
fn wait_nodes_ready(
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
        pending.retain(|n| nodes.get(n) != Some(&true));
        if pending.is_empty() || Instant::now() + delay > deadline {
            return Ok(pending);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe script on this machine's `sh`, with `snap` and `microk8s` answering as given.
    fn probe_with(microk8s: &str) -> std::process::Output {
        let bin = tempfile::tempdir().unwrap();
        let tool = |name: &str, body: &str| {
            let p = bin.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        tool(
            "snap",
            "echo 'Name Version Rev Tracking Publisher Notes'; echo 'microk8s v1.32.3 1 1.32/stable canonical classic'",
        );
        tool("microk8s", microk8s);
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap()
        );
        let user = String::from_utf8(
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        std::process::Command::new("sh")
            .args(["-c", PROBE, "probe", user.trim(), "1"])
            .env("PATH", path)
            .output()
            .unwrap()
    }

    /// A controller whose node list cannot be read fails the probe (no @end): read as "no
    /// nodes", it would have every worker joined again.
    #[test]
    fn a_probe_that_cannot_read_the_cluster_fails() {
        let ok = probe_with(
            "case \"$1 $2\" in 'status --wait-ready') echo 'microk8s:'; echo '  running: True';; 'kubectl get') echo '{\"items\": []}';; esac",
        );
        let text = String::from_utf8_lossy(&ok.stdout);
        assert!(ok.status.success() && text.contains("@end"), "{ok:?}");
        let f = parse_facts(&Sections::parse(&text, SECTIONS).unwrap());
        assert_eq!(f.channel.as_deref(), Some("1.32/stable"));
        let broken = probe_with(
            "case \"$1 $2\" in 'status --wait-ready') echo 'microk8s:';; 'kubectl get') echo 'The connection to the server 127.0.0.1:16443 was refused' >&2; exit 1;; esac",
        );
        assert!(!broken.status.success(), "{broken:?}");
        assert!(!String::from_utf8_lossy(&broken.stdout).contains("@end"));
        // A MicroK8s that does not come up within the wait fails too, saying so.
        let down = probe_with(
            "echo 'microk8s is not running. Use microk8s inspect for a deeper inspection.'; exit 1",
        );
        assert!(!down.status.success());
        assert!(
            String::from_utf8_lossy(&down.stderr).contains("installed but not running"),
            "{down:?}"
        );
    }

    #[test]
    fn probe_output_becomes_facts() {
        let text = "@snap\n1.32/stable\n@groups\nubuntu adm microk8s\n@status\nmicrok8s:\n  running: true\naddons:\n- name: dns\n  status: enabled\n- name: rbac\n  repository: core\n  status: disabled\n@nodes\n{\"items\": [{\"metadata\": {\"name\": \"controller\"}, \"status\": {\"conditions\": [{\"type\": \"Ready\", \"status\": \"True\"}]}}, {\"metadata\": {\"name\": \"worker-1\"}, \"status\": {\"conditions\": [{\"type\": \"Ready\", \"status\": \"False\"}]}}]}\n@hosts\nworker-1\n@end\n";
        let f = parse_facts(&Sections::parse(text, SECTIONS).unwrap());
        assert_eq!(f.channel.as_deref(), Some("1.32/stable"));
        assert!(f.in_group);
        assert_eq!(f.addons, BTreeSet::from(["dns".to_string()]));
        assert_eq!(f.nodes.get("worker-1"), Some(&false));
        assert_eq!(f.nodes.get("controller"), Some(&true));
        assert!(f.resolves.contains("worker-1"));
        let empty = parse_facts(
            &Sections::parse(
                "@snap\n@groups\nroot\n@status\n@nodes\n@hosts\n@end\n",
                SECTIONS,
            )
            .unwrap(),
        );
        assert_eq!(empty, HostFacts::default());
    }
}
