//! The cluster checks' judgement on kubectl's and helm's JSON (shapes as in `kubectl get -o
//! json`: a `List` of `items`).

use serde_json::json;

use super::cluster::{node_findings, pod_findings, release_finding};
use crate::report::CheckStatus::{self, Fail, Ok, Warn};

fn statuses(f: &[super::Finding]) -> Vec<(String, CheckStatus)> {
    f.iter().map(|f| (f.check.clone(), f.status)).collect()
}

fn node(
    name: &str,
    version: &str,
    conditions: &[(&str, &str)],
    cordoned: bool,
) -> serde_json::Value {
    let conditions: Vec<_> = conditions
        .iter()
        .map(|(t, s)| json!({"type": t, "status": s}))
        .collect();
    json!({"metadata": {"name": name}, "spec": {"unschedulable": cordoned},
           "status": {"conditions": conditions, "nodeInfo": {"kubeletVersion": version}}})
}

/// The node with Jeeves' mark (`bootstrap::CORDONED`).
fn marked(mut node: serde_json::Value) -> serde_json::Value {
    node["metadata"]["annotations"] = json!({crate::stages::bootstrap::CORDONED: "upgrade"});
    node
}

#[test]
fn nodes_ready_without_pressure_on_one_version() {
    let ok = [
        ("MemoryPressure", "False"),
        ("DiskPressure", "False"),
        ("Ready", "True"),
    ];
    let nodes = json!({"kind": "List", "items": [
        node("controller", "v1.32.0", &ok, false),
        node("worker-1", "v1.32.0", &[("DiskPressure", "True"), ("Ready", "True")], false),
        node("worker-2", "v1.31.4", &[("Ready", "Unknown")], false),
        node("worker-3", "v1.32.0", &ok, true),
        marked(node("worker-5", "v1.32.0", &ok, true)),
    ]});
    let hosts = [
        "controller",
        "worker-1",
        "worker-2",
        "worker-3",
        "worker-4",
        "worker-5",
    ]
    .map(String::from);
    let f = node_findings(&nodes, &hosts);
    assert_eq!(
        statuses(&f),
        [
            ("node/controller".into(), Ok),
            ("node/worker-1".into(), Fail),
            ("node/worker-2".into(), Fail),
            ("node/worker-3".into(), Warn),
            ("node/worker-5".into(), Warn),
            ("node/worker-4".into(), Fail),
            ("nodes/versions".into(), Fail),
        ]
    );
    assert_eq!(f[1].message, "DiskPressure");
    assert_eq!(f[2].message, "not Ready (Ready=Unknown)");
    // Cordoned by someone else: theirs to undo. Left cordoned by a stopped run: bootstrap's.
    assert!(f[3].message.ends_with("not by Jeeves"), "{}", f[3].message);
    let repair = |i: usize| f[i].repair.clone().unwrap_or_default();
    assert!(repair(3).contains("uncordon worker-3"), "{}", repair(3));
    assert!(
        repair(4).contains("jeeves up --only bootstrap"),
        "{}",
        repair(4)
    );
    assert_eq!(
        f[6].message,
        "v1.31.4 on worker-2; v1.32.0 on controller, worker-1, worker-3, worker-5"
    );
}

fn rs(ns: &str, name: &str, deployment: &str, revision: &str) -> serde_json::Value {
    json!({"metadata": {"namespace": ns, "name": name,
        "annotations": {"deployment.kubernetes.io/revision": revision},
        "ownerReferences": [{"kind": "Deployment", "name": deployment}]}})
}

fn pod(
    ns: &str,
    name: &str,
    rs: &str,
    phase: &str,
    state: serde_json::Value,
    restarts: u64,
) -> serde_json::Value {
    json!({"metadata": {"namespace": ns, "name": name,
        "ownerReferences": [{"kind": "ReplicaSet", "name": rs}]},
        "status": {"phase": phase, "containerStatuses": [
            {"name": "app", "restartCount": restarts, "state": state}]}})
}

#[test]
fn pods_running_with_few_restarts_from_the_current_replicaset() {
    let running = json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}});
    let replicasets = json!({"items": [
        rs("app", "web-5d8f", "web", "1"),
        rs("app", "web-7c9a", "web", "2"),
        rs("edge", "traefik-6b4c", "traefik", "1"),
    ]});
    let pods = json!({"items": [
        pod("app", "web-7c9a-aaaaa", "web-7c9a", "Running", running.clone(), 0),
        pod("app", "web-5d8f-bbbbb", "web-5d8f", "Running", running.clone(), 0),
        pod("app", "web-7c9a-ccccc", "web-7c9a", "Running",
            json!({"waiting": {"reason": "CrashLoopBackOff"}}), 9),
        pod("edge", "traefik-6b4c-ddddd", "traefik-6b4c", "Running", running.clone(), 5),
        json!({"metadata": {"namespace": "jobs", "name": "once"}, "status": {"phase": "Succeeded"}}),
        json!({"metadata": {"namespace": "jobs", "name": "waits"}, "status": {"phase": "Pending"}}),
    ]});
    let f = pod_findings(&pods, &replicasets, 5);
    assert_eq!(
        statuses(&f),
        [
            ("pods/app".into(), Fail),
            ("pods/edge".into(), Ok),
            ("pods/jobs".into(), Fail)
        ]
    );
    let app = &f[0].message;
    assert!(
        app.contains("web-7c9a-ccccc Running: app CrashLoopBackOff"),
        "{app}"
    );
    assert!(
        app.contains("web-7c9a-ccccc container app restarted 9 times (check.max_restarts 5)"),
        "{app}"
    );
    assert!(
        app.contains(
            "web-5d8f-bbbbb is from ReplicaSet web-5d8f, not deployment web's current web-7c9a"
        ),
        "{app}"
    );
    assert!(!app.contains("web-7c9a-aaaaa"), "{app}");
    assert_eq!(f[2].message, "waits Pending");
}

#[test]
fn the_release_must_be_deployed() {
    let deployed = r#"[{"revision": 3, "status": "deployed", "chart": "rocketchat-7.0.2"}]"#;
    assert_eq!(release_finding("rc", true, deployed, "").status, Ok);
    let pending = r#"[{"revision": 4, "status": "pending-upgrade", "chart": "rocketchat-7.0.2"}]"#;
    let f = release_finding("rc", true, pending, "");
    assert_eq!(
        (f.status, f.message.as_str()),
        (Fail, "revision 4 is pending-upgrade ()")
    );
    let f = release_finding("rc", false, "", "Error: release: not found\n");
    assert_eq!(
        (f.status, f.message.as_str()),
        (Fail, "no release: Error: release: not found")
    );
}
