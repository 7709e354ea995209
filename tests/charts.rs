//! Jeeves' rendered values and Traefik resources against the real upstream artifacts: each
//! vendored Rocket.Chat chart (tests/fixtures/charts) through the real `helm template`, for
//! MongoDB external and bundled and microservices on and off, checked by tests/charts/check.py
//! (routes resolve to Services the chart renders, every values key is one the chart reads,
//! Kubernetes 1.32 and Traefik CRD schemas, no image from a namespace that is gone, Traefik's
//! RBAC).

use crate::common;

use common::{Test, repo, tool};
use jeeves::chart;

const KUBE_VERSION: &str = "1.32.0";
const NAMESPACE: &str = "psautoinfra";

/// `jeeves render`, then the real `helm template` of the chart with the rendered values, then
/// the checker: (exit code, its output). `bundled` must match what `t` sets.
fn render_and_check(
    t: &mut Test,
    version: &str,
    out: &str,
    bundled: bool,
    release: &str,
) -> (i32, String) {
    let chart_path = common::chart(version);
    t.env("JEEVES_HELM_VERSION", version)
        .env("JEEVES_HELM_CHART", &chart_path)
        .env("JEEVES_HELM_RELEASE", release);
    t.run(&["render", "--out", out]).expect(0);
    // The rendered values, and `[helm.values]` second when the pipeline has it (as deploy does).
    let values: Vec<String> = ["rocketchat-values.yaml", "rocketchat-extra-values.json"]
        .iter()
        .map(|f| t.path(&format!("{out}/{f}")))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec![
        "template",
        release,
        chart_path.as_str(),
        "-n",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ];
    for v in &values {
        args.extend(["-f", v.as_str()]);
    }
    let (code, rendered) = tool("helm", &args);
    assert_eq!(code, 0, "helm template {version} ({out}):\n{rendered}");
    let helm_out = t.path(&format!("{out}.helm.yaml"));
    std::fs::write(&helm_out, &rendered).unwrap();
    let fixtures = repo().join("tests/fixtures/traefik");
    let mut args = vec![
        repo().join("tests/charts/check.py").display().to_string(),
        "--chart".into(),
        chart_path.clone(),
        "--helm-out".into(),
        helm_out.display().to_string(),
        "--rendered".into(),
        t.path(out).display().to_string(),
        "--namespace".into(),
        NAMESPACE.into(),
        "--crds".into(),
        fixtures
            .join("traefik-v3.3.4-kubernetes-crd-definition-v1.yml")
            .display()
            .to_string(),
        "--rbac".into(),
        fixtures
            .join("traefik-v3.3.4-kubernetes-crd-rbac.yml")
            .display()
            .to_string(),
        "--kube-version".into(),
        KUBE_VERSION.into(),
        // The secret's keys and the bundled MongoDB's address, as Jeeves writes them.
        "--secret".into(),
        "rocketchat-mongodb".into(),
        "--secret-keys".into(),
        chart::supported(version)
            .unwrap()
            .secret_keys(bundled)
            .join(","),
        "--mongodb-host".into(),
        if bundled {
            chart::bundled_mongodb_host(release)
        } else {
            String::new()
        },
    ];
    for v in values {
        args.extend(["--values".into(), v]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tool("python3", &args)
}

#[test]
fn every_supported_chart_renders_with_jeeves_values_and_every_route_resolves() {
    let mut runs = 0;
    for version in ["6.25.1", "7.0.2"] {
        for mongodb in ["external", "bundled"] {
            for microservices in ["true", "false"] {
                let mut t = Test::new();
                t.env("JEEVES_HELM_MONGODB", mongodb)
                    .env("JEEVES_HELM_MICROSERVICES", microservices);
                let out = format!("{version}-{mongodb}-ms-{microservices}");
                let bundled = mongodb == "bundled";
                let (code, report) = render_and_check(&mut t, version, &out, bundled, "rocketchat");
                assert_eq!(code, 0, "{out}:\n{report}");
                assert!(report.starts_with("checked "), "{report}");
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 8);
    // A release whose name holds `mongodb`: the subchart then names its Service differently.
    let mut t = Test::new();
    t.env("JEEVES_HELM_MONGODB", "bundled");
    let (code, report) = render_and_check(&mut t, "7.0.2", "named", true, "chat-mongodb");
    assert_eq!(code, 0, "{report}");
}

/// The check fails on each bug the real chart exposed in earlier renderings: the IngressRoute
/// sent to a Service named after the release alone, `microservices.accounts` (the chart reads
/// `account`), and 6.25.1's bundled MongoDB from docker.io/bitnami; and on objects the schemas
/// refuse (a misspelt IngressRoute field, a misspelt Deployment field).
#[test]
fn the_check_fails_on_the_bugs_the_real_chart_exposed() {
    let mut t = Test::new();
    t.env("JEEVES_HELM_MONGODB", "bundled");
    let route = t.path("templates/traefik/60-ingressroute.yaml.hbs");
    let text = std::fs::read_to_string(&route).unwrap();
    let broken = text.replace("{{app.service}}", "{{app.release}}").replace(
        "  entryPoints:\n",
        "  entryPoint:\n    - web\n  entryPoints:\n",
    );
    std::fs::write(&route, broken).unwrap();
    let deployment = t.path("templates/traefik/40-deployment.yaml.hbs");
    let text = std::fs::read_to_string(&deployment).unwrap();
    std::fs::write(&deployment, text.replace("strategy:", "stratgy:")).unwrap();
    let values = t.path("templates/rocketchat-values.yaml.hbs");
    let text = std::fs::read_to_string(&values).unwrap();
    let old = text
        .replace("  account:\n", "  accounts:\n")
        .replace("{{#if app.chart.legacy_bitnami_images}}", "{{#if false}}");
    assert_ne!(old, text);
    std::fs::write(&values, old).unwrap();
    let (code, report) = render_and_check(&mut t, "6.25.1", "old", true, "rocketchat");
    assert_eq!(code, 1, "{report}");
    for needle in [
        "route: IngressRoute psautoinfra/rocketchat (Host(`chat.jeeves.test`)) → Service psautoinfra/rocketchat, which the chart does not render",
        "values: ",
        "`microservices.accounts.replicas` is not read by the chart",
        "image: StatefulSet rocketchat-mongodb container mongodb: docker.io/bitnami/mongodb:",
        "schema: IngressRoute rocketchat: spec: Additional properties are not allowed ('entryPoint' was unexpected)",
        "schema: Deployment traefik: spec: Additional properties are not allowed ('stratgy' was unexpected)",
    ] {
        assert!(report.contains(needle), "{needle} in:\n{report}");
    }
}

/// A chart version Jeeves has no table for is refused before anything runs (exit 2, naming the
/// key), and so is a key no supported chart reads.
#[test]
fn an_unknown_chart_version_or_an_unread_key_is_a_config_error() {
    let mut t = Test::new();
    t.env("JEEVES_HELM_VERSION", "6.26.0");
    let run = t.run(&["render", "--out", "out"]).expect(2);
    assert!(
        run.stderr.contains("helm.version")
            && run.stderr.contains("6.26.0")
            && run.stderr.contains("supported: 6.25.1, 7.0.2"),
        "{}",
        run.stderr
    );
    let t = Test::new();
    let lab = std::fs::read_to_string(repo().join("pipelines/lab.toml")).unwrap();
    t.write(
        "pipelines/lab.toml",
        &format!("{lab}\n[helm.replicas]\nstream_hub = 2\n"),
    );
    let run = t.run(&["render", "--out", "out"]).expect(2);
    assert!(
        run.stderr.contains("helm.replicas.stream_hub"),
        "{}",
        run.stderr
    );
    // With the bundled MongoDB, Jeeves owns its credentials and address.
    let mut t = Test::new();
    t.env("JEEVES_HELM_MONGODB", "bundled");
    t.write(
        "pipelines/lab.toml",
        &format!("{lab}\n[helm.values.mongodb.auth]\nrootPassword = \"x\"\n"),
    );
    let run = t.run(&["render", "--out", "out"]).expect(2);
    assert!(
        run.stderr.contains("helm.values.mongodb.auth"),
        "{}",
        run.stderr
    );
    // nameOverride renames the chart's Service; the IngressRoute follows it.
    let mut t = Test::new();
    t.env("JEEVES_HELM_MONGODB", "bundled");
    t.write(
        "pipelines/lab.toml",
        &format!("{lab}\n[helm.values]\nnameOverride = \"chat\"\n"),
    );
    let (code, report) = render_and_check(&mut t, "7.0.2", "renamed", true, "rocketchat");
    assert_eq!(code, 0, "{report}");
    let route = std::fs::read_to_string(t.path("renamed/traefik/60-ingressroute.yaml")).unwrap();
    assert!(route.contains("name: rocketchat-chat\n"), "{route}");
}

/// The backup Job reads the database URI from the Secret and key the real chart's Rocket.Chat
/// containers read `MONGO_URL` from, for every supported chart and both MongoDB choices (with
/// `existingMongodbSecret` set, as Jeeves always sets it, the chart's own Secret carries no
/// `mongo-uri`).
#[test]
fn the_backup_job_reads_the_uri_from_the_secret_rocket_chat_reads() {
    let check = r#"
import sys, yaml
rendered, chart_out = sys.argv[1], sys.argv[2]
cj = [d for d in yaml.safe_load_all(open(rendered)) if d and d["kind"] == "CronJob"][0]
c = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
ours = [e["valueFrom"]["secretKeyRef"] for e in c["env"] if e["name"] == "MONGO_URI"][0]
reads = set()
for d in yaml.safe_load_all(open(chart_out)):
    if not d or d["kind"] != "Deployment":
        continue
    for k in d["spec"]["template"]["spec"]["containers"]:
        for e in k.get("env") or []:
            if e["name"] == "MONGO_URL":
                r = e["valueFrom"]["secretKeyRef"]
                reads.add((r["name"], r["key"]))
assert reads == {(ours["name"], ours["key"])}, (reads, ours)
print("ok", sorted(reads))
"#;
    for version in ["6.25.1", "7.0.2"] {
        for mongodb in ["external", "bundled"] {
            let mut t = Test::new();
            // The volume's Job, whose one container reads the URI (the lab pipeline's own
            // [backup] is S3, whose dump is an init container: tests/render.rs checks that).
            t.without_backup();
            let chart_path = common::chart(version);
            t.env("JEEVES_HELM_MONGODB", mongodb)
                .env("JEEVES_HELM_VERSION", version)
                .env("JEEVES_HELM_CHART", &chart_path)
                .env("JEEVES_BACKUP_KEEP", "3");
            t.run(&["render", "--out", "out"]).expect(0);
            let values = t.path("out/rocketchat-values.yaml");
            let (code, rendered) = tool(
                "helm",
                &[
                    "template",
                    "rocketchat",
                    &chart_path,
                    "-n",
                    NAMESPACE,
                    "--kube-version",
                    KUBE_VERSION,
                    "-f",
                    values.to_str().unwrap(),
                ],
            );
            assert_eq!(code, 0, "{rendered}");
            let chart_out = t.path("chart.yaml");
            std::fs::write(&chart_out, rendered).unwrap();
            let backup = t.path("out/backup/mongodb-backup.yaml");
            let (code, out) = tool(
                "python3",
                &[
                    "-c",
                    check,
                    backup.to_str().unwrap(),
                    chart_out.to_str().unwrap(),
                ],
            );
            assert_eq!(code, 0, "{version} {mongodb}: {out}");
            assert!(out.contains("('rocketchat-mongodb', 'mongo-uri')"), "{out}");
        }
    }
}

/// `helm.metrics` through the real `helm template`, for a cluster that has the Prometheus
/// Operator's API (`--api-versions monitoring.coreos.com/v1`, the chart's condition for its
/// monitors): on, the chart renders its PodMonitor for Rocket.Chat's `metrics` and
/// `ms-metrics` ports and the pods expose them; off, neither. Chart 7.x: NATS's PodMonitor
/// follows the switch, MongoDB's ServiceMonitor too and only for the bundled MongoDB.
#[test]
fn the_metrics_switch_renders_the_pod_monitor_and_the_metrics_ports() {
    for (version, mongodb) in [
        ("6.25.1", "external"),
        ("7.0.2", "external"),
        ("7.0.2", "bundled"),
    ] {
        for metrics in [true, false] {
            let mut t = Test::new();
            let chart_path = common::chart(version);
            t.env("JEEVES_HELM_VERSION", version)
                .env("JEEVES_HELM_CHART", &chart_path)
                .env("JEEVES_HELM_MONGODB", mongodb)
                .env(
                    "JEEVES_HELM_METRICS",
                    if metrics { "true" } else { "false" },
                );
            t.run(&["render", "--out", "out"]).expect(0);
            let values = t.path("out/rocketchat-values.yaml").display().to_string();
            let (code, rendered) = tool(
                "helm",
                &[
                    "template",
                    "rocketchat",
                    &chart_path,
                    "-n",
                    NAMESPACE,
                    "--kube-version",
                    KUBE_VERSION,
                    "--api-versions",
                    "monitoring.coreos.com/v1",
                    "-f",
                    &values,
                ],
            );
            assert_eq!(code, 0, "{rendered}");
            let case = format!("chart {version}, MongoDB {mongodb}, metrics {metrics}");
            let docs: Vec<serde_json::Value> = rendered
                .split("\n---")
                .filter_map(|d| serde_norway::from_str::<serde_json::Value>(d).ok())
                .filter(|d| d.is_object())
                .collect();
            let find = |kind: &str, name: &str| {
                docs.iter()
                    .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            };
            let monitor = find("PodMonitor", "rocketchat-rocketchat");
            assert_eq!(monitor.is_some(), metrics, "{case}: the PodMonitor");
            if let Some(m) = monitor {
                let ports: Vec<&str> = m["spec"]["podMetricsEndpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|e| e["port"].as_str())
                    .collect();
                assert_eq!(ports, ["metrics", "ms-metrics"], "{case}");
            }
            let port = |deployment: &str, name: &str| {
                find("Deployment", deployment).unwrap()["spec"]["template"]["spec"]["containers"][0]
                    ["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"] == name)
                    .map(|p| p["containerPort"].as_u64().unwrap())
            };
            let (main, ms) = (
                port("rocketchat-rocketchat", "metrics"),
                port("rocketchat-presence", "ms-metrics"),
            );
            if metrics {
                assert_eq!((main, ms), (Some(9100), Some(9458)), "{case}");
            } else {
                assert_eq!((main, ms), (None, None), "{case}");
            }
            let env = find("Deployment", "rocketchat-rocketchat").unwrap()["spec"]["template"]
                .to_string();
            assert_eq!(
                env.contains("OVERWRITE_SETTING_Prometheus_Enabled"),
                metrics,
                "{case}: Rocket.Chat's Prometheus setting"
            );
            if version == "7.0.2" {
                assert_eq!(
                    find("PodMonitor", "rocketchat-nats-monitor").is_some(),
                    metrics,
                    "{case}: NATS's PodMonitor"
                );
                assert_eq!(
                    find("ServiceMonitor", "rocketchat-mongodb").is_some(),
                    metrics && mongodb == "bundled",
                    "{case}: MongoDB's ServiceMonitor"
                );
            }
        }
    }
}

/// `chart::ChartVersion::bundled_mongodb` is the image tag of the MongoDB StatefulSet the real
/// `helm template` renders from the chart's defaults: the version the bundled mode runs when
/// nothing was deployed yet, which `plan` checks against the chart's Rocket.Chat (issue 24).
#[test]
fn the_bundled_mongodb_version_is_the_one_the_chart_renders() {
    for c in chart::SUPPORTED {
        let chart_path = common::chart(c.version);
        let (code, out) = tool(
            "helm",
            &[
                "template",
                "rocketchat",
                chart_path.as_str(),
                "--kube-version",
                KUBE_VERSION,
                // The chart refuses to render its bundled MongoDB without passwords.
                "--set",
                "mongodb.auth.passwords={x},mongodb.auth.rootPassword=x",
                "--show-only",
                "charts/mongodb/templates/replicaset/statefulset.yaml",
            ],
        );
        assert_eq!(code, 0, "helm template {}:\n{out}", c.version);
        let images: Vec<&str> = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image:"))
            .map(|i| i.trim().trim_matches('"'))
            .filter(|i| i.contains("/mongodb:"))
            .collect();
        assert_eq!(
            images
                .iter()
                .map(|i| i.rsplit_once(':').unwrap().1)
                .collect::<Vec<_>>(),
            [c.bundled_mongodb],
            "chart {}: the StatefulSet's mongodb image: {images:?}",
            c.version
        );
    }
}

/// `helm.mongodb = "operator"`: Jeeves' operator values through the real `helm template` of the
/// packaged operator chart (tests/fixtures/charts/mongodb-kubernetes-1.10.0.tgz), every object
/// through kubernetes-validate --strict, and Jeeves' MongoDBCommunity against the chart's own
/// CRD (tests/charts/check_mongodb.py says what else). Then the same with a broken template: the
/// check must fail.
#[test]
fn the_operator_chart_and_the_replica_set_validate_against_the_real_chart() {
    let operator_chart = repo()
        .join("tests/fixtures/charts/mongodb-kubernetes-1.10.0.tgz")
        .display()
        .to_string();
    let check = |t: &mut Test, out: &str| -> (i32, String) {
        t.env("JEEVES_HELM_MONGODB", "operator");
        t.run(&["render", "--out", out]).expect(0);
        let values = t.path(&format!("{out}/mongodb/operator-values.yaml"));
        let (code, rendered) = tool(
            "helm",
            &[
                "template",
                "mongodb-kubernetes",
                &operator_chart,
                "-n",
                "mongodb",
                "--kube-version",
                KUBE_VERSION,
                "--include-crds",
                "-f",
                values.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{rendered}");
        let helm_out = t.path(&format!("{out}.operator.yaml"));
        std::fs::write(&helm_out, &rendered).unwrap();
        let settings_name = "rocketchat-db";
        let args = [
            repo()
                .join("tests/charts/check_mongodb.py")
                .display()
                .to_string(),
            "--chart".into(),
            operator_chart.clone(),
            "--helm-out".into(),
            helm_out.display().to_string(),
            "--values".into(),
            values.display().to_string(),
            "--cr".into(),
            t.path(&format!("{out}/mongodb/mongodbcommunity.yaml"))
                .display()
                .to_string(),
            "--namespace".into(),
            NAMESPACE.into(),
            "--kube-version".into(),
            KUBE_VERSION.into(),
            // The names Jeeves reads, from Jeeves itself.
            "--connection-secret".into(),
            jeeves::stages::deploy::mongodb::connection_secret(settings_name),
            "--user".into(),
            jeeves::stages::deploy::mongodb::USER.into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tool("python3", &args)
    };
    let mut t = Test::new();
    let (code, report) = check(&mut t, "operator");
    assert_eq!(code, 0, "{report}");
    assert!(
        report.starts_with("checked 27 chart objects, 1 MongoDBCommunity"),
        "{report}"
    );
    // The rendering is of the settings: anti-affinity and a storage class appear when set.
    t.env("JEEVES_MONGODB_ANTI_AFFINITY", "required")
        .env("JEEVES_MONGODB_STORAGE_CLASS", "gp3");
    let (code, report) = check(&mut t, "spread");
    assert_eq!(code, 0, "{report}");
    let cr = std::fs::read_to_string(t.path("spread/mongodb/mongodbcommunity.yaml")).unwrap();
    assert!(
        cr.contains("requiredDuringSchedulingIgnoredDuringExecution")
            && cr.contains("app: rocketchat-db-svc")
            && cr.contains("storageClassName: \"gp3\""),
        "{cr}"
    );

    // Broken on purpose: a misspelt field, a SCRAM secret name the CRD refuses, Rocket.Chat's
    // user defined in `admin` (its URI would name the admin database), a values key the chart
    // does not read.
    let mut t = Test::new();
    let cr = t.path("templates/mongodb/mongodbcommunity.yaml.hbs");
    let text = std::fs::read_to_string(&cr).unwrap();
    let broken = text
        .replace(
            "  members: {{mongodb.members}}",
            "  memberz: {{mongodb.members}}",
        )
        .replace(
            "scramCredentialsSecretName: {{mongodb.name}}-admin",
            "scramCredentialsSecretName: Admin_Scram",
        )
        .replace("      db: {{mongodb.user}}\n", "      db: admin\n");
    assert_ne!(broken, text);
    std::fs::write(&cr, broken).unwrap();
    let values = t.path("templates/mongodb/operator-values.yaml.hbs");
    let text = std::fs::read_to_string(&values).unwrap();
    std::fs::write(
        &values,
        text.replace("  watchNamespace:", "  watchNamespaces:"),
    )
    .unwrap();
    let (code, report) = check(&mut t, "broken");
    assert_eq!(code, 1, "{report}");
    for needle in [
        "schema: MongoDBCommunity rocketchat-db: spec: Additional properties are not allowed ('memberz' was unexpected)",
        "schema: MongoDBCommunity rocketchat-db: spec.users.1.scramCredentialsSecretName: 'Admin_Scram' does not match",
        "cr: the operator writes rocketchat-db-admin-rocketchat, Jeeves reads rocketchat-db-rocketchat-rocketchat",
        "values: `operator.watchNamespaces` is not read by the chart",
        "operator: WATCH_NAMESPACE is None, not 'psautoinfra'",
    ] {
        assert!(report.contains(needle), "{needle} in:\n{report}");
    }
}
