//! The deploy stage end to end on the lab: real OpenSSH and the in-process tunnel to the
//! controller; kubectl and helm are the stand-ins in tests/standins (no Kubernetes API server can
//! run here), which record every call and reach the controller's API through the live tunnel
//! during the call. The helm stand-in renders the real chart (tests/fixtures/charts) with the real
//! `helm template` and records its objects, so the routes are checked against the Services the
//! chart really makes. One test function: the lab is one per machine.

use crate::common;

use std::net::TcpStream;
use std::path::Path;

use common::{Lab, Test, chart, repo};

const PORT: &str = "26502";
const MONGO_URI: &str = "mongodb://rc:s3cr3t-pa55@db.internal:27017/rocketchat?replicaSet=rs0";
const MONGO_OPLOG_URI: &str = "mongodb://rc:s3cr3t-pa55@db.internal:27017/local?replicaSet=rs0";

/// Every IngressRoute backend in the stand-in cluster is one of its Services, with that port.
fn unresolved_backends(cluster: &serde_json::Value) -> Vec<String> {
    let objects = cluster["objects"].as_object().unwrap();
    let mut out = Vec::new();
    for (k, route) in objects
        .iter()
        .filter(|(k, _)| k.starts_with("IngressRoute/"))
    {
        let ns = route["metadata"]["namespace"].as_str().unwrap();
        for svc in route["spec"]["routes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["services"].as_array().unwrap())
        {
            let name = svc["name"].as_str().unwrap();
            let found = objects
                .get(&format!("Service/{ns}/{name}"))
                .is_some_and(|s| {
                    s["spec"]["ports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["port"] == svc["port"])
                });
            if !found {
                out.push(format!("{k} → {name}:{}", svc["port"]));
            }
        }
    }
    out
}

/// The stand-ins' call records: (tool, argv, kubeconfig argument, KUBECONFIG, API version seen).
fn calls(t: &Test) -> Vec<serde_json::Value> {
    std::fs::read_to_string(t.path("standin-calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// "kubectl apply", "helm upgrade"… for the calls after the first `from`.
fn verbs(calls: &[serde_json::Value], from: usize) -> Vec<String> {
    calls[from..]
        .iter()
        .map(|c| {
            let argv: Vec<&str> = c["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            // argv: --kubeconfig PATH VERB …
            format!("{} {}", c["tool"].as_str().unwrap(), argv[2])
        })
        .collect()
}

fn grep_tree(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            hits.extend(grep_tree(&p, needle));
        } else if std::fs::read(&p)
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[test]
fn deploy_goes_through_the_tunnel_applies_once_and_reports_helm_failures() {
    let lab = Lab::up(0);
    let mut t = Test::new();
    lab.env_for(&mut t);
    let cluster_state = t.path("standin-cluster.json").display().to_string();
    t.with_standins()
        .env(
            "JEEVES_TRAEFIK_CRDS",
            repo()
                .join("tests/fixtures/traefik/traefik-v3.3.4-kubernetes-crd-definition-v1.yml")
                .to_str()
                .unwrap(),
        )
        .env("JEEVES_TUNNEL_LOCAL_PORT", PORT)
        // The older supported chart first; the upgrade to the newer one comes below.
        .env("JEEVES_HELM_VERSION", "6.25.1")
        .env("JEEVES_HELM_CHART", &chart("6.25.1"))
        .env("JEEVES_HELM_MONGODB", "external")
        .env("MONGO_URI", MONGO_URI)
        .env("MONGO_OPLOG_URI", MONGO_OPLOG_URI);

    // External MongoDB without its URIs: a config error before anything runs.
    let mut bare = Test::new();
    lab.env_for(&mut bare);
    bare.env("JEEVES_HELM_MONGODB", "external");
    let run = bare.run(&["up", "--only", "deploy"]).expect(2);
    assert!(run.stderr.contains("MONGO_URI"), "{}", run.stderr);
    // Chart 6.25.1 also reads the oplog URI.
    bare.env("MONGO_URI", MONGO_URI)
        .env("JEEVES_HELM_VERSION", "6.25.1")
        .env("JEEVES_HELM_CHART", &chart("6.25.1"));
    let run = bare.run(&["up", "--only", "deploy"]).expect(2);
    assert!(run.stderr.contains("MONGO_OPLOG_URI"), "{}", run.stderr);
    // A local chart that is not the version pinned.
    bare.env("JEEVES_HELM_CHART", &chart("7.0.2"));
    let run = bare.run(&["up", "--only", "deploy"]).expect(2);
    assert!(
        run.stderr.contains("helm.chart") && run.stderr.contains("is version 7.0.2"),
        "{}",
        run.stderr
    );

    let run = t.run(&[
        "--output",
        "json",
        "up",
        "--only",
        "terraform",
        "--only",
        "bootstrap",
        "--only",
        "tunnel",
        "--only",
        "deploy",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stage_result("deploy"), "changed");
    let state_dir = std::fs::canonicalize(t.path(".jeeves/lab")).unwrap();
    let all = calls(&t);
    assert!(!all.is_empty());
    for c in &all {
        // Every call: the kubeconfig of the run's one tunnel (a private file of the run in the
        // state dir, gone with it), never the user's, and the API answered through the tunnel
        // while the call ran. (The tunnel's /readyz check uses a scratch copy.)
        let arg = c["kubeconfig_arg"].as_str().unwrap();
        if c["argv"].to_string().contains("\"--raw\"") {
            assert!(arg.ends_with("/lab/kubeconfig.probe"), "{c}");
        } else {
            let arg = Path::new(arg);
            assert_eq!(arg.parent(), Some(state_dir.as_path()), "{c}");
            let name = arg.file_name().unwrap().to_string_lossy();
            assert!(name.starts_with("kubeconfig.run."), "{c}");
            assert!(
                !arg.exists(),
                "the run's kubeconfig is removed with it: {c}"
            );
        }
        assert_eq!(c["KUBECONFIG"].as_str(), Some(arg), "{c}");
        assert_eq!(c["server_version"], "v1.32.0-jeeves-lab-standin", "{c}");
    }
    let v = verbs(&all, 0);
    let first = |verb: &str| v.iter().position(|x| x == verb).unwrap_or(usize::MAX);
    assert!(first("kubectl apply") < first("kubectl wait"), "{v:?}");
    assert!(first("kubectl wait") < first("kubectl annotate"), "{v:?}");
    assert!(first("kubectl rollout") < first("helm upgrade"), "{v:?}");
    let upgrade = all
        .iter()
        .find(|c| c["argv"][2] == "upgrade")
        .unwrap()
        .to_string();
    for arg in [
        "\"--install\"",
        "\"rocketchat\"",
        &format!("\"{}\"", chart("6.25.1")),
        "\"-n\",\"psautoinfra\"",
        "\"--create-namespace\"",
        "\"--wait\"",
        "\"--atomic\"",
    ] {
        assert!(upgrade.contains(arg), "{arg} in {upgrade}");
    }
    // The MongoDB secret holds the URIs; nothing else anywhere does.
    let cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("standin-cluster.json")).unwrap())
            .unwrap();
    let secret = &cluster["objects"]["Secret/psautoinfra/rocketchat-mongodb"];
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"]["mongo-uri"].as_str().unwrap())
            .unwrap(),
        MONGO_URI.as_bytes()
    );
    assert!(!run.stdout.contains("s3cr3t-pa55") && !run.stderr.contains("s3cr3t-pa55"));
    assert!(!upgrade.contains("s3cr3t"), "never an argument: {upgrade}");
    assert_eq!(
        grep_tree(&t.path(".jeeves"), "s3cr3t-pa55"),
        Vec::<String>::new(),
        "state, logs and rendered files hold no Mongo URI"
    );
    // The IngressRoute sends the DDP paths to the ddp-streamer, and every backend is a Service
    // the real chart made (rocketchat-rocketchat:80, rocketchat-ddp-streamer:3000).
    let route = cluster["objects"]["IngressRoute/psautoinfra/rocketchat"].to_string();
    assert!(
        route.contains("/sockjs") && route.contains("rocketchat-ddp-streamer"),
        "{route}"
    );
    for svc in ["rocketchat-rocketchat", "rocketchat-ddp-streamer"] {
        assert!(
            cluster["objects"][format!("Service/psautoinfra/{svc}")].is_object(),
            "the chart's Service {svc} is in the cluster"
        );
    }
    assert_eq!(unresolved_backends(&cluster), Vec::<String>::new());
    assert!(
        run.stdout
            .contains("every IngressRoute backend is a live Service with its port"),
        "{}",
        run.stdout
    );
    assert!(
        TcpStream::connect(format!("127.0.0.1:{PORT}")).is_err(),
        "the tunnel closed with the run"
    );

    // Re-run (deploy alone, as a Jenkins step): it opens the tunnel itself and applies nothing.
    let before = calls(&t).len();
    let run = t
        .run(&["--output", "json", "up", "--only", "deploy"])
        .expect(0);
    assert_eq!(run.stage_result("deploy"), "unchanged", "{}", run.stdout);
    let v = verbs(&calls(&t), before);
    assert!(
        ["kubectl get", "kubectl diff", "helm history", "helm get"]
            .iter()
            .all(|read| v.iter().any(|x| x == read)),
        "the re-run read the cluster: {v:?}"
    );
    assert!(
        v.iter().all(|x| x == "kubectl get"
            || x == "kubectl diff"
            || x == "helm history"
            || x == "helm get"),
        "only reads: {v:?}"
    );

    // Someone changes a live object (`kubectl set image`): the annotation still matches, the
    // server-side diff finds the change, and the re-run puts the rendered image back.
    let read_state = || {
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&cluster_state).unwrap())
            .unwrap()
    };
    let mut state = read_state();
    let key = state["objects"]
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.starts_with("Deployment/") && k.ends_with("/traefik"))
        .expect("the traefik Deployment")
        .clone();
    let image = |state: &serde_json::Value| {
        state["objects"][&key]["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let rendered_image = image(&state);
    state["objects"][&key]["spec"]["template"]["spec"]["containers"][0]["image"] =
        "docker.io/library/traefik:tampered".into();
    std::fs::write(&cluster_state, state.to_string()).unwrap();
    let before = calls(&t).len();
    let run = t
        .run(&["--output", "json", "up", "--only", "deploy"])
        .expect(0);
    assert_eq!(run.stage_result("deploy"), "changed", "{}", run.stdout);
    assert!(
        run.stdout
            .contains("changed outside Jeeves (apps.v1.Deployment.traefik.traefik)"),
        "the plan names the drifted object:\n{}",
        run.stdout
    );
    let v = verbs(&calls(&t), before);
    assert!(!v.iter().any(|x| x == "helm upgrade"), "{v:?}");
    assert_eq!(
        image(&read_state()),
        rendered_image,
        "the rendered image is back"
    );
    let before = calls(&t).len();
    t.run(&["up", "--only", "deploy"]).expect(0);
    assert!(
        !verbs(&calls(&t), before)
            .iter()
            .any(|x| x == "kubectl apply"),
        "converged again"
    );

    // A new database URI: the secret changes and the release's Deployments roll (pods read
    // MONGO_URL only when they start); the chart and Traefik stay as they are.
    const MOVED: &str = "mongodb://rc:n3w-s3cr3t@db2.internal:27017/rocketchat?replicaSet=rs0";
    t.env("MONGO_URI", MOVED);
    let before = calls(&t).len();
    let run = t
        .run(&["--output", "json", "up", "--only", "deploy"])
        .expect(0);
    assert_eq!(run.stage_result("deploy"), "changed");
    let v = verbs(&calls(&t), before);
    assert!(
        !v.iter().any(|x| x == "helm upgrade") && v.iter().any(|x| x == "kubectl rollout"),
        "{v:?}"
    );
    let state = read_state();
    let restarted = &state["objects"]["Deployment/psautoinfra/rocketchat-rocketchat"]["spec"]["template"]
        ["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"];
    assert!(restarted.is_string(), "the Rocket.Chat pods rolled");
    assert!(!run.stdout.contains("n3w-s3cr3t") && !run.stderr.contains("n3w-s3cr3t"));
    let run = t
        .run(&["--output", "json", "up", "--only", "deploy"])
        .expect(0);
    assert_eq!(run.stage_result("deploy"), "unchanged", "{}", run.stdout);

    // A new chart version (with the two values Jeeves writes for it alone), one value changed,
    // one added that is a secret, and one Traefik setting: `plan` shows exactly those — the
    // chart old → new, the values old → new (read from `helm get values`; the secret masked),
    // the Traefik object that would change — and changes nothing.
    const TOKEN: &str = "t0ken-from-the-pipeline";
    t.env("JEEVES_HELM_VERSION", "7.0.2")
        .env("JEEVES_HELM_CHART", &chart("7.0.2"))
        .env("JEEVES_TRAEFIK_REPLICAS", "2");
    let pipeline = t.path("pipelines/lab.toml");
    let lab_toml = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        format!(
            "{lab_toml}\n[helm.replicas]\npresence = 2\n[helm.values.podAnnotations]\n\"jeeves.test/api-token\" = \"{TOKEN}\"\n"
        ),
    )
    .unwrap();
    let before = calls(&t).len();
    let plan = t
        .run(&["--output", "plain", "plan", "--only", "deploy"])
        .expect(0);
    let planned: Vec<&str> = plan
        .stdout
        .lines()
        .filter_map(|l| l.split_once("[deploy]   ").map(|(_, c)| c))
        .collect();
    assert_eq!(planned.len(), 7, "{}", plan.stdout);
    assert!(
        planned[0].starts_with("apply Traefik: CRDs from ")
            && planned[0].ends_with("; these would change: apps.v1.Deployment.traefik.traefik"),
        "{}",
        plan.stdout
    );
    // External mode: the server's version is read by a Job before Rocket.Chat rolls, by `up`.
    assert!(
        planned[1].starts_with("read the external MongoDB's version, by a Job")
            && planned[1].contains("Rocket.Chat 8.6.1 needs newer than 8.0")
            && planned[1].ends_with("(not read by plan: it starts no pod)"),
        "{}",
        plan.stdout
    );
    assert_eq!(
        planned[2..],
        [
            "upgrade helm release rocketchat in psautoinfra: chart rocketchat-6.25.1 → rocketchat-7.0.2",
            "value microservices.presence.replicas: 1 → 2",
            // Values Jeeves writes for 7.x only (the monitors' own switches: helm.metrics).
            "value mongodb.serviceMonitor.enabled: (none) → false",
            "value nats.podMonitor.enabled: (none) → true",
            "value podAnnotations[\"jeeves.test/api-token\"]: (none) → [masked]",
        ],
        "{}",
        plan.stdout
    );
    let v = verbs(&calls(&t), before);
    assert!(
        ["kubectl get", "kubectl diff", "helm history", "helm get"]
            .iter()
            .all(|read| v.iter().any(|x| x == read)),
        "plan read the cluster: {v:?}"
    );
    assert!(
        v.iter().all(|x| x == "kubectl get"
            || x == "kubectl diff"
            || x == "helm history"
            || x == "helm get"),
        "plan only reads: {v:?}"
    );
    // `up` reads it (a Job, mongosh's db.version(), the URI by secretKeyRef): a server Rocket.Chat
    // 8.6.1 exits on is refused, exit 2, naming both versions and the way out; nothing rolls.
    let server = t.path("standin-mongo/db2.internal:27017.json");
    std::fs::create_dir_all(server.parent().unwrap()).unwrap();
    std::fs::write(&server, r#"{"setName": "rs0", "version": "6.0.10"}"#).unwrap();
    let before = calls(&t).len();
    let run = t.run(&["up", "--only", "deploy"]).expect(2);
    assert!(
        run.stderr.contains("helm.version")
            && run.stderr.contains("the server is 6.0.10 (the external server's db.version() 6.0.10, read by Job psautoinfra/rocketchat-mongodb-version-")
            && run.stderr.contains("upgrade MongoDB to 8.0 first, or pin helm.version to 6.25.1"),
        "{}",
        run.stderr
    );
    assert!(
        !verbs(&calls(&t), before)
            .iter()
            .any(|x| x == "helm upgrade"),
        "nothing rolled"
    );
    // Upgraded to 8.0: read again, accepted, said; the Job deleted once read.
    std::fs::write(&server, r#"{"setName": "rs0", "version": "8.0.4"}"#).unwrap();
    let before = calls(&t).len();
    let run = t
        .run(&["--output", "json", "up", "--only", "deploy"])
        .expect(0);
    assert_eq!(run.stage_result("deploy"), "changed");
    assert!(
        run.stdout
            .contains("MongoDB 8.0.4 (the external server's db.version() 8.0.4"),
        "{}",
        run.stdout
    );
    assert!(
        !read_state()["objects"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("mongodb-version")),
        "the version Job is gone"
    );
    let v = verbs(&calls(&t), before);
    assert_eq!(
        v.iter().filter(|x| x.as_str() == "helm upgrade").count(),
        1,
        "{v:?}"
    );
    // The pods that rolled: every Deployment of the release (7.0.2 changes their images, and its
    // NATS subchart the nats-box);
    // stream-hub is gone.
    assert!(
        run.stdout.contains("pods rolled: rocketchat-account, rocketchat-authorization, rocketchat-ddp-streamer, rocketchat-nats-box, rocketchat-presence, rocketchat-rocketchat; Deployments removed: rocketchat-stream-hub"),
        "{}",
        run.stdout
    );
    for out in [&plan.stdout, &plan.stderr, &run.stdout, &run.stderr] {
        assert!(!out.contains("s3cr3t") && !out.contains(TOKEN), "{out}");
    }
    assert_eq!(
        grep_tree(&t.path(".jeeves/lab/logs"), TOKEN),
        Vec::<String>::new(),
        "the logs hold no secret value, not even helm's answer to `get values`"
    );
    // Converged: the next plan has nothing to show.
    let plan = t
        .run(&["--output", "plain", "plan", "--only", "deploy"])
        .expect(0);
    assert!(
        plan.stdout.contains("[deploy] plan: unchanged"),
        "{}",
        plan.stdout
    );
    let cluster = read_state();
    assert_eq!(
        cluster["releases"]["psautoinfra/rocketchat"]["history"][1]["chart"],
        "rocketchat-7.0.2"
    );
    // 7.0.2 no longer runs stream-hub: the upgrade removed it, and the routes still resolve.
    assert!(cluster["objects"]["Deployment/psautoinfra/rocketchat-stream-hub"].is_null());
    assert_eq!(unresolved_backends(&cluster), Vec::<String>::new());

    // Issue 24: versions are checked before a Rocket.Chat rolls (about 3 s: four plans).
    // Back to chart 6.25.1 (Rocket.Chat 7.6.0 after 8.6.1): refused, naming both, unless
    // --allow-downgrade.
    t.env("JEEVES_HELM_VERSION", "6.25.1")
        .env("JEEVES_HELM_CHART", &chart("6.25.1"));
    let run = t.run(&["plan", "--only", "deploy"]).expect(2);
    assert!(
        [
            "helm.version",
            "6.25.1",
            "7.6.0",
            "rocketchat-7.0.2",
            "8.6.1",
            "--allow-downgrade"
        ]
        .iter()
        .all(|p| run.stderr.contains(p)),
        "{}",
        run.stderr
    );
    t.run(&["plan", "--only", "deploy", "--allow-downgrade"])
        .expect(0);
    // Bundled on 6.25.1 onto a bundled MongoDB 4.4 that runs (read from its StatefulSet through
    // kubectl): Rocket.Chat 7.6.0 exits below 5.0, so the plan refuses, naming both versions.
    let mut state = read_state();
    state["objects"]["StatefulSet/psautoinfra/rocketchat-mongodb"] = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "rocketchat-mongodb", "namespace": "psautoinfra"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "mongodb", "image": "docker.io/bitnami/mongodb:4.4.15-debian-10-r8"}]}}}});
    std::fs::write(&cluster_state, state.to_string()).unwrap();
    t.env("JEEVES_HELM_MONGODB", "bundled");
    let run = t
        .run(&["plan", "--only", "deploy", "--allow-downgrade"])
        .expect(2);
    assert!(
        [
            "helm.version",
            "Rocket.Chat 7.6.0",
            "MongoDB 5.0 or newer",
            "4.4.15",
            "StatefulSet rocketchat-mongodb"
        ]
        .iter()
        .all(|p| run.stderr.contains(p)),
        "{}",
        run.stderr
    );
    // `check` reads the same StatefulSet and fails `mongodb/version`, naming the repair.
    let check = t.run(&["--output", "json", "check"]);
    let finding = check
        .events()
        .into_iter()
        .find(|e| e["event"] == "check_finished" && e["check"] == "mongodb/version")
        .unwrap_or_else(|| panic!("no mongodb/version finding:\n{}", check.stdout));
    assert_eq!(finding["status"], "fail", "{finding}");
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("MongoDB 4.4.15"),
        "{finding}"
    );
    let mut state = read_state();
    state["objects"]
        .as_object_mut()
        .unwrap()
        .remove("StatefulSet/psautoinfra/rocketchat-mongodb");
    std::fs::write(&cluster_state, state.to_string()).unwrap();
    // No StatefulSet yet (kubectl's NotFound): what the release would deploy counts, the
    // chart's MongoDB 6.0.10, which Rocket.Chat 7.6.0 accepts. (The plan then stops on the
    // MongoDB secret, rightly: this release was installed external, and the bundled
    // database's passwords were never made.)
    let run = t.run(&["plan", "--only", "deploy", "--allow-downgrade"]);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("MongoDB 6.0.10 (chart 6.25.1's bundled MongoDB")
            && said.contains("nothing deployed yet")
            && !said.contains("helm.version")
            && said.contains("has no `mongodb-passwords`"),
        "{said}"
    );
    // Bundled with chart 7.0.2: refused outright, before anything is read, pointing to the
    // operator and the migration.
    t.env("JEEVES_HELM_VERSION", "7.0.2")
        .env("JEEVES_HELM_CHART", &chart("7.0.2"));
    let before = calls(&t).len();
    let run = t.run(&["plan", "--only", "deploy"]).expect(2);
    assert!(
        [
            "helm.mongodb",
            "6.0.10",
            "8.6.1",
            "operator",
            "jeeves restore"
        ]
        .iter()
        .all(|p| run.stderr.contains(p)),
        "{}",
        run.stderr
    );
    assert!(
        !verbs(&calls(&t), before).iter().any(|v| v != "kubectl get"),
        "nothing but reads before the refusal"
    );
    t.env("JEEVES_HELM_MONGODB", "external");

    // An IngressRoute whose backend the chart does not make (the 404 this check exists for:
    // the Service named after the release alone) fails the stage, naming what exists.
    let route = t.path("templates/traefik/60-ingressroute.yaml.hbs");
    let good = std::fs::read_to_string(&route).unwrap();
    std::fs::write(&route, good.replace("{{app.service}}", "{{app.release}}")).unwrap();
    let run = t.run(&["up", "--only", "deploy"]).expect(1);
    assert!(
        run.stderr.contains("Traefik would answer 404")
            && run.stderr.contains(
                "sends traffic to Service psautoinfra/rocketchat port 80, which does not exist"
            )
            && run.stderr.contains("rocketchat-rocketchat:80,9100"),
        "{}",
        run.stderr
    );
    std::fs::write(&route, good).unwrap();
    t.run(&["up", "--only", "deploy"]).expect(0);

    // A helm killed mid-upgrade leaves its revision pending-upgrade, and every helm call after
    // it fails ("another operation … is in progress"): the re-run rolls back to the last
    // deployed revision, then upgrades, and the run after that is converged.
    let mut state = read_state();
    let history = state["releases"]["psautoinfra/rocketchat"]["history"]
        .as_array_mut()
        .unwrap();
    let last = history.len();
    history.push(
        serde_json::json!({"revision": last + 1, "status": "pending-upgrade",
        "chart": "rocketchat-7.0.2", "description": "Preparing upgrade"}),
    );
    std::fs::write(&cluster_state, state.to_string()).unwrap();
    let before = calls(&t).len();
    let run = t
        .run(&["--output", "json", "up", "--only", "deploy"])
        .expect(0);
    assert!(
        run.stdout.contains(&format!(
            "revision {} is pending-upgrade (a helm that was interrupted); roll back to revision {last}",
            last + 1
        )),
        "{}",
        run.stdout
    );
    let v = verbs(&calls(&t), before);
    let at = |verb: &str| v.iter().position(|x| x == verb).unwrap_or(usize::MAX);
    assert!(
        at("helm rollback") < at("helm upgrade") && at("helm upgrade") < v.len(),
        "{v:?}"
    );
    assert_eq!(
        t.run(&["--output", "json", "up", "--only", "deploy"])
            .expect(0)
            .stage_result("deploy"),
        "unchanged"
    );
    // An install killed before anything was deployed: uninstalled, then installed.
    let mut state = read_state();
    state["releases"]["psautoinfra/rocketchat"]["history"] = serde_json::json!([{"revision": 1,
        "status": "pending-install", "chart": "rocketchat-7.0.2", "description": "Initial install underway"}]);
    std::fs::write(&cluster_state, state.to_string()).unwrap();
    let before = calls(&t).len();
    t.run(&["up", "--only", "deploy"]).expect(0);
    let v = verbs(&calls(&t), before);
    let at = |verb: &str| v.iter().position(|x| x == verb).unwrap_or(usize::MAX);
    assert!(
        at("helm uninstall") < at("helm upgrade") && at("helm upgrade") < v.len(),
        "{v:?}"
    );
    assert_eq!(unresolved_backends(&read_state()), Vec::<String>::new());

    // helm.mongodb = "operator": the operator from its packaged chart (CRDs server-side first),
    // the passwords, the MongoDBCommunity, the wait for Running, and the operator's own URI in
    // the secret the chart reads; the Rocket.Chat pods roll to read it. Nothing shows a password.
    operator_mode(&mut t, &read_state, &cluster_state);

    // A failing helm: the stage fails with helm's own message.
    t.env("LAB_STANDIN_HELM_FAIL", "1");
    let run = t
        .run(&["up", "--only", "deploy", "--force", "deploy"])
        .expect(1);
    assert!(
        run.stderr
            .contains("helm upgrade --install of release rocketchat failed")
            && run.stderr.contains("UPGRADE FAILED"),
        "{}",
        run.stderr
    );
}

fn b64(v: &serde_json::Value) -> String {
    use base64::Engine;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// The operator part of the deploy test, on the lab and release the test brought up.
fn operator_mode(t: &mut Test, read_state: &dyn Fn() -> serde_json::Value, cluster_state: &str) {
    t.env("JEEVES_HELM_MONGODB", "operator").env(
        "JEEVES_MONGODB_OPERATOR_CHART",
        repo()
            .join("tests/fixtures/charts/mongodb-kubernetes-1.10.0.tgz")
            .to_str()
            .unwrap(),
    );
    let plan = t.run(&["plan", "--only", "deploy"]).expect(0);
    for line in [
        "apply CRDs of chart mongodb-kubernetes 1.10.0",
        "install helm release mongodb/mongodb-kubernetes (MongoDB operator, chart mongodb-kubernetes-1.10.0)",
        "create secret psautoinfra/rocketchat-db-passwords (passwords of rocketchat, admin",
        "create MongoDBCommunity psautoinfra/rocketchat-db (3 members, MongoDB 8.0.12)",
        "wait MongoDBCommunity psautoinfra/rocketchat-db phase Running with 3 member(s)",
        "update secret psautoinfra/rocketchat-mongodb (mongo-uri: the operator's connectionString.standard from rocketchat-db-rocketchat-rocketchat, once the replica set runs)",
    ] {
        assert!(plan.stdout.contains(line), "{line} in:\n{}", plan.stdout);
    }
    let before = calls(t).len();
    let run = t.run(&["--output", "json", "up", "--only", "deploy"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stage_result("deploy"), "changed");
    let all = calls(t);
    let args: Vec<String> = all[before..]
        .iter()
        .map(|c| {
            c["argv"].as_array().unwrap()[2..]
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let at = |prefix: &str| {
        args.iter()
            .position(|a| a.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {args:#?}"))
    };
    // In order: CRDs, Established, the operator (helm leaves the CRDs alone), the replica set,
    // its status, the URI copied, the Rocket.Chat pods rolled.
    let mut from = 0;
    for prefix in [
        "show crds",
        "apply --server-side --field-manager jeeves --force-conflicts -f .jeeves/lab/deploy/mongodb-operator-crds.yaml",
        "wait --for condition=established",
        "upgrade --install mongodb-kubernetes",
        "apply --server-side --field-manager jeeves --force-conflicts -f -",
        "apply --server-side --field-manager jeeves --force-conflicts -f .jeeves/lab/deploy/mongodbcommunity.yaml",
        "get mongodbcommunity rocketchat-db",
        "apply --server-side --field-manager jeeves --force-conflicts -f -",
        "rollout restart deployment",
    ] {
        from += args[from..]
            .iter()
            .position(|a| a.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` after call {from} in {args:#?}"))
            + 1;
    }
    let upgrade = &args[at("upgrade --install mongodb-kubernetes")];
    assert!(
        upgrade.contains("-n mongodb --create-namespace --skip-crds")
            && upgrade.contains("--atomic"),
        "{upgrade}"
    );
    // The phase went Pending before Running (the stand-in operator's first reconcile).
    assert!(
        run.stdout.contains("phase Pending, ")
            && run
                .stdout
                .contains("phase Running, 3/3 member pod(s) ready"),
        "{}",
        run.stdout
    );

    let cluster = read_state();
    let o = &cluster["objects"];
    assert!(o["Deployment/mongodb/mongodb-kubernetes-operator"].is_object());
    assert!(o["CustomResourceDefinition//mongodbcommunity.mongodbcommunity.mongodb.com"]["metadata"]["annotations"]["jeeves.io/manifests-sha256"].is_string());
    let rs = &o["MongoDBCommunity/psautoinfra/rocketchat-db"];
    assert_eq!(rs["status"]["phase"], "Running");
    assert_eq!(rs["spec"]["users"][0]["db"], "rocketchat");
    let conn = &o["Secret/psautoinfra/rocketchat-db-rocketchat-rocketchat"]["data"];
    let uri = b64(&conn["connectionString.standard"]);
    // Rocket.Chat's URI is the operator's, byte for byte: its database `rocketchat`, and no
    // authSource, so the user is looked up where it is defined.
    assert_eq!(
        b64(&o["Secret/psautoinfra/rocketchat-mongodb"]["data"]["mongo-uri"]),
        uri
    );
    assert!(
        uri.contains("@rocketchat-db-0.rocketchat-db-svc.psautoinfra.svc.cluster.local:27017,")
            && uri.contains("/rocketchat?replicaSet=rocketchat-db&ssl=false")
            && !uri.contains("authSource"),
        "{uri}"
    );
    let values = &cluster["releases"]["psautoinfra/rocketchat"];
    let last = values["history"].as_array().unwrap().len().to_string();
    assert_eq!(
        values["configs"][&last]["existingMongodbSecret"],
        "rocketchat-mongodb"
    );
    assert_eq!(values["configs"][&last]["mongodb"]["enabled"], false);
    // The passwords: generated (48 hex characters), different, and nowhere but in the cluster.
    let pw = &o["Secret/psautoinfra/rocketchat-db-passwords"]["data"];
    let (user, admin) = (b64(&pw["rocketchat"]), b64(&pw["admin"]));
    assert_eq!((user.len(), admin.len()), (48, 48));
    assert_ne!(user, admin);
    let calls_log = std::fs::read_to_string(t.path("standin-calls.jsonl")).unwrap();
    for secret in [&user, &admin, &uri] {
        assert!(!run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()));
        assert!(!plan.stdout.contains(secret.as_str()));
        assert!(!calls_log.contains(secret.as_str()), "never an argument");
        assert_eq!(grep_tree(&t.path(".jeeves"), secret), Vec::<String>::new());
    }

    // Converged: nothing to do, and the passwords stay.
    let run = t
        .run(&["--output", "json", "up", "--only", "deploy"])
        .expect(0);
    assert_eq!(run.stage_result("deploy"), "unchanged", "{}", run.stdout);
    assert_eq!(
        b64(
            &read_state()["objects"]["Secret/psautoinfra/rocketchat-db-passwords"]["data"]["rocketchat"]
        ),
        user
    );

    // A topology the live nodes cannot hold (their allocatable, from the API): refused before
    // anything is applied, naming the key (exit 2).
    t.env("JEEVES_MONGODB_MEMBERS", "5")
        .env("JEEVES_MONGODB_ANTI_AFFINITY", "required");
    let before = calls(t).len();
    let run = t.run(&["up", "--only", "deploy"]).expect(2);
    assert!(
        run.stderr.contains("mongodb.members")
            && run
                .stderr
                .contains("5 members with anti_affinity = \"required\" need 5 nodes")
            && run.stderr.contains("the allocatable of the cluster's"),
        "{}",
        run.stderr
    );
    assert!(
        !verbs(&calls(t), before)
            .iter()
            .any(|v| v == "kubectl apply" || v == "helm upgrade"),
        "nothing applied"
    );
    t.env("JEEVES_MONGODB_ANTI_AFFINITY", "none");

    // A member that cannot start: the phase stays Pending with the operator's message, and the
    // wait fails at helm.timeout naming the member and its reason.
    let mut state = read_state();
    state["pod_faults"] = serde_json::json!({"psautoinfra/rocketchat-db": {"reason": "ImagePullBackOff", "restarts": 0}});
    std::fs::write(cluster_state, state.to_string()).unwrap();
    t.env("JEEVES_MONGODB_MEMBERS", "2")
        .env("JEEVES_HELM_TIMEOUT", "5s");
    let plan = t.run(&["plan", "--only", "deploy"]).expect(0);
    assert!(
        plan.stdout
            .contains("update MongoDBCommunity psautoinfra/rocketchat-db: members 3 → 2"),
        "{}",
        plan.stdout
    );
    let run = t.run(&["up", "--only", "deploy"]).expect(1);
    assert!(run.stderr.contains("MongoDBCommunity psautoinfra/rocketchat-db is not Running after 5s (helm.timeout): phase Pending")
        && run.stderr.contains("ReplicaSet is not yet ready, retrying in 10 seconds")
        && run.stderr.contains("rocketchat-db-0 (ImagePullBackOff)"), "{}", run.stderr);
    let mut state = read_state();
    state["pod_faults"] = serde_json::json!({});
    std::fs::write(cluster_state, state.to_string()).unwrap();
    t.env("JEEVES_HELM_TIMEOUT", "15m");
    let run = t
        .run(&["--output", "json", "up", "--only", "deploy"])
        .expect(0);
    // The member up again: the set is Running (seen by this run's wait, or already by its
    // probe, which the operator stand-in's reconcile on read allows) and Rocket.Chat gets the
    // two-member URI.
    assert!(
        (run.stdout
            .contains("phase Running, 2/2 member pod(s) ready")
            || run.stdout.contains("MongoDB secret applied (mongo-uri)"))
            && read_state()["objects"]["MongoDBCommunity/psautoinfra/rocketchat-db"]["status"]["phase"]
                == "Running",
        "{}",
        run.stdout
    );
    // Back to the external MongoDB for the rest of the test.
    t.env("JEEVES_HELM_MONGODB", "external")
        .env("JEEVES_MONGODB_MEMBERS", "3");
}
