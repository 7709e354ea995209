//! The pods and Jobs judgement on `kubectl get -o json` (a `List` of `items`), at a fixed now.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::Finding;
use super::pods::{job_findings, pod_findings};
use crate::report::CheckStatus::{self, Fail, Ok, Warn};

const WINDOW: Duration = Duration::from_secs(15 * 60);

fn now() -> SystemTime {
    humantime::parse_rfc3339("2026-03-09T07:00:00Z").unwrap()
}

/// `now` less `secs`, as the API writes times.
fn before(secs: u64) -> String {
    humantime::format_rfc3339_seconds(now() - Duration::from_secs(secs)).to_string()
}

fn statuses(f: &[Finding]) -> Vec<(String, CheckStatus)> {
    f.iter().map(|f| (f.check.clone(), f.status)).collect()
}

fn rs(ns: &str, name: &str, deployment: &str, revision: &str) -> Value {
    json!({"metadata": {"namespace": ns, "name": name,
        "annotations": {"deployment.kubernetes.io/revision": revision},
        "ownerReferences": [{"kind": "Deployment", "name": deployment}]}})
}

fn pod(ns: &str, name: &str, rs: &str, phase: &str, container: Value) -> Value {
    json!({"metadata": {"namespace": ns, "name": name,
        "ownerReferences": [{"kind": "ReplicaSet", "name": rs}]},
        "status": {"phase": phase, "containerStatuses": [container]}})
}

fn running(restarts: u64, last: Value) -> Value {
    json!({"name": "app", "restartCount": restarts, "lastState": last,
           "state": {"running": {"startedAt": before(50)}}})
}

/// The container's previous run as the kubelet reports it.
fn terminated(reason: &str, code: i64, finished_secs_ago: u64) -> Value {
    json!({"terminated": {"reason": reason, "exitCode": code,
        "startedAt": before(finished_secs_ago + 86_400), "finishedAt": before(finished_secs_ago)}})
}

#[test]
fn pods_running_from_the_current_replicaset() {
    let replicasets = json!({"items": [
        rs("app", "web-5d8f", "web", "1"),
        rs("app", "web-7c9a", "web", "2"),
        rs("edge", "traefik-6b4c", "traefik", "1"),
    ]});
    let pods = json!({"items": [
        pod("app", "web-7c9a-aaaaa", "web-7c9a", "Running", running(0, json!({}))),
        pod("app", "web-5d8f-bbbbb", "web-5d8f", "Running", running(0, json!({}))),
        pod("app", "web-7c9a-ccccc", "web-7c9a", "Running",
            json!({"name": "app", "restartCount": 9, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                   "lastState": terminated("Error", 1, 40)})),
        pod("edge", "traefik-6b4c-ddddd", "traefik-6b4c", "Running", running(0, json!({}))),
        json!({"metadata": {"namespace": "jobs", "name": "once"}, "status": {"phase": "Succeeded"}}),
        json!({"metadata": {"namespace": "jobs", "name": "waits"}, "status": {"phase": "Pending"}}),
    ]});
    let f = pod_findings(&pods, &replicasets, WINDOW, now());
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
        app.contains(
            "web-7c9a-ccccc container app exited 40s ago (Error, exit code 1; 9 restart(s) in all)"
        ),
        "{app}"
    );
    assert!(
        app.contains(
            "web-5d8f-bbbbb is from ReplicaSet web-5d8f, not deployment web's current web-7c9a"
        ),
        "{app}"
    );
    assert!(!app.contains("web-7c9a-aaaaa"), "{app}");
    // The repair names the crashing pod and container, and where to read why.
    let repair = f[0].repair.as_deref().unwrap();
    assert!(
        repair.contains("kubectl -n app logs web-7c9a-ccccc -c app --previous"),
        "{repair}"
    );
    assert_eq!(f[2].message, "waits Pending");
}

/// Seven weekday stop/starts: each time containerd found the task gone (`Unknown`, 255) and the
/// kubelet restarted the container with one more on its count. The last start was a minute ago.
#[test]
fn restarts_at_each_stop_start_do_not_fail_a_pod() {
    let replicasets = json!({"items": [rs("app", "web-7c9a", "web", "1")]});
    let pods = json!({"items": [
        pod("app", "web-7c9a-aaaaa", "web-7c9a", "Running", running(7, terminated("Unknown", 255, 60))),
        // The kubelet's own mark for a container it could no longer find (no finishedAt).
        pod("app", "web-7c9a-bbbbb", "web-7c9a", "Running", running(12, json!({"terminated": {
            "reason": "ContainerStatusUnknown", "exitCode": 137,
            "message": "The container could not be located when the pod was deleted.  The container used to be Running"}}))),
    ]});
    let f = pod_findings(&pods, &replicasets, WINDOW, now());
    assert_eq!(statuses(&f), [("pods/app".into(), Ok)], "{f:?}");
    assert_eq!(f[0].message, "2 pod(s) Running or Succeeded");
}

#[test]
fn a_crash_within_the_window_fails_and_an_older_one_does_not() {
    let replicasets = json!({"items": [rs("app", "web-7c9a", "web", "1")]});
    // Running again after an OOM kill 2 minutes ago: between two crashes of a loop, or just
    // crashed; either way not healthy yet.
    let pods = json!({"items": [
        pod("app", "web-7c9a-aaaaa", "web-7c9a", "Running", running(1, terminated("OOMKilled", 137, 120))),
    ]});
    let f = pod_findings(&pods, &replicasets, WINDOW, now());
    assert_eq!(statuses(&f), [("pods/app".into(), Fail)]);
    assert_eq!(
        f[0].message,
        "web-7c9a-aaaaa container app exited 2m ago (OOMKilled, exit code 137; 1 restart(s) in all)"
    );
    let repair = f[0].repair.as_deref().unwrap();
    assert!(
        repair.contains("kubectl -n app logs web-7c9a-aaaaa -c app --previous")
            && repair.contains("check.restart_window (15m)"),
        "{repair}"
    );
    // The same crash 20 minutes ago, running since: past the window, healthy.
    let pods = json!({"items": [
        pod("app", "web-7c9a-aaaaa", "web-7c9a", "Running", running(1, terminated("OOMKilled", 137, 1200))),
    ]});
    let f = pod_findings(&pods, &replicasets, WINDOW, now());
    assert_eq!(statuses(&f), [("pods/app".into(), Ok)], "{f:?}");
}

#[test]
fn evicted_and_failed_job_pods_are_named_not_failed() {
    let replicasets = json!({"items": [
        rs("app", "web-5d8f", "web", "1"),
        rs("app", "web-7c9a", "web", "2"),
    ]});
    // Evicted from the older ReplicaSet's days: neither a failure nor a stale pod.
    let mut evicted = pod(
        "app",
        "web-5d8f-eeeee",
        "web-5d8f",
        "Failed",
        json!({"name": "app", "restartCount": 0, "state": {"terminated": {
            "reason": "ContainerStatusUnknown", "exitCode": 137}}}),
    );
    evicted["status"]["reason"] = "Evicted".into();
    evicted["status"]["message"] = "The node was low on resource: memory. ".into();
    evicted["status"]["conditions"] = json!([{"type": "DisruptionTarget", "status": "True",
        "reason": "TerminationByKubelet", "lastTransitionTime": before(3600)}]);
    let job_pod = json!({"metadata": {"namespace": "app", "name": "backup-29512-x7k2p",
            "ownerReferences": [{"kind": "Job", "name": "backup-29512"}]},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "mongodump", "restartCount": 0,
            "state": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": before(60)}}}]}});
    let pods = json!({"items": [
        pod("app", "web-7c9a-aaaaa", "web-7c9a", "Running", running(0, json!({}))),
        evicted,
        job_pod,
    ]});
    let f = pod_findings(&pods, &replicasets, WINDOW, now());
    assert_eq!(statuses(&f), [("pods/app".into(), Ok)], "{f:?}");
    assert_eq!(
        f[0].message,
        "1 pod(s) Running or Succeeded; kept by the API, not running: web-5d8f-eeeee Evicted 1h ago (The node was low on resource: memory. ), backup-29512-x7k2p, a Failed pod of Job backup-29512 (see jobs/app)"
    );
    // A Failed pod nothing replaces (no controller) still fails.
    let pods = json!({"items": [
        json!({"metadata": {"namespace": "app", "name": "bare"}, "status": {"phase": "Failed"}}),
    ]});
    let f = pod_findings(&pods, &replicasets, WINDOW, now());
    assert_eq!(statuses(&f), [("pods/app".into(), Fail)]);
}

fn job(name: &str, cronjob: Option<&str>, started: u64, condition: &str) -> Value {
    let owners: Vec<Value> = cronjob
        .map(|c| json!({"kind": "CronJob", "name": c}))
        .into_iter()
        .collect();
    let condition = match condition {
        "Failed" => json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit", "lastTransitionTime": before(started - 30)}]),
        "Complete" => {
            json!([{"type": "Complete", "status": "True", "lastTransitionTime": before(started - 30)}])
        }
        _ => json!([]),
    };
    json!({"metadata": {"namespace": "app", "name": name, "ownerReferences": owners},
           "status": {"startTime": before(started), "conditions": condition}})
}

#[test]
fn a_cronjobs_last_job_failing_is_a_warning_and_kept_failures_are_named() {
    const BACKUP: &str = "rocketchat-mongodb-backup";
    // The last backup failed: a warning, with `jeeves backup` to run one once fixed.
    let jobs = json!({"items": [
        job("rocketchat-mongodb-backup-29512", Some(BACKUP), 7200, "Failed"),
        job("rocketchat-mongodb-backup-29511", Some(BACKUP), 90_000, "Complete"),
    ]});
    let f = job_findings(&jobs, Some(BACKUP));
    assert_eq!(statuses(&f), [("jobs/app".into(), Warn)]);
    assert_eq!(
        f[0].message,
        format!(
            "cronjob/{BACKUP}: last Job rocketchat-mongodb-backup-29512 failed at {} (BackoffLimitExceeded: Job has reached the specified backoff limit)",
            before(7170)
        )
    );
    let repair = f[0].repair.as_deref().unwrap();
    assert!(
        repair.contains("kubectl -n app logs job/rocketchat-mongodb-backup-29512")
            && repair.ends_with("then `jeeves backup` runs one now"),
        "{repair}"
    );
    // A later backup succeeded: the failed one, still listed, is named, not warned about.
    let jobs = json!({"items": [
        job("rocketchat-mongodb-backup-29513", Some(BACKUP), 600, "Complete"),
        job("rocketchat-mongodb-backup-29512", Some(BACKUP), 7200, "Failed"),
    ]});
    let f = job_findings(&jobs, Some(BACKUP));
    assert_eq!(statuses(&f), [("jobs/app".into(), Ok)]);
    assert_eq!(
        f[0].message,
        format!(
            "cronjob/{BACKUP}: last Job rocketchat-mongodb-backup-29513 completed at {}; earlier failed Job(s) still listed: rocketchat-mongodb-backup-29512",
            before(570)
        )
    );
    // A Job of its own that failed stays until deleted.
    let jobs = json!({"items": [job("migrate", None, 300, "Failed")]});
    let f = job_findings(&jobs, Some(BACKUP));
    assert_eq!(statuses(&f), [("jobs/app".into(), Warn)]);
    assert!(
        f[0].repair
            .as_deref()
            .unwrap()
            .ends_with("then kubectl -n app delete job migrate"),
        "{f:?}"
    );
}
