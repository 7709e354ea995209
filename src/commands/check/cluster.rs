//! The cluster through the tunnel, with kubectl and helm as the deploy stage runs them: nodes
//! Ready without pressure and on one version, pods Running or Succeeded with few restarts and
//! none left from an older ReplicaSet, the Helm release `deployed`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use serde_json::Value;

use super::Finding;
use crate::config::Settings;
use crate::fleet::Fleet;
use crate::fleet::api_tunnel::{self, ApiTunnelOptions};
use crate::report::Reporter;
use crate::stages::bootstrap::CORDONED;
use crate::stages::deploy::tools::{Tools, succeeded};
use crate::state::Inventory;

const REPAIR_DEPLOY: &str = "jeeves up --only deploy";

pub(super) async fn check(
    settings: &Settings,
    fleet: &Fleet,
    inv: &Inventory,
    reporter: &Reporter,
) -> Vec<Finding> {
    match gather(settings, fleet, inv, reporter).await {
        Ok(found) => found,
        Err(e) => vec![Finding::fail(
            "cluster/api",
            format!("cannot read the cluster through the tunnel: {e:#}"),
            "jeeves up --only bootstrap (MicroK8s on the controller), then jeeves check again",
        )],
    }
}

async fn gather(
    settings: &Settings,
    fleet: &Fleet,
    inv: &Inventory,
    reporter: &Reporter,
) -> Result<Vec<Finding>> {
    // A private kubeconfig for this check only, removed when it ends; the tunnel stays with
    // the fleet until the command drops it.
    let kubeconfig = tempfile::Builder::new()
        .prefix("check-kubeconfig.")
        .tempfile_in(&settings.state_dir)?;
    // A port of its own, so that a `jeeves tunnel` left open (or a run) is no obstacle.
    let mut opts = ApiTunnelOptions::from_settings(settings)?;
    opts.local_port = std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port();
    let opened = api_tunnel::open(
        fleet,
        inv.controller()?,
        opts,
        kubeconfig.path().with_extension("probe"),
        crate::stages::tunnel::report_to(reporter),
    )
    .await?;
    fleet.hold_tunnel(opened.tunnel);
    std::fs::write(kubeconfig.path(), &opened.kubeconfig)?;
    let tools = Tools::new(settings, kubeconfig.path().to_path_buf())?;
    let say = |s: crate::process::Said<'_>| {
        if let crate::process::Said::Stderr(l) | crate::process::Said::Notice(l) = s {
            reporter.log(None, crate::report::Level::Output, l);
        }
    };
    let get = |what: &'static [&'static str]| {
        let tools = &tools;
        async move {
            let out = succeeded(
                tools.kubectl_saying(what, say).await?,
                &format!("kubectl {}", what.join(" ")),
            )?;
            serde_json::from_str::<Value>(&out.stdout)
                .with_context(|| format!("`kubectl {}` printed no JSON", what.join(" ")))
        }
    };
    let nodes = get(&["get", "nodes", "-o", "json"]).await?;
    let pods = get(&["get", "pods", "-A", "-o", "json"]).await?;
    let replicasets = get(&["get", "replicasets", "-A", "-o", "json"]).await?;
    let history = tools
        .helm_saying(
            &[
                "history",
                &settings.helm.release,
                "-n",
                &settings.helm.namespace,
                "--max",
                "1",
                "-o",
                "json",
            ],
            say,
        )
        .await?;
    let hosts: Vec<String> = inv
        .controller
        .iter()
        .chain(&inv.workers)
        .map(|h| h.hostname.clone())
        .collect();
    let mut out = node_findings(&nodes, &hosts);
    out.extend(pod_findings(
        &pods,
        &replicasets,
        settings.check.max_restarts,
    ));
    out.push(release_finding(
        &settings.helm.release,
        history.status.success(),
        &history.stdout,
        &history.stderr,
    ));
    Ok(out)
}

fn items(list: &Value) -> &[Value] {
    list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn condition<'a>(node: &'a Value, kind: &str) -> Option<&'a str> {
    condition_field(node, kind, "status")
}

fn condition_field<'a>(node: &'a Value, kind: &str, field: &str) -> Option<&'a str> {
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c[field].as_str())
}

/// A finding per node (Ready, no disk or memory pressure, schedulable), one for each inventory
/// host missing from the cluster, and one for the kubelet versions.
pub(super) fn node_findings(nodes: &Value, hosts: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for n in items(nodes) {
        let name = n["metadata"]["name"].as_str().unwrap_or("?").to_string();
        let version = n["status"]["nodeInfo"]["kubeletVersion"]
            .as_str()
            .unwrap_or("?");
        versions
            .entry(version.to_string())
            .or_default()
            .push(name.clone());
        seen.insert(name.clone());
        let mut problems = Vec::new();
        let ready = condition(n, "Ready");
        if ready != Some("True") {
            // Unknown: the node lifecycle controller heard nothing from its kubelet for the
            // grace period (its message says so); False: the kubelet says why.
            let why = condition_field(n, "Ready", "message").unwrap_or_default();
            problems.push(format!(
                "not Ready (Ready={}{}{why})",
                ready.unwrap_or("missing"),
                if why.is_empty() { "" } else { ": " },
            ));
        }
        for p in ["DiskPressure", "MemoryPressure"] {
            if condition(n, p) == Some("True") {
                problems.push(p.to_string());
            }
        }
        let check = format!("node/{name}");
        out.push(if ready == Some("Unknown") {
            Finding::fail(
                check,
                problems.join(", "),
                format!("jeeves up --only bootstrap (logs in to {name}: installs and joins MicroK8s where it is gone, starts a stopped kubelite; a host it cannot reach is named: start or replace that instance)"),
            )
        } else if !problems.is_empty() {
            Finding::fail(
                check,
                problems.join(", "),
                format!("look at the node (`microk8s inspect` on {name}; disk pressure: free its disk), then jeeves up --only bootstrap"),
            )
        } else if n["spec"]["unschedulable"] == true
            && n["metadata"]["annotations"].get(CORDONED).is_some()
        {
            Finding::warn(
                check,
                "Ready but cordoned (SchedulingDisabled) by a Jeeves run that stopped before uncordoning it",
                "jeeves up --only bootstrap (uncordons it)",
            )
        } else if n["spec"]["unschedulable"] == true {
            // Not Jeeves' doing: someone may be working on the node, and bootstrap leaves it so.
            Finding::warn(
                check,
                "Ready but cordoned (SchedulingDisabled), not by Jeeves",
                format!("when whoever cordoned it is done: microk8s kubectl uncordon {name} (on the controller)"),
            )
        } else {
            Finding::ok(check, format!("Ready, kubelet {version}"))
        });
    }
    for h in hosts.iter().filter(|h| !seen.contains(*h)) {
        out.push(Finding::fail(
            format!("node/{h}"),
            "in the inventory but not in the cluster",
            "jeeves up --only bootstrap (joins missing workers)",
        ));
    }
    out.push(match versions.len() {
        0 => Finding::fail(
            "nodes/versions",
            "the cluster lists no nodes",
            "jeeves up --only bootstrap",
        ),
        1 => Finding::ok(
            "nodes/versions",
            format!("every node on {}", versions.keys().next().expect("one")),
        ),
        _ => Finding::fail(
            "nodes/versions",
            versions
                .iter()
                .map(|(v, n)| format!("{v} on {}", n.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
            "jeeves up --only bootstrap (refreshes every node to microk8s.channel)",
        ),
    });
    out
}

/// Why a pod is not healthy, or `None`: Succeeded, or Running with every container running.
fn pod_problem(pod: &Value) -> Option<String> {
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    if phase == "Succeeded" {
        return None;
    }
    let statuses = pod["status"]["containerStatuses"].as_array();
    let waiting: Vec<String> = statuses
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let state = &c["state"];
            let reason = state["waiting"]["reason"]
                .as_str()
                .or_else(|| state["terminated"]["reason"].as_str())?;
            Some(format!("{} {reason}", c["name"].as_str().unwrap_or("?")))
        })
        .collect();
    match (phase, waiting.is_empty()) {
        ("Running", true) => None,
        (_, true) => Some(phase.to_string()),
        (_, false) => Some(format!("{phase}: {}", waiting.join(", "))),
    }
}

/// The ReplicaSet that owns a pod, when one does.
fn owner_replicaset(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["kind"] == "ReplicaSet")
        .and_then(|o| o["name"].as_str())
}

/// The Deployment that owns a ReplicaSet.
fn deployment_of(rs: &Value) -> Option<&str> {
    rs["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .and_then(|o| o["name"].as_str())
}

/// Each Deployment's current ReplicaSet (namespace, deployment) → name: the one with the
/// highest `deployment.kubernetes.io/revision`, as `kubectl rollout` reads it.
fn current_replicasets(replicasets: &Value) -> BTreeMap<(String, String), (u64, String)> {
    let mut current: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
    for rs in items(replicasets) {
        let m = &rs["metadata"];
        let Some(deployment) = deployment_of(rs) else {
            continue;
        };
        let revision = m["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let key = (
            m["namespace"].as_str().unwrap_or_default().to_string(),
            deployment.to_string(),
        );
        let name = m["name"].as_str().unwrap_or_default().to_string();
        if current.get(&key).is_none_or(|(r, _)| revision > *r) {
            current.insert(key, (revision, name));
        }
    }
    current
}

/// A finding per namespace: pods not Running/Succeeded, restarts over `max_restarts`, pods of
/// a Deployment's older ReplicaSet (left over from an upgrade).
pub(super) fn pod_findings(pods: &Value, replicasets: &Value, max_restarts: u32) -> Vec<Finding> {
    let current = current_replicasets(replicasets);
    // ReplicaSet (namespace, name) → its Deployment.
    let rs_deployment: BTreeMap<(String, String), String> = items(replicasets)
        .iter()
        .filter_map(|rs| {
            let m = &rs["metadata"];
            let deployment = deployment_of(rs)?;
            Some((
                (
                    m["namespace"].as_str()?.to_string(),
                    m["name"].as_str()?.to_string(),
                ),
                deployment.to_string(),
            ))
        })
        .collect();
    let mut by_ns: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for pod in items(pods) {
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = pod["metadata"]["name"].as_str().unwrap_or("?");
        let entry = by_ns.entry(ns.clone()).or_default();
        entry.0 += 1;
        if let Some(p) = pod_problem(pod) {
            entry.1.push(format!("{name} {p}"));
        }
        for c in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let restarts = c["restartCount"].as_u64().unwrap_or(0);
            if restarts > u64::from(max_restarts) {
                entry.1.push(format!(
                    "{name} container {} restarted {restarts} times (check.max_restarts {max_restarts})",
                    c["name"].as_str().unwrap_or("?")
                ));
            }
        }
        if let Some(rs) = owner_replicaset(pod)
            && let Some(deployment) = rs_deployment.get(&(ns.clone(), rs.to_string()))
            && let Some((_, newest)) = current.get(&(ns.clone(), deployment.clone()))
            && newest != rs
        {
            entry.1.push(format!(
                "{name} is from ReplicaSet {rs}, not deployment {deployment}'s current {newest} (stale after an upgrade)"
            ));
        }
    }
    by_ns
        .into_iter()
        .map(|(ns, (count, problems))| {
            let check = format!("pods/{ns}");
            if problems.is_empty() {
                Finding::ok(check, format!("{count} pod(s) Running or Succeeded"))
            } else {
                Finding::fail(
                    check,
                    problems.join("; "),
                    format!(
                        "kubectl -n {ns} describe pod POD and kubectl -n {ns} logs POD --previous (with `jeeves tunnel`); once the cause is fixed, {REPAIR_DEPLOY}"
                    ),
                )
            }
        })
        .collect()
}

/// `helm history REL --max 1 -o json`: the newest revision must be `deployed`.
pub(super) fn release_finding(release: &str, ok: bool, stdout: &str, stderr: &str) -> Finding {
    let check = format!("helm/{release}");
    if !ok {
        let why = stderr
            .lines()
            .last()
            .unwrap_or("helm history failed")
            .trim();
        return Finding::fail(check, format!("no release: {why}"), REPAIR_DEPLOY);
    }
    let revisions: Vec<Value> = serde_json::from_str(stdout).unwrap_or_default();
    match revisions.last() {
        Some(r) if r["status"] == "deployed" => Finding::ok(
            check,
            format!(
                "revision {} deployed ({})",
                r["revision"],
                r["chart"].as_str().unwrap_or("?")
            ),
        ),
        Some(r) => Finding::fail(
            check,
            format!(
                "revision {} is {} ({})",
                r["revision"],
                r["status"].as_str().unwrap_or("?"),
                r["description"].as_str().unwrap_or_default()
            ),
            format!("{REPAIR_DEPLOY} (recovers a release stuck pending or failed)"),
        ),
        None => Finding::fail(check, "helm history lists no revision", REPAIR_DEPLOY),
    }
}
