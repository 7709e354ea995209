//! What the plan needs to know about each host, in one round trip per host (`scripts/probe.sh`).
//! A worker is not logged in to when the cluster vouches for it (`cluster_vouches`): a Ready node
//! on the controller's kubelet version whose kubelet renewed its Lease within the last half of
//! the Lease's duration (`LEASE_FRESH`), and whose channel an earlier run found or put it on is
//! the one configured (the state's `worker_channels`). Only `snap list` on the worker tells its
//! tracking channel, and a converged worker would pay a login and a snap query for an answer the
//! run already has; what the cluster cannot show (a change of risk on the same version) a run
//! with `--force bootstrap` finds, as does the first run after the versions part.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::report::Reporter;
use crate::ssh::probe::{self, Sections};
use crate::ssh::{HostKeyRejected, RemoteCommand, SshSession};
use crate::state::Host;

use super::{Hosts, host_progress, parallel};

/// One round trip that tells everything the plan needs about a host (values as positional
/// parameters; checked by shellcheck in the test command).
const PROBE: &str = include_str!("scripts/probe.sh");

/// The sections PROBE prints.
const SECTIONS: &[&str] = &[
    "snap", "groups", "status", "kubelite", "nodes", "clock", "hosts",
];

/// The share of a Lease's `leaseDurationSeconds` within which its last renewal vouches for the
/// node: the kubelet renews every quarter of it (kubernetes release-1.32 `pkg/kubelet/kubelet.go`
/// `nodeLeaseRenewIntervalFraction`), so a half is two renewals missed: 20 s by default, against
/// the node lifecycle controller's 50 s before the node reads Unknown.
const LEASE_FRESH: f64 = 0.5;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Tracking channel of the microk8s snap; `None` when not installed.
    pub channel: Option<String>,
    pub in_group: bool,
    pub addons: BTreeSet<String>,
    /// The cluster's nodes by name (controller only).
    pub nodes: BTreeMap<String, Node>,
    /// The host's clock when it read the nodes (unix milliseconds; controller only).
    pub clock: Option<i64>,
    /// A worker that joined a cluster (its `microk8s status` says it acts as a node).
    pub clustered: bool,
    /// A worker whose kubelite service is stopped (`snap services`).
    pub kubelite_stopped: bool,
    /// Worker names the host resolves to the right address.
    pub resolves: BTreeSet<String>,
    /// The datastore's members as `microk8s status --format yaml` lists them (the first
    /// controller only): IP → role (`voter`, `standby` or `spare`), canonical/microk8s 1.32
    /// `scripts/wrappers/common/utils.py` `get_dqlite_info`.
    pub datastore: BTreeMap<String, String>,
}

/// A node as the controller's `kubectl get nodes -o json` shows it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Node {
    pub ready: bool,
    /// `status.nodeInfo.kubeletVersion`: the Kubernetes version of the node's MicroK8s snap.
    pub kubelet: String,
    /// `spec.unschedulable`: cordoned, by whoever.
    pub cordoned: bool,
    /// Carries Jeeves' mark (`crate::kube::CORDONED`): Jeeves cordoned it and has not uncordoned it
    /// since. Cordoned and marked: a run stopped between the two; marked but not cordoned:
    /// someone uncordoned it by hand since.
    pub marked: bool,
    /// Its Lease in `kube-node-lease`: when last renewed (unix seconds) and for how long.
    pub lease: Option<Lease>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// `spec.renewTime`, unix milliseconds.
    pub renewed: i64,
    /// `spec.leaseDurationSeconds`.
    pub seconds: i64,
}

impl Node {
    /// Whether its kubelet renewed the Lease recently enough, by the host clock `now` (unix
    /// milliseconds).
    pub fn lease_fresh(&self, now: Option<i64>) -> bool {
        match (self.lease, now) {
            (Some(l), Some(now)) => {
                (now - l.renewed) as f64 <= l.seconds as f64 * 1000.0 * LEASE_FRESH
            }
            _ => false,
        }
    }
}

/// What the run knows of a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Probed over SSH.
    Probed(HostFacts),
    /// Not logged in to: the cluster vouches for it (the module's comment).
    Vouched,
    /// Could not be probed, and why.
    Unreachable(String),
}

/// What the probe found on every host.
pub struct Probe {
    pub controller: Host,
    pub facts: HostFacts,
    /// The controllers after the first (`[cluster] controllers`), each probed (never vouched
    /// for: they are few, and their own status tells what joining needs).
    pub peers: Vec<(Host, Seen)>,
    pub workers: Vec<(Host, Seen)>,
}

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
        clock: p
            .values("clock")
            .last()
            .and_then(|c| c.parse::<f64>().ok())
            .map(|s| (s * 1000.0) as i64),
        clustered: p.lines("status").any(|l| l.contains("acting as a node")),
        kubelite_stopped: p.values("kubelite").any(|v| v == "inactive"),
        resolves: p.values("hosts").collect(),
        datastore: parse_datastore(p.lines("status")),
    }
}

/// `microk8s status --format yaml` → the datastore's members (`parse_datastore`).
pub fn parse_datastore_yaml(text: &str) -> BTreeMap<String, String> {
    parse_datastore(text.lines())
}

/// The `high-availability: nodes:` of `microk8s status --format yaml` (status.py `print_yaml`:
/// `- address: IP:PORT` then `role: ROLE` per node) → IP → role.
fn parse_datastore<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeMap<String, String> {
    let mut nodes = BTreeMap::new();
    let mut address: Option<String> = None;
    for t in lines.map(str::trim) {
        if let Some(a) = t.strip_prefix("- address: ") {
            let a = a.trim();
            // IPv6 addresses come bracketed ([::1]:19001).
            let ip = a.rsplit_once(':').map_or(a, |(ip, _)| ip);
            address = Some(ip.trim_matches(['[', ']']).to_string());
        } else if let Some(role) = t.strip_prefix("role: ")
            && let Some(a) = address.take()
        {
            nodes.insert(a, role.trim().to_string());
        }
    }
    nodes
}

/// `kubectl get nodes,leases -n kube-node-lease -o json` (or nodes alone) → node name → its
/// readiness, kubelet version, cordon and Lease.
pub fn parse_nodes(json: &str) -> BTreeMap<String, Node> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return BTreeMap::new();
    };
    let items = crate::kube::items(&v);
    let name = |item: &serde_json::Value| {
        item["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let leases: BTreeMap<String, Lease> = items
        .iter()
        .filter(|item| item["kind"] == "Lease")
        .filter_map(|item| {
            let renewed = humantime::parse_rfc3339(item["spec"]["renewTime"].as_str()?).ok()?;
            let renewed = renewed
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_millis() as i64;
            let seconds = item["spec"]["leaseDurationSeconds"].as_i64()?;
            Some((name(item), Lease { renewed, seconds }))
        })
        .collect();
    items
        .iter()
        .filter(|item| item["kind"] != "Lease")
        .map(|item| {
            let ready = item["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let kubelet = item["status"]["nodeInfo"]["kubeletVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let cordoned = crate::kube::cordoned(item);
            let marked = crate::kube::marked(item);
            let name = name(item);
            let lease = leases.get(&name).copied();
            (
                name,
                Node {
                    ready,
                    kubelet,
                    cordoned,
                    marked,
                    lease,
                },
            )
        })
        .collect()
}

/// Which host a probe runs on: the controller's also reads the node list; a peer (a controller
/// after the first) tells its snap and status, as a worker does, without its kubelite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Controller,
    Peer,
    Worker,
}

/// Probes one host; `pairs` are the NAME IP pairs it should resolve (the controller's workers).
pub fn probe_host(
    session: &SshSession,
    user: &str,
    wait: Duration,
    role: Role,
    pairs: &[(String, String)],
) -> Result<HostFacts> {
    let role = match role {
        Role::Controller => "controller",
        Role::Peer => "peer",
        Role::Worker => "worker",
    };
    let mut cmd = RemoteCommand::new("sh")
        .arg("-c")
        .arg(PROBE)
        .args(["probe", user])
        .arg(wait.as_secs().max(1).to_string())
        .arg(role);
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

/// Whether the cluster vouches for `worker` (the module's comment): the controller on `want`,
/// the worker a Ready node on the controller's kubelet version whose Lease is fresh.
fn cluster_vouches(facts: &HostFacts, controller: &Host, worker: &Host, want: &str) -> bool {
    let node = |h: &Host| facts.nodes.get(&h.hostname);
    facts.channel.as_deref() == Some(want)
        && matches!(
            (node(controller), node(worker)),
            (Some(c), Some(w)) if !c.kubelet.is_empty()
                && c.kubelet == w.kubelet
                && w.ready
                && w.lease_fresh(facts.clock)
        )
}

/// The controller, and meanwhile the workers on at most `limit` threads (on fresh instances
/// each probe first waits for cloud-init). The workers in `recorded` (found on `want` by an
/// earlier run) wait for the controller's node list instead, and are probed only when the
/// cluster does not vouch for them. The peers (controllers after the first) are probed with the
/// workers. A peer or worker that cannot be reached only stops itself; an unreachable
/// controller, or a host key that is not the pinned one, stops everything.
#[allow(clippy::too_many_arguments)]
pub fn probe_all(
    hosts: &Hosts,
    controller: Host,
    peers: Vec<Host>,
    workers: Vec<Host>,
    recorded: &BTreeSet<String>,
    want: &str,
    limit: usize,
    wait: Duration,
    reporter: &Reporter,
) -> Result<Probe> {
    // The first controller resolves every other node by name (its API server reaches their
    // kubelets by it).
    let pairs: Vec<(String, String)> = workers
        .iter()
        .chain(&peers)
        .map(|w| (w.hostname.clone(), w.private_ip.clone()))
        .collect();
    let results = Mutex::new(BTreeMap::new());
    let probe_workers = |list: &[(&Host, Role)]| {
        parallel(
            list,
            limit,
            |(w, _)| w.hostname.clone(),
            |&(w, role)| {
                let r = hosts
                    .connect(w)
                    .and_then(|s| probe_host(&s, hosts.user(), wait, role, &[]));
                // A wrong or unknown host key stops the stage before anything runs anywhere; an
                // unreachable worker only stops itself.
                if let Err(e) = &r
                    && e.chain().any(|c| c.is::<HostKeyRejected>())
                {
                    return Err(anyhow!("{e:#}"));
                }
                let seen = match r {
                    Ok(f) => Seen::Probed(f),
                    Err(e) => {
                        let e = format!("{e:#}");
                        host_progress(reporter, &w.hostname, &format!("probe failed: {e}"));
                        Seen::Unreachable(e)
                    }
                };
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(w.hostname.clone(), seen);
                Ok(())
            },
        )
    };
    let (waiting, at_once): (Vec<Host>, Vec<Host>) = workers
        .iter()
        .cloned()
        .partition(|w| recorded.contains(&w.id));
    let (facts, mut fatal) = std::thread::scope(|scope| {
        let facts = scope.spawn(|| {
            let session = hosts.connect(&controller)?;
            probe_host(&session, hosts.user(), wait, Role::Controller, &pairs)
        });
        let first: Vec<(&Host, Role)> = (peers.iter().map(|p| (p, Role::Peer)))
            .chain(at_once.iter().map(|w| (w, Role::Worker)))
            .collect();
        let fatal = probe_workers(&first);
        (facts.join(), fatal)
    });
    let facts = facts.map_err(|_| anyhow!("the controller's probe panicked"))??;
    let (vouched, doubted): (Vec<Host>, Vec<Host>) = waiting
        .into_iter()
        .partition(|w| cluster_vouches(&facts, &controller, w, want));
    if fatal.is_empty() {
        let doubted: Vec<(&Host, Role)> = doubted.iter().map(|w| (w, Role::Worker)).collect();
        fatal = probe_workers(&doubted);
    }
    if let Some((host, e)) = fatal.into_iter().next() {
        return Err(e.context(format!(
            "{host}: host key rejected; nothing was changed on any host"
        )));
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    for w in &vouched {
        results.insert(w.hostname.clone(), Seen::Vouched);
    }
    let mut seen = |hosts: Vec<Host>| -> Vec<(Host, Seen)> {
        hosts
            .into_iter()
            .map(|w| {
                let r = results
                    .remove(&w.hostname)
                    .unwrap_or_else(|| Seen::Unreachable("not probed".into()));
                (w, r)
            })
            .collect()
    };
    Ok(Probe {
        controller,
        facts,
        peers: seen(peers),
        workers: seen(workers),
    })
}

/// Keeps the channel each probed worker tracks while it is `want` (and only for the inventory's
/// workers); a worker found on another channel or on none, or that could not be probed (apply
/// may install or refresh it), loses its record; one the cluster vouched for keeps it.
pub fn record_channels(records: &mut BTreeMap<String, String>, probe: &Probe, want: &str) {
    records.retain(|id, _| probe.workers.iter().any(|(w, _)| &w.id == id));
    for (w, seen) in &probe.workers {
        match seen {
            Seen::Probed(f) if f.channel.as_deref() == Some(want) => {
                records.insert(w.id.clone(), want.to_string());
            }
            Seen::Probed(_) | Seen::Unreachable(_) => {
                records.remove(&w.id);
            }
            Seen::Vouched => {}
        }
    }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
