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
use crate::config::Settings;
use crate::stage::Stage;
use crate::stage_name::StageName;
use crate::templates::{
    AppContext, BackupContext, HaproxyContext, MaintenanceContext, TemplateContext, TraefikContext,
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
    let inputs = match name {
        StageName::Terraform => serde_json::json!([s.project, s.terraform]),
        StageName::Bootstrap => serde_json::json!([s.ssh, s.microk8s]),
        StageName::Tls => serde_json::json!([s.domain, s.tls, s.haproxy]),
        StageName::Tunnel => serde_json::json!([s.tunnel]),
        StageName::Deploy => {
            let mut inputs =
                serde_json::json!([s.domain, s.traefik, s.helm, s.maintenance, s.backup]);
            // `[mongodb]` counts only where it is used (and leaves the others' hash as it was).
            if s.helm.mongodb == crate::config::MongodbMode::Operator
                && let Some(list) = inputs.as_array_mut()
            {
                list.push(serde_json::json!(s.mongodb));
            }
            inputs
        }
        StageName::Dns => serde_json::json!([s.domain, s.dns]),
    };
    hex::encode(Sha256::digest(inputs.to_string().as_bytes()))
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
            containerd_socket: deploy::maintenance::CONTAINERD_SOCKET.into(),
        },
        backup: s.backup.as_ref().map(|b| BackupContext {
            name: b.name.clone(),
            schedule: b.schedule.clone(),
            keep: b.keep,
            image: b.image.clone(),
            storage_class: b.storage_class.clone(),
            storage_size: b.storage_size.clone(),
            deadline_seconds: b.timeout.as_secs(),
            secret_key: chart::secret_keys::URI.to_string(),
            mount_path: deploy::BACKUP_MOUNT_PATH.to_string(),
            script: deploy::backup_script_indented(),
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
