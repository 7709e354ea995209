//! `Settings`: the whole configuration once checked, a struct per pipeline section in the types
//! the stages use (durations, absolute paths, the chart version's facts; the pipeline file's own
//! struct where nothing needed converting). Built only by `Settings::load` (`load.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::pipeline;
use super::sources::Sources;
use super::{ConfigError, ConfigErrors};
use crate::chart::ChartVersion;

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// The pipeline's name: the file name without `.toml`. Names the state directory.
    pub name: String,
    pub pipeline_file: PathBuf,
    /// `.jeeves/<name>` (or `$JEEVES_STATE_DIR`).
    pub state_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub project: ProjectSettings,
    pub domain: String,
    pub terraform: TerraformSettings,
    pub ssh: SshSettings,
    pub microk8s: Microk8sSettings,
    pub cluster: ClusterSettings,
    pub tls: TlsSettings,
    pub haproxy: HaproxySettings,
    pub tunnel: pipeline::Tunnel,
    pub traefik: pipeline::Traefik,
    pub helm: HelmSettings,
    /// `[mongodb]`: used when `helm.mongodb = "operator"`.
    pub mongodb: super::MongodbSettings,
    pub dns: DnsSettings,
    pub tools: pipeline::Tools,
    pub check: CheckSettings,
    pub state: StateSettings,
    pub maintenance: MaintenanceSettings,
    /// `[backup]`; `None`: no backups.
    pub backup: Option<BackupSettings>,
    /// Values to redact from every output (never serialised).
    #[serde(skip)]
    pub secrets: Vec<String>,
    /// MONGO_URI and MONGO_OPLOG_URI from the environment or .env (never serialised), for the
    /// external-MongoDB secret the deploy stage creates.
    #[serde(skip)]
    pub mongo: Option<MongoUris>,
    /// Things worth saying that are not errors (an unrelated `JEEVES_*` variable), printed once.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Where each key's value came from, for errors found after loading.
    #[serde(skip)]
    pub(super) source: Sources,
    /// Where MONGO_URI came from (or would have).
    #[serde(skip)]
    pub(super) mongo_source: String,
}

#[derive(Clone)]
pub struct MongoUris {
    pub uri: String,
    /// Needed only by the chart versions that read `mongo-oplog-uri` (`ChartVersion::oplog_uri`).
    pub oplog_uri: Option<String>,
}

impl std::fmt::Debug for MongoUris {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MongoUris(<redacted>)")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectSettings {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// `project.region`: already applied to the terraform variables and backend.
    pub region: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TerraformSettings {
    pub dir: PathBuf,
    /// Passed to terraform as a JSON variables file.
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub backend_config: BTreeMap<String, String>,
    pub var_files: Vec<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct SshSettings {
    pub user: String,
    pub key_path: PathBuf,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub keepalive: Duration,
    pub sudo: bool,
    pub pin_from_console: bool,
    pub jump_host: Option<JumpHost>,
    pub ssh_config: Option<PathBuf>,
    /// From JEEVES_SSH_KEY_PASSPHRASE (never serialised).
    #[serde(skip)]
    pub key_passphrase: Option<String>,
}

/// `ssh.jump_host`: a bastion. The user defaults to `ssh.user`, the port to 22.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JumpHost {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct Microk8sSettings {
    pub channel: String,
    pub addons: Vec<String>,
    pub token_ttl: Duration,
    pub ready_timeout: Duration,
    pub drain_timeout: Duration,
    pub concurrency: u32,
}

/// `[cluster]`: how many controllers (1, 3 or 5) carry the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClusterSettings {
    pub controllers: u32,
}

impl ClusterSettings {
    /// The one shape every stack had before `[cluster]`: its stages' inputs and plans are left
    /// exactly as they were.
    pub fn single(&self) -> bool {
        self.controllers == 1
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TlsSettings {
    pub email: String,
    pub acme_server: Option<String>,
    pub staging: bool,
    pub renew_before: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct HaproxySettings {
    pub config_path: String,
    pub pem_path: String,
    pub backend_address: String,
    /// How long `up` waits for `/api/info` through HAProxy after a deploy.
    pub ready_timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelmSettings {
    pub repo: String,
    /// The chart's name in `repo`, or the path of a local chart.
    pub chart: String,
    /// `helm.chart` names a chart on disk (a `.tgz` or a directory), used as is: no `--repo`.
    pub local_chart: Option<PathBuf>,
    /// What this chart version reads.
    pub reads: &'static ChartVersion,
    pub version: String,
    pub release: String,
    pub namespace: String,
    pub timeout: Duration,
    pub microservices: bool,
    pub bundled_mongodb: bool,
    /// `helm.mongodb`; `bundled_mongodb` is `mongodb == Bundled`.
    pub mongodb: MongodbMode,
    pub mongodb_secret: String,
    /// `prometheusScraping` and `podMonitor` on (the chart's defaults), or both off.
    pub metrics: bool,
    pub replicas: pipeline::Replicas,
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// `helm.mongodb`: where Rocket.Chat's database comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MongodbMode {
    /// MONGO_URI (and MONGO_OPLOG_URI) from the environment.
    External,
    /// The chart's Bitnami subchart.
    Bundled,
    /// MongoDB Controllers for Kubernetes and a `MongoDBCommunity` replica set (`[mongodb]`).
    Operator,
}

/// `[state]`: where state, known_hosts, the certificate cache and the lock are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StateSettings {
    /// The state directory only; the lock is an OS file lock.
    Local,
    /// `s3://bucket/key_prefix/…`, the state directory being the working copy.
    S3 {
        bucket: String,
        key_prefix: String,
        /// None: the AWS configuration's region.
        region: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceSettings {
    pub image_prune: bool,
    pub image_prune_every: Duration,
    pub image_prune_image: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DnsSettings {
    pub zone_id: Option<String>,
    pub ttl: u32,
    pub wait_timeout: Duration,
}

/// `[check]`: `jeeves check`'s thresholds.
#[derive(Debug, Clone, Serialize)]
pub struct CheckSettings {
    /// A container that exited on its own within this window fails `pods/<namespace>`.
    pub restart_window: Duration,
    /// Percent.
    pub max_disk_use: u32,
    pub cert_min_remaining: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupSettings {
    /// The CronJob and its PersistentVolumeClaim: `<helm.release>-mongodb-backup`.
    pub name: String,
    pub schedule: String,
    pub keep: u32,
    pub image: String,
    pub storage_class: String,
    pub storage_size: String,
    pub timeout: Duration,
    pub destination: BackupDestination,
}

/// Where backup archives go.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum BackupDestination {
    /// The PersistentVolumeClaim named like the CronJob.
    Volume,
    S3(BackupBucket),
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BackupBucket {
    pub bucket: String,
    /// Without leading or trailing `/`.
    pub prefix: String,
    /// Empty: the AWS configuration's.
    pub region: String,
    /// Empty: AWS's own endpoint.
    pub endpoint_url: String,
    /// Empty: the node's instance profile (through IMDS).
    pub credentials_secret: String,
    pub upload_image: String,
}

impl Settings {
    /// A configuration error about `key` found only by looking at the hosts (exit 2), with the
    /// file or variable the key's value came from.
    pub fn config_error(&self, key: &str, message: String) -> ConfigErrors {
        ConfigError {
            source: self.source.of(key),
            key: key.into(),
            message,
        }
        .into()
    }
}
