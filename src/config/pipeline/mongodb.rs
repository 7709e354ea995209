//! `[mongodb]` as written: the replica set `helm.mongodb = "operator"` runs (MongoDB Controllers
//! for Kubernetes and a `MongoDBCommunity`). Read in that mode only; the defaults fit the
//! operator and three members beside Rocket.Chat on two t3.large workers (`config/mongodb.rs`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mongodb {
    /// The operator's chart: its name in `operator_repo`, or the path of a packaged chart.
    #[serde(default = "operator_chart")]
    pub operator_chart: String,
    #[serde(default = "operator_repo")]
    pub operator_repo: String,
    #[serde(default = "operator_version")]
    pub operator_version: String,
    /// The operator's Helm release, in `operator_namespace`.
    #[serde(default = "operator_release")]
    pub operator_release: String,
    #[serde(default = "operator_namespace")]
    pub operator_namespace: String,
    /// The `MongoDBCommunity` object (in `helm.namespace`, beside Rocket.Chat).
    #[serde(default = "name")]
    pub name: String,
    /// MongoDB's version: 8.0.x.
    #[serde(default = "version")]
    pub version: String,
    /// The suffix of the server image's tag (`quay.io/mongodb/mongodb-community-server:<version>-<image_type>`).
    #[serde(default = "image_type")]
    pub image_type: String,
    #[serde(default = "members")]
    pub members: u32,
    /// `none`, `preferred` (spread when there is room) or `required` (one member per node).
    #[serde(default = "anti_affinity")]
    pub anti_affinity: String,
    /// Empty: the cluster's default StorageClass.
    #[serde(default)]
    pub storage_class: String,
    #[serde(default = "storage_size")]
    pub storage_size: String,
    #[serde(default = "mongod")]
    pub mongod: Resources,
    #[serde(default = "agent")]
    pub agent: Resources,
    #[serde(default = "operator")]
    pub operator: Resources,
}

/// A container's requests and limits (Kubernetes quantities).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpu: String,
    pub memory: String,
    pub cpu_limit: String,
    pub memory_limit: String,
}

impl Default for Mongodb {
    fn default() -> Self {
        toml::from_str("").expect("every [mongodb] key has a default")
    }
}

fn operator_chart() -> String {
    "mongodb-kubernetes".into()
}
fn operator_repo() -> String {
    "https://mongodb.github.io/helm-charts".into()
}
fn operator_version() -> String {
    "1.10.0".into()
}
fn operator_release() -> String {
    "mongodb-kubernetes".into()
}
fn operator_namespace() -> String {
    "mongodb".into()
}
fn name() -> String {
    "rocketchat-db".into()
}
fn version() -> String {
    "8.0.12".into()
}
fn image_type() -> String {
    "ubi9".into()
}
fn members() -> u32 {
    3
}
fn anti_affinity() -> String {
    "none".into()
}
fn storage_size() -> String {
    "10Gi".into()
}
fn resources(cpu: &str, memory: &str, cpu_limit: &str, memory_limit: &str) -> Resources {
    Resources {
        cpu: cpu.into(),
        memory: memory.into(),
        cpu_limit: cpu_limit.into(),
        memory_limit: memory_limit.into(),
    }
}
// The arithmetic behind these is in `config/mongodb.rs` (`DEFAULTS_FIT`).
fn mongod() -> Resources {
    resources("250m", "768Mi", "1", "1536Mi")
}
fn agent() -> Resources {
    resources("50m", "192Mi", "500m", "384Mi")
}
fn operator() -> Resources {
    resources("100m", "192Mi", "500m", "512Mi")
}
