//! MongoDB backups on the lab: `up` applies the backup CronJob with the Traefik resources, and
//! `jeeves backup` runs one through the real tunnel. kubectl is the runner-side stand-in
//! (tests/standins), which "runs" a Job by executing its container's command with the env the
//! kubelet would give it (secretKeyRef read from the stored Secret) and a directory standing for
//! the volume; `mongodump` there is a stand-in that records its arguments. One lab bring-up.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Lab, Moto, Test, chart, repo};

const PORT: &str = "26507";
const MONGO_URI: &str = "mongodb://rc:b4ckup-pa55@db.internal:27017/rocketchat?replicaSet=rs0";
const UNREACHABLE: &str = "mongodb://rc:b4ckup-pa55@db.invalid:27017/rocketchat";
const OLDEST: &str = "mongodb-20200101T000000Z.archive.gz";
const OLDER: &str = "mongodb-20210101T000000Z.archive.gz";

fn mongodumps(t: &Test) -> Vec<serde_json::Value> {
    std::fs::read_to_string(t.path("standin-mongodump.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn archives(volume: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(volume)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn cluster_state(t: &Test) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(t.path("standin-cluster.json")).unwrap()).unwrap()
}

/// Changes the stand-in's stored objects (what `kubectl edit` would), returning what `f` does:
/// under the stand-ins' own lock (`common.load`: flock on `<state>.lock`), written beside the
/// file and renamed over it as they write it, so a stand-in call never reads half of it.
fn edit_cluster<R>(t: &Test, f: impl FnOnce(&mut serde_json::Value) -> R) -> R {
    use std::os::fd::AsRawFd;
    let lock = std::fs::File::options()
        .create(true)
        .append(true)
        .open(t.path("standin-cluster.json.lock"))
        .unwrap();
    // SAFETY: flock on a file this function holds open; released when it is closed.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut state = cluster_state(t);
    let r = f(&mut state["objects"]);
    let tmp = t.path("standin-cluster.json.test-tmp");
    std::fs::write(&tmp, state.to_string()).unwrap();
    std::fs::rename(&tmp, t.path("standin-cluster.json")).unwrap();
    drop(lock);
    r
}

fn kubectl_calls(t: &Test) -> String {
    std::fs::read_to_string(t.path("standin-calls.jsonl")).unwrap_or_default()
}

#[test]
fn a_backup_dumps_with_the_secrets_uri_keeps_the_newest_and_lists_them() {
    // No [backup]: a usage error naming the section, before anything remote.
    let bare = Test::new();
    bare.without_backup();
    let run = bare.run(&["backup"]).expect(2);
    assert!(
        run.stderr.contains("has no [backup] section"),
        "{}",
        run.stderr
    );

    let lab = Lab::up(0);
    let mut t = Test::new();
    // Backups as this test configures them (JEEVES_BACKUP_*), not the lab pipeline's.
    t.without_backup();
    lab.env_for(&mut t);
    t.env("JEEVES_BACKUP_ENDPOINT_URL", "");
    t.with_standins()
        .env(
            "JEEVES_TRAEFIK_CRDS",
            repo()
                .join("tests/fixtures/traefik/traefik-v3.3.4-kubernetes-crd-definition-v1.yml")
                .to_str()
                .unwrap(),
        )
        .env("JEEVES_TUNNEL_LOCAL_PORT", PORT)
        .env("JEEVES_HELM_VERSION", "7.0.2")
        .env("JEEVES_HELM_CHART", &chart("7.0.2"))
        .env("JEEVES_HELM_MONGODB", "external")
        .env("MONGO_URI", MONGO_URI)
        .env("JEEVES_BACKUP_KEEP", "2")
        // A Job that never finishes (a Secret the pod cannot read) fails the test in a minute.
        .env("JEEVES_BACKUP_TIMEOUT", "60s");
    let run = t.run(&[
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
    let cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("standin-cluster.json")).unwrap())
            .unwrap();
    let cronjob = &cluster["objects"]["CronJob/psautoinfra/rocketchat-mongodb-backup"];
    assert_eq!(cronjob["spec"]["schedule"], "0 3 * * *", "{cronjob}");
    // A run missed while the stack was stopped is skipped, not started as the cluster boots.
    assert_eq!(cronjob["spec"]["startingDeadlineSeconds"], 300, "{cronjob}");
    assert_eq!(
        cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"],
        serde_json::json!(["dump", "/backup", "2", "60"]),
        "the script is told the Job's deadline, to tell stale partial archives from live ones"
    );
    assert!(
        cluster["objects"]["PersistentVolumeClaim/psautoinfra/rocketchat-mongodb-backup"]
            .is_object()
    );
    assert!(
        !cronjob.to_string().contains("b4ckup-pa55"),
        "no URI in the CronJob"
    );

    // Two archives from before; keep = 2, so the next backup removes the oldest.
    let volume: PathBuf = t.path("standin-volumes/psautoinfra/rocketchat-mongodb-backup");
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::write(volume.join(OLDEST), b"old").unwrap();
    std::fs::write(volume.join(OLDER), b"older").unwrap();

    // The database: a replica set whose oplog Rocket.Chat's user may read (the stand-in
    // server, tests/standins/image/standin_mongo.py).
    let server = t.path("standin-mongo/db.internal:27017.json");
    let write_server = |roles: &[&str]| {
        std::fs::create_dir_all(server.parent().unwrap()).unwrap();
        let s = serde_json::json!({"setName": "rs0", "users": {"rc": roles},
            "databases": {"rocketchat": {"users": [{"_id": "a"}, {"_id": "b"}]},
                          "other": {"things": [{"_id": 1}]}}});
        std::fs::write(&server, s.to_string()).unwrap();
    };
    write_server(&["readWrite@rocketchat", "backup@admin"]);

    let run = t.run(&["backup"]).expect(0);
    eprintln!("--- jeeves backup\n{}{}", run.stderr, run.stdout);
    let dumps = mongodumps(&t);
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    // The URI came from the Secret through the env (secretKeyRef), as the kubelet resolves it;
    // a point in time (--oplog) is a full dump: the URI without its database, which stays the
    // authSource.
    assert_eq!(
        dumps[0]["uri"],
        "mongodb://rc:b4ckup-pa55@db.internal:27017/?replicaSet=rs0&authSource=rocketchat"
    );
    assert_eq!(dumps[0]["oplog"], true, "{dumps:?}");
    assert!(
        run.stdout
            .contains("point in time: mongodump --oplog (replica-set rs0)"),
        "{}",
        run.stdout
    );
    assert_eq!(dumps[0]["env_MONGO_URI"], MONGO_URI);
    // Read from a file only the container's user may read (--config), never on mongodump's
    // command line, where `ps` on the node would show it.
    assert_eq!(dumps[0]["config_mode"], "0o600", "{dumps:?}");
    assert!(
        !dumps[0]["argv"].to_string().contains("b4ckup-pa55")
            && !dumps[0]["argv"].to_string().contains("mongodb://"),
        "{dumps:?}"
    );
    assert_eq!(dumps[0]["gzip"], true);
    let kept = archives(&volume);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0], OLDER, "the oldest was removed: {kept:?}");
    assert!(
        kept[1].starts_with("mongodb-") && kept[1] != OLDER,
        "{kept:?}"
    );
    assert!(
        run.stdout.contains(&format!("wrote {}", kept[1]))
            && run.stdout.contains(&format!("removed {OLDEST}"))
            && run
                .stdout
                .contains("2 archive(s) in volume psautoinfra/rocketchat-mongodb-backup"),
        "{}",
        run.stdout
    );
    let calls = kubectl_calls(&t);
    assert!(
        calls.contains(r#""create", "job""#)
            && calls.contains("--from=cronjob/rocketchat-mongodb-backup")
            && calls.contains("--for=condition=complete"),
        "{calls}"
    );
    assert!(
        !calls.contains("b4ckup-pa55"),
        "no URI in any kubectl argument"
    );
    assert!(!run.stdout.contains("b4ckup-pa55") && !run.stderr.contains("b4ckup-pa55"));

    // --list: the same two, sizes and times, by a Job that dumps nothing and is deleted.
    let run = t.run(&["backup", "--list"]).expect(0);
    eprintln!("--- jeeves backup --list\n{}{}", run.stderr, run.stdout);
    assert!(
        run.stdout
            .contains("2 archive(s) in volume psautoinfra/rocketchat-mongodb-backup")
            && run.stdout.contains(OLDER)
            && run.stdout.contains("2021-01-01 00:00:00 UTC")
            && run.stdout.contains("5 B")
            && run.stdout.contains(&kept[1]),
        "{}",
        run.stdout
    );
    let run = t.run(&["--output", "json", "backup", "--list"]).expect(0);
    let listed: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(listed["job"], serde_json::Value::Null);
    assert_eq!(listed["archives"][1]["name"], OLDER);
    assert_eq!(listed["archives"][1]["bytes"], 5);
    assert_eq!(listed["archives"][1]["started"], "2021-01-01T00:00:00Z");
    assert_eq!(listed["archives"][0]["name"], kept[1].as_str());
    assert_eq!(mongodumps(&t).len(), 1, "listing runs no mongodump");
    let cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.path("standin-cluster.json")).unwrap())
            .unwrap();
    let jobs: Vec<&String> = cluster["objects"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("Job/"))
        .collect();
    assert_eq!(
        jobs.len(),
        1,
        "the backup Job stays, the listing Job is gone: {jobs:?}"
    );

    // A dump still running at the Job's deadline: the pod's PID 1 (the script's shell) gets
    // SIGTERM, passes it to mongodump and removes its partial archive, well before the grace
    // period's SIGKILL. A partial older than the deadline (left by a run killed before this
    // fix) is removed first; a younger one, maybe a concurrent run's, stays.
    // The deadline must fall while mongodump is in its slow dump: it counts from the Job's start
    // (tests/standins/jobs.py), and before mongodump the pod runs the script and a mongosh probe
    // of the topology, two Python stand-ins: at a load average of 22, 2 s were not enough, and
    // SIGTERM reached mongodump before its handler was set (both fixed: the stand-in now sets it
    // first). SIGKILL would come at the deadline plus the 30 s grace period, 36 s.
    let deadline_s = 6;
    let (stale, young) = (
        ".mongodb-20000101T000000Z.archive.gz.partial",
        ".mongodb-20990101T000000Z.archive.gz.partial",
    );
    std::fs::write(volume.join(stale), b"stale").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(volume.join(stale))
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    std::fs::write(volume.join(young), b"young").unwrap();
    let saved = edit_cluster(&t, |objects| {
        let cj = &mut objects["CronJob/psautoinfra/rocketchat-mongodb-backup"];
        let saved = cj.clone();
        let spec = &mut cj["spec"]["jobTemplate"]["spec"];
        spec["activeDeadlineSeconds"] = deadline_s.into();
        spec["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "LAB_STANDIN_MONGODUMP_SECONDS", "value": "60"}));
        saved
    });
    let started = std::time::Instant::now();
    let run = t.run(&["backup"]).expect(1);
    eprintln!(
        "--- jeeves backup (past its deadline)\n{}{}",
        run.stderr, run.stdout
    );
    assert!(
        run.stderr.contains(
            "failed (DeadlineExceeded: Job was active longer than specified deadline; backup.timeout is"
        ) && run.stderr.contains("its log:"),
        "{}",
        run.stderr
    );
    // SIGTERM was handled: the pod ended before the 30-second grace period's SIGKILL.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    let pod_log = cluster_state(&t)["deleted_pod_logs"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .to_string();
    assert!(
        pod_log.contains("signal 'terminated' received")
            && pod_log.contains("its partial archive was removed")
            && pod_log.contains("removed leftover /")
            && pod_log.contains(stale),
        "{pod_log}"
    );
    let mut expected = kept.clone();
    expected.insert(0, young.to_string());
    assert_eq!(
        archives(&volume),
        expected,
        "no partial archive of the killed run, the stale one gone, the young one kept"
    );
    std::fs::remove_file(volume.join(young)).unwrap();
    edit_cluster(&t, |objects| {
        objects["CronJob/psautoinfra/rocketchat-mongodb-backup"] = saved;
    });

    // A user that may not read the oplog: the dump is of its database, not a point in time,
    // and says so (with --oplog, mongodump would fail on config.transactions).
    write_server(&["readWrite@rocketchat"]);
    let run = t.run(&["--output", "json", "backup"]).expect(0);
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["point_in_time"], false, "{report}");
    assert!(
        report["consistency"]
            .as_str()
            .unwrap()
            .contains("may not read config.transactions (Unauthorized); give it MongoDB's built-in backup role"),
        "{report}"
    );
    let last = mongodumps(&t).pop().unwrap();
    assert_eq!(
        (&last["uri"], &last["oplog"]),
        (&MONGO_URI.into(), &false.into())
    );
    let kept = archives(&volume);

    // The database moves out of reach: the deploy stage updates the Secret, then reads the new
    // server's version before Rocket.Chat would restart onto it, and fails saying why (no
    // restart); the next backup asks it for its topology with the new URI, fails with
    // mongosh's own words, and removes nothing.
    let dumps_before = mongodumps(&t).len();
    t.env("MONGO_URI", UNREACHABLE);
    let run = t.run(&["up", "--only", "deploy"]).expect(1);
    assert!(
        run.stderr
            .contains("cannot read the external MongoDB's version")
            && run.stderr.contains("ENOTFOUND db.invalid"),
        "{}",
        run.stderr
    );
    let run = t.run(&["backup"]).expect(1);
    eprintln!("--- jeeves backup (failing)\n{}{}", run.stderr, run.stdout);
    assert!(
        run.stderr.contains(
            "failed (BackoffLimitExceeded: Job has reached the specified backoff limit); its log:"
        ) && run
            .stderr
            .contains("MongoServerSelectionError: getaddrinfo ENOTFOUND db.invalid")
            && run
                .stderr
                .contains("could not ask the server whether it is a replica set"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("b4ckup-pa55"), "{}", run.stderr);
    assert_eq!(mongodumps(&t).len(), dumps_before, "no dump was tried");
    assert_eq!(
        archives(&volume),
        kept,
        "a failed backup leaves the archives alone"
    );

    // A Job that never finishes (the Secret gone, its pod cannot start) and a Ctrl-C while
    // Jeeves waits for it: kubectl is stopped, exit 130, the tunnel closed and the lock free.
    edit_cluster(&t, |objects| {
        objects
            .as_object_mut()
            .unwrap()
            .remove("Secret/psautoinfra/rocketchat-mongodb")
    });
    let waits = || kubectl_calls(&t).matches("--for=condition=").count();
    let before = waits();
    let mut child = t
        .command(&["backup"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while waits() < before + 2 {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            // What jeeves said, and the stand-ins' last calls, to tell why it never waited.
            let _ = child.kill(); // it may have exited already
            let out = child.wait_with_output().unwrap();
            let calls = kubectl_calls(&t);
            let tail: Vec<&str> = calls.lines().rev().take(8).collect();
            panic!(
                "jeeves never waited ({} kubectl waits of 2):\n{}{}\nlast stand-in calls, newest first:\n{}",
                waits() - before,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout),
                tail.join("\n")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The kubectl that waits, found by its command line (this workspace's kubeconfig).
    let kubeconfig = t.path(".jeeves/lab/kubeconfig").display().to_string();
    let waiting_kubectl = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                e.file_name().to_str()?.parse::<u32>().ok()?;
                let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                (cmd.contains(&kubeconfig) && cmd.contains(" wait ")).then_some(cmd)
            })
            .collect()
    };
    assert!(
        !waiting_kubectl().is_empty(),
        "kubectl wait is running before the interrupt"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    // Jeeves waits on two kubectl at once (the Job Complete, or Failed): both were asked to
    // stop (SIGINT) and waited for before it exited.
    assert_eq!(
        waiting_kubectl(),
        Vec::<String>::new(),
        "kubectl outlived Jeeves"
    );
    assert!(
        stderr.contains("runs on in the cluster") && stderr.contains("interrupted by SIGINT"),
        "{stderr}"
    );
    t.run(&["backup", "--list"]).expect(0);

    s3_backups(&mut t);
}

/// The real aws CLI (awscli, what the Job's upload runs too) against `moto`.
fn aws(moto: &Moto, args: &[&str]) -> String {
    let out = std::process::Command::new("aws")
        .args(["--endpoint-url", &moto.endpoint(), "--region", "us-east-1"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("the aws CLI (pip install awscli)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "aws {args:?}: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `destination = "s3"`: the Job dumps (init container), uploads with the real aws CLI to
/// moto's S3 with the credentials of a Secret, and keeps the newest there; `--list` reads the
/// bucket from the runner, without the cluster.
fn s3_backups(t: &mut Test) {
    let moto = Moto::start();
    aws(&moto, &["s3", "mb", "s3://rc-backups"]);
    let old = t.path("old.archive.gz");
    std::fs::write(&old, b"old").unwrap();
    for key in [
        format!("lab/{OLDEST}"),
        format!("lab/{OLDER}"),
        "lab/notes.txt".into(),
    ] {
        aws(
            &moto,
            &[
                "s3api",
                "put-object",
                "--bucket",
                "rc-backups",
                "--key",
                &key,
                "--body",
                old.to_str().unwrap(),
            ],
        );
    }
    t.env("MONGO_URI", MONGO_URI)
        .env("JEEVES_BACKUP_DESTINATION", "s3")
        .env("JEEVES_BACKUP_BUCKET", "rc-backups")
        .env("JEEVES_BACKUP_REGION", "us-east-1")
        .env("JEEVES_BACKUP_ENDPOINT_URL", &moto.endpoint())
        .env("JEEVES_BACKUP_CREDENTIALS_SECRET", "rc-backup-s3");
    t.run(&["up", "--only", "deploy"]).expect(0);
    // The bucket's credentials: a Secret the operator made (base64 of `testing`/`s3-s3cret`).
    edit_cluster(t, |objects| {
        objects["Secret/psautoinfra/rc-backup-s3"] = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "rc-backup-s3", "namespace": "psautoinfra"},
            "data": {"AWS_ACCESS_KEY_ID": "dGVzdGluZw==", "AWS_SECRET_ACCESS_KEY": "czMtczNjcmV0"}});
    });
    let cronjob =
        cluster_state(t)["objects"]["CronJob/psautoinfra/rocketchat-mongodb-backup"].clone();
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["name"], "mongodump", "{pod}");
    assert_eq!(pod["containers"][0]["name"], "upload", "{pod}");
    assert_eq!(
        pod["volumes"][0]["emptyDir"],
        serde_json::json!({}),
        "{pod}"
    );
    assert!(
        !cronjob.to_string().contains("s3-s3cret"),
        "no key in the CronJob"
    );

    let run = t.run(&["backup"]).expect(0);
    eprintln!("--- jeeves backup (s3)\n{}{}", run.stderr, run.stdout);
    let keys = aws(&moto, &["s3", "ls", "s3://rc-backups/lab/"]);
    let archives: Vec<&str> = keys
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|k| k.starts_with("mongodb-"))
        .collect();
    assert_eq!(archives.len(), 2, "keep = 2: {keys}");
    assert_eq!(archives[0], OLDER, "the oldest was removed: {keys}");
    assert!(
        keys.contains("notes.txt"),
        "retention touches archives only: {keys}"
    );
    assert!(
        run.stdout.contains(&format!("wrote {}", archives[1]))
            && run.stdout.contains(&format!("removed {OLDEST}"))
            && run.stdout.contains("point in time")
            && run.stdout.contains("2 archive(s) in s3://rc-backups/lab/"),
        "{}",
        run.stdout
    );
    // What was uploaded is the dump: the stand-in server's databases the user may read.
    let got = t.path("got.archive.gz");
    aws(
        &moto,
        &[
            "s3",
            "cp",
            &format!("s3://rc-backups/lab/{}", archives[1]),
            got.to_str().unwrap(),
        ],
    );
    let mut body = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&got).unwrap()),
        &mut body,
    )
    .unwrap();
    assert!(body.contains(r#""rocketchat": {"users""#), "{body}");
    assert!(!run.stdout.contains("s3-s3cret") && !run.stderr.contains("s3-s3cret"));
    assert!(
        !kubectl_calls(t).contains("s3-s3cret"),
        "no key on kubectl's command line"
    );

    // --list: from the bucket, with the runner's credentials, and no kubectl at all.
    let calls = kubectl_calls(t).len();
    let run = t.run(&["--output", "json", "backup", "--list"]).expect(0);
    let listed: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(listed["where"], "s3://rc-backups/lab/", "{listed}");
    assert_eq!(listed["archives"][0]["name"], archives[1], "{listed}");
    assert_eq!(listed["archives"][1]["name"], OLDER, "{listed}");
    assert_eq!(listed["archives"][1]["bytes"], 3, "{listed}");
    assert_eq!(listed["archives"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(kubectl_calls(t).len(), calls, "--list ran kubectl");

    restore(t, archives[1]);

    // S3 out of reach: the upload fails with the CLI's words, and Jeeves says the Job failed.
    drop(moto);
    let run = t.run(&["backup"]).expect(1);
    eprintln!(
        "--- jeeves backup (s3 unreachable)\n{}{}",
        run.stderr, run.stdout
    );
    assert!(
        run.stderr.contains(
            "failed (BackoffLimitExceeded: Job has reached the specified backoff limit); its log:"
        ) && run
            .stderr
            .contains("the upload to s3://rc-backups/lab/ failed"),
        "{}",
        run.stderr
    );
}

/// `jeeves restore`: bad names refused before anything runs; then the data changed after the
/// dump comes back as dumped, Rocket.Chat scaled to zero meanwhile and back after.
fn restore(t: &mut Test, newest: &str) {
    let calls = kubectl_calls(t).len();
    let run = t.run(&["restore", "../x.gz", "--yes"]).expect(2);
    assert!(
        run.stderr.contains("`../x.gz` is not an archive name"),
        "{}",
        run.stderr
    );
    let run = t.run(&["restore"]).expect(2);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    let missing = "mongodb-20000101T000000Z.archive.gz";
    let run = t.run(&["restore", missing, "--yes"]).expect(2);
    assert!(
        run.stderr
            .contains(&format!("no archive `{missing}` in s3://rc-backups/lab/")),
        "{}",
        run.stderr
    );
    assert_eq!(kubectl_calls(t).len(), calls, "nothing ran in the cluster");

    // After the dump: a user added, a collection created.
    let server = t.path("standin-mongo/db.internal:27017.json");
    let mut data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&server).unwrap()).unwrap();
    let dumped = data["databases"]["rocketchat"]["users"].clone();
    data["databases"]["rocketchat"]["users"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"_id": "after-the-dump"}));
    data["databases"]["rocketchat"]["scratch"] = serde_json::json!([{"_id": 1}]);
    std::fs::write(&server, data.to_string()).unwrap();
    let deployments = |t: &Test| -> Vec<(String, u64)> {
        let state = cluster_state(t);
        let mut d: Vec<(String, u64)> = state["objects"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, o)| {
                k.starts_with("Deployment/psautoinfra/")
                    && o["metadata"]["labels"]["app.kubernetes.io/instance"] == "rocketchat"
            })
            .map(|(_, o)| {
                (
                    o["metadata"]["name"].as_str().unwrap().to_string(),
                    o["spec"]["replicas"].as_u64().unwrap_or(1),
                )
            })
            .collect();
        d.sort();
        d
    };
    let before = deployments(t);
    assert!(
        !before.is_empty(),
        "the chart's Deployments are in the cluster"
    );

    let run = t.run(&["--output", "json", "restore", "--yes"]).expect(0);
    eprintln!("--- jeeves restore\n{}{}", run.stderr, run.stdout);
    let done: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(done["archive"], newest, "the newest by default: {done}");
    assert_eq!(
        done["counts"],
        serde_json::json!([
            {"collection": "scratch", "before": 1, "after": 1},
            {"collection": "users", "before": 3, "after": 2}
        ]),
        "{done}"
    );
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&server).unwrap()).unwrap();
    assert_eq!(
        data["databases"]["rocketchat"]["users"], dumped,
        "data back as dumped"
    );
    let restored = mongodumps(t).pop().unwrap();
    assert_eq!(restored["tool"], "mongorestore");
    assert_eq!(restored["drop"], true);
    assert_eq!(restored["nsInclude"], serde_json::json!(["rocketchat.*"]));
    assert_eq!(
        restored["uri"],
        "mongodb://rc:b4ckup-pa55@db.internal:27017/?replicaSet=rs0&authSource=rocketchat"
    );
    // Rocket.Chat was stopped during the restore and has its replicas back.
    let calls = kubectl_calls(t);
    for (name, replicas) in &before {
        let down =
            format!(r#""scale", "deployment", "{name}", "-n", "psautoinfra", "--replicas=0""#);
        let up = format!(
            r#""scale", "deployment", "{name}", "-n", "psautoinfra", "--replicas={replicas}""#
        );
        let (d, u) = (calls.find(&down), calls.rfind(&up));
        assert!(d.is_some() && u.is_some() && d < u, "{name}: {calls}");
    }
    assert_eq!(deployments(t), before);
    assert!(!run.stderr.contains("b4ckup-pa55") && !run.stdout.contains("b4ckup-pa55"));
}
