//! `[maintenance]`: the image-prune DaemonSet as rendered (`templates/maintenance/`) is a valid
//! Kubernetes 1.32 object (`kubernetes-validate`, the API's own OpenAPI schemas), carries the
//! settings, and a bad setting is refused before anything runs.

use crate::common;

use common::{Test, tool};

#[test]
fn the_image_prune_daemonset_validates_for_kubernetes_1_32() {
    let mut t = Test::new();
    t.env("JEEVES_MAINTENANCE_IMAGE_PRUNE_EVERY", "12h").env(
        "JEEVES_MAINTENANCE_IMAGE_PRUNE_IMAGE",
        "docker.io/library/alpine:3.20",
    );
    t.run(&["render", "--out", "out"]).expect(0);
    let file = t.path("out/maintenance/image-prune.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let (code, out) = tool(
        "kubernetes-validate",
        &["-k", "1.32.0", "--strict", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}\n{text}");
    // YAML to JSON with PyYAML (what kubernetes-validate reads it with).
    let (code, json) = tool(
        "python3",
        &[
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{json}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let spec = &doc["spec"]["template"]["spec"];
    assert_eq!(doc["kind"], "DaemonSet");
    assert_eq!(
        spec["containers"][0]["image"],
        "docker.io/library/alpine:3.20"
    );
    assert_eq!(spec["containers"][0]["env"][1]["value"], "43200");
    assert_eq!(
        spec["volumes"][0]["hostPath"]["path"],
        "/var/snap/microk8s/common/run/containerd.sock"
    );
    assert!(text.contains("crictl --runtime-endpoint"), "{text}");
    // The container's script passes shellcheck, as every script Jeeves runs on a host does.
    let script = t.path("prune.sh");
    std::fs::write(&script, spec["containers"][0]["args"][0].as_str().unwrap()).unwrap();
    let (code, out) = tool(
        "shellcheck",
        &["--shell=sh", "--severity=style", script.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");

    // The validator can fail: a DaemonSet without a selector is refused.
    let bad = t.path("bad.yaml");
    std::fs::write(&bad, text.replace("  selector:\n", "  selectorr:\n")).unwrap();
    let (code, _) = tool(
        "kubernetes-validate",
        &["-k", "1.32.0", "--strict", bad.to_str().unwrap()],
    );
    assert_ne!(code, 0);
}

#[test]
fn an_unpinned_prune_image_or_a_zero_interval_is_a_config_error() {
    let mut t = Test::new();
    t.env("JEEVES_MAINTENANCE_IMAGE_PRUNE_IMAGE", "alpine")
        .env("JEEVES_MAINTENANCE_IMAGE_PRUNE_EVERY", "0s");
    let run = t.run(&["render", "--out", "out"]).expect(2);
    assert!(
        run.stderr.contains("maintenance.image_prune_image")
            && run.stderr.contains("maintenance.image_prune_every")
            && run.stderr.contains("JEEVES_MAINTENANCE_IMAGE_PRUNE_IMAGE"),
        "{}",
        run.stderr
    );
}
