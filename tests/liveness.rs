//! Dead workers on the lab, as Kubernetes 1.32 sees them: a kubelet that stops renewing its
//! Lease, the node read Unknown after the grace period (tests/lab/standins/README.md, "Node
//! liveness"). A wiped worker, a stopped kubelite and a powered-off worker are each named by
//! `jeeves check` and repaired by the next `up`, which logs in to that worker alone. The first
//! `up` meets two injected join failures (a refused token, an unknown 500) and gets through both.
//! One lab bring-up; the Lease duration and the grace period are shortened (8 s and 10 s) so that
//! a node goes Unknown in seconds.

use crate::common;

use std::time::{Duration, Instant};

use common::{Lab, Run, Test};

const CONTROLLER: &str = "10.77.0.10";

/// `microk8s kubectl get node NAME` on the controller: the STATUS column.
fn node_status(lab: &Lab, name: &str) -> String {
    let (code, out) = lab.ssh(
        CONTROLLER,
        &lab.path("known_hosts"),
        &format!("microk8s kubectl get node {name}"),
    );
    assert_eq!(code, 0, "{out}");
    out.lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

/// Polls until the controller lists `name` as `status` (the grace period is 10 s here).
fn wait_for_status(lab: &Lab, name: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = node_status(lab, name);
        if now == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} still {now} after 30 s, not {status}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Seconds since `name`'s kubelet last renewed its Lease, by the controller's clock.
fn lease_age(lab: &Lab, name: &str) -> f64 {
    let (code, out) = lab.ssh(
        CONTROLLER,
        &lab.path("known_hosts"),
        "date +%s.%N; microk8s kubectl get leases -n kube-node-lease -o json",
    );
    assert_eq!(code, 0, "{out}");
    let (now, json) = out.split_once('\n').unwrap();
    let leases: serde_json::Value = serde_json::from_str(json).unwrap();
    let lease = leases["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Lease for {name}: {json}"));
    let renewed = humantime::parse_rfc3339(lease["spec"]["renewTime"].as_str().unwrap()).unwrap();
    let renewed = renewed
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    now.trim().parse::<f64>().unwrap() - renewed
}

/// `jeeves check`'s node/* findings as (check, status, message).
fn node_checks(t: &Test) -> Vec<(String, String, String)> {
    let out = t.command(&["--output", "json", "check"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "check_finished")
        .filter(|e| e["check"].as_str().unwrap_or_default().starts_with("node/"))
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("check"), s("status"), s("message"))
        })
        .collect()
}

/// Every node ok but `dead`, which fails saying its kubelet stopped posting.
#[track_caller]
fn check_names(t: &Test, dead: Option<&str>) {
    let found = node_checks(t);
    assert_eq!(found.len(), 4, "{found:?}");
    for (check, status, message) in &found {
        if Some(check.strip_prefix("node/").unwrap()) == dead {
            assert_eq!(status, "fail", "{found:?}");
            assert!(
                message.contains("Ready=Unknown")
                    && message.contains("Kubelet stopped posting node status."),
                "{found:?}"
            );
        } else {
            assert_eq!(status, "ok", "{found:?}");
        }
    }
}

/// How many logins each worker's real sshd has accepted so far (its log).
fn logins(lab: &Lab) -> Vec<usize> {
    ["worker-1", "worker-2", "worker-3"]
        .iter()
        .map(|h| {
            std::fs::read_to_string(lab.path(&format!("hosts/{h}/log/sshd.log")))
                .unwrap_or_default()
                .matches("Accepted publickey for root")
                .count()
        })
        .collect()
}

/// A bootstrap run, and which workers it logged in to (1 each at most).
fn bootstrap(lab: &Lab, t: &Test, code: i32) -> (Run, Vec<usize>) {
    let before = logins(lab);
    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(code);
    let after = logins(lab);
    let logged_in = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    (run, logged_in)
}

/// A bootstrap run that installs and joins worker-1 again, logging in to it alone.
#[track_caller]
fn reinstalls_worker_1(lab: &Lab, t: &Test) {
    let (run, logged_in) = bootstrap(lab, t, 0);
    assert_eq!(
        run.planned("bootstrap"),
        [
            "install worker-1: microk8s 1.32/stable",
            "join worker-1 → controller"
        ]
    );
    assert_eq!(logged_in, [1, 0, 0], "worker-1 alone: {}", vouched(&run));
}

/// The run's line naming the workers the cluster vouched for, for failure messages.
fn vouched(run: &Run) -> String {
    run.events()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.contains("not logged in to"))
        .unwrap_or("none vouched for")
        .to_string()
}

/// The hosts a bootstrap run planned changes for: each planned line's host.
fn planned_hosts(run: &Run) -> Vec<String> {
    let mut hosts: Vec<String> = run
        .planned("bootstrap")
        .iter()
        .map(|l| {
            l.split([':', ' '])
                .find(|w| w.starts_with("worker-") || *w == "controller")
                .unwrap_or(l)
                .to_string()
        })
        .collect();
    hosts.dedup();
    hosts
}

#[test]
fn a_dead_worker_is_found_by_its_lease_named_by_check_and_repaired_alone() {
    let lab = Lab::up(3);
    for host in ["controller", "worker-1", "worker-2", "worker-3"] {
        let knob = |name: &str, v: &str| {
            std::fs::write(lab.path(&format!("hosts/{host}/var-snap/.lab-{name}")), v).unwrap()
        };
        knob("node-lease-seconds", "8");
        knob("node-monitor-grace-seconds", "10");
    }
    // The controller's agent answers the first two join requests with these (stand-in hook).
    let answers = lab.path("hosts/controller/var-snap/.lab-join-answers");
    std::fs::write(
        &answers,
        "500 invalid token\n500 something the lab injected\n",
    )
    .unwrap();
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.with_standins()
        .env("JEEVES_TUNNEL_LOCAL_PORT", "26512")
        .env("JEEVES_SSH_CONNECT_TIMEOUT", "3s");

    // Joins: a refused token gets a new one and one more join; an unknown 500 is waited out.
    // terraform and bootstrap only: `check` reads the nodes through a tunnel of its own, and
    // its other checks (HAProxy, the site, the release) are not what this test looks at.
    let run = t
        .run(&[
            "-v",
            "--output",
            "json",
            "up",
            "--only",
            "terraform",
            "--only",
            "bootstrap",
        ])
        .expect(0);
    assert_eq!(std::fs::read_to_string(&answers).unwrap(), "", "both met");
    let progress: Vec<String> = run
        .events()
        .iter()
        .filter(|e| e["event"] == "host_progress")
        .map(|e| format!("{}: {}", e["host"], e["message"]))
        .collect();
    let said = |what: &str| progress.iter().filter(|m| m.contains(what)).count();
    assert_eq!(
        said("the join token was refused; joining with a new one"),
        1,
        "{progress:#?}"
    );
    assert_eq!(
        said(
            "the join failed (Connection failed. Something the lab injected (500).); waiting for the controller, then joining again"
        ),
        1,
        "{progress:#?}"
    );
    assert_eq!(said("joined, Ready"), 3, "{progress:#?}");
    check_names(&t, None);
    let (converged, logged_in) = bootstrap(&lab, &t, 0);
    assert_eq!(logged_in, [0, 0, 0], "{}", vouched(&converged));
    assert_eq!(converged.handshakes(), 1);

    let known_hosts = lab.path("known_hosts");
    let on = |ip: &str, cmd: &str| {
        let (code, out) = lab.ssh(ip, &known_hosts, cmd);
        assert_eq!(code, 0, "{cmd}: {out}");
    };

    // The Lease finds a dead worker before its node reads Unknown: with the grace period
    // raised to 60 s, worker-1 wiped (its snap removed with its data, as a rebuilt host) still
    // reads Ready once its Lease is older than half its duration (4 s of 8), and the next run
    // logs in to it, installs and joins.
    let grace = lab.path("hosts/controller/var-snap/.lab-node-monitor-grace-seconds");
    std::fs::write(&grace, "60").unwrap();
    on("10.77.0.11", "snap remove --purge microk8s");
    let deadline = Instant::now() + Duration::from_secs(30);
    while lease_age(&lab, "worker-1") <= 4.5 {
        assert!(
            Instant::now() < deadline,
            "worker-1's Lease is still renewed"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(node_status(&lab, "worker-1"), "Ready");
    reinstalls_worker_1(&lab, &t);
    std::fs::write(&grace, "10").unwrap();

    // Wiped again, and left until its node reads Unknown: `check` names it; installed, joined.
    on("10.77.0.11", "snap remove --purge microk8s");
    wait_for_status(&lab, "worker-1", "NotReady");
    check_names(&t, Some("worker-1"));
    reinstalls_worker_1(&lab, &t);
    assert_eq!(node_status(&lab, "worker-1"), "Ready");

    // A stopped kubelite: started; the node turns Ready by itself.
    on("10.77.0.12", "snap stop microk8s.daemon-kubelite");
    wait_for_status(&lab, "worker-2", "NotReady");
    check_names(&t, Some("worker-2"));
    let (run, logged_in) = bootstrap(&lab, &t, 0);
    assert_eq!(planned_hosts(&run), ["worker-2"]);
    assert!(run.planned("bootstrap")[0].starts_with("start worker-2: microk8s.daemon-kubelite"));
    assert_eq!(logged_in, [0, 1, 0], "worker-2 alone: {}", vouched(&run));
    assert_eq!(node_status(&lab, "worker-2"), "Ready");

    // A powered-off worker: no run can log in to it, and the one that tries says so and
    // changes nothing else; once it is booted again, its kubelet is back (its services are
    // enabled) and the next run finds nothing to do.
    lab.must(&["power-off", "worker-3"]);
    wait_for_status(&lab, "worker-3", "NotReady");
    check_names(&t, Some("worker-3"));
    let (run, logged_in) = bootstrap(&lab, &t, 1);
    assert_eq!(planned_hosts(&run), ["worker-3"]);
    assert_eq!(logged_in, [0, 0, 0], "{}", vouched(&run));
    assert!(
        run.stderr.contains("1 of 3 worker(s) failed") && run.stderr.contains("worker-3"),
        "{}",
        run.stderr
    );
    lab.must(&["power-on", "worker-3"]);
    wait_for_status(&lab, "worker-3", "Ready");

    // Repaired: every node Ready in `check`. The run after logs in to worker-3 alone (the run
    // that could not reach it dropped its record) and finds nothing to do; the one after that
    // logs in to the controller alone.
    check_names(&t, None);
    let (run, logged_in) = bootstrap(&lab, &t, 0);
    assert_eq!(run.planned("bootstrap"), Vec::<String>::new());
    assert_eq!(logged_in, [0, 0, 1], "{}", vouched(&run));
    let (run, logged_in) = bootstrap(&lab, &t, 0);
    assert_eq!(logged_in, [0, 0, 0], "{}", vouched(&run));
    assert_eq!(run.handshakes(), 1);
}
