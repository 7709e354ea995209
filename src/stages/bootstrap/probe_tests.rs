//! Unit tests of `probe.rs` (a child module of it, in a file of its own).

use super::*;

/// The probe script on this machine's `sh`, with `snap` and `microk8s` answering as given.
fn probe_with(microk8s: &str) -> std::process::Output {
    probe_as("controller", SNAP_LIST, microk8s)
}

const SNAP_LIST: &str = "echo 'Name Version Rev Tracking Publisher Notes'; echo 'microk8s v1.32.3 1 1.32/stable canonical classic'";

fn probe_as(role: &str, snap: &str, microk8s: &str) -> std::process::Output {
    let bin = tempfile::tempdir().unwrap();
    let tool = |name: &str, body: &str| {
        let p = bin.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    tool("snap", snap);
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
        .args(["-c", PROBE, "probe", user.trim(), "1", role])
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

/// A worker's probe says whether it is in a cluster and whether its kubelite service runs
/// (snapd's `snap services`, Current column).
#[test]
fn a_workers_probe_reads_its_kubelite_service() {
    let worker = |current: &str| {
        let snap = format!(
            "case $1 in list) {SNAP_LIST};; services) echo 'Service                   Startup  Current   Notes'; echo 'microk8s.daemon-kubelite  enabled  {current}  -';; esac"
        );
        let out = probe_as(
            "worker",
            &snap,
            "echo 'This MicroK8s deployment is acting as a node in a cluster.'",
        );
        assert!(out.status.success(), "{out:?}");
        parse_facts(&Sections::parse(&String::from_utf8_lossy(&out.stdout), SECTIONS).unwrap())
    };
    let stopped = worker("inactive");
    assert!(stopped.clustered && stopped.kubelite_stopped);
    let running = worker("active");
    assert!(running.clustered && !running.kubelite_stopped);
    // snapd that cannot answer fails the probe rather than have the plan guess.
    let out = probe_as(
        "worker",
        &format!(
            "case $1 in list) {SNAP_LIST};; *) echo 'error: cannot communicate with server' >&2; exit 1;; esac"
        ),
        "echo 'This MicroK8s deployment is acting as a node in a cluster.'",
    );
    assert!(!out.status.success(), "{out:?}");
}

/// The node list is read beside status; when status had to wait (the API restarting), the
/// list read meanwhile may be stale and is read again after it.
#[test]
fn a_node_list_read_while_status_waited_is_read_again() {
    // Each `kubectl get` answers with a node named after how many reads came before it.
    let waited = probe_with(
        r#"case "$1 $2" in
'status --wait-ready') sleep 2; echo 'microk8s:'; echo '  running: True';;
'kubectl get') n=$(cat "$0.reads" 2>/dev/null || echo 0); echo $((n + 1)) >"$0.reads"
  echo "{\"items\": [{\"metadata\": {\"name\": \"read-$n\"}}]}";;
esac"#,
    );
    let text = String::from_utf8_lossy(&waited.stdout);
    assert!(waited.status.success(), "{waited:?}");
    let f = parse_facts(&Sections::parse(&text, SECTIONS).unwrap());
    assert_eq!(
        f.nodes.keys().collect::<Vec<_>>(),
        ["read-1"],
        "the list read after status: {text}"
    );
}

/// The cluster vouches for a worker only when the controller is on the configured channel
/// and the worker is a Ready node on the controller's kubelet version whose Lease its kubelet
/// renewed within half the Lease's duration, by the controller's clock.
#[test]
fn the_cluster_vouches_for_a_ready_worker_on_the_controllers_version() {
    let host = |name: &str| Host {
        id: format!("i-{name}"),
        hostname: name.into(),
        public_ip: "10.0.0.1".into(),
        private_ip: "10.0.0.1".into(),
    };
    let now = 1_800_000_000_000;
    let node = |ready, kubelet: &str| Node {
        ready,
        kubelet: kubelet.into(),
        cordoned: false,
        marked: false,
        lease: Some(Lease {
            renewed: now - 10_000,
            seconds: 40,
        }),
    };
    let facts = HostFacts {
        channel: Some("1.32/stable".into()),
        clock: Some(now),
        nodes: BTreeMap::from([
            ("controller".into(), node(true, "v1.32.3")),
            ("same".into(), node(true, "v1.32.3")),
            ("not-ready".into(), node(false, "v1.32.3")),
            ("older".into(), node(true, "v1.31.9")),
            ("unknown".into(), node(true, "")),
        ]),
        ..HostFacts::default()
    };
    let c = host("controller");
    let vouches =
        |facts: &HostFacts, w: &str, want: &str| cluster_vouches(facts, &c, &host(w), want);
    assert!(vouches(&facts, "same", "1.32/stable"));
    for w in ["not-ready", "older", "unknown", "missing"] {
        assert!(!vouches(&facts, w, "1.32/stable"), "{w}");
    }
    assert!(
        !vouches(&facts, "same", "1.33/stable"),
        "the controller is not on it"
    );
    let lease = |facts: &HostFacts, renewed_ago: i64| {
        let mut f = facts.clone();
        f.nodes.get_mut("same").unwrap().lease = Some(Lease {
            renewed: now - renewed_ago,
            seconds: 40,
        });
        f
    };
    assert!(vouches(&lease(&facts, 20_000), "same", "1.32/stable"));
    assert!(
        !vouches(&lease(&facts, 20_001), "same", "1.32/stable"),
        "two renewals missed: the kubelet may be dead though the node still reads Ready"
    );
    let mut no_lease = facts.clone();
    no_lease.nodes.get_mut("same").unwrap().lease = None;
    assert!(!vouches(&no_lease, "same", "1.32/stable"), "no Lease");
    let mut no_clock = facts.clone();
    no_clock.clock = None;
    assert!(!vouches(&no_clock, "same", "1.32/stable"), "no clock");
    let mut blank = facts.clone();
    blank.nodes.get_mut("controller").unwrap().kubelet.clear();
    blank.nodes.get_mut("same").unwrap().kubelet.clear();
    assert!(
        !vouches(&blank, "same", "1.32/stable"),
        "no version to compare"
    );
}

/// `get nodes,leases` output: each Node with the Lease of the same name (renewTime read to the
/// millisecond), Leases themselves not taken for nodes.
#[test]
fn nodes_are_read_with_their_leases() {
    let list = serde_json::json!({"kind": "List", "items": [
        {"kind": "Node", "metadata": {"name": "a"}, "spec": {},
         "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}},
        {"kind": "Node", "metadata": {"name": "b"}, "spec": {},
         "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {"kind": "Lease", "metadata": {"name": "a", "namespace": "kube-node-lease"},
         "spec": {"holderIdentity": "a", "leaseDurationSeconds": 40,
                  "renewTime": "2027-01-15T08:00:00.250000Z"}},
    ]})
    .to_string();
    let nodes = parse_nodes(&list);
    assert_eq!(nodes.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert!(!nodes["a"].ready && nodes["b"].ready);
    assert_eq!(
        nodes["a"].lease,
        Some(Lease {
            renewed: 1_800_000_000_250,
            seconds: 40
        })
    );
    assert_eq!(nodes["b"].lease, None);
}

/// A node is cordoned by its `spec.unschedulable`, marked by Jeeves' annotation alone.
#[test]
fn a_nodes_cordon_and_jeeves_mark_are_read_apart() {
    let node = |unschedulable: bool, annotations: serde_json::Value| {
        serde_json::json!({"metadata": {"name": "n", "annotations": annotations},
            "spec": {"unschedulable": unschedulable}})
    };
    let mark = serde_json::json!({crate::kube::CORDONED: "upgrade", "other": "x"});
    let other = serde_json::json!({"node.alpha.kubernetes.io/ttl": "0"});
    for (n, cordoned, marked) in [
        (node(true, mark.clone()), true, true),
        (node(false, mark), false, true),
        (node(true, other), true, false),
        (
            serde_json::json!({"metadata": {"name": "n"}, "spec": {}}),
            false,
            false,
        ),
    ] {
        let list = serde_json::json!({"items": [n]}).to_string();
        let n = &parse_nodes(&list)["n"];
        assert_eq!((n.cordoned, n.marked), (cordoned, marked), "{list}");
    }
}

#[test]
fn probe_output_becomes_facts() {
    let text = "@snap\n1.32/stable\n@groups\nubuntu adm microk8s\n@status\nmicrok8s:\n  running: true\naddons:\n- name: dns\n  status: enabled\n- name: rbac\n  repository: core\n  status: disabled\n@nodes\n{\"items\": [{\"metadata\": {\"name\": \"controller\"}, \"status\": {\"conditions\": [{\"type\": \"Ready\", \"status\": \"True\"}]}}, {\"metadata\": {\"name\": \"worker-1\"}, \"status\": {\"conditions\": [{\"type\": \"Ready\", \"status\": \"False\"}]}}]}\n@hosts\nworker-1\n@end\n";
    let f = parse_facts(&Sections::parse(text, SECTIONS).unwrap());
    assert_eq!(f.channel.as_deref(), Some("1.32/stable"));
    assert!(f.in_group);
    assert_eq!(f.addons, BTreeSet::from(["dns".to_string()]));
    assert_eq!(f.nodes.get("worker-1").map(|n| n.ready), Some(false));
    assert_eq!(f.nodes.get("controller").map(|n| n.ready), Some(true));
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

#[test]
fn a_channel_is_recorded_only_as_probed_on_the_configured_one() {
    let host = |id: &str| Host {
        id: id.into(),
        hostname: format!("name-{id}"),
        public_ip: "10.0.0.1".into(),
        private_ip: "10.0.0.1".into(),
    };
    let on = |channel: Option<&str>| {
        Seen::Probed(HostFacts {
            channel: channel.map(str::to_string),
            ..HostFacts::default()
        })
    };
    let want = "1.32/stable";
    let mut records: BTreeMap<String, String> =
        ["i-gone", "i-vouched", "i-moved", "i-none", "i-down"]
            .iter()
            .map(|id| (id.to_string(), want.to_string()))
            .collect();
    let probe = Probe {
        controller: host("i-controller"),
        facts: HostFacts::default(),
        peers: vec![],
        workers: vec![
            (host("i-new"), on(Some(want))),
            (host("i-vouched"), Seen::Vouched),
            (host("i-moved"), on(Some("1.32/candidate"))),
            (host("i-none"), on(None)),
            (host("i-down"), Seen::Unreachable("refused".into())),
        ],
    };
    record_channels(&mut records, &probe, want);
    assert_eq!(
        records.into_iter().collect::<Vec<_>>(),
        [
            ("i-new".to_string(), want.to_string()),
            ("i-vouched".to_string(), want.to_string())
        ],
        "the others: not in the inventory, found elsewhere, or not probed"
    );
}

#[test]
fn the_datastore_is_read_from_status_yaml() {
    // canonical/microk8s 1.32 scripts/wrappers/status.py print_yaml.
    let yaml = "microk8s:\n  running: True\nhigh-availability:\n  enabled: True\n  nodes:\n    - address: 10.77.0.10:19001\n      role: voter\n    - address: 10.77.0.102:19001\n      role: voter\n    - address: [fd00::3]:19001\n      role: spare\naddons:\n  - name: dns\n    repository: core\n    description: CoreDNS\n    version: 1.0\n    status: enabled\n";
    let nodes = super::parse_datastore_yaml(yaml);
    assert_eq!(
        nodes.into_iter().collect::<Vec<_>>(),
        [
            ("10.77.0.10".to_string(), "voter".to_string()),
            ("10.77.0.102".to_string(), "voter".to_string()),
            ("fd00::3".to_string(), "spare".to_string()),
        ]
    );
}
