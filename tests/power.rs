//! `jeeves stop` / `jeeves start` against moto's EC2 (no lab): the inventory's instances are
//! moto instances. moto 5.x models `stop` and `start` as immediate transitions to `stopped` and
//! `running` (StopInstances answers `stopping`; there is no `pending`), and gives an instance
//! with an auto-assigned public IP a new one at every start (moto/ec2/models/instances.py
//! `Instance.start`/`stop`, elastic_network_interfaces.py `NetworkInterface.start`/`stop`), as
//! AWS does. The repair after a start needs the hosts: here it stops at SSH (nothing answers
//! on the lab's addresses without the lab); tests/lab.rs runs it through to a converged stack.

mod common;

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
}
