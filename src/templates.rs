//! Handlebars templates for haproxy.cfg, the Traefik resources, the Helm values, and the backup
//! and maintenance objects. Strict mode
//! (a missing variable is an error, not an empty string) and no HTML escaping: these are
//! configuration files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use handlebars::Handlebars;
use serde::Serialize;

use crate::chart::ChartVersion;
use crate::config::Replicas;

pub const HAPROXY_CFG: &str = "haproxy.cfg";
pub const ROCKETCHAT_VALUES: &str = "rocketchat-values.yaml";
pub const TRAEFIK_DIR: &str = "traefik";
/// The MongoDB backup objects, rendered only when the pipeline has `[backup]`.
pub const BACKUP_DIR: &str = "backup";
/// The operator's values and the `MongoDBCommunity`, rendered only when
/// `helm.mongodb = "operator"`.
pub const MONGODB_DIR: &str = "mongodb";
pub const MONGODB_OPERATOR_VALUES: &str = "mongodb/operator-values.yaml";
pub const MONGODB_COMMUNITY: &str = "mongodb/mongodbcommunity.yaml";
/// `[helm.values]` from the pipeline, as the second values file helm gets (JSON is YAML).
pub const EXTRA_VALUES: &str = "rocketchat-extra-values.json";

pub struct Templates {
    hb: Handlebars<'static>,
    /// Template names (file paths relative to the templates directory, without `.hbs`), sorted.
    names: Vec<String>,
}

impl Templates {
    /// Registers every `*.hbs` file below `dir`.
    pub fn load(dir: &Path) -> Result<Templates> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        let mut names = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d)
                .with_context(|| format!("cannot read the templates directory {}", d.display()))?;
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "hbs") {
                    let rel = path
                        .strip_prefix(dir)
                        .expect("below dir")
                        .with_extension("");
                    let name = rel.to_string_lossy().replace('\\', "/");
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    hb.register_template_string(&name, text)
                        .with_context(|| format!("template {} does not parse", path.display()))?;
                    names.push(name);
                }
            }
        }
        names.sort();
        for required in [HAPROXY_CFG, ROCKETCHAT_VALUES] {
            if !names.iter().any(|n| n == required) {
                bail!(
                    "the templates directory {} has no {required}.hbs",
                    dir.display()
                );
            }
        }
        Ok(Templates { hb, names })
    }

    pub fn render(&self, name: &str, ctx: &TemplateContext) -> Result<String> {
        self.hb
            .render(name, ctx)
            .with_context(|| format!("cannot render template {name}.hbs"))
    }

    /// The Traefik manifests, in file-name order (which is the order they are applied in).
    pub fn traefik_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(String::as_str)
            .filter(|n| n.starts_with("traefik/"))
    }

    /// The backup objects, in file-name order.
    pub fn backup_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(String::as_str)
            .filter(|n| n.starts_with("backup/"))
    }

    /// The Kubernetes objects the deploy stage applies: the Traefik manifests, then the backup
    /// objects when the pipeline has `[backup]`.
    pub fn manifest_names<'a>(&'a self, ctx: &TemplateContext) -> Vec<&'a str> {
        let backup = ctx.backup.is_some();
        self.traefik_names()
            .chain(self.backup_names().filter(move |_| backup))
            .collect()
    }

    /// Every template rendered: (relative output path, contents). The backup templates only
    /// when the pipeline has `[backup]`.
    pub fn render_all(&self, ctx: &TemplateContext) -> Result<Vec<(PathBuf, String)>> {
        self.names
            .iter()
            .filter(|n| ctx.backup.is_some() || !n.starts_with("backup/"))
            .filter(|n| ctx.mongodb.is_some() || !n.starts_with("mongodb/"))
            .map(|n| Ok((PathBuf::from(n), self.render(n, ctx)?)))
            .collect()
    }
}

/// Everything a template may use. Deliberately no secrets: rendered files may be shown. Built
/// from the pipeline by `stages::template_context`.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    pub domain: String,
    pub project: String,
    pub haproxy: HaproxyContext,
    pub traefik: TraefikContext,
    pub app: AppContext,
    pub maintenance: MaintenanceContext,
    /// `[backup]`; `None`: no backups, and the backup templates are not rendered.
    pub backup: Option<BackupContext>,
    /// `helm.mongodb = "operator"`: the operator and the replica set (`templates/mongodb/`);
    /// `None` in the other modes, and those templates are not rendered.
    pub mongodb: Option<MongodbContext>,
}

/// The operator's values and the `MongoDBCommunity` (`templates/mongodb/`).
#[derive(Debug, Clone, Serialize)]
pub struct MongodbContext {
    pub operator_version: String,
    pub name: String,
    pub version: String,
    pub image_type: String,
    pub members: u32,
    pub anti_affinity: crate::config::AntiAffinity,
    /// Any anti-affinity, and whether it is `required`.
    pub affinity: bool,
    pub required: bool,
    pub storage_class: String,
    pub storage_size: String,
    pub mongod: crate::config::mongodb::Resources,
    pub agent: crate::config::mongodb::Resources,
    pub operator: crate::config::mongodb::Resources,
    /// Rocket.Chat's user, and the database it is defined in and uses.
    pub user: String,
    /// The Secret with the users' passwords (keys: the user names).
    pub password_secret: String,
}

/// The image-prune DaemonSet (`templates/maintenance/`).
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceContext {
    pub image: String,
    pub every_seconds: u64,
    /// MicroK8s' containerd socket on the nodes.
    pub containerd_socket: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupContext {
    /// The CronJob and its PersistentVolumeClaim.
    pub name: String,
    pub schedule: String,
    pub keep: u32,
    pub image: String,
    pub storage_class: String,
    pub storage_size: String,
    /// The Job's `activeDeadlineSeconds`.
    pub deadline_seconds: u64,
    /// The CronJob's `startingDeadlineSeconds`: how late a missed run may still start.
    pub starting_deadline_seconds: u64,
    /// The Secret with the URI the Job dumps and restores with: Rocket.Chat's, or in operator
    /// mode the operator's for its admin user.
    pub uri_secret: String,
    /// Its key that holds the URI.
    pub secret_key: String,
    /// The database a restore restores (`MONGO_DATABASE`); empty: the URI's.
    pub database: String,
    /// Where the volume is mounted in the Job's container.
    pub mount_path: String,
    /// The Job's shell script, indented for the YAML block it goes in.
    pub script: String,
    /// `destination = "s3"`: the upload container's; `None`: archives on the volume.
    pub s3: Option<BackupS3Context>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupS3Context {
    pub bucket: String,
    pub prefix: String,
    /// Empty: the node's (the instance profile's region through IMDS).
    pub region: String,
    pub endpoint_url: String,
    pub credentials_secret: String,
    pub upload_image: String,
    /// The upload container's shell script, indented like `script`.
    pub script: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HaproxyContext {
    pub pem_path: String,
    pub backend_address: String,
    pub backend_port: u16,
    /// With controllers ≥ 3: where every HAProxy forwards ACME HTTP-01 requests (certbot on the
    /// first controller, on a port of its own). None with one controller, whose config is
    /// unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeForward>,
}

/// certbot's standalone listener on the first controller, behind every HAProxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcmeForward {
    pub address: String,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraefikContext {
    pub image: String,
    pub namespace: String,
    pub web_nodeport: u16,
    pub websecure_nodeport: u16,
    pub replicas: u32,
    pub storage_class: String,
    pub storage_size: String,
    pub trusted_ips: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppContext {
    pub namespace: String,
    pub release: String,
    /// The chart's main Service (`rocketchat.fullname`), port 80.
    pub service: String,
    /// The ddp-streamer Service in microservices mode (`<release>-ddp-streamer`), port 3000.
    pub ddp_service: String,
    pub microservices: bool,
    pub replicas: Replicas,
    pub bundled_mongodb: bool,
    pub mongodb_secret: String,
    /// `helm.metrics`: the Prometheus endpoint and the PodMonitor.
    pub metrics: bool,
    /// What this chart version reads (`src/chart.rs`).
    pub chart: ChartVersion,
}
