//! The migration from the chart's bundled MongoDB to the operator, then the disaster-recovery
//! drill (docs/day2.md), on the lab with the lab pipeline: backups to S3 on the lab's moto. `up`
//! on chart 6.25.1 with `bundled` → data written → `backup` → the lab pipeline as it is (chart
//! 7.0.2, operator mode) → `up` → `restore --yes` → the data in the replica set; then `backup`
//! (a point in time) → `down --yes` → the cluster gone → `up` → `restore --yes` → the data is
//! there, exactly. Prints each step's wall time (the figures docs/day2.md gives).
//!
//! What "the cluster gone" means in the lab: `down` destroys terraform's resources, but the lab's
//! hosts outlive it (terraform/lab describes them, it does not make them). So the test takes away
//! what new instances would not have: MicroK8s on every host (`snap remove --purge`), and, on the
//! runner, the stand-in cluster's state and its MongoDB servers (tests/standins/README.md). The
//! bucket is moto's, outside the cluster, as the S3 bucket outlives `jeeves down` on AWS
//! (terraform/aws keeps `module.backup_bucket`).

use crate::common;

use std::time::Instant;

use common::{Lab, Test};

/// The replica set's server file (tests/standins/image/standin_mongo.py): the one in
/// `standin-mongo/` whose name is the operator's member host list.
fn server(t: &Test) -> std::path::PathBuf {
    let dir = t.path("standin-mongo");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy()
                .contains("rocketchat-db-0.rocketchat-db-svc")
        })
        .unwrap_or_else(|| panic!("no replica set server in {}", dir.display()))
}

fn timed(steps: &mut Vec<(String, f64)>, what: &str, f: impl FnOnce()) {
    let started = Instant::now();
    f();
    steps.push((what.into(), started.elapsed().as_secs_f64()));
}

#[test]
fn the_disaster_recovery_drill_brings_the_data_back() {
    let lab = Lab::up(2);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.with_standins();
    let mut steps = Vec::new();

    // The stack starts where older pipelines are: chart 6.25.1 with its bundled MongoDB, the
    // only chart bundled is allowed with (docs/day2.md, "Database versions").
    t.env("JEEVES_HELM_VERSION", "6.25.1")
        .env("JEEVES_HELM_CHART", &common::chart("6.25.1"))
        .env("JEEVES_HELM_MONGODB", "bundled");
    timed(&mut steps, "up (bundled)", || {
        t.run(&["up"]).expect(0);
    });
    // Data written: what Rocket.Chat would have stored in its database, here the bundled one
    // (the subchart's replica set rs0 behind its headless Service; Bitnami gives the
    // application's user readWrite on its database only: bitnami/containers, mongodb
    // `libmongodb.sh`, `mongodb_create_user`).
    let data = serde_json::json!({
        "rocketchat_message": [{"_id": "m1", "msg": "before the disaster"}, {"_id": "m2", "msg": "still here after"}],
        "users": [{"_id": "u1", "username": "ops"}],
    });
    std::fs::create_dir_all(t.path("standin-mongo")).unwrap();
    std::fs::write(
        t.path("standin-mongo/rocketchat-mongodb-headless:27017.json"),
        serde_json::json!({"setName": "rs0", "version": "6.0.10",
            "users": {"rocketchat": ["readWrite@rocketchat"]},
            "databases": {"rocketchat": data}})
        .to_string(),
    )
    .unwrap();
    lab_backup_keys(&t);

    // The migration to the operator (docs/day2.md, "Moving from bundled to operator"): a
    // backup of the bundled database, the mode switched (with the chart it is refused by),
    // `up`, the archive restored into the new replica set.
    let mut bundled = None;
    timed(&mut steps, "backup (bundled)", || {
        bundled = Some(t.run(&["backup"]).expect(0));
    });
    let bundled = bundled.unwrap();
    assert!(
        bundled.stdout.contains("not a point in time"),
        "Rocket.Chat's user may not read the oplog:\n{}",
        bundled.stdout
    );
    t.env("JEEVES_HELM_VERSION", "7.0.2")
        .env("JEEVES_HELM_CHART", &common::chart("7.0.2"))
        .env("JEEVES_HELM_MONGODB", "operator");
    timed(&mut steps, "up (operator)", || {
        t.run(&["up"]).expect(0);
    });
    let file = server(&t);
    let mut db: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(db["setName"], "rocketchat-db", "a replica set: {db}");
    assert_eq!(db["databases"], serde_json::json!({}), "empty: {db}");
    let mut migrated = None;
    timed(&mut steps, "restore (into operator)", || {
        migrated = Some(t.run(&["restore", "--yes"]).expect(0));
    });
    db = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        db["databases"]["rocketchat"],
        data,
        "the bundled data is in the replica set:\n{}",
        migrated.unwrap().stderr
    );
    let cluster: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path("standin-cluster.json")).unwrap()).unwrap();
    assert!(
        cluster["objects"]["StatefulSet/psautoinfra/rocketchat-mongodb"].is_null(),
        "the chart's own MongoDB is gone with the switch"
    );

    // The drill goes on from the migrated stack.
    let mut backup = None;
    timed(&mut steps, "backup", || {
        backup = Some(t.run(&["backup"]).expect(0));
    });
    // A point in time: the operator's admin user (its `backup` role reads the oplog), a full
    // dump with --oplog, authenticated against `admin`.
    let backup = backup.unwrap();
    assert!(
        backup
            .stdout
            .contains("point in time: mongodump --oplog (replica-set rocketchat-db)"),
        "{}",
        backup.stdout
    );
    let dumps = mongodumps(&t);
    let dump = dumps.last().expect("a mongodump call");
    let uri = dump["uri"].as_str().unwrap();
    assert!(
        dump["oplog"] == true
            && uri.starts_with("mongodb://admin:")
            && uri.contains("svc.cluster.local:27017/?")
            && uri.contains("authSource=admin"),
        "{dump}"
    );
    let listed = t.run(&["backup", "--list"]).expect(0);
    assert!(
        listed.stdout.contains("mongodb-") && listed.stdout.contains("s3://jeeves-lab-backups/"),
        "{}",
        listed.stdout
    );

    timed(&mut steps, "down --yes", || {
        t.run(&["down", "--yes"]).expect(0);
    });
    // The cluster is gone with its instances: MicroK8s, the cluster's objects, its database.
    for ip in ["10.77.0.10", "10.77.0.11", "10.77.0.12"] {
        let (code, out) = lab.ssh(ip, &lab.path("known_hosts"), "snap remove --purge microk8s");
        assert_eq!(code, 0, "{ip}: {out}");
    }
    std::fs::remove_file(t.path("standin-cluster.json")).unwrap();
    std::fs::remove_dir_all(t.path("standin-mongo")).unwrap();

    timed(&mut steps, "up (a new cluster)", || {
        t.run(&["up"]).expect(0);
    });
    let file = server(&t);
    let fresh: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        fresh["databases"],
        serde_json::json!({}),
        "a new, empty database"
    );
    lab_backup_keys(&t);
    let mut restored = None;
    timed(&mut steps, "restore --yes", || {
        restored = Some(t.run(&["restore", "--yes"]).expect(0));
    });
    let restored = restored.unwrap();
    let back: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        back["databases"]["rocketchat"], data,
        "the data is back as it was written:\n{}",
        restored.stderr
    );
    // Rocket.Chat's database only (the admin URI's own is `admin`), counted there.
    let counted = |c: &str| {
        restored
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with(c) && l.ends_with("→ 2"))
    };
    assert!(counted("rocketchat_message"), "{}", restored.stdout);
    let restores: Vec<_> = mongodumps(&t)
        .into_iter()
        .filter(|c| c["tool"] == "mongorestore")
        .collect();
    assert_eq!(
        restores.last().map(|r| r["nsInclude"].clone()),
        Some(serde_json::json!(["rocketchat.*"])),
        "{restores:?}"
    );
    // And the next run has nothing to repair.
    t.run(&["plan", "--detailed-exitcode"]).expect(0);

    let total: f64 = steps.iter().map(|(_, s)| s).sum();
    for (what, s) in &steps {
        eprintln!("drill: {what:20} {s:6.1} s");
    }
    eprintln!("drill: {:20} {total:6.1} s", "total");
}

/// The bucket's keys: a Secret the operator made (moto is not AWS: no instance profile).
fn lab_backup_keys(t: &Test) {
    edit_cluster(t, |objects| {
        objects["Secret/psautoinfra/lab-backup-s3"] = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "lab-backup-s3", "namespace": "psautoinfra"},
            "data": {"AWS_ACCESS_KEY_ID": "bGFi", "AWS_SECRET_ACCESS_KEY": "bGFiLXNlY3JldC1ub3QtcmVhbA=="}});
    });
}

/// The stand-in mongodump's and mongorestore's calls (tests/standins/README.md).
fn mongodumps(t: &Test) -> Vec<serde_json::Value> {
    std::fs::read_to_string(t.path("standin-mongodump.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Edits the stand-in cluster's objects as a person with kubectl would have changed them.
fn edit_cluster(t: &Test, f: impl FnOnce(&mut serde_json::Value)) {
    let path = t.path("standin-cluster.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut state["objects"]);
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
}
