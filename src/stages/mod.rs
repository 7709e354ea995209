//! One module per stage (a folder where a stage has parts). `build` is the only place that
//! knows which stages exist; the templates' context is built from the pipeline here.

pub mod bootstrap;
pub mod deploy;
pub mod dns;
pub mod terraform;
pub mod tls;
pub mod tunnel;

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::chart;
use crate::config::{BackupDestination, Settings};
use crate::stage::Stage;
use crate::stage_name::StageName;
use crate::templates::{
    AppContext, BackupContext, BackupS3Context, HaproxyContext, MaintenanceContext,
    TemplateContext, TraefikContext,
};

pub fn build(name: StageName) -> Box<dyn Stage> {
    match name {
        StageName::Terraform => Box::new(terraform::TerraformStage::default()),
        StageName::Bootstrap => Box::new(bootstrap::BootstrapStage::default()),
        StageName::Tls => Box::new(tls::TlsStage::default()),
        StageName::Tunnel => Box::new(tunnel::TunnelStage::default()),
        StageName::Deploy => Box::new(deploy::DeployStage::default()),
        StageName::Dns => Box::new(dns::DnsStage::default()),
    }
}

/// SHA-256 of the settings a stage reads, so `status` can say when they changed since the
/// stage last ran. Informational only: what a stage does is decided by its probe.
pub fn inputs_fingerprint(name: StageName, s: &Settings) -> String {
    let parts: Vec<serde_json::Value> = inputs_named(name, s).into_iter().map(|(_, v)| v).collect();
    hex::encode(Sha256::digest(
        serde_json::Value::Array(parts).to_string().as_bytes(),
    ))
}

/// The settings a stage reads, by name (`inputs_fingerprint` hashes their values in this order;
/// a saved plan keeps a digest per setting, `crate::saved_plan`).
pub fn inputs_named(name: StageName, s: &Settings) -> Vec<(&'static str, serde_json::Value)> {
    let v = |x: serde_json::Result<serde_json::Value>| x.unwrap_or(serde_json::Value::Null);
    use serde_json::to_value as j;
    match name {
        StageName::Terraform | StageName::Bootstrap => {
            let mut inputs = if name == StageName::Terraform {
                vec![
                    ("project", v(j(&s.project))),
                    ("terraform", v(j(&s.terraform))),
                ]
            } else {
                vec![("ssh", v(j(&s.ssh))), ("microk8s", v(j(&s.microk8s)))]
            };
            // `[cluster]` counts once it says more than one controller (and leaves a
            // single-controller stack's hash as it was).
            if !s.cluster.single() {
                inputs.push(("cluster", v(j(s.cluster))));
            }
            inputs
        }
        StageName::Tls => vec![
            ("domain", v(j(&s.domain))),
            ("tls", v(j(&s.tls))),
            ("haproxy", v(j(&s.haproxy))),
        ],
        StageName::Tunnel => vec![("tunnel", v(j(&s.tunnel)))],
        StageName::Deploy => {
            let mut inputs = vec![
                ("domain", v(j(&s.domain))),
                ("traefik", v(j(&s.traefik))),
                ("helm", v(j(&s.helm))),
                ("maintenance", v(j(&s.maintenance))),
                ("backup", v(j(&s.backup))),
            ];
            // `[mongodb]` counts only where it is used (and leaves the others' hash as it was).
            if s.helm.mongodb == crate::config::MongodbMode::Operator {
                inputs.push(("mongodb", v(j(&s.mongodb))));
            }
            inputs
        }
        StageName::Dns => vec![("domain", v(j(&s.domain))), ("dns", v(j(&s.dns)))],
    }
}

/// What the templates get from the pipeline (haproxy.cfg, the Traefik resources, the values).
pub fn template_context(s: &Settings) -> TemplateContext {
    let release = &s.helm.release;
    let name_override = s.helm.values.get("nameOverride").and_then(|v| v.as_str());
    TemplateContext {
        domain: s.domain.clone(),
        project: s.project.name.clone(),
        haproxy: HaproxyContext {
            pem_path: s.haproxy.pem_path.clone(),
            backend_address: s.haproxy.backend_address.clone(),
            backend_port: s.traefik.web_nodeport,
            // Needs the first controller's address: set by the tls stage (`tls::haproxy_config`).
            acme: None,
        },
        traefik: TraefikContext {
            image: s.traefik.image.clone(),
            namespace: s.traefik.namespace.clone(),
            web_nodeport: s.traefik.web_nodeport,
            websecure_nodeport: s.traefik.websecure_nodeport,
            replicas: s.traefik.replicas,
            storage_class: s.traefik.storage_class.clone(),
            storage_size: s.traefik.storage_size.clone(),
            trusted_ips: s.traefik.trusted_ips.clone(),
        },
        app: AppContext {
            namespace: s.helm.namespace.clone(),
            release: release.clone(),
            service: chart::fullname(release, name_override),
            ddp_service: chart::ddp_streamer_service(release),
            microservices: s.helm.microservices,
            replicas: s.helm.replicas.clone(),
            bundled_mongodb: s.helm.bundled_mongodb,
            mongodb_secret: s.helm.mongodb_secret.clone(),
            metrics: s.helm.metrics,
            chart: *s.helm.reads,
        },
        maintenance: MaintenanceContext {
            image: s.maintenance.image_prune_image.clone(),
            every_seconds: s.maintenance.image_prune_every.as_secs().max(1),
            containerd_socket: deploy::CONTAINERD_SOCKET.into(),
        },
        backup: s.backup.as_ref().map(|b| {
            let source = deploy::mongodb::backup_source(s);
            BackupContext {
                name: b.name.clone(),
                schedule: b.schedule.clone(),
                keep: b.keep,
                image: b.image.clone(),
                storage_class: b.storage_class.clone(),
                storage_size: b.storage_size.clone(),
                deadline_seconds: b.timeout.as_secs(),
                starting_deadline_seconds: deploy::BACKUP_STARTING_DEADLINE_SECONDS,
                uri_secret: source.secret,
                secret_key: source.key.to_string(),
                database: source.database,
                mount_path: deploy::BACKUP_MOUNT_PATH.to_string(),
                script: deploy::backup_script_indented(),
                s3: match &b.destination {
                    BackupDestination::Volume => None,
                    BackupDestination::S3(s3) => Some(BackupS3Context {
                        bucket: s3.bucket.clone(),
                        prefix: s3.prefix.clone(),
                        region: s3.region.clone(),
                        endpoint_url: s3.endpoint_url.clone(),
                        credentials_secret: s3.credentials_secret.clone(),
                        upload_image: s3.upload_image.clone(),
                        script: deploy::upload_script_indented(),
                    }),
                },
            }
        }),
        mongodb: deploy::mongodb_context(s),
    }
}

/// The second values file's contents, when the pipeline has `[helm.values]`.
pub fn extra_values(s: &Settings) -> Result<Option<String>> {
    Ok((!s.helm.values.is_empty())
        .then(|| serde_json::to_string_pretty(&s.helm.values))
        .transpose()?)
}
