//! The cluster through the tunnel, with kubectl and helm as the deploy stage runs them: nodes
//! Ready without pressure and on one version, the pods and Jobs (`pods.rs`), the Helm release
//! `deployed`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use serde_json::Value;

use super::{Finding, pods};
use crate::config::Settings;
use crate::fleet::Fleet;
use crate::fleet::api_tunnel::{self, ApiTunnelOptions};
use crate::kube::{self, Tools, succeeded};
use crate::report::Reporter;
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
    inv.controller()?;
    // The first controller that serves the API (one: that one, as before).
    let (opened, host, passed) = api_tunnel::open_first(
        fleet,
        &inv.controllers(),
        opts,
        kubeconfig.path().with_extension("probe"),
        || reporter.warnings("tunnel"),
    )
    .await?;
    for (name, why) in passed {
        reporter.log(
            None,
            crate::report::Level::Warn,
            format!(
                "cluster: {name} does not serve the API ({why}); read through {}",
                host.hostname
            ),
        );
    }
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
    let jobs = get(&["get", "jobs", "-A", "-o", "json"]).await?;
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
    // helm.mongodb = "operator": the replica set and its members (`mongodb.rs`).
    let database = if settings.helm.mongodb == crate::config::MongodbMode::Operator {
        let (ns, name) = (&settings.helm.namespace, &settings.mongodb.name);
        let out = tools
            .kubectl_saying(
                &["get", "mongodbcommunity", name, "-n", ns, "-o", "json"],
                say,
            )
            .await?;
        let cr = if out.status.success() {
            Some(
                serde_json::from_str::<Value>(&out.stdout)
                    .context("`kubectl get mongodbcommunity` printed no JSON")?,
            )
        } else if crate::kube::absent(&out) {
            // Not created yet, or not even its CRD (the operator not installed).
            None
        } else {
            succeeded(out, "kubectl get mongodbcommunity")?;
            None
        };
        let selector = format!("app={name}-svc");
        let pods = succeeded(
            tools
                .kubectl_saying(
                    &["get", "pods", "-n", ns, "-l", &selector, "-o", "json"],
                    say,
                )
                .await?,
            "kubectl get pods of the replica set",
        )?;
        let pods: Value =
            serde_json::from_str(&pods.stdout).context("`kubectl get pods` printed no JSON")?;
        super::mongodb::findings(settings, cr.as_ref(), &pods)
    } else {
        Vec::new()
    };
    let hosts: Vec<String> = inv
        .controller
        .iter()
        .chain(&inv.workers)
        .map(|h| h.hostname.clone())
        .collect();
    let mut out = node_findings(&nodes, &hosts);
    out.extend(pods::pod_findings(
        &pods,
        &replicasets,
        settings.check.restart_window,
        std::time::SystemTime::now(),
    ));
    out.extend(pods::job_findings(
        &jobs,
        settings.backup.as_ref().map(|b| b.name.as_str()),
    ));
    out.extend(database);
    out.push(release_finding(
        &settings.helm.release,
        history.status.success(),
        &history.stdout,
        &history.stderr,
    ));
    if settings.helm.bundled_mongodb {
        out.push(bundled_mongodb_finding(settings, &tools, say).await);
    }
    if settings.helm.mongodb == crate::config::MongodbMode::External {
        out.push(external_mongodb_finding(settings, &tools, say).await);
    }
    Ok(out)
}

/// The external MongoDB's version (read by a Job running mongosh with the Secret's URI) against
/// what the chart's Rocket.Chat starts on (issue 24).
async fn external_mongodb_finding(
    settings: &Settings,
    tools: &Tools,
    say: impl FnMut(crate::process::Said<'_>),
) -> Finding {
    const CHECK: &str = "mongodb/version";
    match crate::stages::deploy::judge_external_server(settings, tools, say).await {
        Ok(Ok(said)) => Finding::ok(CHECK, said),
        Ok(Err(said)) => Finding::fail(
            CHECK,
            format!("{said}: Rocket.Chat exits on it"),
            format!(
                "upgrade the external MongoDB to {} or newer (one major version at a time), or pin a helm.version whose Rocket.Chat accepts it",
                settings.helm.reads.mongodb_min
            ),
        ),
        Err(e) => Finding::fail(
            CHECK,
            format!("cannot read the external MongoDB's version: {e:#}"),
            format!(
                "check MONGO_URI (secret {}/{}): Rocket.Chat reads the same",
                settings.helm.namespace, settings.helm.mongodb_secret
            ),
        ),
    }
}

/// The bundled MongoDB's version against what the chart's Rocket.Chat starts on (issue 24).
async fn bundled_mongodb_finding(
    settings: &Settings,
    tools: &Tools,
    say: impl FnMut(crate::process::Said<'_>),
) -> Finding {
    const CHECK: &str = "mongodb/version";
    let name = crate::chart::bundled_mongodb_fullname(&settings.helm.release);
    let args = [
        "get",
        "statefulset",
        &name,
        "-n",
        &settings.helm.namespace,
        "-o",
        "json",
    ];
    let read = async {
        let out = succeeded(
            tools.kubectl_saying(&args, say).await?,
            &format!("kubectl get statefulset {name}"),
        )?;
        let sts: Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("`kubectl get statefulset {name}` printed no JSON"))?;
        crate::stages::deploy::judge_bundled_statefulset(settings, &sts)
    };
    match read.await {
        Ok(Ok(said)) => Finding::ok(CHECK, said),
        Ok(Err(said)) => Finding::fail(
            CHECK,
            format!("{said}: Rocket.Chat exits on it"),
            "back up (jeeves backup), set helm.mongodb = \"operator\", jeeves up, then jeeves restore (README, \"Day 2\")",
        ),
        Err(e) => Finding::fail(
            CHECK,
            format!("cannot read the bundled MongoDB's version: {e:#}"),
            REPAIR_DEPLOY,
        ),
    }
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
    for n in kube::items(nodes) {
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
        } else if kube::cordoned(n) && kube::marked(n) {
            Finding::warn(
                check,
                "Ready but cordoned (SchedulingDisabled) by a Jeeves run that stopped before uncordoning it",
                "jeeves up --only bootstrap (uncordons it)",
            )
        } else if kube::cordoned(n) {
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
