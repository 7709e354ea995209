//! One file per stage. `build` is the only place that knows which stages exist.

pub mod bootstrap;
pub mod deploy;
pub mod dns;
pub mod terraform;
pub mod tls;
pub mod tunnel;

use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::stage::Stage;
use crate::stage_name::StageName;

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
        StageName::Deploy => serde_json::json!([s.domain, s.traefik, s.helm]),
        StageName::Dns => serde_json::json!([s.domain, s.dns]),
    };
    hex::encode(Sha256::digest(inputs.to_string().as_bytes()))
}
