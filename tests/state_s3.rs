//! `[state] backend = "s3"` against moto: the run lock as a conditionally created object (two
//! agents racing, a run killed while holding it, `unlock`), and a second agent with an empty
//! `.jeeves` picking up state.json, known_hosts and the certificate cache, every object written
//! with server-side encryption. The last test does it on the lab with the real tls stage: the
//! new agent connects with the pinned keys (strict checking) and restores the certificate from
//! the bucket without a new ACME order.

use crate::common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, Moto, Test, block_on};

const BUCKET: &str = "jeeves-team-state";

fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&moto.sdk())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A client of the S3 at `endpoint` (the lab's moto), path-style.
fn s3_at(endpoint: &str) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new("lab", "lab", None, None, "test");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn create_bucket(moto: &Moto) -> aws_sdk_s3::Client {
    let client = s3(moto);
    block_on(client.create_bucket().bucket(BUCKET).send()).unwrap();
    client
}

/// The object's content and its server-side encryption, None when there is no object.
fn object(client: &aws_sdk_s3::Client, key: &str) -> Option<(Vec<u8>, Option<String>)> {
    block_on(async {
        let out = client
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .ok()?;
        let sse = out.server_side_encryption().map(|s| s.as_str().to_string());
        let body = out.body.collect().await.unwrap().into_bytes().to_vec();
        Some((body, sse))
    })
}

/// An agent: its own checkout and working copy, the shared state in moto's bucket. known_hosts
/// is the state directory's own (the lab pipeline keeps the lab's elsewhere).
fn agent(moto: &Moto) -> Test {
    let mut t = Test::new();
    moto.env_for(&mut t);
    let known_hosts = t.path(".jeeves/lab/known_hosts").display().to_string();
    t.env("JEEVES_STATE_BACKEND", "s3")
        .env("JEEVES_STATE_BUCKET", BUCKET)
        .env("JEEVES_SSH_KNOWN_HOSTS", &known_hosts);
    t
}

/// A terraform stand-in that marks that it started, then waits for `release` in `marks`:
/// a run holding the lock for as long as the test wants.
fn blocking_terraform(t: &mut Test, marks: &Path) {
    let script = t.path("terraform-blocks");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{m}/started-'$$\nwhile [ ! -e '{m}/release' ] && kill -0 $PPID; do sleep 0.1; done\nexit 1\n",
            m = marks.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.env("JEEVES_TOOLS_TERRAFORM", &script.display().to_string());
}

/// Where the stand-ins mark that they started; dropped (a test passing or failing), it
/// releases every stand-in still waiting.
struct Marks(tempfile::TempDir);

impl Marks {
    fn new() -> Marks {
        Marks(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn release(&self) {
        std::fs::write(self.path().join("release"), "").unwrap();
    }
}

impl Drop for Marks {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path().join("release"), "");
    }
}

/// A `jeeves` run in the background, killed if the test ends first.
struct Running(Option<Child>);

impl Running {
    fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    fn exited(&mut self) -> bool {
        self.0.as_mut().unwrap().try_wait().unwrap().is_some()
    }

    /// SIGKILL, as a crash or an OOM kill would.
    fn kill(&mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn output(mut self) -> (i32, String) {
        let out = self.0.take().unwrap().wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(t: &Test, args: &[&str]) -> Running {
    Running(Some(
        t.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

fn started(marks: &Path) -> usize {
    std::fs::read_dir(marks)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("started-")
        })
        .count()
}

#[test]
fn two_agents_race_for_the_lock_and_exactly_one_wins() {
    let moto = Moto::start();
    let client = create_bucket(&moto);
    let marks = Marks::new();
    let mut a = agent(&moto);
    let mut b = agent(&moto);
    blocking_terraform(&mut a, marks.path());
    blocking_terraform(&mut b, marks.path());
    let up = ["--output", "plain", "up", "--only", "terraform"];
    let mut runs = [Some(spawn(&a, &up)), Some(spawn(&b, &up))];
    let pids = [
        runs[0].as_ref().unwrap().id(),
        runs[1].as_ref().unwrap().id(),
    ];

    // The loser exits 3 at once; the winner waits in terraform until released.
    let deadline = Instant::now() + Duration::from_secs(120);
    let loser = loop {
        assert!(started(marks.path()) <= 1, "both runs took the lock");
        if let Some(i) = (0..2).find(|&i| runs[i].as_mut().is_some_and(|c| c.exited())) {
            break i;
        }
        assert!(Instant::now() < deadline, "neither run finished");
        std::thread::sleep(Duration::from_millis(50));
    };
    let winner = 1 - loser;
    let (code, stderr) = runs[loser].take().unwrap().output();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("another run holds the lock s3://jeeves-team-state/jeeves/lab/lock"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("`jeeves up` (pid {}", pids[winner])),
        "{stderr}"
    );
    assert!(stderr.contains("jeeves unlock "), "{stderr}");

    // The lock object holds the winner; released when the winner's run ends.
    let (lock, _) = object(&client, "jeeves/lab/lock").expect("the lock object");
    let lock: serde_json::Value = serde_json::from_slice(&lock).unwrap();
    assert_eq!(lock["pid"], pids[winner]);
    assert_eq!(lock["command"], "up");
    while started(marks.path()) == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }

    // With --lock-timeout the loser's agent waits, saying so, and runs once the winner is done.
    let waiter_log = marks.path().join("waiter.stderr");
    let loser_agent = if loser == 0 { &a } else { &b };
    let mut waiter = Running(Some(
        loser_agent
            .command(&[
                "--lock-timeout",
                "2m",
                "--output",
                "plain",
                "up",
                "--only",
                "terraform",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&waiter_log).unwrap())
            .spawn()
            .unwrap(),
    ));
    let said = |text: &str| std::fs::read_to_string(&waiter_log).unwrap().contains(text);
    while !said(
        "waiting up to 2m for the lock s3://jeeves-team-state/jeeves/lab/lock, held by `jeeves up`",
    ) {
        assert!(
            !waiter.exited(),
            "{}",
            std::fs::read_to_string(&waiter_log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        started(marks.path()),
        1,
        "the waiter has not taken the lock"
    );
    marks.release();
    let (code, stderr) = runs[winner].take().unwrap().output();
    assert_eq!(code, 1, "the stand-in terraform fails init: {stderr}");
    let status = waiter.0.take().unwrap().wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "the waiter got the lock and ran terraform: {}",
        std::fs::read_to_string(&waiter_log).unwrap()
    );
    assert_eq!(started(marks.path()), 2);
    assert!(
        object(&client, "jeeves/lab/lock").is_none(),
        "lock released"
    );
}

#[test]
fn a_second_agent_picks_up_the_state_known_hosts_and_certificate_cache() {
    let moto = Moto::start();
    let client = create_bucket(&moto);
    let a = agent(&moto);
    // Nothing in the bucket yet: a scheduled `stop` names the state it read, in the bucket.
    let empty = a.run(&["stop", "--yes"]).expect(2);
    assert!(
        empty.stderr.contains(&format!(
            "the inventory in s3://{BUCKET}/jeeves/lab/state.json (working copy"
        )) && empty.stderr.contains("is empty"),
        "{}",
        empty.stderr
    );
    // What earlier runs on agent A pinned and cached (the tls stage writes these files).
    let known_hosts = "10.77.0.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHu7yzc1YqaHKCPwzWQzJBtjQ0e9oB9G3sFh4qI4r7Ra\n";
    a.write(".jeeves/lab/known_hosts", known_hosts);
    a.write(".jeeves/lab/tls/chat.jeeves.test.json", "{\"domain\":\"chat.jeeves.test\",\"names\":[\"chat.jeeves.test\"],\"not_after\":1900000000}");
    let lineage: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    std::fs::write(a.path(".jeeves/lab/tls/chat.jeeves.test.tar.gz"), &lineage).unwrap();
    a.run(&["--output", "plain", "up", "--only", "terraform"])
        .expect(0);

    for key in [
        "state.json",
        "known_hosts",
        "tls/chat.jeeves.test.json",
        "tls/chat.jeeves.test.tar.gz",
    ] {
        let (body, sse) = object(&client, &format!("jeeves/lab/{key}"))
            .unwrap_or_else(|| panic!("{key} was not pushed"));
        assert_eq!(
            sse.as_deref(),
            Some("AES256"),
            "{key} is not encrypted at rest"
        );
        assert_eq!(
            body,
            std::fs::read(a.path(&format!(".jeeves/lab/{key}"))).unwrap(),
            "{key}"
        );
    }
    assert!(
        object(&client, "jeeves/lab/lock").is_none(),
        "lock released"
    );

    // Agent B: an empty .jeeves. status reads the bucket; a run pulls everything.
    let b = agent(&moto);
    assert!(!b.path(".jeeves").exists());
    let status = b.run(&["--output", "json", "status"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["inventory"]["controller"]["public_ip"], "10.77.0.10");
    assert_eq!(doc["state"], "s3://jeeves-team-state/jeeves/lab/");
    assert_eq!(doc["lock"], serde_json::Value::Null);
    let doctor = b.run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .contains("✓ state        s3://jeeves-team-state/jeeves/lab/ readable"),
        "{}",
        doctor.stdout
    );

    // plan takes the lock and pulls, and saves no state: state.json stays A's.
    b.run(&["--output", "plain", "plan", "--only", "terraform"])
        .expect(0);
    use std::os::unix::fs::PermissionsExt;
    for key in [
        "state.json",
        "known_hosts",
        "tls/chat.jeeves.test.json",
        "tls/chat.jeeves.test.tar.gz",
    ] {
        let path = b.path(&format!(".jeeves/lab/{key}"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{key} not pulled: {e}"));
        assert_eq!(
            bytes,
            std::fs::read(a.path(&format!(".jeeves/lab/{key}"))).unwrap(),
            "{key}"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    // `tunnel` takes no lock but refreshes the working copy of a third, empty agent before it
    // connects (here to no host: the lab is not up).
    let mut c = agent(&moto);
    c.env("JEEVES_SSH_CONNECT_TIMEOUT", "1s");
    c.with_key();
    let tunnel = c.run(&["tunnel"]);
    assert_ne!(tunnel.code, 0);
    assert!(
        tunnel
            .stderr
            .contains("tunnel: pulled [state.json, known_hosts, tls/"),
        "{}",
        tunnel.stderr
    );
    assert_eq!(
        std::fs::read(c.path(".jeeves/lab/known_hosts")).unwrap(),
        known_hosts.as_bytes()
    );
    let mode = std::fs::metadata(b.path(".jeeves/lab/tls"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn a_run_killed_holding_the_lock_is_reported_stale_until_unlocked() {
    let moto = Moto::start();
    let client = create_bucket(&moto);
    let marks = Marks::new();
    let mut a = agent(&moto);
    blocking_terraform(&mut a, marks.path());
    let mut killed = spawn(&a, &["--output", "plain", "up", "--only", "terraform"]);
    let killed_pid = killed.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    while started(marks.path()) == 0 {
        assert!(Instant::now() < deadline, "the run never reached terraform");
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.kill(); // SIGKILL: no destructor runs, the lock object stays
    marks.release(); // the orphaned stand-in exits
    assert!(object(&client, "jeeves/lab/lock").is_some());

    let b = agent(&moto);
    let busy = b
        .run(&["--output", "plain", "up", "--only", "terraform"])
        .expect(3);
    assert!(
        busy.stderr.contains(&format!("pid {killed_pid} on ")),
        "{}",
        busy.stderr
    );
    assert!(
        busy.stderr.contains(&format!(
            "stale: pid {killed_pid} is not running on this host"
        )),
        "{}",
        busy.stderr
    );
    let id = busy
        .stderr
        .split("`jeeves unlock ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no unlock command in: {}", busy.stderr))
        .to_string();
    let status = b.run(&["--output", "json", "status"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["lock"]["id"], id.as_str());
    assert_eq!(doc["lock"]["pid"], killed_pid);

    // Only the lock's own id breaks it.
    let wrong = b
        .run(&["unlock", "00000000-0000-4000-8000-000000000000"])
        .expect(2);
    assert!(
        wrong.stderr.contains(&format!("has id {id}")),
        "{}",
        wrong.stderr
    );
    assert!(object(&client, "jeeves/lab/lock").is_some());
    let done = b.run(&["unlock", &id]).expect(0);
    assert!(done.stdout.contains("removed the lock"), "{}", done.stdout);
    assert!(object(&client, "jeeves/lab/lock").is_none());
    b.run(&["--output", "plain", "up", "--only", "terraform"])
        .expect(0);
}

#[test]
fn on_the_lab_a_new_agent_has_the_pinned_keys_and_restores_the_certificate_without_an_order() {
    let lab = Lab::up(0);
    let (code, env) = common::sh(&mut lab.cmd(&["env"]));
    assert_eq!(code, 0, "{env}");
    let endpoint = env
        .lines()
        .find_map(|l| l.strip_prefix("export AWS_ENDPOINT_URL="))
        .expect("the lab's AWS_ENDPOINT_URL")
        .to_string();
    let bucket = format!("jeeves-lab-state-{}", std::process::id());
    block_on(s3_at(&endpoint).create_bucket().bucket(&bucket).send()).unwrap();
    // Agents on the lab whose known_hosts is the state directory's own (the lab's is elsewhere).
    let lab_agent = || {
        let mut t = Test::new();
        lab.env_for(&mut t);
        let known_hosts = t.path(".jeeves/lab/known_hosts").display().to_string();
        t.env("JEEVES_STATE_BACKEND", "s3")
            .env("JEEVES_STATE_BUCKET", &bucket)
            .env("JEEVES_SSH_KNOWN_HOSTS", &known_hosts);
        t
    };
    let orders = || {
        std::fs::read_to_string(lab.path("pebble/pebble.log"))
            .unwrap()
            .matches("POST /order-plz")
            .count()
    };

    // Agent A: the stack, the controller's key pinned on first use, a certificate issued.
    let a = lab_agent();
    a.run(&["up", "--only", "terraform"]).expect(0);
    let before = orders();
    let run = a.run(&["up", "--only", "tls", "--accept-new-host-keys"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(orders(), before + 1, "one issuance");
    assert!(
        std::fs::read_to_string(a.path(".jeeves/lab/known_hosts"))
            .unwrap()
            .contains("10.77.0.10 ")
    );

    // The controller is rebuilt (its certificate gone); agent B starts from an empty .jeeves
    // and strict host-key checking.
    let pem = "/etc/haproxy/certs/chat.jeeves.test.pem";
    let (code, out) = lab.ssh(
        "10.77.0.10",
        &lab.path("known_hosts"),
        &format!("rm -rf /etc/letsencrypt/* {pem}"),
    );
    assert_eq!(code, 0, "{out}");
    let b = lab_agent();
    let run = b.run(&["--output", "json", "up", "--only", "tls"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.events().iter().any(|e| e["event"] == "host_progress"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("certificate restored from the state dir"))),
        "{}",
        run.stdout
    );
    assert_eq!(
        orders(),
        before + 1,
        "restored from the bucket, not re-issued"
    );
    assert_eq!(
        std::fs::read(b.path(".jeeves/lab/known_hosts")).unwrap(),
        std::fs::read(a.path(".jeeves/lab/known_hosts")).unwrap()
    );

    // Agent C, empty `.jeeves` again, only logs in: `jeeves ssh` (no S3 lock) reads the
    // inventory and the pinned keys from the bucket (it used to read the empty working copy:
    // "the inventory is empty").
    let c = lab_agent();
    let out = c
        .command(&["ssh", "controller", "--", "hostname"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "controller");
}
