//! `jeeves render`: the rendered haproxy.cfg passes the real `haproxy -c`, and every Kubernetes
//! document passes `kubernetes-validate` (built-in kinds).

use crate::common;

use common::{Test, tool};

/// A throwaway self-signed certificate + key in one PEM, as HAProxy wants it.
fn throwaway_pem(t: &Test) -> String {
    let key = t.path("tls.key");
    let crt = t.path("tls.crt");
    let (code, out) = tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=chat.jeeves.test",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            crt.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let pem = t.path("haproxy.pem");
    let both = format!(
        "{}{}",
        std::fs::read_to_string(&key).unwrap(),
        std::fs::read_to_string(&crt).unwrap()
    );
    std::fs::write(&pem, both).unwrap();
    pem.to_string_lossy().into_owned()
}

#[test]
fn rendered_haproxy_cfg_passes_haproxy_check() {
    let mut t = Test::new();
    let pem = throwaway_pem(&t);
    t.env("JEEVES_HAPROXY_PEM_PATH", &pem);
    let run = t.run(&["render", "--out", "out"]).expect(0);
    assert!(run.stdout.contains("haproxy.cfg"), "{}", run.stdout);
    let cfg = t.path("out/haproxy.cfg");
    let text = std::fs::read_to_string(&cfg).unwrap();
    // Private, as the state directory is: the rendered Helm values may hold what the pipeline
    // file's [helm.values] says.
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!((mode(&t.path("out")), mode(&cfg)), (0o700, 0o600));
    for needle in [
        "frontend http_in",
        "frontend https_in",
        "backend traefik_backend",
        "127.0.0.1:30080",
        "X-Forwarded-Proto",
        "http-request del-header X-Forwarded-For",
        "http-request set-header X-Real-IP %[src]",
        &format!("ssl crt {pem}"),
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let (code, out) = tool("haproxy", &["-c", "-f", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "haproxy -c failed:\n{out}\n{text}");

    // The check can fail: a config pointing at a missing certificate is refused.
    std::fs::write(&cfg, text.replace(&pem, "/nonexistent/cert.pem")).unwrap();
    let (code, _) = tool("haproxy", &["-c", "-f", cfg.to_str().unwrap()]);
    assert_ne!(code, 0, "haproxy accepted a missing certificate");
}

#[test]
fn rendered_kubernetes_documents_validate() {
    let t = Test::new();
    t.run(&["render", "--out", "out"]).expect(0);
    let dir = t.path("out/traefik");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    let mut kinds = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for doc in text.split("\n---\n") {
            let kind = doc
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .unwrap_or_else(|| panic!("no kind in {}", f.display()));
            kinds.push(kind.to_string());
            if kind == "IngressRoute" {
                // A Traefik CRD: kubernetes-validate knows only the built-in kinds.
                assert!(doc.contains("Host(`chat.jeeves.test`)"), "{doc}");
                assert!(
                    doc.contains("rocketchat-ddp-streamer")
                        && doc.contains("PathPrefix(`/websocket`)"),
                    "{doc}"
                );
                continue;
            }
            let single = t.path("doc.yaml");
            std::fs::write(&single, doc).unwrap();
            let (code, out) = tool(
                "kubernetes-validate",
                &["--strict", single.to_str().unwrap()],
            );
            assert_eq!(
                code,
                0,
                "{} ({kind}) is invalid:\n{out}\n{doc}",
                f.display()
            );
        }
    }
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "IngressRoute",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} not rendered: {kinds:?}"
        );
    }

    // The validator can fail: a Service with a string port is refused.
    let bad = t.path("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n    - port: eighty\n").unwrap();
    let (code, _) = tool("kubernetes-validate", &["--strict", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
}

#[test]
fn helm_values_follow_the_mongodb_choice() {
    let mut t = Test::new();
    t.env("JEEVES_HELM_MONGODB", "bundled");
    t.run(&["render", "--out", "bundled"]).expect(0);
    let bundled = std::fs::read_to_string(t.path("bundled/rocketchat-values.yaml")).unwrap();
    assert!(bundled.contains("host: \"chat.jeeves.test\""), "{bundled}");
    // Bundled: the chart's MongoDB, its credentials (and the URIs) in the secret Jeeves manages.
    assert!(
        bundled.contains("mongodb:\n  enabled: true")
            && bundled.contains("existingMongodbSecret: \"rocketchat-mongodb\"")
            && bundled.contains("    existingSecret: \"rocketchat-mongodb\""),
        "{bundled}"
    );
    t.env("JEEVES_HELM_MONGODB", "external");
    t.run(&["render", "--out", "external"]).expect(0);
    let external = std::fs::read_to_string(t.path("external/rocketchat-values.yaml")).unwrap();
    assert!(
        external.contains("existingMongodbSecret: \"rocketchat-mongodb\"")
            && external.contains("mongodb:\n  enabled: false"),
        "{external}"
    );
    assert!(
        external.contains("ingress:\n  enabled: false"),
        "{external}"
    );
    assert!(
        external.contains("microservices:\n  enabled: true"),
        "{external}"
    );
}

#[test]
fn a_template_with_an_unknown_variable_fails() {
    let t = Test::new();
    t.write(
        "templates/haproxy.cfg.hbs",
        "bind *:443 ssl crt {{haproxy.no_such_field}}\n",
    );
    let run = t.run(&["render", "--out", "out"]).expect(1);
    assert!(run.stderr.contains("haproxy.cfg.hbs"), "{}", run.stderr);
}

/// `[backup]` renders a PersistentVolumeClaim and a CronJob that are valid for Kubernetes 1.32,
/// whose container runs the script as written with the URI from the Rocket.Chat secret.
#[test]
fn the_backup_cronjob_renders_and_validates_for_kubernetes_1_32() {
    let mut t = Test::new();
    // Backups as this test configures them (JEEVES_BACKUP_*), not the lab pipeline's (S3).
    t.without_backup();
    t.run(&["render", "--out", "none"]).expect(0);
    assert!(
        !t.path("none/backup").exists(),
        "no [backup], no backup objects"
    );

    // Any `JEEVES_BACKUP_*` turns backups on; the rest are the defaults. External mode: the
    // Job reads Rocket.Chat's Secret.
    t.env("JEEVES_BACKUP_KEEP", "3")
        .env("JEEVES_HELM_MONGODB", "external")
        .env(
            "MONGO_URI",
            "mongodb://rc:s3cr3t-pa55@db.internal:27017/rocketchat",
        );
    t.run(&["render", "--out", "out"]).expect(0);
    let file = t.path("out/backup/mongodb-backup.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("s3cr3t"), "no URI in the manifests");
    let docs: Vec<&str> = text
        .split("\n---\n")
        .filter(|d| d.contains("kind: "))
        .collect();
    assert_eq!(docs.len(), 2, "{text}");
    for doc in &docs {
        let single = t.path("doc.yaml");
        std::fs::write(&single, doc).unwrap();
        let (code, out) = tool(
            "kubernetes-validate",
            &["-k", "1.32.0", "--strict", single.to_str().unwrap()],
        );
        assert_eq!(code, 0, "invalid for Kubernetes 1.32:\n{out}\n{doc}");
    }
    // Parsed as the API server would: the schedule, the retention, the secret, the script.
    let script = common::repo().join("src/stages/deploy/scripts/mongodb-backup.sh");
    let check = format!(
        r#"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open({file:?})) if d]
pvc, cj = docs
assert pvc["kind"] == "PersistentVolumeClaim" and pvc["spec"]["storageClassName"] == "microk8s-hostpath", pvc
assert cj["kind"] == "CronJob" and cj["metadata"]["name"] == "rocketchat-mongodb-backup", cj["metadata"]
assert cj["metadata"]["namespace"] == "psautoinfra"
assert cj["spec"]["schedule"] == "0 3 * * *" and cj["spec"]["concurrencyPolicy"] == "Forbid"
pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
c = pod["containers"][0]
assert c["image"] == "docker.io/library/mongo:7.0.28", c["image"]
assert c["command"][:2] == ["/bin/sh", "-c"] and c["command"][3] == "mongodb-backup", c["command"]
assert c["command"][2] == open({script:?}).read(), "the script, byte for byte"
assert c["args"] == ["dump", "/backup", "3", "1800"], c["args"]
assert cj["spec"]["startingDeadlineSeconds"] == 300, cj["spec"]
assert c["env"] == [{{"name": "MONGO_URI", "valueFrom": {{"secretKeyRef": {{"name": "rocketchat-mongodb", "key": "mongo-uri"}}}}}}], c["env"]
assert c["volumeMounts"] == [{{"name": "archives", "mountPath": "/backup"}}]
assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
print("ok")
"#
    );
    let (code, out) = tool("python3", &["-c", &check]);
    assert_eq!(code, 0, "{out}\n{text}");

    // The validator can fail: a CronJob without its schedule is refused.
    let bad = t.path("bad.yaml");
    std::fs::write(&bad, docs[1].replace("  schedule: \"0 3 * * *\"\n", "")).unwrap();
    let (code, _) = tool(
        "kubernetes-validate",
        &["-k", "1.32.0", "--strict", bad.to_str().unwrap()],
    );
    assert_ne!(code, 0);

    // destination = "s3": no claim; the dump in an init container, the upload (its script byte
    // for byte, the endpoint and the credentials Secret by reference) after it; valid too. In
    // operator mode (the lab's) the dump reads the operator's Secret for its admin user
    // (`<name>-admin-admin`, connectionString.standard), and a restore Rocket.Chat's database.
    let mut s3 = Test::new();
    s3.without_backup();
    s3.env("JEEVES_BACKUP_DESTINATION", "s3")
        .env("JEEVES_BACKUP_BUCKET", "rc-backups")
        .env("JEEVES_BACKUP_ENDPOINT_URL", "http://minio.internal:9000")
        .env("JEEVES_BACKUP_CREDENTIALS_SECRET", "rc-backup-s3")
        .env("JEEVES_HELM_MONGODB", "operator");
    s3.run(&["render", "--out", "out"]).expect(0);
    let file = s3.path("out/backup/mongodb-backup.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let (code, out) = tool(
        "kubernetes-validate",
        &["-k", "1.32.0", "--strict", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "invalid for Kubernetes 1.32:\n{out}\n{text}");
    let upload = common::repo().join("src/stages/deploy/scripts/mongodb-backup-upload.sh");
    let check = format!(
        r#"
import yaml
docs = [d for d in yaml.safe_load_all(open({file:?})) if d]
assert [d["kind"] for d in docs] == ["CronJob"], [d["kind"] for d in docs]
pod = docs[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
dump, = pod["initContainers"]
up, = pod["containers"]
assert dump["name"] == "mongodump" and dump["args"] == ["dump", "/backup", "0", "1800"], dump["args"]
assert dump["env"] == [{{"name": "MONGO_URI", "valueFrom": {{"secretKeyRef": {{"name": "rocketchat-db-admin-admin", "key": "connectionString.standard"}}}}}},
                       {{"name": "MONGO_DATABASE", "value": "rocketchat"}}], dump["env"]
assert up["image"] == "docker.io/amazon/aws-cli:2.27.9", up["image"]
assert up["command"][2] == open({upload:?}).read(), "the upload script, byte for byte"
assert up["args"] == ["upload", "/backup", "rc-backups", "lab", "7"], up["args"]
env = {{e["name"]: e for e in up["env"]}}
assert env["AWS_ENDPOINT_URL_S3"]["value"] == "http://minio.internal:9000", env
assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {{"name": "rc-backup-s3", "key": "AWS_SECRET_ACCESS_KEY"}}, env
assert "AWS_REGION" not in env, env
assert pod["volumes"] == [{{"name": "archives", "emptyDir": {{}}}}], pod["volumes"]
print("ok")
"#
    );
    let (code, out) = tool("python3", &["-c", &check]);
    assert_eq!(code, 0, "{out}\n{text}");

    // No bucket in the pipeline: terraform's outputs `backup_bucket`/`backup_prefix`, from the
    // inventory of the last run; before there is one, the backup objects are left out, said.
    let mut tf = Test::new();
    tf.without_backup();
    tf.env("JEEVES_BACKUP_DESTINATION", "s3");
    let run = tf.run(&["render", "--out", "out"]).expect(0);
    assert!(
        run.stderr.contains("backup objects not rendered")
            && run.stderr.contains("backup.bucket")
            && !tf.path("out/backup").exists(),
        "{}",
        run.stderr
    );
    tf.write(
        ".jeeves/lab/state.json",
        r#"{"version": 1, "inventory": {"controller": null, "workers": [],
            "backup_bucket": "acme-backup-1234", "backup_prefix": "acme"}, "stages": {}}"#,
    );
    tf.run(&["render", "--out", "out"]).expect(0);
    let text = std::fs::read_to_string(tf.path("out/backup/mongodb-backup.yaml")).unwrap();
    assert!(
        text.contains(r#"args: ["upload", "/backup", "acme-backup-1234", "acme", "7"]"#),
        "{text}"
    );

    // A schedule that is not five cron fields: exit 2, naming the key and where it came from.
    t.env("JEEVES_BACKUP_SCHEDULE", "0 3 * *");
    let run = t.run(&["render", "--out", "bad"]).expect(2);
    assert!(
        run.stderr.contains("backup.schedule")
            && run.stderr.contains("JEEVES_BACKUP_SCHEDULE")
            && run.stderr.contains("has 4 field(s)"),
        "{}",
        run.stderr
    );
}

/// With three controllers haproxy.cfg forwards ACME challenges to certbot on the first
/// controller (read from the inventory, as the tls stage renders it), and passes `haproxy -c`.
#[test]
fn three_controllers_render_the_acme_forward_to_the_first() {
    let mut t = Test::new();
    let pem = throwaway_pem(&t);
    t.env("JEEVES_HAPROXY_PEM_PATH", &pem);
    let host = |n: &str, ip: &str| {
        format!(r#"{{"hostname": "{n}", "public_ip": "{ip}", "private_ip": "{ip}"}}"#)
    };
    let vars = t.path("hosts.tfvars.json");
    std::fs::write(
        &vars,
        format!(
            r#"{{"more_controllers": [{}, {}]}}"#,
            host("controller-2", "10.77.0.102"),
            host("controller-3", "10.77.0.103")
        ),
    )
    .unwrap();
    t.env("JEEVES_TERRAFORM_VAR_FILES", &vars.display().to_string());
    t.env("JEEVES_CLUSTER_CONTROLLERS", "3");
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.run(&["render", "--out", "out"]).expect(0);
    let cfg = t.path("out/haproxy.cfg");
    let text = std::fs::read_to_string(&cfg).unwrap();
    for needle in [
        "acl acme_challenge path_beg /.well-known/acme-challenge/",
        "http-request deny deny_status 404 if !acme_challenge",
        "use_backend acme_backend if acme_challenge",
        "server certbot 10.77.0.10:8402",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let (code, out) = tool("haproxy", &["-c", "-f", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "haproxy -c failed:\n{out}\n{text}");
}
