//! Three controllers on the lab (`lab up --controllers 3 --workers 1`): a stack stood up with one
//! controller goes to three as a planned change (terraform adds two, bootstrap joins them as full
//! nodes; nothing replaced), the datastore then has three voters and `microk8s status` says
//! `high-availability: yes`; the run after is unchanged. The tls stage then puts HAProxy on all
//! three with one certificate, validated through controller-2 (`ingress_on_every_controller`;
//! a restored lineage renews behind every HAProxy from the run that restores it),
//! and DNS first makes one health-checked multivalue record per controller. A new channel refreshes the first
//! controller, then the others one at a time. One controller powered off: the datastore
//! keeps it as a voter (go-dqlite promotes no one in its place when no other node can take it;
//! tests/lab/standins/README.md, "Control-plane joins"), `check` names it with its repair, `up`
//! names it and fails for it alone; HTTPS answers through the two others; booted again, it is a Ready voter and the next run is
//! unchanged. The first controller powered off: HTTPS answers through controller-2, and
//! `jeeves ssh controller` and `jeeves tunnel` go to controller-2 and say so. One lab bring-up; the Lease duration and the grace period are shortened (8 s and
//! 10 s) so that a powered-off node goes NotReady in seconds.

use crate::common;

use std::time::{Duration, Instant};

use common::{Lab, Run, Test};

const CONTROLLER: &str = "10.77.0.10";
const CONTROLLERS: [&str; 3] = [CONTROLLER, "10.77.0.102", "10.77.0.103"];
const DOMAIN: &str = "chat.jeeves.test";

/// Pebble's DNS (pebble-challtestsrv's management API) answers `ip` alone for the domain: the
/// CA's HTTP-01 request goes to that controller.
fn pebble_resolves_domain_to(ip: &str) {
    let body = format!(r#"{{"host":"{DOMAIN}","addresses":["{ip}"]}}"#);
    let (code, out) = common::tool(
        "curl",
        &["-sSf", "-d", &body, "http://127.0.0.1:8055/add-a"],
    );
    assert_eq!(code, 0, "challtestsrv add-a: {out}");
}

/// The SHA-256 fingerprint of the certificate served over HTTPS through `ip`, after a handshake
/// verified against Pebble's root.
fn served_fingerprint(lab: &Lab, ip: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {ip}:443 -servername {DOMAIN} -verify_return_error -CAfile '{}' </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
            lab.path("pebble/root.pem").display()
        ))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        fp.contains("Fingerprint="),
        "no verified certificate through {ip}: {out:?}"
    );
    fp
}

/// HAProxy on every controller (the tls stage with three): Pebble's DNS sends the domain to
/// controller-2 alone, so the HTTP-01 validation reaches certbot on the first controller only
/// through controller-2's HAProxy, which forwards /.well-known/acme-challenge/ to port 8402.
/// Then HTTPS through each controller serves the same certificate; the next run is unchanged;
/// and a renewal on the first controller (port 80 held by HAProxy, nothing stopped) validates
/// through controller-2 again.
fn ingress_on_every_controller(lab: &Lab, t: &Test) -> String {
    pebble_resolves_domain_to(CONTROLLERS[1]);
    let run = t.run(&["-v", "--output", "json", "up", "--only", "tls"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let planned = run.planned("tls");
    assert!(
        planned.iter().any(|c| c.starts_with("issue ")
            && c.contains(
                "on 10.77.0.10:8402 behind every controller's haproxy (nothing stopped)"
            )),
        "{planned:?}"
    );
    for peer in ["controller-2", "controller-3"] {
        let change =
            format!("write {peer}: /etc/haproxy/certs/{DOMAIN}.pem (the first controller's)");
        assert!(planned.contains(&change), "{change}: {planned:?}");
    }
    // The PEM went from the first controller to the others on stdin: its key is in no output
    // and no log, even with -v.
    no_private_key(t, &run);
    let served: Vec<String> = CONTROLLERS
        .iter()
        .map(|ip| served_fingerprint(lab, ip))
        .collect();
    assert!(served.iter().all(|f| *f == served[0]), "{served:?}");
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    assert_eq!(run.planned("tls"), Vec::<String>::new());
    // DNS first made one health-checked multivalue record per controller (the lab's moto).
    let (status, message, _) = finding(t, "dns/record");
    assert_eq!(status, "ok", "{message}");
    assert!(
        message.contains("→ 10.77.0.10, 10.77.0.102, 10.77.0.103 (multivalue answer"),
        "{message}"
    );

    // Drill: controller-2's HAProxy stopped; HTTPS still answers through the other two.
    on_controller_at(lab, CONTROLLERS[1], "systemctl stop haproxy");
    for ip in [CONTROLLERS[0], CONTROLLERS[2]] {
        assert_eq!(served_fingerprint(lab, ip), served[0]);
    }
    on_controller_at(lab, CONTROLLERS[1], "systemctl start haproxy");

    // certbot renews where HAProxy forwards: the pre hook stops nothing, and HAProxy holds
    // port 80 throughout (a renewal on port 80 would fail to bind it).
    assert_eq!(
        on_controller(
            lab,
            &format!("grep -x -e 'http01_port = 8402' -e 'http01_address = {CONTROLLER}' /etc/letsencrypt/renewal/{DOMAIN}.conf"),
        )
        .lines()
        .count(),
        2
    );
    // A rebuilt first controller gets the cached lineage, whose renewal config may still name
    // port 80 (cached with one controller): the run that restores it moves its listener behind
    // every HAProxy, and caches it so.
    let cache = t.path(&format!(".jeeves/lab/tls/{DOMAIN}.tar.gz"));
    let (code, out) = common::tool(
        "sh",
        &[
            "-ec",
            "d=$(mktemp -d); tar xzf \"$1\" -C \"$d\"; sed -i '/^http01_/d' \"$d/renewal/$2.conf\"; tar czf \"$1\" -C \"$d\" live archive renewal accounts; rm -r \"$d\"",
            "sh",
            &cache.display().to_string(),
            DOMAIN,
        ],
    );
    assert_eq!(code, 0, "{out}");
    on_controller(
        lab,
        &format!(
            "rm -r /etc/letsencrypt/live/{DOMAIN} /etc/letsencrypt/archive/{DOMAIN} /etc/letsencrypt/renewal/{DOMAIN}.conf"
        ),
    );
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    let restore = format!(
        "restore certificate for {DOMAIN} from the state dir's copy (no new ACME order); certbot renews it on 10.77.0.10:8402 behind every haproxy"
    );
    assert!(
        run.planned("tls").contains(&restore),
        "{:?}",
        run.planned("tls")
    );
    assert_eq!(
        on_controller(
            lab,
            &format!("grep -x -e 'http01_port = 8402' -e 'http01_address = {CONTROLLER}' /etc/letsencrypt/renewal/{DOMAIN}.conf"),
        )
        .lines()
        .count(),
        2
    );
    let (code, cached) = common::tool(
        "tar",
        &[
            "xzf",
            &cache.display().to_string(),
            "-O",
            &format!("renewal/{DOMAIN}.conf"),
        ],
    );
    assert!(
        code == 0 && cached.contains("http01_port = 8402"),
        "{cached}"
    );
    // A lineage issued with one controller renews on port 80 (no http01 keys): the next run
    // moves its listener behind every HAProxy.
    on_controller(
        lab,
        &format!("sed -i '/^http01_/d' /etc/letsencrypt/renewal/{DOMAIN}.conf"),
    );
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    assert_eq!(
        run.planned("tls"),
        [format!(
            "set certbot's HTTP-01 listener for renewing {DOMAIN} to 10.77.0.10:8402 (behind every haproxy; now port 80, haproxy stopped for it)"
        )]
    );
    // --no-random-sleep-on-renew: certbot sleeps up to 8 minutes when not on a terminal.
    on_controller(
        lab,
        "certbot renew --force-renewal --no-random-sleep-on-renew",
    );
    let renewed = served_fingerprint(lab, CONTROLLER);
    assert_ne!(renewed, served[0], "the renewed certificate is served");
    // The other controllers get it at the next run (no channel without one yet).
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    let planned = run.planned("tls");
    for peer in ["controller-2", "controller-3"] {
        let change =
            format!("write {peer}: /etc/haproxy/certs/{DOMAIN}.pem (the first controller's)");
        assert!(planned.contains(&change), "{change}: {planned:?}");
    }
    for ip in CONTROLLERS {
        assert_eq!(served_fingerprint(lab, ip), renewed, "{ip}");
    }
    renewed
}

fn no_private_key(t: &Test, run: &Run) {
    assert!(
        !run.stdout.contains("PRIVATE KEY") && !run.stderr.contains("PRIVATE KEY"),
        "a private key in jeeves' output"
    );
    for log in std::fs::read_dir(t.path(".jeeves/lab/logs")).unwrap() {
        let path = log.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("PRIVATE KEY"),
            "a private key in {}",
            path.display()
        );
    }
}

fn on_controller(lab: &Lab, cmd: &str) -> String {
    on_controller_at(lab, CONTROLLER, cmd)
}

fn on_controller_at(lab: &Lab, ip: &str, cmd: &str) -> String {
    let (code, out) = lab.ssh(ip, &lab.path("known_hosts"), cmd);
    assert_eq!(code, 0, "{ip}: {cmd}: {out}");
    out
}

/// Polls until the controller lists `name` as `status`.
fn wait_for_status(lab: &Lab, name: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = on_controller(lab, &format!("microk8s kubectl get node {name}"));
        let now = out
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_string();
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

/// `microk8s status` on the first controller: its `high-availability` and datastore lines, the
/// addresses of each in order (members are listed in the order they joined, which varies).
fn ha_status(lab: &Lab) -> Vec<String> {
    on_controller(lab, "microk8s status")
        .lines()
        .skip(1)
        .take(3)
        .map(|l| match l.split_once(": ") {
            Some((what, list)) if what.contains("datastore") => {
                let mut a: Vec<&str> = list.split(' ').collect();
                a.sort();
                format!("{what}: {}", a.join(" "))
            }
            _ => l.to_string(),
        })
        .collect()
}

fn up(t: &Test, code: i32) -> Run {
    t.run(&[
        "-v",
        "--output",
        "json",
        "up",
        "--only",
        "terraform",
        "--only",
        "bootstrap",
    ])
    .expect(code)
}

/// `jeeves check`'s finding `check` as (status, message, repair).
fn finding(t: &Test, check: &str) -> (String, String, String) {
    let out = t.command(&["--output", "json", "check"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "check_finished" && e["check"] == check)
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("status"), s("message"), s("repair"))
        })
        .unwrap_or_else(|| panic!("no {check} in check's findings"))
}

#[test]
fn one_controller_becomes_three_full_nodes_and_survives_one_powered_off() {
    let lab = Lab::up_with(&["--controllers", "3", "--workers", "1"]);
    for host in ["controller", "controller-2", "controller-3", "worker-1"] {
        let knob = |name: &str, v: &str| {
            std::fs::write(lab.path(&format!("hosts/{host}/var-snap/.lab-{name}")), v).unwrap()
        };
        knob("node-lease-seconds", "8");
        knob("node-monitor-grace-seconds", "10");
    }
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.with_standins()
        .env("JEEVES_TUNNEL_LOCAL_PORT", "26531")
        .env("JEEVES_SSH_CONNECT_TIMEOUT", "3s");

    // One controller (the default): the lab's other two controller hosts are not the stack's.
    let run = up(&t, 0);
    let single = |l: &String| l.contains("controller-") || l.contains("controller_more");
    assert!(
        !run.planned("terraform").iter().any(single),
        "{:?}",
        run.planned("terraform")
    );
    assert!(
        !run.planned("bootstrap").iter().any(single),
        "{:?}",
        run.planned("bootstrap")
    );
    assert!(t.state()["inventory"].get("more_controllers").is_none());
    assert_eq!(
        ha_status(&lab),
        [
            "high-availability: no",
            "  datastore master nodes: 10.77.0.10:19001",
            "  datastore standby nodes: none"
        ]
    );

    // 1 → 3 on the live stack: two more controllers, joined as full nodes; nothing replaced.
    t.env("JEEVES_CLUSTER_CONTROLLERS", "3");
    let run = up(&t, 0);
    assert_eq!(
        run.planned("terraform"),
        [
            "create terraform_data.controller_more[0]",
            "create terraform_data.controller_more[1]"
        ]
    );
    let bootstrap = run.planned("bootstrap");
    for peer in ["controller-2", "controller-3"] {
        for change in [
            format!("install {peer}: microk8s 1.32/stable"),
            format!("join {peer} → controller (control plane)"),
        ] {
            assert!(bootstrap.contains(&change), "{change}: {bootstrap:?}");
        }
    }
    assert!(
        !bootstrap.iter().any(|l| l.contains("worker-1")),
        "{bootstrap:?}"
    );
    assert_eq!(
        ha_status(&lab),
        [
            "high-availability: yes",
            "  datastore master nodes: 10.77.0.102:19001 10.77.0.103:19001 10.77.0.10:19001",
            "  datastore standby nodes: none"
        ]
    );
    // The peers joined as control-plane nodes, not as workers.
    let labels = on_controller(&lab, "microk8s kubectl get nodes -o json");
    let nodes: serde_json::Value = serde_json::from_str(&labels).unwrap();
    for node in nodes["items"].as_array().unwrap() {
        let worker = node["metadata"]["labels"]
            .get("node.kubernetes.io/microk8s-worker")
            .is_some();
        assert_eq!(worker, node["metadata"]["name"] == "worker-1", "{node}");
    }
    let run = up(&t, 0);
    assert_eq!(run.planned("terraform"), Vec::<String>::new());
    assert_eq!(run.planned("bootstrap"), Vec::<String>::new());
    let served = ingress_on_every_controller(&lab, &t);

    // A new channel: the first controller refreshed, then the others one at a time, each
    // ready before the next starts (each restarts a voter); the datastore keeps its voters.
    t.env("JEEVES_MICROK8S_CHANNEL", "1.33/stable");
    let run = up(&t, 0);
    let bootstrap = run.planned("bootstrap");
    for peer in ["controller", "controller-2", "controller-3"] {
        let change = format!("refresh {peer}: microk8s 1.32/stable → 1.33/stable");
        assert!(bootstrap.contains(&change), "{change}: {bootstrap:?}");
    }
    let progress: Vec<String> = run
        .events()
        .iter()
        .filter(|e| e["event"] == "host_progress")
        .map(|e| {
            format!(
                "{}: {}",
                e["host"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    let at = |line: &str| {
        progress
            .iter()
            .position(|p| p == line)
            .unwrap_or_else(|| panic!("{line}: {progress:#?}"))
    };
    let refreshing = |h: &str| {
        at(&format!(
            "{h}: refreshing microk8s 1.32/stable → 1.33/stable"
        ))
    };
    let ready = |h: &str| at(&format!("{h}: on 1.33/stable, ready"));
    let (first, second) = if refreshing("controller-2") < refreshing("controller-3") {
        ("controller-2", "controller-3")
    } else {
        ("controller-3", "controller-2")
    };
    assert!(at("controller: ready") < refreshing(first), "{progress:#?}");
    assert!(ready(first) < refreshing(second), "{progress:#?}");
    assert_eq!(ha_status(&lab)[0], "high-availability: yes");
    assert_eq!(up(&t, 0).planned("bootstrap"), Vec::<String>::new());

    // controller-3 powered off: still a voter (no node can take its place), NotReady; check
    // names it with its repair; up names it and fails for it alone.
    lab.must(&["power-off", "controller-3"]);
    // HTTPS answers through the two others, with the same certificate.
    for ip in [CONTROLLERS[0], CONTROLLERS[1]] {
        assert_eq!(served_fingerprint(&lab, ip), served, "{ip}");
    }
    wait_for_status(&lab, "controller-3", "NotReady");
    assert_eq!(ha_status(&lab)[0], "high-availability: yes");
    let (status, message, repair) = finding(&t, "ssh/controller-3");
    assert_eq!(status, "fail", "{message}");
    assert!(message.contains("dead, or powered off"), "{message}");
    assert!(
        repair.contains("jeeves start") && repair.contains("jeeves up"),
        "{repair}"
    );
    let run = up(&t, 1);
    let planned = run.planned("bootstrap");
    assert_eq!(planned.len(), 1, "{planned:?}");
    assert!(
        planned[0].starts_with("repair controller-3: unreachable"),
        "{planned:?}"
    );
    assert!(
        run.stderr
            .contains("1 of 3 controller(s) not in the control plane")
            && run.stderr.contains("controller-3: unreachable"),
        "{}",
        run.stderr
    );

    // Booted again: its services come back, it renews its Lease and answers the leader; the run
    // finds three Ready voters and nothing to do, and so does the next.
    lab.must(&["power-on", "controller-3"]);
    wait_for_status(&lab, "controller-3", "Ready");
    for _ in 0..2 {
        let run = up(&t, 0);
        assert_eq!(run.planned("bootstrap"), Vec::<String>::new());
    }
    assert_eq!(ha_status(&lab)[0], "high-availability: yes");
    assert_eq!(finding(&t, "ssh/controller-3").0, "ok");

    // The first controller powered off: `jeeves ssh controller` and `jeeves tunnel` go to the
    // first controller that answers, and say which (the API through the tunnel is the one on
    // controller-2; the stand-in's cluster view there is its own: README, "Control-plane joins").
    lab.must(&["power-off", "controller"]);
    // HTTPS still answers through controller-2. (controller-3's HAProxy is not back: the lab's
    // power-on starts the snap's services, not the enabled haproxy unit.)
    assert_eq!(served_fingerprint(&lab, CONTROLLERS[1]), served);
    let out = t
        .command(&["ssh", "controller", "--", "hostname"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "controller-2", "{stderr}");
    assert!(stderr.contains("not answering: controller"), "{stderr}");
    let mut tunnel = t
        .command(&["tunnel"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(tunnel.stdout.take().unwrap()));
    let open = lines
        .find_map(|l| l.ok().filter(|l| l.starts_with("tunnel open: ")))
        .expect("jeeves tunnel ended before it opened");
    let _ = tunnel.kill();
    let _ = tunnel.wait();
    assert!(
        open.ends_with(
            "→ the MicroK8s API on controller-2 (10.77.0.102); not answering: controller"
        ),
        "{open}"
    );
}
