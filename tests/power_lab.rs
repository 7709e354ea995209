//! `jeeves stop` → `jeeves start` on the lab: stop/start go to the lab's moto, whose EC2
//! instances (tests/lab/lab `start_moto`, tagged as terraform/aws tags them) stand for the lab's
//! hosts — the inventory carries their ids. What this can show and what it cannot: stopping a
//! moto instance does not stop the lab's network-namespace host (its sshd, MicroK8s stand-in and
//! HAProxy keep running), and the lab's addresses are fixed while moto gives a started instance
//! a new public IP. So the test proves the sequence — EC2 state transitions, the repair pipeline
//! through every stage, the leftover pods removed through the tunnel, the next `up` unchanged —
//! not that a real machine comes back from a stop (tests/power.rs has the moto side alone).

use crate::common;

use common::{Lab, Test, block_on};

const PORT: &str = "26508";

/// The lab's moto instances by their Name tag (`jeeves-lab-controller`, `jeeves-lab-worker-1`).
fn lab_instances(endpoint: &str) -> std::collections::BTreeMap<String, String> {
    let creds = aws_sdk_ec2::config::Credentials::new("lab", "lab", None, None, "test");
    let config = block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .load(),
    );
    let reply = block_on(
        aws_sdk_ec2::Client::new(&config)
            .describe_instances()
            .send(),
    )
    .unwrap();
    reply
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            let name = i
                .tags()
                .iter()
                .find(|t| t.key() == Some("Name"))
                .and_then(|t| t.value())
                .unwrap()
                .to_string();
            let state = i.state().unwrap().name().unwrap().as_str().to_string();
            (name, format!("{} {state}", i.instance_id().unwrap()))
        })
        .collect()
}

fn pod(namespace: &str, name: &str, phase: &str) -> (String, serde_json::Value) {
    (
        format!("Pod/{namespace}/{name}"),
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"nodeName": "worker-1"},
            "status": {"phase": phase},
        }),
    )
}

#[test]
fn stop_then_start_repairs_the_stack_and_removes_leftover_pods() {
    let lab = Lab::up(1);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.with_standins().env("JEEVES_TUNNEL_LOCAL_PORT", PORT);
    let (_, env) = common::sh(&mut lab.cmd(&["env"]));
    let endpoint = env
        .lines()
        .find_map(|l| l.strip_prefix("export AWS_ENDPOINT_URL="))
        .expect("AWS_ENDPOINT_URL in `lab env`")
        .to_string();
    let endpoint = endpoint.as_str();
    let instances = lab_instances(endpoint);
    let id = |name: &str| {
        instances[&format!("jeeves-lab-{name}")]
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    // The lab's hosts (its own terraform variables) with the ids of their moto instances.
    let mut hosts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path("terraform.tfvars.json")).unwrap())
            .unwrap();
    hosts["controller"]["id"] = id("controller").into();
    hosts["workers"][0]["id"] = id("worker-1").into();
    t.write("hosts.tfvars.json", &hosts.to_string());
    let vars = t.path("hosts.tfvars.json").display().to_string();
    t.env("JEEVES_TERRAFORM_VAR_FILES", &vars)
        .env("JEEVES_MAINTENANCE_IMAGE_PRUNE", "true");

    t.run(&["--output", "json", "up"]).expect(0);
    assert_eq!(t.state()["inventory"]["controller"]["id"], id("controller"));
    // `[maintenance] image_prune`: the deploy stage applied the DaemonSet, with its hash.
    let cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("standin-cluster.json")).unwrap())
            .unwrap();
    let prune = &cluster["objects"]["DaemonSet/kube-system/jeeves-image-prune"];
    assert!(
        prune["metadata"]["annotations"]["jeeves.io/manifests-sha256"].is_string(),
        "{prune}"
    );
    assert_eq!(
        prune["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"],
        "/var/snap/microk8s/common/run/containerd.sock"
    );

    // Pods from before the stop: a failed, a completed and an unknown one, and a running one
    // that stays.
    let cluster_file = t.path("standin-cluster.json");
    let mut cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cluster_file).unwrap()).unwrap();
    for (k, v) in [
        pod("psautoinfra", "rocketchat-old-7d9f", "Failed"),
        pod("psautoinfra", "migrate-x2k4", "Succeeded"),
        pod("kube-system", "coredns-lost-5c4f", "Unknown"),
        pod("psautoinfra", "rocketchat-live-8b2c", "Running"),
    ] {
        cluster["objects"][k] = v;
    }
    std::fs::write(&cluster_file, cluster.to_string()).unwrap();

    let stopped = t.run(&["--output", "plain", "stop", "--yes"]).expect(0);
    assert!(stopped.stdout.contains("stopping"), "{}", stopped.stdout);
    let now = lab_instances(endpoint);
    assert!(now.values().all(|v| v.ends_with(" stopped")), "{now:?}");
    let status = t.run(&["status"]).expect(0);
    assert!(
        status.stdout.lines().any(|l| l.contains("controller")
            && l.contains(&id("controller"))
            && l.trim_end().ends_with("stopped")),
        "{}",
        status.stdout
    );

    let started = t.run(&["--output", "json", "start"]).expect(0);
    let now = lab_instances(endpoint);
    assert!(now.values().all(|v| v.ends_with(" running")), "{now:?}");
    // terraform is applied (forced) to refresh its outputs; the lab's hosts never stopped, so
    // the other stages find them converged.
    assert_eq!(started.stage_result("terraform"), "changed");
    for stage in ["bootstrap", "tls", "tunnel", "deploy", "dns"] {
        assert_eq!(
            started.stage_result(stage),
            "unchanged",
            "{}",
            started.stdout
        );
    }
    let said: Vec<String> = started
        .events()
        .iter()
        .filter(|e| e["event"] == "log")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect();
    assert!(
        said.iter()
            .any(|m| m.starts_with("SSH answers on all 2 host(s)")),
        "{said:?}"
    );
    for removed in [
        "removed pod psautoinfra/rocketchat-old-7d9f (Failed)",
        "removed pod psautoinfra/migrate-x2k4 (Succeeded)",
        "removed pod kube-system/coredns-lost-5c4f (Unknown)",
    ] {
        assert!(said.iter().any(|m| m == removed), "{removed}: {said:?}");
    }
    let cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cluster_file).unwrap()).unwrap();
    let pods: Vec<&String> = cluster["objects"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("Pod/"))
        .collect();
    assert_eq!(pods, ["Pod/psautoinfra/rocketchat-live-8b2c"]);
    // The deletes went through the tunnel: the stand-in reached the API for each call.
    let calls = std::fs::read_to_string(t.path("standin-calls.jsonl")).unwrap();
    let deletes: Vec<serde_json::Value> = calls
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|c| c["argv"][2] == "delete")
        .collect();
    assert_eq!(deletes.len(), 2, "one delete per namespace: {deletes:?}");
    assert!(deletes.iter().all(|c| c["server_version"].is_string()));

    // Started again: a no-op; and the next `up` finds nothing to do.
    let again = t.run(&["--output", "plain", "start"]).expect(0);
    assert!(again.stdout.contains("already running"), "{}", again.stdout);
    let next = t.run(&["--output", "json", "up"]).expect(0);
    for stage in ["terraform", "bootstrap", "tls", "tunnel", "deploy", "dns"] {
        assert_eq!(next.stage_result(stage), "unchanged", "{}", next.stdout);
    }
}
