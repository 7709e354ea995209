//! `[mongodb]`: the operator's chart and the `MongoDBCommunity` replica set
//! (`helm.mongodb = "operator"`), checked in every mode so that a typo waits for nobody, and its
//! requests checked against the workers `terraform.vars` describes (the instance type's
//! figures, `config/mongodb.rs`); the deploy stage checks them again against the live nodes'
//! allocatable.

use std::path::Path;

use super::Checker;
use crate::config::mongodb::{AntiAffinity, MongodbSettings, instance_allocatable};
use crate::config::{pipeline, validate};

/// The first MongoDB version whose `mongodb-community-server` images exist only as `ubi9`:
/// mongodb/mongodb-kubernetes-operator#1730 ("ubi8 images are no longer the standard from
/// 8.0.12 onwards; only ubi9 images are available").
const LAST_UBI8_PATCH: u32 = 11;

pub(super) fn check(
    c: &mut Checker,
    raw: pipeline::Mongodb,
    base: &Path,
    vars: Option<&serde_json::Map<String, serde_json::Value>>,
    operator: bool,
) -> Option<MongodbSettings> {
    c.check(
        "mongodb.operator_repo",
        validate::https_url(&raw.operator_repo),
    );
    let local = if raw.operator_chart.contains('/') || raw.operator_chart.ends_with(".tgz") {
        c.local_path("mongodb.operator_chart", &raw.operator_chart, base, false)
            .map(Some)
    } else if raw.operator_chart == "mongodb-kubernetes" {
        Some(None)
    } else {
        c.check(
            "mongodb.operator_chart",
            Err(format!(
                "`{}` is not MongoDB Controllers for Kubernetes: use `mongodb-kubernetes` (in mongodb.operator_repo) or the path of a packaged chart",
                raw.operator_chart
            )),
        )
    };
    c.check(
        "mongodb.operator_version",
        validate::pinned_version(&raw.operator_version),
    );
    c.check(
        "mongodb.operator_release",
        validate::k8s_name(&raw.operator_release, 53),
    );
    c.check(
        "mongodb.operator_namespace",
        validate::k8s_name(&raw.operator_namespace, 63),
    );
    // The StatefulSet's pods are `<name>-<n>`; the connection-string Secret
    // `<name>-rocketchat-rocketchat` (a Secret name may have 253 characters).
    c.check("mongodb.name", validate::k8s_name(&raw.name, 40));
    let patch = raw
        .version
        .strip_prefix("8.0.")
        .and_then(|p| p.parse::<u32>().ok());
    let version_ok = c.check(
        "mongodb.version",
        patch.map(|_| ()).ok_or_else(|| {
            format!(
                "`{}` must be a MongoDB 8.0 release such as 8.0.12: every Rocket.Chat this pipeline supports accepts 8.0",
                raw.version
            )
        }),
    );
    let image_type = match raw.image_type.as_str() {
        "ubi9" => Some(()),
        "ubi8" if patch.is_some_and(|p| p > LAST_UBI8_PATCH) => c.check(
            "mongodb.image_type",
            Err(format!(
                "no `mongodb-community-server:{}-ubi8` image exists (ubi8 images stop before 8.0.12, mongodb/mongodb-kubernetes-operator#1730): use ubi9",
                raw.version
            )),
        ),
        "ubi8" => Some(()),
        other => c.check(
            "mongodb.image_type",
            Err(format!("`{other}` must be `ubi9` (or `ubi8` before 8.0.12)")),
        ),
    };
    let members = c.check("mongodb.members", validate::count(raw.members, 1, 7));
    let anti_affinity = match raw.anti_affinity.as_str() {
        "none" => Some(AntiAffinity::None),
        "preferred" => Some(AntiAffinity::Preferred),
        "required" => Some(AntiAffinity::Required),
        other => c.check(
            "mongodb.anti_affinity",
            Err(format!(
                "`{other}` must be `none`, `preferred` or `required`"
            )),
        ),
    };
    if !raw.storage_class.is_empty() {
        c.check(
            "mongodb.storage_class",
            validate::k8s_name(&raw.storage_class, 253),
        );
    }
    c.check(
        "mongodb.storage_size",
        validate::quantity(&raw.storage_size),
    );
    let mut resources_ok = true;
    for (section, r) in [
        ("mongod", &raw.mongod),
        ("agent", &raw.agent),
        ("operator", &raw.operator),
    ] {
        for (key, value, cpu) in [
            ("cpu", &r.cpu, true),
            ("cpu_limit", &r.cpu_limit, true),
            ("memory", &r.memory, false),
            ("memory_limit", &r.memory_limit, false),
        ] {
            let parsed = if cpu {
                crate::config::mongodb::millicores(value)
            } else {
                crate::config::mongodb::bytes(value)
            };
            let ok = c.check(
                &format!("mongodb.{section}.{key}"),
                parsed.map(|_| ()).ok_or_else(|| {
                    format!(
                        "`{value}` is not a Kubernetes {} quantity (e.g. {})",
                        if cpu { "CPU" } else { "memory" },
                        if cpu { "250m" } else { "768Mi" }
                    )
                }),
            );
            resources_ok &= ok.is_some();
        }
    }
    let settings = MongodbSettings {
        operator_chart: raw.operator_chart,
        operator_repo: raw.operator_repo,
        operator_local_chart: local?,
        operator_version: raw.operator_version,
        operator_release: raw.operator_release,
        operator_namespace: raw.operator_namespace,
        name: raw.name,
        version: raw.version,
        image_type: raw.image_type,
        members: members?,
        anti_affinity: anti_affinity?,
        storage_class: raw.storage_class,
        storage_size: raw.storage_size,
        mongod: raw.mongod,
        agent: raw.agent,
        operator: raw.operator,
    };
    version_ok?;
    image_type?;
    // The workers terraform will make, when the pipeline says which (else the deploy stage's
    // check against the live nodes is the only one).
    if operator && resources_ok {
        let worker = vars
            .and_then(|v| v.get("worker_instance_type"))
            .and_then(|t| t.as_str());
        let count = vars
            .and_then(|v| v.get("worker_count"))
            .and_then(|n| n.as_u64());
        if let (Some(t), Some(n)) = (worker, count)
            && let Some(each) = instance_allocatable(t)
            && n > 0
        {
            let nodes = vec![each; n as usize];
            if let Err((key, why)) = settings.fits(&nodes, &format!("{n} × {t}, terraform.vars")) {
                c.check::<()>(key, Err(why));
            }
        }
    }
    Some(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(toml_text: &str, vars: serde_json::Value) -> (Option<MongodbSettings>, Vec<String>) {
        let mut c = Checker::for_test();
        let raw: pipeline::Mongodb = toml::from_str(toml_text).unwrap();
        let s = check(&mut c, raw, Path::new("/"), vars.as_object(), true);
        (s, c.keys().iter().map(|k| k.to_string()).collect())
    }

    #[test]
    fn the_defaults_pass_on_two_t3_large() {
        let vars = serde_json::json!({"worker_count": 2, "worker_instance_type": "t3.large"});
        let (s, keys) = run("", vars);
        assert!(keys.is_empty(), "{keys:?}");
        let s = s.unwrap();
        assert_eq!(
            (s.version.as_str(), s.image_type.as_str()),
            ("8.0.12", "ubi9")
        );
    }

    #[test]
    fn bad_values_name_their_keys() {
        for (text, key) in [
            ("version = '7.0.14'", "mongodb.version"),
            ("image_type = 'ubi8'", "mongodb.image_type"),
            ("image_type = 'ubuntu'", "mongodb.image_type"),
            ("members = 0", "mongodb.members"),
            ("anti_affinity = 'always'", "mongodb.anti_affinity"),
            ("storage_size = 'big'", "mongodb.storage_size"),
            (
                "operator_chart = 'community-operator'",
                "mongodb.operator_chart",
            ),
            (
                "mongod = { cpu = 'lots', memory = '1Gi', cpu_limit = '1', memory_limit = '1Gi' }",
                "mongodb.mongod.cpu",
            ),
        ] {
            let (_, keys) = run(text, serde_json::json!({}));
            assert_eq!(keys, [key], "{text}");
        }
        // ubi8 exists before 8.0.12.
        let (_, keys) = run(
            "version = '8.0.11'\nimage_type = 'ubi8'",
            serde_json::json!({}),
        );
        assert!(keys.is_empty(), "{keys:?}");
    }

    /// The topology is refused from the instance type's figures, naming the key.
    #[test]
    fn a_topology_that_cannot_schedule_is_refused() {
        let vars = serde_json::json!({"worker_count": 2, "worker_instance_type": "t3.large"});
        let (_, keys) = run("members = 5\nanti_affinity = 'required'", vars.clone());
        assert_eq!(keys, ["mongodb.members"]);
        let (_, keys) = run("members = 7", vars);
        assert_eq!(keys, ["mongodb.members"]);
        // An unknown instance type: left to the deploy stage's check on the live nodes.
        let vars = serde_json::json!({"worker_count": 2, "worker_instance_type": "z9.huge"});
        let (_, keys) = run("members = 7", vars);
        assert!(keys.is_empty(), "{keys:?}");
    }
}
