//! The replica set's state as `jeeves check` and `up`'s wait read it: the `MongoDBCommunity`'s
//! `status` (`phase` `Pending`/`Running`/`Failed`, `message`, `currentMongoDBMembers`,
//! `version`: mongodb/mongodb-kubernetes 1.10.0, `mongodb-community-operator/pkg/util/status/
//! status.go` and `controllers/mongodb_status_options.go`) and its members' pods (label
//! `app: <name>-svc`, `controllers/construct/mongodbstatefulset.go`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::replica_set::get_json;
use crate::kube::{Tools, succeeded};
use crate::stage::StageContext;

/// How often `await_running` asks (the operator requeues a Pending replica set every 10 s).
pub(super) const POLL: Duration = Duration::from_secs(2);

/// Polls the replica set until it is `Running` with every member at the pinned version; the
/// operator's message and the members' states on the way, and in the error when `helm.timeout`
/// passes.
pub async fn await_running(tools: &Tools, cx: &StageContext<'_>) -> Result<()> {
    let s = cx.settings;
    let start = Instant::now();
    let mut said = String::new();
    loop {
        let status = read_status(tools, cx).await?;
        let line = status.summary();
        if status.ready(s.mongodb.members, &s.mongodb.version) {
            cx.host(s.mongodb.name.clone(), line);
            return Ok(());
        }
        if line != said {
            cx.host(s.mongodb.name.clone(), line.clone());
            said = line.clone();
        }
        if start.elapsed() >= s.helm.timeout {
            bail!(
                "MongoDBCommunity {}/{} is not Running after {}s (helm.timeout): {line}. {}",
                s.helm.namespace,
                s.mongodb.name,
                s.helm.timeout.as_secs(),
                status.repair()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The replica set and its members' pods, as `jeeves check` and the wait read them.
pub async fn read_status(tools: &Tools, cx: &StageContext<'_>) -> Result<Status> {
    let s = cx.settings;
    let (ns, name) = (&s.helm.namespace, &s.mongodb.name);
    let selector = format!("app={name}-svc");
    let pods_args = ["get", "pods", "-n", ns, "-l", &selector, "-o", "json"];
    let (cr, pods) = tokio::join!(
        get_json(tools, cx, "mongodbcommunity", name, ns),
        tools.kubectl(cx, &pods_args),
    );
    let pods = succeeded(pods?, &format!("listing the pods of {name}"))?;
    let pods: serde_json::Value = serde_json::from_str(&pods.stdout)
        .context("`kubectl get pods` answered something that is not JSON")?;
    match cr? {
        Some(cr) => Ok(Status::of(&cr, &pods)),
        None => bail!("MongoDBCommunity {ns}/{name} does not exist"),
    }
}

/// One member's pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pod: String,
    pub ready: bool,
    /// Why not: a container's waiting reason, or the pod's phase.
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub phase: String,
    pub message: String,
    pub current_members: u64,
    pub version: String,
    pub members: Vec<Member>,
}

impl Status {
    pub fn of(cr: &serde_json::Value, pods: &serde_json::Value) -> Status {
        let st = &cr["status"];
        let members = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let statuses = p["status"]["containerStatuses"].as_array();
                let ready =
                    statuses.is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["ready"] == true));
                let waiting = statuses
                    .into_iter()
                    .flatten()
                    .find_map(|c| c["state"]["waiting"]["reason"].as_str());
                Member {
                    pod: p["metadata"]["name"].as_str().unwrap_or("?").to_string(),
                    ready,
                    why: waiting
                        .or(p["status"]["phase"].as_str())
                        .unwrap_or("unknown")
                        .to_string(),
                }
            })
            .collect();
        Status {
            phase: st["phase"].as_str().unwrap_or("(no phase yet)").to_string(),
            message: st["message"].as_str().unwrap_or_default().to_string(),
            current_members: st["currentMongoDBMembers"].as_u64().unwrap_or(0),
            version: st["version"].as_str().unwrap_or_default().to_string(),
            members,
        }
    }

    pub fn ready(&self, members: u32, version: &str) -> bool {
        self.phase == "Running"
            && self.current_members == u64::from(members)
            && self.version == version
    }

    pub fn summary(&self) -> String {
        let ready = self.members.iter().filter(|m| m.ready).count();
        let mut line = format!(
            "phase {}, {ready}/{} member pod(s) ready",
            self.phase,
            self.members.len()
        );
        if !self.message.is_empty() {
            line.push_str(&format!(": {}", self.message));
        }
        line
    }

    /// What to do about a replica set that is not Running.
    pub fn repair(&self) -> String {
        let unready: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.ready)
            .map(|m| format!("{} ({})", m.pod, m.why))
            .collect();
        if unready.is_empty() {
            "Read the operator's log: `jeeves logs` or `kubectl logs -n <operator namespace> deployment/mongodb-kubernetes-operator`".into()
        } else {
            format!(
                "Members not ready: {}. `kubectl describe pod` names the cause (image pull, volume, scheduling); fix it and run `jeeves up` again",
                unready.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_names_the_members_that_are_not_ready() {
        let cr = json!({"status": {"phase": "Pending", "currentMongoDBMembers": 3, "version": "8.0.12",
            "message": "ReplicaSet is not yet ready, retrying in 10 seconds"}});
        let pod = |name: &str, ready: bool, waiting: Option<&str>| {
            let state = match waiting {
                Some(r) => json!({"waiting": {"reason": r}}),
                None => json!({"running": {}}),
            };
            json!({"metadata": {"name": name}, "status": {"phase": "Running",
                "containerStatuses": [{"ready": ready, "state": state}]}})
        };
        let pods = json!({"items": [pod("db-0", true, None), pod("db-1", false, Some("ImagePullBackOff"))]});
        let st = Status::of(&cr, &pods);
        assert!(!st.ready(3, "8.0.12"));
        assert_eq!(
            st.summary(),
            "phase Pending, 1/2 member pod(s) ready: ReplicaSet is not yet ready, retrying in 10 seconds"
        );
        assert!(
            st.repair().contains("db-1 (ImagePullBackOff)"),
            "{}",
            st.repair()
        );
        let running = json!({"status": {"phase": "Running", "currentMongoDBMembers": 3, "version": "8.0.12"}});
        assert!(Status::of(&running, &pods).ready(3, "8.0.12"));
        // A member count or version not reached yet is not done.
        assert!(!Status::of(&running, &pods).ready(5, "8.0.12"));
        assert!(!Status::of(&running, &pods).ready(3, "8.0.13"));
    }
}
