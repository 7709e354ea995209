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
    /// Not a Ready node of the cluster: `microk8s join`.
    pub join: bool,
}

impl WorkerPlan {
    /// Whether apply has anything to do on this worker.
    pub fn has_work(&self) -> bool {
        self.join || self.snap != WorkerSnap::Known(Snap::Current)
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
                .filter(|(w, _)| !facts.resolves.contains(&w.hostname))
                .map(|(w, _)| (w.private_ip.clone(), w.hostname.clone()))
                .collect(),
            host: probe.controller.clone(),
        };
        let workers = probe
            .workers
            .into_iter()
            .map(|(host, probed)| {
                let node = facts.nodes.get(&host.hostname);
                let in_cluster = node.is_some();
                WorkerPlan {
                    snap: match probed {
                        Seen::Probed(f) => WorkerSnap::Known(Snap::decide(
                            f.channel.as_deref(),
                            &channel,
                            in_cluster,
                        )),
                        Seen::Vouched => WorkerSnap::Known(Snap::Current),
                        Seen::Unreachable(reason) => WorkerSnap::Unprobed { reason },
                    },
                    in_cluster,
                    join: !node.is_some_and(|n| n.ready),
                    host,
                }
            })
            .collect();
        Plan {
            channel,
            controller,
            workers,
        }
    }

    /// Workers that are not Ready nodes of the cluster yet.
    pub fn needs_join(&self) -> bool {
        self.workers.iter().any(|w| w.join)
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
        for w in &self.workers {
            let name = w.name();
            if let Some((ip, _)) = c.hosts_entries.iter().find(|(_, n)| n == name) {
                changes.push(Change::new(
                    "add",
                    format!("{cname}: hosts entry {ip} {name}"),
                ));
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
                Snap::Upgrade { from } => changes.push(Change::new(
                    "refresh",
                    format!(
                        "{name}: microk8s {from} → {channel} (cordon, drain, refresh, uncordon; one worker at a time)"
                    ),
                )),
                Snap::Current => {}
            }
            if w.join {
                changes.push(Change::new("join", format!("{name} → {cname}")));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::stages::bootstrap::probe::Node;

    fn host(name: &str, ip: &str) -> Host {
        Host {
            id: format!("i-{name}"),
            hostname: name.into(),
            public_ip: ip.into(),
            private_ip: ip.into(),
        }
    }

    fn settings() -> Microk8sSettings {
        let d = std::time::Duration::from_secs(60);
        Microk8sSettings {
            channel: "1.32/stable".into(),
            addons: vec!["dns".into(), "hostpath-storage".into(), "rbac".into()],
            token_ttl: d,
            ready_timeout: d,
            drain_timeout: d,
            concurrency: 16,
        }
    }

    fn node(ready: bool) -> Node {
        Node {
            ready,
            kubelet: "v1.32.3".into(),
        }
    }

    fn facts(channel: Option<&str>) -> HostFacts {
        HostFacts {
            channel: channel.map(str::to_string),
            ..HostFacts::default()
        }
    }

    #[test]
    fn a_fresh_cluster_installs_everything_and_joins_every_worker() {
        let s = settings();
        let plan = Plan::new(
            &s,
            "ubuntu",
            Probe {
                controller: host("controller", "10.0.0.10"),
                facts: facts(None),
                workers: vec![
                    (host("worker-1", "10.0.0.11"), Seen::Probed(facts(None))),
                    (
                        host("worker-2", "10.0.0.12"),
                        Seen::Unreachable("refused".into()),
                    ),
                ],
            },
        );
        assert_eq!(plan.controller.snap, Snap::Install);
        assert_eq!(plan.controller.addons, s.addons);
        assert_eq!(plan.controller.add_to_group.as_deref(), Some("ubuntu"));
        assert_eq!(plan.controller.hosts_entries.len(), 2);
        assert_eq!(plan.workers[0].snap, WorkerSnap::Known(Snap::Install));
        assert!(plan.workers.iter().all(|w| w.join && !w.in_cluster));
        assert_eq!(
            plan.workers[1].snap,
            WorkerSnap::Unprobed {
                reason: "refused".into()
            }
        );
        let words: Vec<String> = plan
            .changes()
            .iter()
            .map(|c| format!("{} {}", c.action, c.target))
            .collect();
        assert!(words.contains(&"join worker-1 → controller".to_string()));
        assert!(words.contains(&"repair worker-2: unreachable (refused)".to_string()));
        assert!(!words.iter().any(|w| w.starts_with("join worker-2")));
    }

    #[test]
    fn a_new_channel_refreshes_the_controller_and_upgrades_workers_in_the_cluster() {
        let mut s = settings();
        s.channel = "1.33/stable".into();
        let mut cf = facts(Some("1.32/stable"));
        cf.addons = s.addons.iter().cloned().collect();
        cf.nodes = BTreeMap::from([
            ("controller".into(), node(true)),
            ("worker-1".into(), node(true)),
            ("worker-2".into(), node(false)),
        ]);
        cf.resolves = ["worker-1", "worker-2", "worker-3"]
            .map(String::from)
            .into();
        cf.in_group = true;
        let plan = Plan::new(
            &s,
            "ubuntu",
            Probe {
                controller: host("controller", "10.0.0.10"),
                facts: cf,
                workers: vec![
                    (
                        host("worker-1", "10.0.0.11"),
                        Seen::Probed(facts(Some("1.32/stable"))),
                    ),
                    (
                        host("worker-2", "10.0.0.12"),
                        Seen::Probed(facts(Some("1.33/stable"))),
                    ),
                    (
                        host("worker-3", "10.0.0.13"),
                        Seen::Probed(facts(Some("1.32/stable"))),
                    ),
                ],
            },
        );
        let from = || "1.32/stable".to_string();
        assert_eq!(plan.controller.snap, Snap::Refresh { from: from() });
        assert!(plan.controller.addons.is_empty() && plan.controller.hosts_entries.is_empty());
        assert_eq!(plan.controller.add_to_group, None);
        let w = &plan.workers;
        assert_eq!(w[0].snap, WorkerSnap::Known(Snap::Upgrade { from: from() }));
        assert!(!w[0].join);
        assert_eq!(w[1].snap, WorkerSnap::Known(Snap::Current));
        assert!(w[1].join && w[1].has_work(), "in the list but not Ready");
        assert_eq!(w[2].snap, WorkerSnap::Known(Snap::Refresh { from: from() }));
        assert!(w[2].join);
    }

    #[test]
    fn a_converged_cluster_has_nothing_to_do() {
        let s = settings();
        let mut cf = facts(Some(&s.channel));
        cf.addons = s.addons.iter().cloned().collect();
        cf.nodes = BTreeMap::from([
            ("controller".into(), node(true)),
            ("worker-1".into(), node(true)),
            ("worker-2".into(), node(true)),
        ]);
        cf.resolves = ["worker-1", "worker-2"].map(String::from).into();
        cf.in_group = true;
        let plan = Plan::new(
            &s,
            "ubuntu",
            Probe {
                controller: host("controller", "10.0.0.10"),
                facts: cf,
                workers: vec![
                    (
                        host("worker-1", "10.0.0.11"),
                        Seen::Probed(facts(Some(&s.channel))),
                    ),
                    (host("worker-2", "10.0.0.12"), Seen::Vouched),
                ],
            },
        );
        assert!(plan.changes().is_empty());
        assert!(plan.workers.iter().all(|w| !w.has_work() && w.in_cluster));
    }
}
