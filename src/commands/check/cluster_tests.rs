//! The cluster checks' judgement on kubectl's and helm's JSON (shapes as in `kubectl get -o
//! json`: a `List` of `items`).

use serde_json::json;

use super::cluster::{node_findings, release_finding};
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

/// The node with Jeeves' mark (`kube::CORDONED`).
fn marked(mut node: serde_json::Value) -> serde_json::Value {
    node["metadata"]["annotations"] = json!({crate::kube::CORDONED: "upgrade"});
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
