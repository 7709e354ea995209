//! The lab itself (tests/lab/lab): hosts in network namespaces with real OpenSSH and strict
//! host keys, Pebble issuing a real certificate to certbot on the controller, and a `down` that
//! leaves nothing behind. Needs root, as CI has; fails (never skips) without it.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

use common::{Lab, sh};

/// The slots these tests name (LAB_SLOT): above the range `lab up` picks from (0-7), so no other
/// test takes one between their steps, and one test's labs never wait for another's.
const TEARDOWN_SLOT: &str = "9";
const LOCK_SLOT: &str = "10";
const SEPARATE_SLOTS: [&str; 2] = ["11", "12"];

/// `lab ARGS` for `lab` in slot `slot`.
fn in_slot(lab: &Lab, slot: &str, args: &[&str]) -> Command {
    let mut c = lab.cmd(args);
    c.env("LAB_SLOT", slot);
    c
}

/// A stand-in for the process that owns a lab, gone when the test ends (even when it fails).
struct Owner(Child);

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a process still runs. A zombie has exited (and closed its sockets) but keeps its
/// /proc entry until its parent reaps it: for the lab's daemons, orphans, that is PID 1 here,
/// which may take a second or more on a busy machine (as tests/lab/lab `alive` says).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the command name, which ends at the last ')'.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Nothing of a lab left in slot N >= 1: none of its hosts' namespaces (jvlabN-*), and not the
/// slot's own namespace (jvslot-N), which held its bridge, moto and Pebble.
fn no_lab_in_slot(slot: &str) {
    let (_, namespaces) = sh(Command::new("ip").args(["netns", "list"]));
    let names: Vec<&str> = namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let hosts = format!("jvlab{slot}-");
    assert!(
        !names.iter().any(|n| n.starts_with(&hosts)),
        "namespaces left: {namespaces}"
    );
    assert!(
        !names.contains(&format!("jvslot-{slot}").as_str()),
        "the slot's namespace is still there: {namespaces}"
    );
}

#[test]
fn lab_hosts_certificates_and_a_clean_teardown() {
    let lab = Lab::new();
    lab.must_in(TEARDOWN_SLOT, &["up", "--workers", "2"]);
    lab.join();
    let known_hosts = lab.path("known_hosts");

    // Every host answers over SSH with strict host-key checking, under its own hostname.
    for (name, ip) in [
        ("controller", "10.77.0.10"),
        ("worker-1", "10.77.0.11"),
        ("worker-2", "10.77.0.12"),
    ] {
        let (code, out) = lab.ssh(
            ip,
            &known_hosts,
            "hostname; touch /etc/haproxy/private-$(hostname)",
        );
        assert_eq!((code, out.trim()), (0, name), "{out}");
    }
    // Each host's /etc/haproxy is its own.
    let (_, listing) = lab.ssh("10.77.0.11", &known_hosts, "ls /etc/haproxy");
    assert_eq!(listing.trim(), "private-worker-1");
    // Workers reach the controller.
    let (code, out) = lab.ssh(
        "10.77.0.12",
        &known_hosts,
        "timeout 3 bash -c 'exec 3<>/dev/tcp/10.77.0.10/22'",
    );
    assert_eq!(code, 0, "{out}");

    // A host key that is not the pinned one is refused.
    let wrong = lab.path("wrong_known_hosts");
    let other =
        std::fs::read_to_string(lab.path("hosts/worker-1/ssh_host_ed25519_key.pub")).unwrap();
    let fields: Vec<&str> = other.split_whitespace().collect();
    std::fs::write(&wrong, format!("10.77.0.10 {} {}\n", fields[0], fields[1])).unwrap();
    let (code, out) = lab.ssh("10.77.0.10", &wrong, "true");
    assert_ne!(code, 0);
    assert!(
        out.contains("Host key verification failed")
            || out.contains("HOST IDENTIFICATION HAS CHANGED"),
        "{out}"
    );

    // A real certificate from Pebble through a real HTTP-01 validation of certbot standalone.
    let (code, out) = lab.ssh(
        "10.77.0.10",
        &known_hosts,
        "certbot certonly --standalone --non-interactive --agree-tos -d chat.jeeves.test --email ops@jeeves.test --server https://10.77.0.1:14000/dir",
    );
    assert_eq!(code, 0, "certbot failed:\n{out}");
    let live = lab.path("hosts/controller/etc-letsencrypt/live/chat.jeeves.test");
    let (code, out) = sh(Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            lab.path("pebble/root.pem").to_str().unwrap(),
        ])
        .args(["-untrusted", live.join("chain.pem").to_str().unwrap()])
        .arg(live.join("cert.pem")));
    assert_eq!(
        code, 0,
        "the certificate does not chain to Pebble's root:\n{out}"
    );

    // The MicroK8s stand-in, as 1.32 behaves (tests/lab/standins/README.md): a join with a bad
    // token prints the agent's answer on stdout and exits 6; a token made with --token-ttl serves
    // any number of joins until it expires; the controller need not resolve the worker's name.
    let controller = |cmd: &str| lab.ssh("10.77.0.10", &known_hosts, cmd);
    let worker = |n: u8, cmd: &str| lab.ssh(&format!("10.77.0.1{n}"), &known_hosts, cmd);
    let (code, out) = controller(
        "snap install microk8s --classic --channel=1.32/stable && microk8s status --wait-ready --timeout 30 && microk8s enable dns",
    );
    assert_eq!(code, 0, "{out}");
    for n in [1, 2] {
        let (code, out) = worker(n, "snap install microk8s --classic --channel=1.32/stable");
        assert_eq!(code, 0, "{out}");
    }
    let (code, out) = worker(
        1,
        "microk8s join 10.77.0.10:25000/0123456789abcdef0123456789abcdef --worker 2>/dev/null",
    );
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains("Connection failed. Invalid token (500)."),
        "on stdout: {out}"
    );
    let (code, out) = controller("microk8s add-node --token-ttl 300 --format json");
    assert_eq!(code, 0, "{out}");
    let add: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let url = add["urls"][0].as_str().unwrap().to_string();
    for n in [1, 2] {
        let (code, out) = worker(n, &format!("microk8s join {url} --worker"));
        assert_eq!(code, 0, "worker-{n}, the same TTL token: {out}");
    }
    let (code, out) = controller("microk8s kubectl get node worker-1");
    assert_eq!(code, 0, "{out}");
    let (_, out) = worker(1, "microk8s status");
    assert!(out.contains("acting as a node in a cluster"), "{out}");

    // systemctl drives the real haproxy: a bad config refuses to start, a good one serves.
    let (code, out) =
        controller("apt-get install -y haproxy certbot && systemctl is-active haproxy");
    assert_eq!(code, 3, "installed but inactive: {out}");
    let (code, out) = controller(
        "printf 'defaults\\n  mode http\\nfrontend f\\n  bind *:80\\n  no_such_keyword\\n' > /etc/haproxy/haproxy.cfg && systemctl start haproxy",
    );
    assert_ne!(code, 0, "{out}");
    let (code, out) = controller(
        "printf 'defaults\\n  mode http\\n  timeout client 5s\\n  timeout connect 5s\\n  timeout server 5s\\nfrontend f\\n  bind *:80\\n  http-request return status 204\\n' > /etc/haproxy/haproxy.cfg && systemctl start haproxy && systemctl is-active haproxy && curl -s -o /dev/null -w '%{http_code}' http://10.77.0.10/",
    );
    assert_eq!(
        (code, out.trim().lines().last().unwrap_or_default()),
        (0, "204"),
        "{out}"
    );
    let (code, out) = controller("systemctl start nginx");
    assert_eq!(code, 5, "{out}");

    // The lab describes its hosts to terraform/lab.
    let tfvars: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path("terraform.tfvars.json")).unwrap())
            .unwrap();
    assert_eq!(tfvars["workers"].as_array().unwrap().len(), 2);
    assert_eq!(tfvars["controller"]["private_ip"], "10.77.0.10");

    // `lab env` points Jeeves at all of it.
    let (_, env) = sh(&mut lab.cmd(&["env"]));
    for needle in [
        "AWS_ENDPOINT_URL=http://127.0.0.1:",
        "DOMAIN=chat.jeeves.test",
        "JEEVES_TLS_ACME_SERVER=https://10.77.0.1:14000/dir",
    ] {
        assert!(env.contains(needle), "{needle}:\n{env}");
    }

    // Down leaves no namespace, process or link behind, and is safe twice.
    let pids = lab.pids();
    assert!(pids.len() >= 6, "{pids:?}");
    let (code, out) = sh(&mut lab.cmd(&["down"]));
    assert_eq!(code, 0, "{out}");
    no_lab_in_slot(TEARDOWN_SLOT);
    for pid in pids {
        assert!(!alive(pid), "process {pid} survived lab down");
    }
    let (code, out) = sh(&mut lab.cmd(&["down"]));
    assert_eq!(code, 0, "a second down: {out}");
}

#[test]
fn one_lab_per_slot_a_second_waits_for_a_live_owner_and_clears_a_dead_or_kept_one() {
    // A failed `up` takes down what it had started and leaves the machine free.
    let fake = tempfile::tempdir().unwrap();
    let openssl = fake.path().join("openssl");
    std::fs::write(
        &openssl,
        "#!/bin/sh\necho 'openssl: failing on purpose' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&openssl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap()
    );
    let failed = Lab::new();
    let (code, out) = sh(in_slot(&failed, LOCK_SLOT, &["up", "--workers", "1"]).env("PATH", &path));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("up failed; taking down what it started"),
        "{out}"
    );
    no_lab_in_slot(LOCK_SLOT);
    assert!(!failed.path("pids").exists(), "{out}");

    // Lab A belongs to a process that is still running (as a test binary owns its lab).
    let mut owner = Owner(
        Command::new("sleep")
            .arg("600")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let a = Lab::new();
    let (code, out) = sh(in_slot(&a, LOCK_SLOT, &["up", "--workers", "0"])
        .env("LAB_OWNER_PID", owner.0.id().to_string()));
    assert_eq!(code, 0, "{out}");
    let a_pids = a.pids();

    // B waits for A instead of colliding with it; given 1 s, it gives up naming A's directory,
    // having started nothing, and A is untouched.
    let b = Lab::new();
    let (code, out) = sh(in_slot(&b, LOCK_SLOT, &["up", "--workers", "0"]).env("LAB_WAIT", "1"));
    assert_eq!(code, 1, "{out}");
    let a_dir = a.dir.path().display().to_string();
    assert!(
        out.contains(&format!("the lab in {a_dir} stayed up for 1s")),
        "{out}"
    );
    assert!(!b.path("pids").exists());
    // B's `lab down` (every test's Lab runs one when dropped) leaves A alone too.
    b.must(&["down"]);
    let (code, _) = sh(Command::new("ip").args([
        "-n",
        &format!("jvslot-{LOCK_SLOT}"),
        "link",
        "show",
        "jvlab0",
    ]));
    assert_eq!(code, 0, "B's down removed A's bridge");
    for &pid in &a_pids {
        assert!(alive(pid), "A's process {pid} was stopped by B");
    }

    // A's owner dies without `lab down` (a killed test run): B takes A down, then comes up.
    owner.0.kill().unwrap();
    owner.0.wait().unwrap();
    let (code, out) = sh(&mut in_slot(&b, LOCK_SLOT, &["up", "--workers", "0"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("taking down the lab left in {a_dir}")),
        "{out}"
    );
    for pid in a_pids {
        assert!(!alive(pid), "A's process {pid} survived");
    }
    assert!(!a.path("pids").exists());
    let (code, out) = b.ssh("10.77.0.10", &b.path("known_hosts"), "hostname");
    assert_eq!((code, out.trim()), (0, "controller"));
    b.must(&["down"]);

    // A kept lab (the demo's) is never waited for: outside CI the next `up` fails at once naming
    // it; under CI (which owns its machine) the next `up` takes it down.
    let kept = Lab::new();
    kept.must_in(LOCK_SLOT, &["up", "--workers", "0", "--keep"]);
    let kept_pids = kept.pids();
    let c = Lab::new();
    let (code, out) = sh(in_slot(&c, LOCK_SLOT, &["up", "--workers", "0"]).env_remove("CI"));
    assert_eq!(code, 1, "{out}");
    let kept_dir = kept.dir.path().display().to_string();
    assert!(
        out.contains(&format!("another lab is up and kept ({kept_dir})")),
        "{out}"
    );
    let (code, out) = sh(in_slot(&c, LOCK_SLOT, &["up", "--workers", "0"]).env("CI", "true"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("taking down the lab kept up in {kept_dir}")),
        "{out}"
    );
    for pid in kept_pids {
        assert!(!alive(pid), "the kept lab's process {pid} survived");
    }
}

#[test]
fn labs_in_two_slots_are_two_separate_networks() {
    // Two labs up at once, each with a controller on 10.77.0.10:22 and moto on 127.0.0.1:5055.
    let [a, b] = SEPARATE_SLOTS.map(|slot| {
        let lab = Lab::new();
        lab.must_in(slot, &["up", "--workers", "0"]);
        assert_eq!(lab.slot().to_string(), slot);
        lab
    });
    // Each answers with its own host key: each lab's known_hosts is refused by the other's sshd.
    for (lab, other) in [(&a, &b), (&b, &a)] {
        let (code, out) = lab.ssh("10.77.0.10", &lab.path("known_hosts"), "hostname");
        assert_eq!((code, out.trim()), (0, "controller"), "{out}");
        let (code, out) = lab.ssh("10.77.0.10", &other.path("known_hosts"), "true");
        assert!(
            code != 0
                && (out.contains("Host key verification failed")
                    || out.contains("HOST IDENTIFICATION HAS CHANGED")),
            "slot {} answered with the other lab's host key: {code} {out}",
            lab.slot()
        );
    }
    // Each moto is its own: the controller's instance `up` made in A (tests/lab/lab `start_moto`)
    // is not B's. moto routes a request by the service in its credential scope.
    let instance = |lab: &Lab| {
        let (code, out) = sh(Command::new("nsenter")
            .arg(format!("--net={}", lab.netns().unwrap().display()))
            .args(["curl", "-sf", "http://127.0.0.1:5055/?Action=DescribeInstances&Version=2016-11-15"])
            .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=lab/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0"]));
        assert_eq!(code, 0, "{out}");
        let id = out
            .split("<instanceId>")
            .nth(1)
            .and_then(|s| s.split('<').next());
        id.unwrap_or_else(|| panic!("no instance in slot {}: {out}", lab.slot()))
            .to_string()
    };
    assert_ne!(instance(&a), instance(&b));

    // A's down takes A's network with it and leaves B working.
    let b_pids = b.pids();
    a.must(&["down"]);
    no_lab_in_slot(SEPARATE_SLOTS[0]);
    for pid in b_pids {
        assert!(alive(pid), "B's process {pid} was stopped by A's down");
    }
    let (code, out) = b.ssh("10.77.0.10", &b.path("known_hosts"), "hostname");
    assert_eq!((code, out.trim()), (0, "controller"), "{out}");
    b.must(&["down"]);
    no_lab_in_slot(SEPARATE_SLOTS[1]);
}
