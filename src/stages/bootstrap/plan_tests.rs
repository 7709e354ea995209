//! Unit tests of `plan.rs` (a child module of it, in a file of its own).

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
        cordoned: false,
        marked: false,
        lease: None,
    }
}

/// The plan in words, `ACTION TARGET` per change.
fn words(plan: &Plan) -> Vec<String> {
    plan.changes()
        .iter()
        .map(|c| format!("{} {}", c.action, c.target))
        .collect()
}

/// A host on `channel` (none: the snap is not installed); a worker with the snap is in the
/// cluster by its own word, with kubelite running.
fn facts(channel: Option<&str>) -> HostFacts {
    HostFacts {
        channel: channel.map(str::to_string),
        clustered: channel.is_some(),
        ..HostFacts::default()
    }
}

/// The plan for a controller on `channel` with every addon, the user in its group and `nodes`
/// in its cluster, and `workers` (worker-N at 10.0.0.1N), which it resolves.
fn plan_with(
    s: &Microk8sSettings,
    channel: &str,
    nodes: &[(&str, Node)],
    workers: Vec<Seen>,
) -> Plan {
    let names: Vec<String> = (1..=workers.len()).map(|n| format!("worker-{n}")).collect();
    let mut cf = facts(Some(channel));
    cf.addons = s.addons.iter().cloned().collect();
    cf.in_group = true;
    cf.nodes = nodes
        .iter()
        .map(|(n, node)| (n.to_string(), node.clone()))
        .collect();
    cf.resolves = names.iter().cloned().collect();
    Plan::new(
        s,
        "ubuntu",
        Probe {
            controller: host("controller", "10.0.0.10"),
            facts: cf,
            peers: vec![],
            workers: names
                .iter()
                .zip(workers)
                .enumerate()
                .map(|(i, (name, seen))| (host(name, &format!("10.0.0.1{}", i + 1)), seen))
                .collect(),
        },
    )
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
            peers: vec![],
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
    let words = words(&plan);
    assert!(words.contains(&"join worker-1 → controller".to_string()));
    assert!(words.contains(&"repair worker-2: unreachable (refused)".to_string()));
    assert!(!words.iter().any(|w| w.starts_with("join worker-2")));
}

#[test]
fn a_new_channel_refreshes_the_controller_and_upgrades_workers_in_the_cluster() {
    let mut s = settings();
    s.channel = "1.33/stable".into();
    let plan = plan_with(
        &s,
        "1.32/stable",
        &[
            ("controller", node(true)),
            ("worker-1", node(true)),
            ("worker-2", node(false)),
        ],
        vec![
            Seen::Probed(facts(Some("1.32/stable"))),
            Seen::Probed(facts(Some("1.33/stable"))),
            Seen::Probed(facts(Some("1.32/stable"))),
        ],
    );
    let from = || "1.32/stable".to_string();
    assert_eq!(plan.controller.snap, Snap::Refresh { from: from() });
    assert!(plan.controller.addons.is_empty() && plan.controller.hosts_entries.is_empty());
    assert_eq!(plan.controller.add_to_group, None);
    let w = &plan.workers;
    assert_eq!(w[0].snap, WorkerSnap::Known(Snap::Upgrade { from: from() }));
    assert!(!w[0].join);
    assert_eq!(w[1].snap, WorkerSnap::Known(Snap::Current));
    assert!(w[1].join && w[1].on_host(), "in the list but not Ready");
    assert_eq!(w[2].snap, WorkerSnap::Known(Snap::Refresh { from: from() }));
    assert!(w[2].join);
}

/// The worker's own word decides over a node list that still shows a dead kubelet's node
/// Ready (for the grace period): a wiped host installs and joins, a host outside any cluster
/// joins, a stopped kubelite is started (no join: its node turns Ready by itself).
#[test]
fn a_worker_whose_node_still_reads_ready_is_repaired_by_what_it_says() {
    let s = settings();
    let standalone = HostFacts {
        clustered: false,
        ..facts(Some(&s.channel))
    };
    let stopped = HostFacts {
        kubelite_stopped: true,
        ..facts(Some(&s.channel))
    };
    let plan = plan_with(
        &s,
        &s.channel,
        &[
            ("controller", node(true)),
            ("worker-1", node(true)),
            ("worker-2", node(true)),
            ("worker-3", node(false)),
            ("worker-4", node(true)),
        ],
        vec![
            Seen::Probed(facts(None)),
            Seen::Probed(standalone),
            Seen::Probed(stopped),
            Seen::Probed(facts(Some(&s.channel))),
        ],
    );
    assert_eq!(
        words(&plan),
        [
            "install worker-1: microk8s 1.32/stable",
            "join worker-1 → controller",
            "join worker-2 → controller",
            "start worker-3: microk8s.daemon-kubelite (stopped: its kubelet renews no Lease)",
        ]
    );
    let w = &plan.workers;
    assert!(w[2].start && !w[2].join && w[2].on_host());
    assert!(!w[3].on_host(), "running, Ready: nothing to do");
}

#[test]
fn a_converged_cluster_has_nothing_to_do() {
    let s = settings();
    let plan = plan_with(
        &s,
        &s.channel,
        &[
            ("controller", node(true)),
            ("worker-1", node(true)),
            ("worker-2", node(true)),
        ],
        vec![Seen::Probed(facts(Some(&s.channel))), Seen::Vouched],
    );
    assert!(plan.changes().is_empty());
    assert!(
        plan.workers
            .iter()
            .all(|w| !w.on_host() && w.mark.is_none() && w.in_cluster)
    );
}

/// A worker a stopped run left cordoned (cordoned, marked) is uncordoned by the controller,
/// unless this run upgrades it (which uncordons it anyway) or joins it again; a mark left on a
/// worker uncordoned by hand since is removed; one cordoned by someone else is not Jeeves'.
#[test]
fn a_worker_left_cordoned_by_a_stopped_run_is_uncordoned() {
    let s = settings();
    let left = Node {
        cordoned: true,
        marked: true,
        ..node(true)
    };
    let stale = Node {
        marked: true,
        ..node(true)
    };
    let plan = plan_with(
        &s,
        &s.channel,
        &[
            ("controller", node(true)),
            ("worker-1", left.clone()),
            ("worker-2", left.clone()),
            ("worker-3", stale),
            (
                "worker-4",
                Node {
                    ready: false,
                    ..left
                },
            ),
            (
                "worker-5",
                Node {
                    cordoned: true,
                    ..node(true)
                },
            ),
        ],
        vec![
            Seen::Vouched,
            Seen::Probed(facts(Some("1.31/stable"))),
            Seen::Vouched,
            Seen::Probed(facts(Some(&s.channel))),
            Seen::Vouched,
        ],
    );
    let w = &plan.workers;
    assert_eq!(w[0].mark, Some(MarkRepair::Uncordon));
    assert!(!w[0].on_host(), "the controller's work only");
    assert_eq!(w[1].mark, None, "its upgrade uncordons it");
    assert_eq!(w[2].mark, Some(MarkRepair::Unmark));
    assert_eq!(w[3].mark, None, "it joins again first");
    assert_eq!(w[4].mark, None, "someone else's cordon");
    let words = words(&plan);
    assert_eq!(
        words,
        [
            "uncordon worker-1 (cordoned by a run that stopped before uncordoning it)",
            "refresh worker-2: microk8s 1.31/stable → 1.32/stable (cordon, drain, refresh, uncordon; one worker at a time)",
            "unmark worker-3 (uncordoned by hand since a run left it cordoned; a later cordon is not Jeeves')",
            "join worker-4 → controller",
        ]
    );
}

/// A worker someone else cordoned is upgraded without being uncordoned: drained, refreshed,
/// left cordoned as found.
#[test]
fn an_upgrade_leaves_a_worker_cordoned_by_someone_else_cordoned() {
    let mut s = settings();
    s.channel = "1.33/stable".into();
    let theirs = Node {
        cordoned: true,
        ..node(true)
    };
    let plan = plan_with(
        &s,
        "1.33/stable",
        &[
            ("controller", node(true)),
            ("worker-1", theirs),
            ("worker-2", node(true)),
        ],
        vec![
            Seen::Probed(facts(Some("1.32/stable"))),
            Seen::Probed(facts(Some("1.32/stable"))),
        ],
    );
    let w = &plan.workers;
    assert!(w[0].keep_cordoned && w[0].mark.is_none());
    assert!(!w[1].keep_cordoned);
    let words = words(&plan);
    assert_eq!(
        words,
        [
            "refresh worker-1: microk8s 1.32/stable → 1.33/stable (drain, refresh, left cordoned as found; one worker at a time)",
            "refresh worker-2: microk8s 1.32/stable → 1.33/stable (cordon, drain, refresh, uncordon; one worker at a time)"
        ]
    );
}

/// A worker unreachable when the plan was made (planned to join, its node not Ready) and found
/// with kubelite stopped when apply probes it again is started, not joined again.
#[test]
fn a_worker_probed_again_in_apply_is_decided_by_what_it_says() {
    let stopped = HostFacts {
        kubelite_stopped: true,
        ..facts(Some("1.32/stable"))
    };
    assert_eq!(join_or_start(&stopped, false), (false, true));
    assert_eq!(join_or_start(&facts(None), true), (true, false), "wiped");
    assert_eq!(
        join_or_start(&facts(Some("1.32/stable")), false),
        (true, false),
        "running, node not Ready"
    );
    assert_eq!(
        join_or_start(&facts(Some("1.32/stable")), true),
        (false, false)
    );
}

/// Three controllers: controller-2 fresh (install, join), controller-3 a member already (nothing),
/// controller-4 unreachable (named, left alone), controller-5 installed but not a member (join).
#[test]
fn peers_outside_the_datastore_join_as_full_nodes_and_members_are_left_alone() {
    let s = settings();
    let mut cf = facts(Some("1.32/stable"));
    cf.addons = s.addons.iter().cloned().collect();
    cf.in_group = true;
    cf.datastore = [("10.0.0.10", "voter"), ("10.0.0.103", "voter")]
        .iter()
        .map(|(a, r)| (a.to_string(), r.to_string()))
        .collect();
    cf.resolves = [
        "controller-2",
        "controller-3",
        "controller-4",
        "controller-5",
    ]
    .iter()
    .map(|n| n.to_string())
    .collect();
    let member = || {
        let mut f = facts(Some("1.32/stable"));
        f.in_group = true;
        f
    };
    let plan = Plan::new(
        &s,
        "ubuntu",
        Probe {
            controller: host("controller", "10.0.0.10"),
            facts: cf,
            peers: vec![
                (
                    host("controller-2", "10.0.0.102"),
                    Seen::Probed(facts(None)),
                ),
                (host("controller-3", "10.0.0.103"), Seen::Probed(member())),
                (
                    host("controller-4", "10.0.0.104"),
                    Seen::Unreachable("refused".into()),
                ),
                (host("controller-5", "10.0.0.105"), Seen::Probed(member())),
            ],
            workers: vec![],
        },
    );
    assert_eq!(
        words(&plan),
        [
            "install controller-2: microk8s 1.32/stable",
            "add controller-2: user ubuntu to group microk8s",
            "join controller-2 → controller (control plane)",
            "repair controller-4: unreachable (refused)",
            "join controller-5 → controller (control plane)",
        ]
    );
    assert!(plan.needs_join());
    assert!(!plan.peers[1].join && !plan.peers[2].join);
}
