//! New hosts' SSH keys pinned from the EC2 console output before the first connection, on the
//! lab (real OpenSSH). moto's GetConsoleOutput returns a fixed text, so EC2 here is a local
//! responder that speaks the EC2 query protocol and serves, per instance id, a console that
//! first has no keys yet (cloud-init still running) and then cloud-init's real block with the
//! lab host's real keys. One test function: the lab is one per machine.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::{Lab, Test};

const CONTROLLER_ID: &str = "i-0c0ffee000000000a";
const WORKER_ID: &str = "i-0c0ffee000000000b";

/// instance id → the key lines (`type base64`) its console shows once cloud-init is done.
type Consoles = Arc<Mutex<HashMap<String, Vec<String>>>>;
/// instance id → GetConsoleOutput calls.
type Calls = Arc<Mutex<HashMap<String, u32>>>;

fn serve_ec2(consoles: Consoles, calls: Calls) -> u16 {
    common::ec2_responder(move |body| {
        let param = |name: &str| {
            body.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(param("Action"), "GetConsoleOutput", "{body}");
        let id = param("InstanceId");
        let n = {
            let mut calls = calls.lock().unwrap();
            let n = calls.entry(id.clone()).or_default();
            *n += 1;
            *n
        };
        let mut console = String::from("[    0.000000] Linux version 6.8.0-1012-aws\r\n");
        if n > 1 {
            // cloud-init's cc_keys_to_console output, with the ec2: prefix it adds.
            console.push_str("ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n");
            console.push_str("ec2: -----END SSH HOST KEY FINGERPRINTS-----\r\n");
            console.push_str("-----BEGIN SSH HOST KEY KEYS-----\r\n");
            for key in consoles
                .lock()
                .unwrap()
                .get(&id)
                .cloned()
                .unwrap_or_default()
            {
                console.push_str(&format!("{key} root@lab\r\n"));
            }
            console.push_str("-----END SSH HOST KEY KEYS-----\r\n");
        }
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
    <instanceId>{id}</instanceId>
    <timestamp>2026-11-22T10:00:00.000Z</timestamp>
    <output>{}</output>
</GetConsoleOutputResponse>"#,
            base64::engine::general_purpose::STANDARD.encode(console)
        )
    })
}

/// The lab's real key lines (`type base64`) for a host.
fn keys_of(lab: &Lab, ip: &str) -> Vec<String> {
    std::fs::read_to_string(lab.path("known_hosts"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{ip} ")))
        .map(|k| k.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn new_hosts_are_pinned_from_the_console_and_a_wrong_key_still_stops_the_run() {
    let lab = Lab::up(1);
    let mut t = Test::new();
    lab.env_for(&mut t);
    let consoles: Consoles = Arc::default();
    let calls: Calls = Arc::default();
    let port = serve_ec2(consoles.clone(), calls.clone());
    t.write(
        "ids.tfvars.json",
        &serde_json::json!({
            "controller": {"id": CONTROLLER_ID, "hostname": "controller", "public_ip": "10.77.0.10", "private_ip": "10.77.0.10"},
            "workers": [{"id": WORKER_ID, "hostname": "worker-1", "public_ip": "10.77.0.11", "private_ip": "10.77.0.11"}],
        })
        .to_string(),
    );
    let known_hosts = t.path("pinned_known_hosts");
    t.env(
        "JEEVES_TERRAFORM_VAR_FILES",
        t.path("ids.tfvars.json").to_str().unwrap(),
    )
    .env("JEEVES_SSH_KNOWN_HOSTS", known_hosts.to_str().unwrap())
    .env("JEEVES_SSH_CONNECT_TIMEOUT", "20s")
    .env("AWS_ENDPOINT_URL_EC2", &format!("http://127.0.0.1:{port}"));
    t.run(&["up", "--only", "terraform"]).expect(0);
    assert_eq!(t.state()["inventory"]["controller"]["id"], CONTROLLER_ID);

    // Unknown hosts, strict checking: keys come from the console (polled until cloud-init
    // printed them), then the connection is checked strictly against them.
    consoles
        .lock()
        .unwrap()
        .insert(CONTROLLER_ID.into(), keys_of(&lab, "10.77.0.10"));
    consoles
        .lock()
        .unwrap()
        .insert(WORKER_ID.into(), keys_of(&lab, "10.77.0.11"));
    let run = t.run(&["up", "--only", "bootstrap"]);
    let output = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "{output}");
    assert!(
        output.contains(&format!(
            "pinned 1 host key(s) from the console output of {CONTROLLER_ID}"
        )),
        "{output}"
    );
    for id in [CONTROLLER_ID, WORKER_ID] {
        assert!(
            calls.lock().unwrap()[id] >= 2,
            "the first console had no keys: {id} was polled again"
        );
    }
    let pinned = std::fs::read_to_string(&known_hosts).unwrap();
    for (ip, id) in [("10.77.0.10", CONTROLLER_ID), ("10.77.0.11", WORKER_ID)] {
        for key in keys_of(&lab, ip) {
            assert!(
                pinned
                    .lines()
                    .any(|l| l.starts_with(&format!("{ip} {key}")) && l.contains(id)),
                "{ip} {key} not pinned:\n{pinned}"
            );
        }
    }

    // Pinned hosts are not looked up again.
    calls.lock().unwrap().clear();
    t.run(&["up", "--only", "bootstrap"]).expect(0);
    assert!(calls.lock().unwrap().is_empty(), "no console lookups");

    // The controller rebuilt behind the same address (an Elastic IP): a new instance id, new
    // keys. Its old keys (pinned from the old instance's console) must not stop every run
    // forever: they are dropped and the new instance's console is trusted, as for a new host.
    const REBUILT_ID: &str = "i-0c0ffee000000000c";
    let old_pins = std::fs::read_to_string(&known_hosts).unwrap();
    let worker_key = keys_of(&lab, "10.77.0.11")[0].clone();
    let stale: String = old_pins
        .lines()
        .map(|l| {
            if l.starts_with("10.77.0.10 ") {
                // The old instance's key: not the one the host now offers.
                format!("10.77.0.10 {worker_key} controller {CONTROLLER_ID} pinned by jeeves from the EC2 console\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&known_hosts, &stale).unwrap();
    // The same instance with another key: a mismatch, as always.
    let run = t.run(&["up", "--only", "bootstrap"]).expect(1);
    assert!(
        run.stderr.contains("host key mismatch for 10.77.0.10:22"),
        "{}",
        run.stderr
    );
    t.write(
        "ids.tfvars.json",
        &serde_json::json!({
            "controller": {"id": REBUILT_ID, "hostname": "controller", "public_ip": "10.77.0.10", "private_ip": "10.77.0.10"},
            "workers": [{"id": WORKER_ID, "hostname": "worker-1", "public_ip": "10.77.0.11", "private_ip": "10.77.0.11"}],
        })
        .to_string(),
    );
    t.run(&["up", "--only", "terraform"]).expect(0);
    consoles
        .lock()
        .unwrap()
        .insert(REBUILT_ID.into(), keys_of(&lab, "10.77.0.10"));
    let run = t.run(&["up", "--only", "bootstrap"]);
    let output = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "{output}");
    assert!(
        output.contains(&format!(
            "10.77.0.10 is now instance {REBUILT_ID} (its keys were pinned from {CONTROLLER_ID})"
        )),
        "{output}"
    );
    let pinned = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(
        !pinned.contains(&format!("10.77.0.10 {worker_key}")),
        "{pinned}"
    );
    assert!(pinned.contains(REBUILT_ID), "{pinned}");

    // A console that shows another key than the host offers: the run stops before any command.
    std::fs::remove_file(&known_hosts).unwrap();
    consoles
        .lock()
        .unwrap()
        .insert(REBUILT_ID.into(), keys_of(&lab, "10.77.0.11"));
    let run = t.run(&["up", "--only", "bootstrap"]).expect(1);
    assert!(
        run.stderr.contains("host key mismatch for 10.77.0.10:22"),
        "{}",
        run.stderr
    );
}
