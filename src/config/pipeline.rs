//! The pipeline file as written: plain serde data with defaults. Values that need parsing
//! (durations, paths) stay strings here; `check/` turns them into checked types and names the
//! key when one is wrong.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub project: Project,
    #[serde(default)]
    pub terraform: Terraform,
    #[serde(default)]
    pub ssh: Ssh,
    #[serde(default)]
    pub microk8s: Microk8s,
    #[serde(default)]
    pub cluster: Cluster,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub haproxy: Haproxy,
    #[serde(default)]
    pub tunnel: Tunnel,
    #[serde(default)]
    pub traefik: Traefik,
    #[serde(default)]
    pub helm: Helm,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub tools: Tools,
    #[serde(default)]
    pub check: Check,
    #[serde(default)]
    pub state: StateBackend,
    #[serde(default)]
    pub maintenance: Maintenance,
    /// Absent: no backups.
    #[serde(default)]
    pub backup: Option<Backup>,
    /// The replica set of `helm.mongodb = "operator"`.
    #[serde(default)]
    pub mongodb: Mongodb,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default = "d::templates")]
    pub templates: String,
    /// The stack's AWS region, set once: it becomes terraform's `region` variable, the state
    /// backend's region (unless `terraform.backend_config.region` names another) and the region
    /// of Jeeves' own AWS calls. Empty: terraform.vars and the SDK's chain (AWS_REGION, profile).
    #[serde(default)]
    pub region: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Terraform {
    #[serde(default = "d::terraform_dir")]
    pub dir: String,
    #[serde(default)]
    pub vars: toml::Table,
    #[serde(default)]
    pub backend_config: BTreeMap<String, String>,
    /// Extra variable files, passed after Jeeves' own (so their values win).
    #[serde(default)]
    pub var_files: Vec<String>,
    /// The longest one terraform command may run (apply and destroy included); then it is
    /// asked to stop (SIGINT), and killed 30 s later.
    #[serde(default = "d::terraform_timeout")]
    pub timeout: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ssh {
    #[serde(default = "d::ssh_user")]
    pub user: String,
    #[serde(default = "d::ssh_key")]
    pub key_path: String,
    #[serde(default = "d::ssh_port")]
    pub port: u16,
    /// Empty: `known_hosts` in the state directory.
    #[serde(default)]
    pub known_hosts: String,
    #[serde(default = "d::connect_timeout")]
    pub connect_timeout: String,
    #[serde(default = "d::command_timeout")]
    pub command_timeout: String,
    #[serde(default = "d::keepalive")]
    pub keepalive: String,
    /// Run privileged commands through `sudo -n` (EC2 Ubuntu logs in as `ubuntu`).
    #[serde(default = "d::yes")]
    pub sudo: bool,
    /// Pin the key of a host that is not in known_hosts yet from its EC2 console output (the
    /// cloud-init `SSH HOST KEY KEYS` block), for hosts whose inventory id is an instance id.
    #[serde(default = "d::yes")]
    pub pin_from_console: bool,
    /// `[user@]host[:port]` of a bastion every host is reached through (OpenSSH's ProxyJump).
    /// Empty: hosts are reached directly.
    #[serde(default)]
    pub jump_host: String,
    /// An OpenSSH client config whose `Host` entries apply to the stack's hosts (HostName,
    /// User, Port, IdentityFile, ProxyJump), resolved by `ssh -G` itself. Empty: none.
    #[serde(default)]
    pub ssh_config: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Microk8s {
    #[serde(default = "d::channel")]
    pub channel: String,
    #[serde(default = "d::addons")]
    pub addons: Vec<String>,
    #[serde(default = "d::token_ttl")]
    pub token_ttl: String,
    #[serde(default = "d::ready_timeout")]
    pub ready_timeout: String,
    /// How long `kubectl drain` may take on a worker being moved to a new channel.
    #[serde(default = "d::drain_timeout")]
    pub drain_timeout: String,
    /// How many workers are bootstrapped at once.
    #[serde(default = "d::concurrency")]
    pub concurrency: u32,
}

/// The cluster's shape: how many controllers carry the control plane.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// 1, 3 or 5: MicroK8s' datastore is highly available from three voters on.
    #[serde(default = "d::controllers")]
    pub controllers: u32,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Usually from the environment (DOMAIN).
    #[serde(default)]
    pub domain: String,
    /// Usually from the environment (CERT_EMAIL).
    #[serde(default)]
    pub email: String,
    /// ACME directory URL; empty: Let's Encrypt production (or staging with `staging`).
    #[serde(default)]
    pub acme_server: String,
    #[serde(default)]
    pub staging: bool,
    #[serde(default = "d::renew_before")]
    pub renew_before: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Haproxy {
    #[serde(default = "d::haproxy_cfg")]
    pub config_path: String,
    /// Empty: `/etc/haproxy/certs/<domain>.pem`.
    #[serde(default)]
    pub pem_path: String,
    #[serde(default = "d::loopback")]
    pub backend_address: String,
    /// How long `up` waits, once a deploy changed something, for `/api/info` to answer 200
    /// through HAProxy.
    #[serde(default = "d::site_ready_timeout")]
    pub ready_timeout: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tunnel {
    #[serde(default = "d::api_port")]
    pub local_port: u16,
    #[serde(default = "d::api_port")]
    pub remote_port: u16,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Traefik {
    #[serde(default = "d::traefik_image")]
    pub image: String,
    /// URL or path of the Traefik CRD bundle, pinned to the image's minor version.
    #[serde(default = "d::traefik_crds")]
    pub crds: String,
    #[serde(default = "d::traefik_ns")]
    pub namespace: String,
    #[serde(default = "d::web_nodeport")]
    pub web_nodeport: u16,
    #[serde(default = "d::websecure_nodeport")]
    pub websecure_nodeport: u16,
    #[serde(default = "d::one")]
    pub replicas: u32,
    #[serde(default = "d::storage_class")]
    pub storage_class: String,
    #[serde(default = "d::storage_size")]
    pub storage_size: String,
    /// Peers whose `X-Forwarded-*` headers Traefik keeps (HAProxy on the nodes): the node and
    /// pod networks. Traefik v3 strips them from anyone else and sets `X-Forwarded-Proto: http`.
    #[serde(default = "d::trusted_ips")]
    pub trusted_ips: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Helm {
    #[serde(default = "d::chart_repo")]
    pub repo: String,
    #[serde(default = "d::chart")]
    pub chart: String,
    #[serde(default = "d::chart_version")]
    pub version: String,
    #[serde(default = "d::release")]
    pub release: String,
    #[serde(default = "d::app_ns")]
    pub namespace: String,
    #[serde(default = "d::helm_timeout")]
    pub timeout: String,
    #[serde(default = "d::yes")]
    pub microservices: bool,
    /// `external` (a secret made from MONGO_URI / MONGO_OPLOG_URI), `bundled` (the chart's
    /// MongoDB) or `operator` (a `MongoDBCommunity` replica set, `[mongodb]`).
    #[serde(default = "d::mongodb")]
    pub mongodb: String,
    #[serde(default = "d::mongodb_secret")]
    pub mongodb_secret: String,
    /// Rocket.Chat's Prometheus endpoint and the chart's PodMonitor (the chart's own default).
    #[serde(default = "d::yes")]
    pub metrics: bool,
    #[serde(default)]
    pub replicas: Replicas,
    /// Extra chart values, passed as a second values file after the rendered one.
    #[serde(default)]
    pub values: toml::Table,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Replicas {
    #[serde(default = "d::one")]
    pub rocketchat: u32,
    #[serde(default = "d::one")]
    pub accounts: u32,
    #[serde(default = "d::one")]
    pub authorization: u32,
    #[serde(default = "d::one")]
    pub ddp_streamer: u32,
    #[serde(default = "d::one")]
    pub presence: u32,
    /// Read by no supported chart (stream-hub runs one replica in 6.25.1 and is off in 7.x):
    /// setting it is an error, kept as a key so that the message can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_hub: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Hosted zone id; empty: the zone whose name is the longest suffix of the domain.
    #[serde(default)]
    pub zone_id: String,
    #[serde(default = "d::ttl")]
    pub ttl: u32,
    #[serde(default = "d::dns_wait")]
    pub wait_timeout: String,
}

/// `jeeves check`'s thresholds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// A container that exited on its own (not with its node) less than this long ago fails
    /// the check: it is crash-looping, or has just crashed.
    #[serde(default = "d::restart_window")]
    pub restart_window: String,
    /// Replaced by `restart_window` (a lifetime count grows at every stop/start); read only to
    /// say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<toml::Value>,
    /// Root file system use (percent) above which a host fails the check.
    #[serde(default = "d::max_disk_use")]
    pub max_disk_use: u32,
    /// A certificate with less left than this fails (under `tls.renew_before` it warns).
    #[serde(default = "d::cert_min_remaining")]
    pub cert_min_remaining: String,
}

/// Housekeeping the deploy stage installs (`templates/maintenance/`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// A DaemonSet that removes unused images on every node (`crictl rmi --prune`).
    #[serde(default)]
    pub image_prune: bool,
    /// How often each node prunes.
    #[serde(default = "d::image_prune_every")]
    pub image_prune_every: String,
    /// An image with crictl, or where `apk add cri-tools` installs it (Alpine).
    #[serde(default = "d::image_prune_image")]
    pub image_prune_image: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tools {
    #[serde(default = "d::terraform")]
    pub terraform: String,
    #[serde(default = "d::helm")]
    pub helm: String,
    #[serde(default = "d::kubectl")]
    pub kubectl: String,
}

/// `[state]`: where state.json, known_hosts, the certificate cache and the run lock live between
/// runs. `local` (the default): the state directory only. `s3`: a bucket shared by every
/// machine that runs the pipeline, the state directory being the working copy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StateBackend {
    #[serde(default = "d::state_backend")]
    pub backend: String,
    #[serde(default)]
    pub bucket: String,
    /// Empty: `jeeves/<pipeline name>`.
    #[serde(default)]
    pub key_prefix: String,
    /// Empty: the AWS configuration's region (AWS_REGION, the profile).
    #[serde(default)]
    pub region: String,
}

/// `[backup]`: a CronJob that dumps the Rocket.Chat database (`mongodump --archive --gzip`) to
/// a PersistentVolumeClaim and keeps the newest `keep` archives.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// Standard cron, five fields (minute hour day-of-month month day-of-week), in the
    /// controller's time zone (UTC on the AWS image).
    #[serde(default = "d::backup_schedule")]
    pub schedule: String,
    /// How many archives to keep (the oldest beyond this are removed after each backup).
    #[serde(default = "d::backup_keep")]
    pub keep: u32,
    /// An image with `mongodump` and a POSIX shell, pinned.
    #[serde(default = "d::backup_image")]
    pub image: String,
    #[serde(default = "d::storage_class")]
    pub storage_class: String,
    #[serde(default = "d::backup_storage_size")]
    pub storage_size: String,
    /// How long `jeeves backup` waits for one backup (also the Job's `activeDeadlineSeconds`).
    #[serde(default = "d::backup_timeout")]
    pub timeout: String,
    /// Where archives go: `volume` (a PersistentVolumeClaim in the cluster, lost with it) or
    /// `s3` (a bucket, which outlives the cluster).
    #[serde(default = "d::backup_destination")]
    pub destination: String,
    /// `s3`: the bucket (empty: terraform's output `backup_bucket`, which terraform/aws makes).
    #[serde(default)]
    pub bucket: String,
    /// `s3`: the key prefix of the archives (empty: terraform's output `backup_prefix` when the
    /// bucket is terraform's, else the pipeline's name).
    #[serde(default)]
    pub prefix: String,
    /// `s3`: the bucket's region (empty: the project's region or AWS_REGION).
    #[serde(default)]
    pub region: String,
    /// `s3` elsewhere than AWS (MinIO, moto): the S3 endpoint the Job uses.
    #[serde(default)]
    pub endpoint_url: String,
    /// `s3` without an instance profile: a Secret in the release's namespace with the keys
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, which the upload reads.
    #[serde(default)]
    pub credentials_secret: String,
    /// `s3`: an image with the aws CLI and a POSIX shell, pinned.
    #[serde(default = "d::backup_upload_image")]
    pub upload_image: String,
}

macro_rules! default_from_serde {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                // Every field has a serde default, so an empty table is the default value.
                toml::from_str("").expect(concat!(stringify!($t), " has defaults for every field"))
            }
        }
    )*};
}
default_from_serde!(
    Terraform,
    Ssh,
    Microk8s,
    Cluster,
    Haproxy,
    Tunnel,
    Traefik,
    Helm,
    Replicas,
    Dns,
    Tools,
    Maintenance,
    Backup,
    StateBackend,
    Check
);

mod defaults;
use defaults as d;
pub use defaults::backup_image as default_backup_image;
mod mongodb;
pub use mongodb::{Mongodb, Resources as MongodbResources};
