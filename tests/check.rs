//! `jeeves check` on the lab after `up`, the stack built one stage at a time with a `plan` after
//! each (exit 0 or 2, never 1) and `/api/info` answering as soon as deploy returns; in the
//! shell `lab env` makes, healthy → exit 0 with every check ok; still healthy after seven
//! stop/starts (every container restarted with its node each time, the kubelet's count kept: the
//! kubectl stand-in's `boots`), with an Evicted pod kept (`evictions`) and a failed backup Job
//! and its pod kept (a warning naming the Job); then one fault at a time, each making it exit 1
//! with the failing check's message and repair, and each repaired before the next: a
//! certificate under the thresholds, a pod in CrashLoopBackOff and a pod left from an older
//! ReplicaSet (`pod_faults` and `stale_replicasets`), the A record changed in moto, HAProxy
//! stopped, a worker's sshd stopped. One lab bring-up.

use crate::common;

use std::process::Command;

use common::{Lab, Test};

const CONTROLLER: &str = "10.77.0.10";

struct Checked {
    code: i32,
    events: Vec<serde_json::Value>,
    stderr: String,
}

impl Checked {
    /// (status, message, repair) of one check; panics when it was not reported.
    #[track_caller]
    fn get(&self, check: &str) -> (String, String, String) {
        let e = self
            .events
            .iter()
            .find(|e| e["event"] == "check_finished" && e["check"] == check)
            .unwrap_or_else(|| panic!("no check {check} in:\n{}", self.dump()));
        let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
        (s("status"), s("message"), s("repair"))
    }

    /// The checks that did not pass, as `check status: message`.
    fn not_ok(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "check_finished" && e["status"] != "ok")
            .map(|e| format!("{} {}: {}", e["check"], e["status"], e["message"]))
            .collect()
    }

    fn dump(&self) -> String {
        let lines: Vec<String> = self.events.iter().map(|e| e.to_string()).collect();
        format!("{}\n--- stderr\n{}", lines.join("\n"), self.stderr)
    }
}

fn check(t: &Test, env: &[(&str, &str)]) -> Checked {
    let out = t
        .command(&["--output", "json", "--junit", "check.xml", "check"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    Checked {
        code: out.status.code().unwrap_or(-1),
        events: stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn fails_with(c: &Checked, check: &str, message: &str, repair: &str) {
    assert_eq!(c.code, 1, "{}", c.dump());
    let (status, msg, rep) = c.get(check);
    assert_eq!(status, "fail", "{check}: {msg}");
    assert!(msg.contains(message), "{check}: `{msg}` lacks `{message}`");
    assert!(
        rep.contains(repair),
        "{check}: repair `{rep}` lacks `{repair}`"
    );
}

/// The A record's value in the lab's moto, through boto3 as the lab itself uses it.
fn set_a_record(lab_env: &[(String, String)], ip: &str) {
    let script = format!(
        "import boto3\nr = boto3.client('route53')\nz = r.list_hosted_zones()['HostedZones'][0]['Id']\n\
         r.change_resource_record_sets(HostedZoneId=z, ChangeBatch={{'Changes': [{{'Action': 'UPSERT', \
         'ResourceRecordSet': {{'Name': 'chat.jeeves.test', 'Type': 'A', 'TTL': 60, \
         'ResourceRecords': [{{'Value': '{ip}'}}]}}}}]}})\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .envs(lab_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The HTTP status of `/api/info` through HAProxy, now.
fn api_info(root: &str) -> String {
    let (_, status) = common::tool(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "--cacert",
            root,
            "--resolve",
            &format!("chat.jeeves.test:443:{CONTROLLER}"),
            "https://chat.jeeves.test/api/info",
        ],
    );
    status.trim().to_string()
}

/// Polls `/api/info` through HAProxy for up to 30 s.
fn api_info_answers(root: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = api_info(root);
        if status == "200" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/api/info still answers {status} after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `secs` before now, as the API writes times.
fn before(secs: u64) -> String {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The backup Secret's URI in the stand-in's cluster state (base64, as a Secret holds it): in
/// operator mode (the lab's), the operator's Secret for its admin user.
fn set_mongo_uri(cluster_file: &std::path::Path, uri: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut cluster = read_json(cluster_file);
    let data = &mut cluster["objects"]["Secret/psautoinfra/rocketchat-db-admin-admin"]["data"];
    let old = data["connectionString.standard"]
        .as_str()
        .expect("the MongoDB Secret's URI")
        .to_string();
    data["connectionString.standard"] = b64.encode(uri).into();
    std::fs::write(cluster_file, cluster.to_string()).unwrap();
    String::from_utf8(b64.decode(old).unwrap()).unwrap()
}

fn lab_env(lab: &Lab) -> Vec<(String, String)> {
    let (code, out) = common::sh(&mut lab.cmd(&["env"]));
    assert_eq!(code, 0, "{out}");
    out.lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn check_reports_a_healthy_stack_and_each_fault_with_its_repair() {
    let lab = Lab::up(1);
    let mut t = Test::new();
    // Backups to the volume (JEEVES_BACKUP_KEEP below), not the lab pipeline's S3: a failed
    // Job is what this test needs of them.
    t.without_backup();
    lab.env_for(&mut t);
    t.env("JEEVES_BACKUP_ENDPOINT_URL", "");
    let root = lab.path("pebble/root.pem").display().to_string();
    // The certificate is Pebble's: `lab env` trusts its root through SSL_CERT_FILE, as a shell
    // of the lab does (docs/lab.md, "The local lab"); a 5 s SSH connect limit keeps the
    // stopped-sshd case short.
    t.with_standins()
        .env("JEEVES_TUNNEL_LOCAL_PORT", "26504")
        .env("JEEVES_SSH_CONNECT_TIMEOUT", "5s")
        // The backup CronJob, for a failed backup Job kept in the cluster.
        .env("JEEVES_BACKUP_KEEP", "2");
    // The stack built one stage at a time, with a plan after each: `plan` works at every point
    // of a partly built stack (0 or 2, never a failure), and says nothing is left once every
    // stage ran.
    let plan = |after: &str| {
        let run = t.run(&["plan", "--detailed-exitcode"]);
        assert!(
            [0, 2].contains(&run.code),
            "plan after {after}: exit {}\n{}\n{}",
            run.code,
            run.stdout,
            run.stderr
        );
        run.code
    };
    for stage in ["terraform", "bootstrap", "tls", "tunnel", "deploy", "dns"] {
        let run = t
            .run(&["--output", "json", "up", "--only", stage])
            .expect(0);
        if stage == "deploy" {
            // `up` ends once the site answers through HAProxy (after `rise 2` health checks
            // `inter 5s` apart on the NodePort deploy opened), and says so.
            assert_eq!(api_info(&root), "200", "/api/info right after deploy");
            assert!(
                run.events().iter().any(|e| e["event"] == "site_answered"
                    && e["url"] == "https://chat.jeeves.test/api/info"),
                "{}",
                run.stdout
            );
        }
        if stage == "dns" {
            assert_eq!(plan(stage), 0, "every stage ran: nothing left to change");
        } else {
            plan(stage);
        }
    }

    // Healthy: exit 0, every check ok, one JUnit testcase per check.
    let c = check(&t, &[]);
    assert_eq!(
        (c.code, c.not_ok()),
        (0, Vec::<String>::new()),
        "{}",
        c.dump()
    );
    for name in [
        "ec2/jeeves-lab-controller",
        "ec2/jeeves-lab-worker-1",
        "dns/record",
        "ssh/controller",
        "ssh/worker-1",
        "disk/controller",
        "disk/worker-1",
        "haproxy/service",
        "haproxy/config",
        "node/controller",
        "node/worker-1",
        "nodes/versions",
        "helm/rocketchat",
        "https/certificate",
        "https/api-info",
        "http/redirect",
    ] {
        c.get(name);
    }
    assert!(c.get("https/api-info").1.contains("Rocket.Chat 7.0"));
    let pods: Vec<_> = c
        .events
        .iter()
        .filter(|e| {
            e["event"] == "check_finished" && e["check"].as_str().unwrap().starts_with("pods/")
        })
        .collect();
    assert!(!pods.is_empty(), "no pods/* check:\n{}", c.dump());
    let checks = c
        .events
        .iter()
        .filter(|e| e["event"] == "check_finished")
        .count();
    let junit = std::fs::read_to_string(t.path("check.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), checks, "{junit}");
    assert!(junit.contains(r#"failures="0""#), "{junit}");

    // The same report in plain lines (what a Jenkins console shows; README's example).
    let plain = t.run(&["--output", "plain", "check"]).expect(0);
    eprintln!("{}", plain.stdout);
    assert!(
        plain
            .stdout
            .contains("[check] ok   https/api-info: Rocket.Chat 7.0 answers /api/info"),
        "{}",
        plain.stdout
    );
    assert!(plain.stdout.contains("checks: "), "{}", plain.stdout);

    // Seven weekday stop/starts, the last a minute ago: each time every container went down with
    // its node and the kubelet started it again, one more on its count (the stand-in's `boots`);
    // and a pod of the release's first Deployment evicted an hour ago under memory pressure,
    // kept beside its replacement (`evictions`).
    let cluster_file = t.path("standin-cluster.json");
    let mut cluster = read_json(&cluster_file);
    let (ns, name) = cluster["objects"]
        .as_object()
        .unwrap()
        .values()
        .find(|o| {
            o["kind"] == "Deployment"
                && o["metadata"]["annotations"]["meta.helm.sh/release-name"] == "rocketchat"
        })
        .map(|o| {
            let m = &o["metadata"];
            (
                m["namespace"].as_str().unwrap().to_string(),
                m["name"].as_str().unwrap().to_string(),
            )
        })
        .expect("a Deployment of the release");
    cluster["started_at"] = before(8 * 86_400).into();
    cluster["boots"] = (0..7u64).map(|day| before(day * 86_400 + 60)).collect();
    cluster["evictions"] =
        serde_json::json!({ format!("{ns}/{name}"): {"resource": "memory", "at": before(3600)} });
    std::fs::write(&cluster_file, cluster.to_string()).unwrap();
    // The stand-in reports what the kubelet would: 7 restarts, the last run ended `Unknown`.
    let script = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import workloads
s = json.load(open(sys.argv[2]))
for p in workloads.pods(s["objects"], s, ["controller"], s["started_at"]):
    c = p["status"]["containerStatuses"][0]
    print(p["status"].get("reason", "Running"), c["restartCount"], c["lastState"].get("terminated", {}).get("reason"))
"#;
    let (code, pods) = common::tool(
        "python3",
        &[
            "-c",
            script,
            common::repo().join("tests/standins").to_str().unwrap(),
            cluster_file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{pods}");
    assert!(pods.lines().any(|l| l == "Running 7 Unknown"), "{pods}");
    assert!(pods.lines().any(|l| l.starts_with("Evicted ")), "{pods}");
    // … and the database out of reach: `jeeves backup` fails, and its Job and pod stay.
    let uri = set_mongo_uri(&cluster_file, "mongodb://rc:pw@db.invalid:27017/rocketchat");
    t.run(&["backup"]).expect(1);
    // Healthy: the pods pass and name what the API keeps; the failed Job is a warning: exit 0.
    let c = check(&t, &[]);
    assert_eq!(c.code, 0, "{}", c.dump());
    let (status, msg, repair) = c.get("jobs/psautoinfra");
    assert_eq!(status, "warn", "{msg}");
    assert!(
        msg.starts_with("cronjob/rocketchat-mongodb-backup: last Job rocketchat-mongodb-backup-")
            && msg.contains(" failed at ")
            && msg.contains("(BackoffLimitExceeded"),
        "{msg}"
    );
    assert!(
        repair.contains("kubectl -n psautoinfra logs job/rocketchat-mongodb-backup-")
            && repair.ends_with("then `jeeves backup` runs one now"),
        "{repair}"
    );
    let not_ok = c.not_ok();
    assert!(
        not_ok.len() == 1 && not_ok[0].starts_with("\"jobs/psautoinfra\" \"warn\""),
        "{not_ok:?}"
    );
    let (_, msg, _) = c.get(&format!("pods/{ns}"));
    assert!(
        msg.contains("kept by the API, not running: ")
            && msg.contains(" Evicted 1h ago (The node was low on resource: memory.")
            && msg.contains(", a Failed pod of Job rocketchat-mongodb-backup-"),
        "{msg}"
    );
    set_mongo_uri(&cluster_file, &uri);

    // The certificate: under tls.renew_before warns (exit 0), under check.cert_min_remaining
    // fails (Pebble's certificates last 5 years: thresholds above that stand for a short life).
    let c = check(&t, &[("JEEVES_TLS_RENEW_BEFORE", "3000days")]);
    assert_eq!(c.code, 0, "{}", c.dump());
    let (status, msg, _) = c.get("https/certificate");
    assert_eq!(status, "warn", "{msg}");
    assert!(msg.contains("renewal due"), "{msg}");
    let c = check(&t, &[("JEEVES_CHECK_CERT_MIN_REMAINING", "3000days")]);
    fails_with(
        &c,
        "https/certificate",
        "under check.cert_min_remaining",
        "jeeves up --only tls",
    );
    let junit = std::fs::read_to_string(t.path("check.xml")).unwrap();
    assert!(junit.contains(r#"failures="1""#), "{junit}");

    // A pod in CrashLoopBackOff (the stand-in's switch on the first Deployment of the release).
    let mut cluster = read_json(&cluster_file);
    // … and, on the same Deployment, a rollout stuck half way: a pod of the older ReplicaSet.
    cluster["pod_faults"] = serde_json::json!({ format!("{ns}/{name}"): {"reason": "CrashLoopBackOff", "restarts": 9} });
    cluster["stale_replicasets"] = serde_json::json!({ format!("{ns}/{name}"): 1 });
    std::fs::write(&cluster_file, cluster.to_string()).unwrap();
    let c = check(&t, &[]);
    fails_with(
        &c,
        &format!("pods/{ns}"),
        "CrashLoopBackOff",
        "jeeves up --only deploy",
    );
    // Its last exit and every restart (9 crashes and 7 stop/starts); the repair names the pod
    // and container whose previous log says why.
    let (_, pods_msg, repair) = c.get(&format!("pods/{ns}"));
    assert!(
        pods_msg.contains("container ")
            && pods_msg.contains(" ago (Error, exit code 1; 16 restart(s) in all)"),
        "{pods_msg}"
    );
    assert!(
        repair.contains(&format!("kubectl -n {ns} logs {name}-")) && repair.contains(" --previous"),
        "{repair}"
    );
    assert!(
        pods_msg.contains(&format!("not deployment {name}'s current"))
            && pods_msg.contains("(stale after an upgrade)"),
        "{pods_msg}"
    );
    cluster["pod_faults"] = serde_json::json!({});
    cluster["stale_replicasets"] = serde_json::json!({});
    std::fs::write(&cluster_file, cluster.to_string()).unwrap();

    // A member of the replica set crash-looping: the operator leaves its phase Pending
    // (mongodb_operator.py, `Reconcile`); the set and the member fail, each with its repair.
    let mut cluster = read_json(&cluster_file);
    cluster["pod_faults"] = serde_json::json!({ format!("{ns}/rocketchat-db"): {"reason": "CrashLoopBackOff", "restarts": 3} });
    std::fs::write(&cluster_file, cluster.to_string()).unwrap();
    let c = check(&t, &[]);
    fails_with(
        &c,
        "mongodb/rocketchat-db",
        "phase Pending, 2/3 member pod(s) ready: ReplicaSet is not yet ready",
        "Members not ready: rocketchat-db-0 (CrashLoopBackOff)",
    );
    fails_with(
        &c,
        "mongodb/rocketchat-db-0",
        "member not ready: CrashLoopBackOff",
        "kubectl describe pod -n psautoinfra rocketchat-db-0",
    );
    let mut cluster = read_json(&cluster_file);
    cluster["pod_faults"] = serde_json::json!({});
    std::fs::write(&cluster_file, cluster.to_string()).unwrap();

    // The A record changed in Route 53 (moto); `up --only dns` puts it back.
    let env = lab_env(&lab);
    set_a_record(&env, "192.0.2.7");
    let c = check(&t, &[]);
    fails_with(
        &c,
        "dns/record",
        "192.0.2.7, but the controller's public IP is 10.77.0.10",
        "jeeves up --only dns",
    );
    t.run(&["up", "--only", "dns"]).expect(0);

    // HAProxy stopped: the service and HTTPS fail; `up --only tls` starts it again.
    let (code, out) = lab.ssh(
        CONTROLLER,
        &lab.path("known_hosts"),
        "systemctl stop haproxy",
    );
    assert_eq!(code, 0, "{out}");
    let c = check(&t, &[]);
    fails_with(
        &c,
        "haproxy/service",
        "haproxy is not active on controller",
        "jeeves up --only tls",
    );
    fails_with(
        &c,
        "https/certificate",
        "no verified HTTPS",
        "jeeves up --only tls",
    );
    t.run(&["up", "--only", "tls"]).expect(0);

    // A worker's sshd stopped.
    lab.must(&["stop-sshd", "worker-1"]);
    let c = check(&t, &[]);
    fails_with(
        &c,
        "ssh/worker-1",
        "does not answer over SSH",
        "jeeves up --only bootstrap",
    );
    assert_eq!(c.get("ssh/controller").0, "ok");
    lab.must(&["start-sshd", "worker-1"]);

    // The database back: the next backup succeeds; the failed Job, still listed, is named.
    t.run(&["backup"]).expect(0);

    // Every fault repaired: healthy again (HAProxy, restarted, checks its backend again first).
    api_info_answers(&root);
    let c = check(&t, &[]);
    assert_eq!(
        (c.code, c.not_ok()),
        (0, Vec::<String>::new()),
        "{}",
        c.dump()
    );
    let (_, msg, _) = c.get("jobs/psautoinfra");
    assert!(
        msg.contains(" completed at ") && msg.contains("; earlier failed Job(s) still listed: "),
        "{msg}"
    );
}
