//! The workloads through the tunnel: pods judged by what they do now, not by lifetime counters,
//! and Jobs by their last run.
//!
//! A restart counts against a container only when it exited on its own (a crash, an OOM kill, a
//! failed liveness probe) less than `check.restart_window` ago. A container that went down with
//! its node (an EC2 stop/start: containerd finds the task gone and reports it exited `Unknown`,
//! 255) was restarted by the kubelet with one more on its count, which it keeps for the pod's
//! life: that is no failure. A pod the API keeps though nothing runs it is named, never failed:
//! an Evicted one (its ReplicaSet has replaced it) or a failed Job's (the Job is judged in
//! `jobs/<namespace>`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::Finding;
use crate::kube::items;

const REPAIR_DEPLOY: &str = "jeeves up --only deploy";

fn time(v: &Value) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(v.as_str()?).ok()
}

fn owner<'a>(o: &'a Value, kind: &str) -> Option<&'a str> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind)
        .and_then(|r| r["name"].as_str())
}

/// How long ago `t` was in words: seconds under a minute, else to the minute (`40s`, `1h 4m`).
fn ago(t: SystemTime, now: SystemTime) -> String {
    let secs = now.duration_since(t).unwrap_or_default().as_secs();
    let secs = if secs < 60 { secs } else { secs - secs % 60 };
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// A termination the container did not cause: containerd, restarted with its host, finds the
/// task gone and marks the container exited `Unknown`, 255 (containerd
/// `internal/cri/server/restart.go`, `loadContainer`); the kubelet marks one it can no longer
/// find `ContainerStatusUnknown` (kubernetes/kubernetes `pkg/kubelet/kubelet_pods.go`).
fn went_down_with_its_node(last: &Value) -> bool {
    let reason = last["reason"].as_str().unwrap_or_default();
    (reason == "Unknown" && last["exitCode"] == 255) || reason == "ContainerStatusUnknown"
}

/// A container that exited on its own less than `window` ago, in words.
fn recent_crash(c: &Value, window: Duration, now: SystemTime) -> Option<String> {
    let last = &c["lastState"]["terminated"];
    if last.is_null() || went_down_with_its_node(last) {
        return None;
    }
    let finished = time(&last["finishedAt"])?;
    if now.duration_since(finished).unwrap_or_default() >= window {
        return None;
    }
    Some(format!(
        "container {} exited {} ago ({}, exit code {}; {} restart(s) in all)",
        c["name"].as_str().unwrap_or("?"),
        ago(finished, now),
        last["reason"].as_str().unwrap_or("no reason"),
        last["exitCode"],
        c["restartCount"].as_u64().unwrap_or(0)
    ))
}

/// Why a pod is not healthy now, or `None`: Succeeded, or Running with every container running.
fn pod_problem(pod: &Value) -> Option<String> {
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    if phase == "Succeeded" {
        return None;
    }
    let waiting: Vec<String> = statuses(pod)
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

fn statuses(pod: &Value) -> impl Iterator<Item = &Value> {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
}

/// What a pod the API keeps but nothing runs is, or `None` for a pod of the running workload.
/// An Evicted pod stays until the pod GC's threshold of 12,500 terminated pods
/// (`terminated-pod-gc-threshold`, kubernetes/kubernetes `pkg/controller/podgc/gc_controller.go`);
/// a failed Job's pod stays with its Job (a CronJob's own Jobs up to its
/// `failedJobsHistoryLimit`; one made by `kubectl create job --from`, as `jeeves backup` does,
/// until deleted).
fn kept(pod: &Value, now: SystemTime) -> Option<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("?");
    let status = &pod["status"];
    if status["phase"] != "Failed" {
        return None;
    }
    if status["reason"] == "Evicted" {
        let when = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "DisruptionTarget")
            .and_then(|c| time(&c["lastTransitionTime"]))
            .map(|t| format!(" {} ago", ago(t, now)))
            .unwrap_or_default();
        let why = status["message"].as_str().unwrap_or_default();
        return Some(format!("{name} Evicted{when} ({why})"));
    }
    let job = owner(pod, "Job")?;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    Some(format!("{name}, a Failed pod of Job {job} (see jobs/{ns})"))
}

/// Each Deployment's current ReplicaSet (namespace, deployment) → (revision, name): the one
/// with the highest `deployment.kubernetes.io/revision`, as `kubectl rollout` reads it.
fn current_replicasets(replicasets: &Value) -> BTreeMap<(String, String), (u64, String)> {
    let mut current: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
    for rs in items(replicasets) {
        let m = &rs["metadata"];
        let Some(deployment) = owner(rs, "Deployment") else {
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

#[derive(Default)]
struct Namespace {
    running: usize,
    problems: Vec<String>,
    kept: Vec<String>,
    /// The first pod with a crashing or waiting container: (pod, container), for the repair.
    crashing: Option<(String, String)>,
}

/// A finding per namespace: pods not Running/Succeeded, containers that crashed within
/// `window`, pods of a Deployment's older ReplicaSet (left over from an upgrade); kept pods
/// (Evicted, a failed Job's) named beside them.
pub(super) fn pod_findings(
    pods: &Value,
    replicasets: &Value,
    window: Duration,
    now: SystemTime,
) -> Vec<Finding> {
    let current = current_replicasets(replicasets);
    // ReplicaSet (namespace, name) → its Deployment.
    let rs_deployment: BTreeMap<(String, String), String> = items(replicasets)
        .iter()
        .filter_map(|rs| {
            let m = &rs["metadata"];
            Some((
                (
                    m["namespace"].as_str()?.to_string(),
                    m["name"].as_str()?.to_string(),
                ),
                owner(rs, "Deployment")?.to_string(),
            ))
        })
        .collect();
    let mut by_ns: BTreeMap<String, Namespace> = BTreeMap::new();
    for pod in items(pods) {
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = pod["metadata"]["name"].as_str().unwrap_or("?");
        let entry = by_ns.entry(ns.clone()).or_default();
        if let Some(k) = kept(pod, now) {
            entry.kept.push(k);
            continue;
        }
        entry.running += 1;
        let mut crashing = None;
        if let Some(p) = pod_problem(pod) {
            entry.problems.push(format!("{name} {p}"));
            crashing = statuses(pod).find(|c| !c["state"]["waiting"].is_null());
        }
        for c in statuses(pod) {
            if let Some(crash) = recent_crash(c, window, now) {
                entry.problems.push(format!("{name} {crash}"));
                crashing = crashing.or(Some(c));
            }
        }
        if let Some(c) = crashing
            && entry.crashing.is_none()
        {
            let container = c["name"].as_str().unwrap_or("?").to_string();
            entry.crashing = Some((name.to_string(), container));
        }
        if let Some(rs) = owner(pod, "ReplicaSet")
            && let Some(deployment) = rs_deployment.get(&(ns.clone(), rs.to_string()))
            && let Some((_, newest)) = current.get(&(ns.clone(), deployment.clone()))
            && newest != rs
        {
            entry.problems.push(format!(
                "{name} is from ReplicaSet {rs}, not deployment {deployment}'s current {newest} (stale after an upgrade)"
            ));
        }
    }
    by_ns
        .into_iter()
        .map(|(ns, n)| namespace_finding(&ns, n, window))
        .collect()
}

fn namespace_finding(ns: &str, n: Namespace, window: Duration) -> Finding {
    let check = format!("pods/{ns}");
    let kept = if n.kept.is_empty() {
        String::new()
    } else {
        format!("; kept by the API, not running: {}", n.kept.join(", "))
    };
    if n.problems.is_empty() {
        return Finding::ok(
            check,
            format!("{} pod(s) Running or Succeeded{kept}", n.running),
        );
    }
    let repair = match &n.crashing {
        Some((pod, container)) => format!(
            "with `jeeves tunnel`: kubectl -n {ns} logs {pod} -c {container} --previous (why it exited) and kubectl -n {ns} describe pod {pod} (its events); fix the cause (a setting of the pipeline: then {REPAIR_DEPLOY}). It passes once no container has crashed for check.restart_window ({})",
            humantime::format_duration(window)
        ),
        None => format!(
            "with `jeeves tunnel`: kubectl -n {ns} describe pod POD (its events); once the cause is fixed, {REPAIR_DEPLOY} (also finishes a rollout stuck half way)"
        ),
    };
    Finding::fail(check, format!("{}{kept}", n.problems.join("; ")), repair)
}

/// How a Job ended: `Failed`/`Complete` (the condition's time and words), or still running.
fn outcome(job: &Value) -> (&'static str, String) {
    let conditions = job["status"]["conditions"].as_array();
    let cond = |kind: &str| {
        conditions
            .into_iter()
            .flatten()
            .find(|c| c["type"] == kind && c["status"] == "True")
    };
    let at = |v: &Value| v.as_str().unwrap_or("?").to_string();
    if let Some(c) = cond("Failed") {
        let why = [&c["reason"], &c["message"]]
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(": ");
        return (
            "failed",
            format!("at {} ({why})", at(&c["lastTransitionTime"])),
        );
    }
    if let Some(c) = cond("Complete") {
        let t = &job["status"]["completionTime"];
        let t = if t.is_null() {
            &c["lastTransitionTime"]
        } else {
            t
        };
        return ("completed", format!("at {}", at(t)));
    }
    (
        "running",
        format!("since {}", at(&job["status"]["startTime"])),
    )
}

/// A finding per namespace with Jobs: each CronJob's newest Job (and each Job of its own) must
/// not have failed, else a warning naming it; failed Jobs kept from before are named.
/// `backup`: the backup CronJob's name, whose repair is `jeeves backup`.
pub(super) fn job_findings(jobs: &Value, backup: Option<&str>) -> Vec<Finding> {
    // namespace → owner (`cronjob/NAME` or `job/NAME`) → its Jobs, oldest first.
    let mut by_ns: BTreeMap<String, BTreeMap<String, Vec<&Value>>> = BTreeMap::new();
    for job in items(jobs) {
        let m = &job["metadata"];
        let name = m["name"].as_str().unwrap_or("?");
        let group = match owner(job, "CronJob") {
            Some(cj) => format!("cronjob/{cj}"),
            None => format!("job/{name}"),
        };
        by_ns
            .entry(m["namespace"].as_str().unwrap_or_default().to_string())
            .or_default()
            .entry(group)
            .or_default()
            .push(job);
    }
    let started = |j: &Value| {
        let t = &j["status"]["startTime"];
        let t = if t.is_null() {
            &j["metadata"]["creationTimestamp"]
        } else {
            t
        };
        time(t)
    };
    let mut out = Vec::new();
    for (ns, groups) in by_ns {
        let mut lines = Vec::new();
        let mut repair = None;
        for (group, mut jobs) in groups {
            jobs.sort_by_key(|j| started(j));
            let last = jobs.last().expect("a group has a Job");
            let name = last["metadata"]["name"].as_str().unwrap_or("?");
            let (how, detail) = outcome(last);
            let earlier: Vec<&str> = jobs[..jobs.len() - 1]
                .iter()
                .filter(|j| outcome(j).0 == "failed")
                .filter_map(|j| j["metadata"]["name"].as_str())
                .collect();
            let mut line = format!("{group}: last Job {name} {how} {detail}");
            if !earlier.is_empty() {
                line += &format!(
                    "; earlier failed Job(s) still listed: {}",
                    earlier.join(", ")
                );
            }
            if how == "failed" && repair.is_none() {
                let rerun = match group.strip_prefix("cronjob/") {
                    Some(cj) if Some(cj) == backup => {
                        "then `jeeves backup` runs one now".to_string()
                    }
                    Some(_) => "its CronJob's next run clears this once it succeeds".to_string(),
                    None => format!("then kubectl -n {ns} delete job {name}"),
                };
                repair = Some(format!(
                    "with `jeeves tunnel`: kubectl -n {ns} logs job/{name} (why it failed); fix the cause, {rerun}"
                ));
            }
            lines.push(line);
        }
        let check = format!("jobs/{ns}");
        out.push(match repair {
            Some(r) => Finding::warn(check, lines.join("; "), r),
            None => Finding::ok(check, lines.join("; ")),
        });
    }
    out
}
