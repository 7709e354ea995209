//! The bootstrap stage on the lab: real OpenSSH, the MicroK8s stand-ins (tests/lab/standins).
//! Each test brings up its own lab; the lab is one per machine, so they take turns.

use crate::common;

use common::{Lab, Test};

fn planned_targets(run: &common::Run) -> Vec<String> {
    run.planned("bootstrap")
}

/// The controller's `microk8s kubectl get nodes -o json` items.
fn node_list(lab: &Lab) -> Vec<serde_json::Value> {
    let (code, out) = lab.ssh(
        "10.77.0.10",
        &lab.path("known_hosts"),
        "microk8s kubectl get nodes -o json",
    );
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["items"].as_array().unwrap().clone()
}

/// The sorted names of the nodes that pass `keep`.
fn node_names(lab: &Lab, keep: impl Fn(&serde_json::Value) -> bool) -> Vec<String> {
    let mut names: Vec<String> = node_list(lab)
        .iter()
        .filter(|n| keep(n))
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Ready nodes, as the controller's `microk8s kubectl get nodes -o json` reports.
fn nodes(lab: &Lab) -> Vec<String> {
    node_names(lab, |n| {
        n["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Where the controller's `microk8s kubectl patch node worker-N` answered in a run's output:
/// Jeeves cordons and uncordons a node with one patch each (README, "Versions follow the
/// controller").
fn patched(stdout: &str, n: u32) -> Vec<usize> {
    // The JSON string ends there: not `patched (no change)`.
    stdout
        .match_indices(&format!("node/worker-{n} patched\""))
        .map(|(at, _)| at)
        .collect()
}

/// Nodes carrying Jeeves' mark of a node it cordoned (`jeeves.io/cordoned`).
fn marked(lab: &Lab) -> Vec<String> {
    node_names(lab, |n| {
        n["metadata"]["annotations"]
            .get("jeeves.io/cordoned")
            .is_some()
    })
}

/// Nodes that take pods (not cordoned), as the controller's `microk8s kubectl` reports them.
fn schedulable(lab: &Lab) -> Vec<String> {
    node_names(lab, |n| n["spec"]["unschedulable"] != true)
}

/// The channel the host's microk8s snap tracks (`snap list`).
fn channel(lab: &Lab, ip: &str) -> String {
    let (code, out) = lab.ssh(ip, &lab.path("known_hosts"), "snap list microk8s");
    assert_eq!(code, 0, "{ip}: {out}");
    out.lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string()
}

#[test]
fn bootstrap_joins_what_is_missing_and_nothing_else() {
    let lab = Lab::up(3);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.env("JEEVES_SSH_CONNECT_TIMEOUT", "3s");
    t.run(&["up", "--only", "terraform"]).expect(0);
    let mut outputs = String::new();

    // A host key that is not the pinned one stops the stage before any command runs anywhere.
    let known_hosts = lab.path("known_hosts");
    let good = std::fs::read_to_string(&known_hosts).unwrap();
    let key_of = |ip: &str| {
        good.lines()
            .find(|l| l.starts_with(&format!("{ip} ")))
            .unwrap()
            .split_once(' ')
            .unwrap()
            .1
            .to_string()
    };
    let forged = good.replace(&key_of("10.77.0.12"), &key_of("10.77.0.11"));
    std::fs::write(&known_hosts, forged).unwrap();
    let run = t.run(&["up", "--only", "bootstrap"]).expect(1);
    assert!(
        run.stderr.contains("host key mismatch for 10.77.0.12:22"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("nothing was changed on any host"),
        "{}",
        run.stderr
    );
    std::fs::write(&known_hosts, &good).unwrap();
    // Nothing installed anywhere: snap's own answer on every host (a failed ssh would not say
    // it).
    for ip in ["10.77.0.10", "10.77.0.11", "10.77.0.12", "10.77.0.13"] {
        let (code, out) = lab.ssh(ip, &known_hosts, "snap list microk8s");
        assert!(
            code == 1 && out.contains("no matching snaps installed"),
            "{ip}: {code} {out}"
        );
    }
    outputs += &run.stdout;
    outputs += &run.stderr;

    // worker-3's sshd is down: the stage fails naming it, the other workers join.
    lab.must(&["stop-sshd", "worker-3"]);
    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(1);
    assert!(
        run.stderr.contains("1 of 3 worker(s) failed") && run.stderr.contains("worker-3"),
        "{}",
        run.stderr
    );
    assert_eq!(nodes(&lab), ["controller", "worker-1", "worker-2"]);
    outputs += &run.stdout;
    outputs += &run.stderr;

    // sshd back: the re-run plans and joins worker-3 only.
    lab.must(&["start-sshd", "worker-3"]);
    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    let planned = planned_targets(&run);
    assert!(
        !planned.is_empty() && planned.iter().all(|c| c.contains("worker-3")),
        "{planned:?}"
    );
    assert_eq!(
        nodes(&lab),
        ["controller", "worker-1", "worker-2", "worker-3"]
    );
    // The run's join token was revoked once its joins were over (the agent's token file holds
    // no line for it), so one seen on a worker's `microk8s join` command line opens nothing.
    let (code, tokens) = lab.ssh(
        "10.77.0.10",
        &known_hosts,
        "cat /var/snap/microk8s/current/credentials/cluster-tokens.txt",
    );
    assert_eq!((code, tokens.trim()), (0, ""), "tokens left: {tokens}");
    outputs += &run.stdout;

    // Converged: the probe finds nothing to do and nothing is applied. This run logs in with a
    // passphrase-protected key, the passphrase from JEEVES_SSH_KEY_PASSPHRASE.
    let protected = t.path("protected_ed25519");
    let (code, out) = common::tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "open-sesame-42",
            "-f",
            protected.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let public = std::fs::read_to_string(t.path("protected_ed25519.pub")).unwrap();
    let authorized = lab.path("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&public);
    std::fs::write(&authorized, keys).unwrap();
    t.env("JEEVES_SSH_KEY_PATH", protected.to_str().unwrap());
    let run = t.run(&["up", "--only", "bootstrap"]).expect(1);
    assert!(
        run.stderr.contains("protected_ed25519"),
        "without the passphrase the key cannot be used:\n{}",
        run.stderr
    );
    t.env("JEEVES_SSH_KEY_PASSPHRASE", "open-sesame-42");
    let run = t
        .run(&["--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    assert!(!run.stdout.contains("open-sesame-42"));
    assert_eq!(planned_targets(&run), Vec::<String>::new());
    assert_eq!(run.stage_result("bootstrap"), "unchanged");
    assert!(!run.stdout.contains("host_progress"), "nothing was applied");

    // A new track: the controller first, then each worker in turn, cordoned, drained, refreshed,
    // uncordoned and Ready before the next one is cordoned.
    t.env("JEEVES_MICROK8S_CHANNEL", "1.33/stable");
    // `plan` shows the change node by node, old channel → new, and refreshes nothing.
    let plan = t
        .run(&["--output", "plain", "plan", "--only", "bootstrap"])
        .expect(0);
    let planned: Vec<&str> = plan
        .stdout
        .lines()
        .filter_map(|l| l.split_once("[bootstrap]   ").map(|(_, c)| c))
        .collect();
    assert_eq!(
        planned,
        [
            "refresh controller: microk8s 1.32/stable → 1.33/stable",
            "refresh worker-1: microk8s 1.32/stable → 1.33/stable (cordon, drain, refresh, uncordon; one worker at a time)",
            "refresh worker-2: microk8s 1.32/stable → 1.33/stable (cordon, drain, refresh, uncordon; one worker at a time)",
            "refresh worker-3: microk8s 1.32/stable → 1.33/stable (cordon, drain, refresh, uncordon; one worker at a time)",
        ],
        "{}",
        plan.stdout
    );
    assert_eq!(
        channel(&lab, "10.77.0.11"),
        "1.32/stable",
        "plan changed nothing"
    );
    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    let planned = planned_targets(&run);
    for host in ["controller", "worker-1", "worker-2", "worker-3"] {
        assert!(
            planned.iter().any(|c| c.starts_with("refresh ")
                && c.contains(&format!("{host}: microk8s 1.32/stable → 1.33/stable"))),
            "{host}: {planned:?}"
        );
    }
    for ip in ["10.77.0.10", "10.77.0.11", "10.77.0.12", "10.77.0.13"] {
        let (code, out) = lab.ssh(ip, &known_hosts, "snap list microk8s");
        assert!(code == 0 && out.contains("1.33/stable"), "{ip}: {out}");
    }
    let at = |needle: &str| {
        run.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in:\n{}", run.stdout))
    };
    // Each worker patched twice: cordoned (and marked), then, once drained, uncordoned.
    let patches: Vec<Vec<usize>> = (1..=3).map(|n| patched(&run.stdout, n)).collect();
    for n in 1..=3 {
        let p = &patches[n as usize - 1];
        assert_eq!(
            p.len(),
            2,
            "worker-{n}: cordoned, uncordoned\n{}",
            run.stdout
        );
        let (cordoned, uncordoned) = (p[0], p[1]);
        assert!(cordoned < at(&format!("node/worker-{n} drained")));
        assert!(at(&format!("node/worker-{n} drained")) < uncordoned);
        if n < 3 {
            assert!(uncordoned < patches[n as usize][0], "one worker at a time");
        }
    }
    assert_eq!(marked(&lab), Vec::<String>::new(), "unmarked as uncordoned");
    assert_eq!(
        nodes(&lab),
        ["controller", "worker-1", "worker-2", "worker-3"]
    );
    outputs += &run.stdout;
    let run = t
        .run(&["--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    assert_eq!(run.stage_result("bootstrap"), "unchanged");

    // Back to an older track: refused before anything changes, naming the key (exit 2).
    t.env("JEEVES_MICROK8S_CHANNEL", "1.32/stable");
    let run = t.run(&["up", "--only", "bootstrap"]).expect(2);
    assert!(
        run.stderr.contains("microk8s.channel")
            && run.stderr.contains("does not support downgrades"),
        "{}",
        run.stderr
    );
    let (_, out) = lab.ssh("10.77.0.10", &known_hosts, "snap list microk8s");
    assert!(out.contains("1.33/stable"), "{out}");

    // Join tokens (32 hex characters) never reach output or logs.
    for entry in std::fs::read_dir(t.path(".jeeves/lab/logs")).unwrap() {
        outputs += &std::fs::read_to_string(entry.unwrap().path()).unwrap();
    }
    assert!(
        outputs.contains("Contacting cluster at 10.77.0.10"),
        "the join's own output is logged"
    );
    let hex_run = outputs
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 32);
    assert_eq!(hex_run, None, "a join token leaked");
}

/// Issue 12: a worker whose drain or refresh fails during a channel change is uncordoned again,
/// still on its old channel, and the stage fails naming it; the other workers move on. With
/// the fault gone, the next run completes the change.
#[test]
fn a_worker_whose_drain_or_refresh_fails_is_uncordoned_and_named() {
    let lab = Lab::up(3);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.run(&["up", "--only", "bootstrap"]).expect(0);
    let everyone = ["controller", "worker-1", "worker-2", "worker-3"];
    assert_eq!(schedulable(&lab), everyone);

    // worker-1: a pod without a controller, which `kubectl drain` refuses to delete without
    // --force. worker-2: `snap refresh` fails there (the stand-in's test hook).
    let known_hosts = lab.path("known_hosts");
    let (code, out) = lab.ssh(
        "10.77.0.10",
        &known_hosts,
        "lab-pods add default/bare worker-1 --owner none",
    );
    assert_eq!(code, 0, "{out}");
    let fail_refresh = lab.path("hosts/worker-2/var-snap/.lab-fail-refresh");
    std::fs::write(&fail_refresh, "").unwrap();

    t.env("JEEVES_MICROK8S_CHANNEL", "1.33/stable");
    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(1);
    for needle in [
        "2 of 3 worker(s) failed",
        "worker-1: draining worker-1 failed",
        "uncordoned, still on its old channel",
        "cannot delete Pods that declare no controller",
        "worker-2: refreshing worker-2 to 1.33/stable failed; uncordoned again",
        "`snap refresh` on worker-2 exited with status 1",
        "error: cannot perform the following tasks",
    ] {
        assert!(run.stderr.contains(needle), "{needle}:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("worker-3:"), "{}", run.stderr);
    // Both take pods again: cordoned, then uncordoned (one patch each), and unmarked.
    assert_eq!(schedulable(&lab), everyone);
    assert_eq!(marked(&lab), Vec::<String>::new());
    for n in [1, 2] {
        assert_eq!(
            patched(&run.stdout, n).len(),
            2,
            "worker-{n}: cordoned, then uncordoned:\n{}",
            run.stdout
        );
    }
    assert_eq!(channel(&lab, "10.77.0.10"), "1.33/stable");
    assert_eq!(channel(&lab, "10.77.0.11"), "1.32/stable");
    assert_eq!(channel(&lab, "10.77.0.12"), "1.32/stable");
    assert_eq!(channel(&lab, "10.77.0.13"), "1.33/stable");

    // The faults gone, the next run refreshes those two, and only those.
    let (code, out) = lab.ssh("10.77.0.10", &known_hosts, "lab-pods rm default/bare");
    assert_eq!(code, 0, "{out}");
    std::fs::remove_file(&fail_refresh).unwrap();
    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    let planned = planned_targets(&run);
    assert_eq!(planned.len(), 2, "{planned:?}");
    assert!(
        planned
            .iter()
            .all(|c| c.starts_with("refresh worker-1:") || c.starts_with("refresh worker-2:")),
        "{planned:?}"
    );
    for ip in ["10.77.0.10", "10.77.0.11", "10.77.0.12", "10.77.0.13"] {
        assert_eq!(channel(&lab, ip), "1.33/stable", "{ip}");
    }
    assert_eq!(schedulable(&lab), everyone);
    assert_eq!(nodes(&lab), everyone);

    // A run stopped between a worker's refresh and its uncordon leaves it cordoned and marked
    // (made here with the patch Jeeves cordons with); an operator cordoned another one. The
    // next run uncordons the first only: the second is someone else's maintenance.
    let mark = r#"{"metadata":{"annotations":{"jeeves.io/cordoned":"upgrade"}},"spec":{"unschedulable":true}}"#;
    let on_controller = |cmd: &str| {
        let (code, out) = lab.ssh("10.77.0.10", &known_hosts, cmd);
        assert_eq!(code, 0, "{cmd}: {out}");
    };
    let left_cordoned = |node: &str| {
        on_controller(&format!(
            "microk8s kubectl patch node {node} --type merge --patch '{mark}'"
        ))
    };
    left_cordoned("worker-3");
    on_controller("microk8s kubectl cordon worker-2");
    let run = t
        .run(&["--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    assert_eq!(
        planned_targets(&run),
        ["uncordon worker-3 (cordoned by a run that stopped before uncordoning it)"]
    );
    assert_eq!(schedulable(&lab), ["controller", "worker-1", "worker-3"]);
    assert_eq!(marked(&lab), Vec::<String>::new());
    let run = t
        .run(&["--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    assert_eq!(run.stage_result("bootstrap"), "unchanged");
    assert_eq!(schedulable(&lab), ["controller", "worker-1", "worker-3"]);

    // Someone uncordons by hand a worker a stopped run left cordoned: the mark stays, and their
    // next cordon would read as Jeeves'. The next run removes the mark alone; the cordon that
    // follows is theirs, and no run undoes it.
    left_cordoned("worker-1");
    on_controller("microk8s kubectl uncordon worker-1");
    let run = t
        .run(&["--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    assert_eq!(
        planned_targets(&run),
        [
            "unmark worker-1 (uncordoned by hand since a run left it cordoned; a later cordon is not Jeeves')"
        ]
    );
    assert_eq!(marked(&lab), Vec::<String>::new());
    on_controller("microk8s kubectl cordon worker-1");
    let run = t
        .run(&["--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    assert_eq!(run.stage_result("bootstrap"), "unchanged");
    assert_eq!(schedulable(&lab), ["controller", "worker-3"]);

    // A new channel with worker-1 and worker-2 still cordoned by the operator: they are drained
    // and refreshed but left cordoned, as found (no patch of them); worker-3 is cordoned and
    // uncordoned.
    t.env("JEEVES_MICROK8S_CHANNEL", "1.33/candidate");
    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    for n in [1, 2] {
        let line = format!(
            "refresh worker-{n}: microk8s 1.33/stable → 1.33/candidate (drain, refresh, left cordoned as found; one worker at a time)"
        );
        assert!(run.planned("bootstrap").contains(&line), "{line}");
        assert!(
            run.stdout.contains(&format!("node/worker-{n} drained")),
            "{}",
            run.stdout
        );
        assert_eq!(patched(&run.stdout, n), Vec::<usize>::new());
    }
    assert_eq!(patched(&run.stdout, 3).len(), 2);
    for ip in ["10.77.0.10", "10.77.0.11", "10.77.0.12", "10.77.0.13"] {
        assert_eq!(channel(&lab, ip), "1.33/candidate", "{ip}");
    }
    assert_eq!(schedulable(&lab), ["controller", "worker-3"]);
    assert_eq!(marked(&lab), Vec::<String>::new());
}

/// A join that meets the controller's API server restarting (kubelite restarted just as the
/// worker joins: the agent answers 500 and `microk8s join` exits 6) waits for the controller
/// and joins again; the run succeeds. (Any other failure that passes is retried the same way:
/// liveness.rs.)
#[test]
fn a_join_that_meets_a_restarting_controller_waits_and_joins_again() {
    let lab = Lab::up(1);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.run(&["up", "--only", "terraform"]).expect(0);
    // The stand-in's test hooks: the controller's next join request restarts kubelite, which
    // then keeps the API server down for 6 s.
    let hook = lab.path("hosts/controller/var-snap/.lab-restart-kubelite-on-join");
    std::fs::write(&hook, "").unwrap();
    let restart = 6.0;
    std::fs::write(
        lab.path("hosts/controller/var-snap/.lab-kubelite-restart-seconds"),
        format!("{restart}"),
    )
    .unwrap();

    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    assert!(!hook.exists(), "a join met the restart");
    let seconds = |e: &serde_json::Value| {
        let ts = e["ts"].as_str().unwrap();
        humantime::parse_rfc3339(ts)
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let events = run.events();
    let progress: Vec<(f64, &str)> = events
        .iter()
        .filter(|e| e["event"] == "host_progress" && e["host"] == "worker-1")
        .map(|e| (seconds(e), e["message"].as_str().unwrap()))
        .collect();
    let at = |message: &str| {
        progress
            .iter()
            .find(|(_, m)| m.starts_with(message))
            .unwrap_or_else(|| panic!("{message}: {progress:?}"))
            .0
    };
    let joining = at("joining");
    let waited =
        at("the join failed (Connection failed. Failed to retrieve list of control plane nodes");
    let joined = at("waiting for the node to be Ready");
    assert!(joining <= waited && waited <= joined, "{progress:?}");
    assert!(
        joined - joining >= restart - 1.0,
        "the join waited for the restart: {progress:?}"
    );
    assert!(
        run.stdout
            .contains("Failed to retrieve list of control plane nodes"),
        "the first attempt's answer is logged"
    );
    assert!(run.stdout.contains("Successfully joined the cluster."));
    assert_eq!(nodes(&lab), ["controller", "worker-1"]);
}
