//! The plan: what apply does on each host, decided once from the probe. Apply executes it; the
//! changes the run reports are this plan in words.

use crate::config::Microk8sSettings;
use crate::report::Change;
use crate::state::Host;

use super::probe::{HostFacts, Probe, Seen};

/// What one host's microk8s snap needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snap {
    /// On the configured channel.
    Current,
    Install,
    /// On another channel and not in the cluster: nothing runs there to drain.
    Refresh {
        from: String,
    },
    /// A worker in the cluster on another channel: cordon, drain, refresh, uncordon, one
    /// worker at a time (`upgrade.rs`).
    Upgrade {
        from: String,
    },
}

/// Whether a worker that was logged in to joins, and whether its kubelite is started: what
/// the worker itself says decides over the node list, which can still show a dead kubelet's
/// node Ready for the grace period. A host without the snap (wiped or rebuilt) or outside any
/// cluster joins; one whose kubelite is stopped is started, and its node then turns Ready again
/// by itself; otherwise it joins when its node is not Ready. For the plan and for a worker
/// probed again in apply.
pub fn join_or_start(f: &HostFacts, ready: bool) -> (bool, bool) {
    if f.channel.is_none() || !f.clustered {
        (true, false)
    } else if f.kubelite_stopped {
        (false, true)
    } else {
        (!ready, false)
    }
}

impl Snap {
    /// The one decision, for the plan and for a worker probed again in apply.
    pub fn decide(have: Option<&str>, want: &str, in_cluster: bool) -> Snap {
        match have {
            None => Snap::Install,
            Some(have) if have == want => Snap::Current,
            Some(have) if in_cluster => Snap::Upgrade { from: have.into() },
            Some(have) => Snap::Refresh { from: have.into() },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerPlan {
    pub host: Host,
    /// Never `Upgrade`: the controller is refreshed in place, first.
    pub snap: Snap,
    /// The SSH user to add to the `microk8s` group.
    pub add_to_group: Option<String>,
    /// Addons to enable, as configured (`NAME[:ARGS]`), one command each.
    pub addons: Vec<String>,
    /// Workers the controller does not resolve yet: /etc/hosts entries (IP, name).
    pub hosts_entries: Vec<(String, String)>,
}

/// What a worker's snap needs, or why that is not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerSnap {
    Known(Snap),
    /// Unreachable when probed: apply probes it again and decides then, except that a worker
    /// in the cluster on another channel is left for a run that plans its drain.
    Unprobed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPlan {
    pub host: Host,
    pub snap: WorkerSnap,
    /// In the controller's node list (Ready or not).
    pub in_cluster: bool,
    /// Not a Ready node of the cluster, or a host that is not (or no longer) in one:
    /// `microk8s join`.
    pub join: bool,
    /// A worker in the cluster whose kubelite service is stopped: `snap start --enable`.
    pub start: bool,
    /// What the controller does about Jeeves' mark on the node, when it is not upgraded now (an
    /// upgrade cordons and uncordons it anyway).
    pub mark: Option<MarkRepair>,
    /// Cordoned by someone else (no mark): an upgrade drains and refreshes it but leaves it
    /// cordoned.
    pub keep_cordoned: bool,
}

/// A node that still carries Jeeves' mark (`crate::kube::CORDONED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkRepair {
    /// Cordoned and marked: a run stopped before uncordoning it. Uncordoned, unmarked.
    Uncordon,
    /// Marked but schedulable: uncordoned by hand since. Unmarked, so that a later cordon is
    /// its author's and no run undoes it.
    Unmark,
}

impl WorkerPlan {
    /// Whether apply has anything to do on the worker itself (uncordoning is the controller's).
    pub fn on_host(&self) -> bool {
        self.join || self.start || self.snap != WorkerSnap::Known(Snap::Current)
    }

    pub fn name(&self) -> &str {
        &self.host.hostname
    }
}

/// A controller after the first (`[cluster] controllers`): a full node of the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPlan {
    pub host: Host,
    /// Never `Upgrade`: a peer is refreshed in place, as the first controller is.
    pub snap: WorkerSnap,
    pub add_to_group: Option<String>,
    /// Not a member of the datastore the first controller lists (or a host without the snap):
    /// `microk8s join` without `--worker`.
    pub join: bool,
}

impl PeerPlan {
    fn new(host: Host, seen: Seen, channel: &str, user: &str, facts: &HostFacts) -> PeerPlan {
        let member = facts.datastore.contains_key(&host.private_ip);
        let (snap, add_to_group, join) = match seen {
            Seen::Probed(f) => (
                WorkerSnap::Known(Snap::decide(f.channel.as_deref(), channel, false)),
                (user != "root" && !f.in_group).then(|| user.to_string()),
                !member || f.channel.is_none(),
            ),
            // Never vouched for (probe.rs): only reached or not.
            Seen::Vouched => (WorkerSnap::Known(Snap::Current), None, !member),
            Seen::Unreachable(reason) => (WorkerSnap::Unprobed { reason }, None, false),
        };
        PeerPlan {
            host,
            snap,
            add_to_group,
            join,
        }
    }

    pub fn name(&self) -> &str {
        &self.host.hostname
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The configured `microk8s.channel`.
    pub channel: String,
    pub controller: ControllerPlan,
    /// Empty with one controller.
    pub peers: Vec<PeerPlan>,
    pub workers: Vec<WorkerPlan>,
}

impl Plan {
    /// `user`: the SSH user, who needs the `microk8s` group unless it is root.
    pub fn new(mk: &Microk8sSettings, user: &str, probe: Probe) -> Plan {
        let channel = mk.channel.clone();
        let facts: &HostFacts = &probe.facts;
        let controller = ControllerPlan {
            snap: Snap::decide(facts.channel.as_deref(), &channel, false),
            add_to_group: (user != "root" && !facts.in_group).then(|| user.to_string()),
            addons: mk
                .addons
                .iter()
                .filter(|a| !facts.addons.contains(a.split(':').next().unwrap_or(a)))
                .cloned()
                .collect(),
            hosts_entries: probe
                .workers
                .iter()
                .chain(&probe.peers)
                .filter(|(w, _)| !facts.resolves.contains(&w.hostname))
                .map(|(w, _)| (w.private_ip.clone(), w.hostname.clone()))
                .collect(),
            host: probe.controller.clone(),
        };
        let peers = probe
            .peers
            .into_iter()
            .map(|(host, seen)| PeerPlan::new(host, seen, &channel, user, facts))
            .collect();
        let workers = probe
            .workers
            .into_iter()
            .map(|(host, probed)| {
                let node = facts.nodes.get(&host.hostname);
                let in_cluster = node.is_some();
                let ready = node.is_some_and(|n| n.ready);
                let (join, start) = match &probed {
                    Seen::Probed(f) => join_or_start(f, ready),
                    _ => (!ready, false),
                };
                let snap = match probed {
                    Seen::Probed(f) => {
                        WorkerSnap::Known(Snap::decide(f.channel.as_deref(), &channel, in_cluster))
                    }
                    Seen::Vouched => WorkerSnap::Known(Snap::Current),
                    Seen::Unreachable(reason) => WorkerSnap::Unprobed { reason },
                };
                let upgrade = matches!(snap, WorkerSnap::Known(Snap::Upgrade { .. }));
                // Not while it joins again: the node may be registered anew meanwhile.
                let mark = match node {
                    Some(n) if n.marked && !upgrade && !join => Some(if n.cordoned {
                        MarkRepair::Uncordon
                    } else {
                        MarkRepair::Unmark
                    }),
                    _ => None,
                };
                WorkerPlan {
                    snap,
                    in_cluster,
                    join,
                    start,
                    mark,
                    keep_cordoned: node.is_some_and(|n| n.cordoned && !n.marked),
                    host,
                }
            })
            .collect();
        Plan {
            channel,
            controller,
            peers,
            workers,
        }
    }

    /// Workers that are not Ready nodes of the cluster yet, or peers not in its datastore.
    pub fn needs_join(&self) -> bool {
        self.workers.iter().any(|w| w.join) || self.peers.iter().any(|p| p.join)
    }

    /// The plan in words, host by host (empty: nothing to do).
    pub fn changes(&self) -> Vec<Change> {
        let mut changes = Vec::new();
        let c = &self.controller;
        let cname = &c.host.hostname;
        let channel = &self.channel;
        match &c.snap {
            Snap::Install => changes.push(Change::new(
                "install",
                format!("{cname}: microk8s {channel}"),
            )),
            Snap::Refresh { from } | Snap::Upgrade { from } => changes.push(Change::new(
                "refresh",
                format!("{cname}: microk8s {from} → {channel}"),
            )),
            Snap::Current => {}
        }
        if let Some(user) = &c.add_to_group {
            changes.push(Change::new(
                "add",
                format!("{cname}: user {user} to group microk8s"),
            ));
        }
        for addon in &c.addons {
            changes.push(Change::new("enable", format!("{cname}: addon {addon}")));
        }
        for p in &self.peers {
            self.peer_changes(p, &mut changes);
        }
        for w in &self.workers {
            let name = w.name();
            if let Some((ip, _)) = c.hosts_entries.iter().find(|(_, n)| n == name) {
                changes.push(Change::new(
                    "add",
                    format!("{cname}: hosts entry {ip} {name}"),
                ));
            }
            match w.mark {
                Some(MarkRepair::Uncordon) => changes.push(Change::new(
                    "uncordon",
                    format!("{name} (cordoned by a run that stopped before uncordoning it)"),
                )),
                Some(MarkRepair::Unmark) => changes.push(Change::new(
                    "unmark",
                    format!(
                        "{name} (uncordoned by hand since a run left it cordoned; a later cordon is not Jeeves')"
                    ),
                )),
                None => {}
            }
            let snap = match &w.snap {
                WorkerSnap::Unprobed { reason } => {
                    changes.push(Change::new(
                        "repair",
                        format!("{name}: unreachable ({reason})"),
                    ));
                    continue;
                }
                WorkerSnap::Known(snap) => snap,
            };
            match snap {
                Snap::Install => {
                    changes.push(Change::new("install", format!("{name}: microk8s {channel}")))
                }
                Snap::Refresh { from } => changes.push(Change::new(
                    "refresh",
                    format!("{name}: microk8s {from} → {channel}"),
                )),
                Snap::Upgrade { from } if w.keep_cordoned => changes.push(Change::new(
                    "refresh",
                    format!(
                        "{name}: microk8s {from} → {channel} (drain, refresh, left cordoned as found; one worker at a time)"
                    ),
                )),
                Snap::Upgrade { from } => changes.push(Change::new(
                    "refresh",
                    format!(
                        "{name}: microk8s {from} → {channel} (cordon, drain, refresh, uncordon; one worker at a time)"
                    ),
                )),
                Snap::Current => {}
            }
            if w.start {
                changes.push(Change::new(
                    "start",
                    format!(
                        "{name}: microk8s.daemon-kubelite (stopped: its kubelet renews no Lease)"
                    ),
                ));
            }
            if w.join {
                changes.push(Change::new("join", format!("{name} → {cname}")));
            }
        }
        changes
    }

    /// A peer's part of `changes`, in the order apply does it.
    fn peer_changes(&self, p: &PeerPlan, changes: &mut Vec<Change>) {
        let (c, name, channel) = (&self.controller, p.name(), &self.channel);
        if let Some((ip, _)) = c.hosts_entries.iter().find(|(_, n)| n == name) {
            let cname = &c.host.hostname;
            changes.push(Change::new(
                "add",
                format!("{cname}: hosts entry {ip} {name}"),
            ));
        }
        match &p.snap {
            WorkerSnap::Unprobed { reason } => {
                changes.push(Change::new(
                    "repair",
                    format!("{name}: unreachable ({reason})"),
                ));
                return;
            }
            WorkerSnap::Known(Snap::Install) => changes.push(Change::new(
                "install",
                format!("{name}: microk8s {channel}"),
            )),
            WorkerSnap::Known(Snap::Refresh { from } | Snap::Upgrade { from }) => changes.push(
                Change::new("refresh", format!("{name}: microk8s {from} → {channel}")),
            ),
            WorkerSnap::Known(Snap::Current) => {}
        }
        if let Some(user) = &p.add_to_group {
            changes.push(Change::new(
                "add",
                format!("{name}: user {user} to group microk8s"),
            ));
        }
        if p.join {
            changes.push(Change::new(
                "join",
                format!("{name} → {} (control plane)", c.host.hostname),
            ));
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
