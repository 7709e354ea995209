use serde_json::json;

use super::*;
use crate::chart::supported;
use crate::config::ConfigErrors;

fn settings(mongodb: &str) -> Settings {
    let mut s = Settings::load(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
        &crate::config::Env::from_pairs([("MONGO_URI", "m")]),
    )
    .unwrap();
    s.helm.bundled_mongodb = mongodb == "bundled";
    s
}

/// The refusal's message, asserting it is a config error (exit 2) on `key`.
fn refused(r: Result<()>, key: &str) -> String {
    let e = r.expect_err("refused");
    let errors = e.downcast_ref::<ConfigErrors>().expect("a config error");
    let text = errors.to_string();
    assert!(text.contains(key), "{text}");
    text
}

const V: fn(u32, u32, u32) -> MongoVersion = MongoVersion::new;

#[test]
fn bundled_with_chart_7_is_refused_outright_and_points_to_operator() {
    let s = settings("bundled");
    let text = refused(
        refuse_bundled(&s, supported("7.0.2").unwrap()),
        "helm.mongodb",
    );
    for part in [
        "7.0.2",
        "6.0.10",
        "8.0 or newer",
        "operator",
        "jeeves backup",
        "jeeves restore",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    refuse_bundled(&s, supported("6.25.1").unwrap()).unwrap();
    refuse_bundled(&settings("external"), supported("7.0.2").unwrap()).unwrap();
}

#[test]
fn a_server_the_rocket_chat_exits_on_is_refused_naming_both_versions() {
    let s = settings("external");
    let server = Server {
        version: V(7, 0, 14),
        source: "the MongoDBCommunity x (status.version 7.0.14)".into(),
    };
    let text = refused(
        refuse_server(&s, supported("7.0.2").unwrap(), &server),
        "helm.version",
    );
    for part in [
        "8.6.1",
        "7.0.14",
        "upgrade MongoDB to 8.0",
        "pin helm.version to 6.25.1",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    refuse_server(&s, supported("6.25.1").unwrap(), &server).unwrap();
    let eight = Server {
        version: V(8, 0, 12),
        source: String::new(),
    };
    refuse_server(&s, supported("7.0.2").unwrap(), &eight).unwrap();
    // No supported chart takes MongoDB 4.4: no pin is offered.
    let old = Server {
        version: V(4, 4, 29),
        source: String::new(),
    };
    let text = refused(
        refuse_server(&s, supported("6.25.1").unwrap(), &old),
        "helm.version",
    );
    assert!(!text.contains("pin helm.version"), "{text}");
}

#[test]
fn an_older_rocket_chat_is_refused_unless_allowed() {
    let s = settings("external");
    let old = supported("6.25.1").unwrap();
    let text = refused(
        refuse_downgrade(&s, old, "rocketchat-7.0.2", "8.6.1", false),
        "helm.version",
    );
    for part in [
        "6.25.1",
        "7.6.0",
        "rocketchat-7.0.2",
        "8.6.1",
        "--allow-downgrade",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    refuse_downgrade(&s, old, "rocketchat-7.0.2", "8.6.1", true).unwrap();
    let new = supported("7.0.2").unwrap();
    refuse_downgrade(&s, new, "rocketchat-6.25.1", "7.6.0", false).unwrap();
    refuse_downgrade(&s, new, "rocketchat-7.0.2", "8.6.1", false).unwrap();
}

#[test]
fn the_bundled_server_is_read_from_its_statefulset() {
    let sts = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "metrics", "image": "docker.io/bitnamilegacy/mongodb-exporter:0.39.0"},
        {"name": "mongodb", "image": "docker.io/bitnamilegacy/mongodb:6.0.10-debian-11-r8"},
    ]}}}});
    let server = from_statefulset("rocketchat-mongodb", &sts).unwrap();
    assert_eq!(server.version, V(6, 0, 10));
    assert!(
        server.source.contains("rocketchat-mongodb"),
        "{}",
        server.source
    );
    // A registry with a port, and a digest: the tag is still the version.
    let sts = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "mongodb", "image": "registry.local:5000/mongodb:8.0.13-debian-12-r0@sha256:ab"},
    ]}}}});
    assert_eq!(from_statefulset("m", &sts).unwrap().version, V(8, 0, 13));
    let untagged = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "mongodb", "image": "registry.local:5000/mongodb"},
    ]}}}});
    assert!(from_statefulset("m", &untagged).is_err());
    assert!(from_statefulset("m", &json!({})).is_err());
}

#[test]
fn before_anything_runs_the_planned_bundled_server_counts() {
    let chart = supported("6.25.1").unwrap();
    assert_eq!(planned_bundled(chart, &json!({})).version, V(6, 0, 10));
    let wanted = json!({"mongodb": {"image": {"tag": "4.4.15-debian-10-r8"}}});
    let server = planned_bundled(chart, &wanted);
    assert_eq!(server.version, V(4, 4, 15));
    assert!(
        server.source.contains("mongodb.image.tag"),
        "{}",
        server.source
    );
}

#[test]
fn the_operator_server_is_its_status_version_then_spec_then_the_pin() {
    let pin = V(8, 0, 12);
    let running =
        json!({"spec": {"version": "8.0.12"}, "status": {"version": "7.0.14", "phase": "Pending"}});
    let server = from_mongodbcommunity("rc-mongodb", Some(&running), pin).unwrap();
    // Mid-upgrade the operator has not written the new version yet: the old one still runs.
    assert_eq!(server.version, V(7, 0, 14));
    assert!(
        server.source.contains("status.version"),
        "{}",
        server.source
    );
    let fresh = json!({"spec": {"version": "8.0.12"}});
    assert_eq!(
        from_mongodbcommunity("rc-mongodb", Some(&fresh), pin)
            .unwrap()
            .version,
        V(8, 0, 12)
    );
    let absent = from_mongodbcommunity("rc-mongodb", None, pin).unwrap();
    assert_eq!(absent.version, pin);
    assert!(
        absent.source.contains("not created yet"),
        "{}",
        absent.source
    );
    assert!(from_mongodbcommunity("x", Some(&json!({"spec": {}})), pin).is_err());
}
