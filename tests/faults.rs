//! Fault injection on the lab: the run is killed (SIGKILL: no handler, no cleanup) while a stage
//! applies; the next run repairs what was left and succeeds, and the run after that finds every
//! stage unchanged. One test function: the lab is one per machine.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Lab, Test};

/// `jeeves --output json up`, killed with SIGKILL as soon as an event matches `at`; returns the
/// events seen up to the kill.
fn kill_during(t: &Test, at: &dyn Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
    let mut child = t
        .command(&["--output", "json", "up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let event: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let hit = at(&event);
        seen.push(event);
        if hit {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed, not finished: {seen:?}");
    let stage = seen.last().unwrap()["stage"].clone();
    assert!(
        !seen
            .iter()
            .any(|e| e["event"] == "stage_finished" && e["stage"] == stage),
        "killed while {stage} applied"
    );
    seen
}

fn progress(stage: &'static str, needle: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |e| {
        e["event"] == "host_progress"
            && e["stage"] == stage
            && e["message"].as_str().is_some_and(|m| m.contains(needle))
    }
}

/// The stage's plan is out, with a change: it applies next.
fn planned(stage: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |e| {
        e["event"] == "stage_planned"
            && e["stage"] == stage
            && !e["changes"].as_array().is_some_and(|c| c.is_empty())
    }
}

/// The next run succeeds; the one after it finds nothing to do.
fn converges(t: &Test, what: &str) {
    let run = t.run(&["--output", "json", "up"]);
    assert_eq!(
        run.code, 0,
        "{what}: the re-run\n{}\n{}",
        run.stdout, run.stderr
    );
    let run = t.run(&["-v", "--output", "json", "up"]).expect(0);
    for stage in ["terraform", "bootstrap", "tls", "tunnel", "deploy", "dns"] {
        assert_eq!(
            run.stage_result(stage),
            "unchanged",
            "{what}: {stage} after the repair\n{}",
            run.stdout
        );
    }
    // tls and dns probe ahead, beside bootstrap: tls waits for the controller's session, and
    // the whole converged run logs in to the controller once, and not to the worker, which the
    // repair found or put on the configured channel and the cluster vouches for (a Ready node
    // on the controller's version).
    assert_eq!(run.handshakes(), 1, "{what}: the controller alone");
}

#[test]
fn a_run_killed_in_any_applying_stage_is_repaired_by_the_next() {
    let lab = Lab::up(1);
    let mut t = Test::new();
    lab.env_for(&mut t);
    // Chart 6.25.1 first, so that the deploy below moves forward to 7.0.2 (a move back is
    // refused: Rocket.Chat's migrations run forward only).
    t.with_standins()
        .env("JEEVES_TUNNEL_LOCAL_PORT", "26503")
        .env("JEEVES_HELM_VERSION", "6.25.1")
        .env("JEEVES_HELM_CHART", &common::chart("6.25.1"));

    // Bootstrap: killed while the workers join.
    let seen = kill_during(&t, &progress("bootstrap", "joining"));
    assert!(
        seen.iter()
            .any(|e| e["event"] == "stage_started" && e["stage"] == "bootstrap")
    );
    converges(&t, "killed in bootstrap");

    // tls: killed with haproxy stopped for certbot (the lineage, the PEM and the cache gone,
    // so that certbot runs). The next run finds haproxy stopped and starts it.
    let controller = |cmd: &str| {
        let (code, out) = lab.ssh("10.77.0.10", &lab.path("known_hosts"), cmd);
        assert_eq!(code, 0, "{cmd}: {out}");
        out
    };
    controller(
        "rm -rf /etc/letsencrypt/live /etc/letsencrypt/archive /etc/letsencrypt/renewal /etc/haproxy/certs",
    );
    std::fs::remove_dir_all(t.path(".jeeves/lab/tls")).unwrap();
    kill_during(&t, &progress("tls", "certbot: requesting a certificate"));
    // certbot on the controller outlives the SSH session that started it (a known gap:
    // docs/failure-and-repair.md, "Failure and repair"); the repair starts once it has finished.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // The controller's certbot only: the lab's hosts (every slot's) share one process table.
    while controller("pgrep --ns $$ --nslist net -x certbot || echo none").trim() != "none" {
        assert!(
            std::time::Instant::now() < deadline,
            "certbot still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    converges(&t, "killed in tls with haproxy stopped");
    assert_eq!(
        controller("systemctl is-active haproxy").trim(),
        "active",
        "haproxy serves again"
    );

    // deploy: killed during the Helm release (a new chart version).
    t.env("JEEVES_HELM_VERSION", "7.0.2")
        .env("JEEVES_HELM_CHART", &common::chart("7.0.2"));
    kill_during(&t, &progress("deploy", "helm upgrade --install"));
    converges(&t, "killed in deploy");

    // tunnel: killed while the tunnel opens and the kubeconfig is written (removed first).
    std::fs::remove_file(t.path(".jeeves/lab/kubeconfig")).unwrap();
    kill_during(&t, &planned("tunnel"));
    converges(&t, "killed in tunnel");

    // dns: killed between the plan and the upsert of a changed record (a new TTL).
    t.env("JEEVES_DNS_TTL", "120");
    kill_during(&t, &planned("dns"));
    converges(&t, "killed in dns");

    // terraform: killed while terraform updates every host record (a new tag), so Jeeves'
    // inventory is not rewritten and terraform is left mid-apply.
    let tags = t.path("fault-tags.tfvars.json");
    std::fs::write(&tags, r#"{"tags": {"Fault": "terraform"}}"#).unwrap();
    let var_files = format!(
        "{},{}",
        lab.path("terraform.tfvars.json").display(),
        tags.display()
    );
    t.env("JEEVES_TERRAFORM_VAR_FILES", &var_files);
    kill_during(&t, &progress("terraform", ": started"));
    converges(&t, "killed in terraform");

    // bootstrap again: killed as the worker's upgrade to a new channel starts (its cordon,
    // marked, under way). The repair upgrades it; the worker ends on the new channel, takes
    // pods again, and carries no mark.
    t.env("JEEVES_MICROK8S_CHANNEL", "1.33/stable");
    kill_during(&t, &progress("bootstrap", "(cordon, drain)"));
    converges(&t, "killed in a worker's upgrade");
    let (code, out) = lab.ssh(
        "10.77.0.10",
        &lab.path("known_hosts"),
        "microk8s kubectl get nodes -o json",
    );
    assert_eq!(code, 0, "{out}");
    let nodes: serde_json::Value = serde_json::from_str(&out).unwrap();
    for n in nodes["items"].as_array().unwrap() {
        assert_ne!(n["spec"]["unschedulable"], true, "{n}");
        assert!(
            n["metadata"]["annotations"]
                .get("jeeves.io/cordoned")
                .is_none(),
            "{n}"
        );
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.33.0", "{n}");
    }

    // After every stage ran, killed and repaired: the whole state directory is private, every
    // directory 0700 and every file 0600 (known_hosts, the certificate cache, the rendered
    // manifests and values, the kubeconfig, the logs included).
    let mut open = Vec::new();
    let mut dirs = vec![t.path(".jeeves/lab")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
            let want = if meta.is_dir() { 0o700 } else { 0o600 };
            if meta.is_dir() {
                dirs.push(path.clone());
            }
            if mode != want && !meta.file_type().is_symlink() {
                open.push(format!("{} {mode:o}", path.display()));
            }
        }
    }
    assert!(open.is_empty(), "not private: {open:#?}");
}
