//! `jeeves stop` / `jeeves start` against moto's EC2 (no lab): the inventory's instances are
//! moto instances. moto 5.x models `stop` and `start` as immediate transitions to `stopped` and
//! `running` (StopInstances answers `stopping`; there is no `pending`), and gives an instance
//! with an auto-assigned public IP a new one at every start (moto/ec2/models/instances.py
//! `Instance.start`/`stop`, elastic_network_interfaces.py `NetworkInterface.start`/`stop`), as
//! AWS does. The repair after a start needs the hosts: here it stops at SSH (nothing answers
//! on the lab's addresses without the lab); tests/lab.rs runs it through to a converged stack.

use crate::common;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use common::{Moto, Test, block_on};

fn run_instances(moto: &Moto, names: &[&str]) -> Vec<String> {
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk());
    names
        .iter()
        .map(|name| {
            let reply = block_on(
                ec2.run_instances()
                    .image_id("ami-00000000")
                    .min_count(1)
                    .max_count(1)
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::Instance)
                            .tags(Tag::builder().key("Name").value(*name).build())
                            .build(),
                    )
                    .send(),
            )
            .unwrap();
            reply.instances()[0].instance_id().unwrap().to_string()
        })
        .collect()
}

/// (state, public IP) of each instance, from moto.
fn power(moto: &Moto, ids: &[String]) -> Vec<(String, Option<String>)> {
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk());
    let reply = block_on(
        ec2.describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send(),
    )
    .unwrap();
    let mut found: Vec<_> = reply
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap().to_string(),
                i.state().unwrap().name().unwrap().as_str().to_string(),
                i.public_ip_address().map(str::to_string),
            )
        })
        .collect();
    found.sort_by_key(|(id, _, _)| ids.iter().position(|i| i == id));
    found.into_iter().map(|(_, s, ip)| (s, ip)).collect()
}

/// A workspace whose inventory (written by the real terraform stage, from terraform/lab with
/// the hosts' `id`s) holds these moto instances.
fn workspace(moto: &Moto, ids: &[String]) -> Test {
    let mut t = Test::new();
    t.with_key();
    moto.env_for(&mut t);
    let hosts = serde_json::json!({
        "controller": {"id": ids[0], "hostname": "controller", "public_ip": "10.77.0.10", "private_ip": "10.77.0.10"},
        "workers": [{"id": ids[1], "hostname": "worker-1", "public_ip": "10.77.0.11", "private_ip": "10.77.0.11"}],
    });
    t.write("hosts.tfvars.json", &hosts.to_string());
    let vars = t.path("hosts.tfvars.json").display().to_string();
    t.env("JEEVES_TERRAFORM_VAR_FILES", &vars)
        // Nothing listens on the lab's addresses here: fail the SSH wait fast.
        .env("JEEVES_SSH_CONNECT_TIMEOUT", "2s")
        // moto's console output holds no cloud-init host keys to pin.
        .env("JEEVES_SSH_PIN_FROM_CONSOLE", "false");
    t.run(&["--output", "json", "up", "--only", "terraform"])
        .expect(0);
    t
}

#[test]
fn stop_and_start_follow_the_instances_through_ec2() {
    let moto = Moto::start();
    let ids = run_instances(&moto, &["controller", "worker-1"]);
    let t = workspace(&moto, &ids);
    let first_ips: Vec<Option<String>> = power(&moto, &ids).into_iter().map(|p| p.1).collect();
    assert!(first_ips.iter().all(Option::is_some), "{first_ips:?}");

    // start on a running stack: says so, exit 0, no repair run.
    let already = t.run(&["--output", "plain", "start"]).expect(0);
    assert!(
        already.stdout.contains("already running"),
        "{}",
        already.stdout
    );
    assert!(
        !already.stdout.contains("[terraform]"),
        "{}",
        already.stdout
    );

    // stop without --yes off a terminal: exit 2, nothing stopped.
    let refused = t.run(&["stop"]).expect(2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(power(&moto, &ids).iter().all(|p| p.0 == "running"));

    // The lock held by another run: exit 3, nothing stopped.
    {
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(t.path(".jeeves/lab/lock"))
            .unwrap();
        lock.try_lock().unwrap();
        t.run(&["stop", "--yes"]).expect(3);
        assert!(power(&moto, &ids).iter().all(|p| p.0 == "running"));
    }

    let stopped = t.run(&["--output", "plain", "stop", "--yes"]).expect(0);
    assert!(stopped.stdout.contains("stopping"), "{}", stopped.stdout);
    let now = power(&moto, &ids);
    assert!(
        now.iter().all(|p| p.0 == "stopped" && p.1.is_none()),
        "{now:?}"
    );

    // A second stop: a no-op that says so.
    let again = t.run(&["--output", "plain", "stop", "--yes"]).expect(0);
    assert!(again.stdout.contains("already stopped"), "{}", again.stdout);
    assert!(!again.stdout.contains("stopping"), "{}", again.stdout);

    // status: the power state of each instance, from EC2.
    let status = t.run(&["status"]).expect(0);
    assert_eq!(
        status
            .stdout
            .lines()
            .filter(|l| l.contains("i-") && l.trim_end().ends_with("stopped"))
            .count(),
        2,
        "{}",
        status.stdout
    );
    let doc: serde_json::Value =
        serde_json::from_str(&t.run(&["--output", "json", "status"]).expect(0).stdout).unwrap();
    assert_eq!(doc["power"][&ids[0]], "stopped", "{doc}");
    assert_eq!(doc["power"][&ids[1]], "stopped", "{doc}");

    // start: the instances run again with new public IPs (moto, as AWS); the repair re-reads
    // the inventory (terraform stage), then waits for SSH, which nothing answers here.
    let started = t.run(&["--output", "json", "start"]).expect(1);
    let now = power(&moto, &ids);
    assert!(now.iter().all(|p| p.0 == "running"), "{now:?}");
    let new_ips: Vec<Option<String>> = now.into_iter().map(|p| p.1).collect();
    assert!(new_ips.iter().all(Option::is_some), "{new_ips:?}");
    assert_ne!(
        new_ips, first_ips,
        "a started instance gets a new public IP"
    );
    // Forced, so that terraform's outputs (the inventory) are refreshed after the stop.
    assert_eq!(started.stage_result("terraform"), "changed");
    assert_eq!(started.stage_result("bootstrap"), "skipped");
    assert!(
        started.stderr.contains("SSH does not answer on 2 host(s)"),
        "{}",
        started.stderr
    );
    assert!(
        started.stderr.contains("jeeves start"),
        "{}",
        started.stderr
    );
}

#[test]
fn an_inventory_without_instance_ids_is_refused() {
    let moto = Moto::start();
    let mut t = Test::new();
    t.with_key();
    moto.env_for(&mut t);
    // Nothing to stop yet: exit 2 naming the state file.
    let empty = t.run(&["stop", "--yes"]).expect(2);
    assert!(empty.stderr.contains("state.json"), "{}", empty.stderr);
    assert!(empty.stderr.contains("is empty"), "{}", empty.stderr);
    // The lab's own inventory: terraform_data ids, not EC2 instances.
    t.run(&["--output", "json", "up", "--only", "terraform"])
        .expect(0);
    for cmd in ["stop", "start"] {
        let refused = t.run(&[cmd, "--yes"][..if cmd == "stop" { 2 } else { 1 }]);
        let refused = refused.expect(2);
        assert!(
            refused.stderr.contains("without an EC2 instance id")
                && refused.stderr.contains("controller (id `"),
            "{}",
            refused.stderr
        );
    }
    // The state is chat.jeeves.test's (`up` recorded it): a job configured for another domain
    // is refused before anything else, naming both and the state it read.
    assert_eq!(t.state()["domain"], "chat.jeeves.test");
    t.env("DOMAIN", "chat-staging.jeeves.test");
    for cmd in ["stop", "start"] {
        let refused = t.run(&[cmd, "--yes"][..if cmd == "stop" { 2 } else { 1 }]);
        let refused = refused.expect(2);
        assert!(
            refused
                .stderr
                .contains("is the stack of `chat.jeeves.test`")
                && refused
                    .stderr
                    .contains("configured for `chat-staging.jeeves.test`")
                && refused.stderr.contains("state.json"),
            "{}",
            refused.stderr
        );
    }
}

/// A local EC2 responder (the query protocol) whose instances stay `stopping` for ever: moto's
/// transitions are immediate, so it cannot hold a wait open. Counts the DescribeInstances calls.
fn serve_stuck_ec2(ids: Vec<String>, calls: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> u16 {
    common::ec2_responder(move |body| {
        assert!(body.contains("Action=DescribeInstances"), "{body}");
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let items: String = ids
            .iter()
            .map(|id| {
                format!(
                    "<item><instanceId>{id}</instanceId><instanceState><code>64</code><name>stopping</name></instanceState></item>"
                )
            })
            .collect();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet><item><reservationId>r-0123456789abcdef0</reservationId><ownerId>123456789012</ownerId><instancesSet>{items}</instancesSet></item></reservationSet>
</DescribeInstancesResponse>"#
        )
    })
}

/// Ctrl-C (or a Jenkins abort) while `stop` waits for EC2: exit 130 at once, the lock released.
#[test]
fn an_interrupt_ends_the_wait_for_ec2() {
    let ids = vec![
        "i-0aaaaaaaaaaaaaaa1".to_string(),
        "i-0aaaaaaaaaaaaaaa2".to_string(),
    ];
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let port = serve_stuck_ec2(ids.clone(), calls.clone());
    let mut t = Test::new();
    t.with_key();
    t.env("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1");
    let hosts = serde_json::json!({
        "controller": {"id": ids[0], "hostname": "controller", "public_ip": "10.77.0.10", "private_ip": "10.77.0.10"},
        "workers": [{"id": ids[1], "hostname": "worker-1", "public_ip": "10.77.0.11", "private_ip": "10.77.0.11"}],
    });
    t.write("hosts.tfvars.json", &hosts.to_string());
    let vars = t.path("hosts.tfvars.json").display().to_string();
    t.env("JEEVES_TERRAFORM_VAR_FILES", &vars);
    t.run(&["--output", "json", "up", "--only", "terraform"])
        .expect(0);

    let mut stop = t.command(&["--output", "plain", "stop", "--yes"]);
    stop.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = stop.spawn().unwrap();
    // The first DescribeInstances reads the states, the next ones are the waiter's.
    let started = std::time::Instant::now();
    while calls.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "stop never waited"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    // It stops waiting at once (not after POWER_TIMEOUT): bounded here so that a wait that
    // ignores the signal fails the test instead of hanging it.
    let signalled = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if signalled.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("stop still waiting 30 s after SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert!(stderr.contains("jeeves stop"), "{stderr}");
    // The lock is free again.
    let status = t.run(&["status"]).expect(0);
    assert!(
        status.stdout.contains("lock       free"),
        "{}",
        status.stdout
    );
}
