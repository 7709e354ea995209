//! Configuration: the pipeline file, `.env` and the environment, merged once into `Settings`.

mod backup_outputs;
mod check;
mod config_error;
mod cron;
mod env;
mod load;
pub mod mongodb;
mod overrides;
mod pipeline;
mod preflight;
pub mod secret_values;
mod settings;
mod sources;
pub mod validate;

pub(crate) use check::parse_jump_host;
pub use config_error::{ConfigError, ConfigErrors};
pub use env::{Env, is_secret_name};
pub use load::Purpose;
pub use mongodb::{AntiAffinity, MongodbSettings};
pub use pipeline::{Pipeline, Replicas, Tools, Traefik, Tunnel, default_backup_image};
pub use settings::{
    BackupBucket, BackupDestination, BackupSettings, CheckSettings, ClusterSettings, DnsSettings,
    HaproxySettings, HelmSettings, JumpHost, MaintenanceSettings, Microk8sSettings, MongoUris,
    MongodbMode, ProjectSettings, Settings, SshSettings, StateSettings, TerraformSettings,
    TlsSettings,
};

#[cfg(test)]
mod tests;
