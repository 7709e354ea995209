//! Preflight: what a command needs from this machine beyond a valid pipeline file — the SSH
//! key for commands that log in to hosts, the CRD bundle, local chart and database URIs for runs
//! that deploy. Checked only by the commands that need them, so `render` or
//! `up --only terraform` work without them; failures are configuration errors (exit 2).

use std::path::Path;

use super::{ConfigError, ConfigErrors, Settings};
use crate::chart;

impl Settings {
    /// What the deploy stage needs from this machine: a local Traefik CRD bundle that exists, a
    /// local chart (when `helm.chart` is a path) of exactly `helm.version`, and with
    /// `helm.mongodb = "external"` the database URIs the chart reads. Only for runs that deploy,
    /// so other stages work without them.
    pub fn check_deploy(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let crds = &self.traefik.crds;
        if !crds.starts_with("https://") && !Path::new(crds).is_file() {
            errors.push(ConfigError {
                source: self.source.of("traefik.crds"),
                key: "traefik.crds".into(),
                message: format!("{crds} is not a readable file (a pinned https:// URL, or a path relative to the pipeline file)"),
            });
        }
        if let Some(path) = &self.helm.local_chart {
            let problem = match chart::read_meta(path) {
                Err(e) => Some(format!("{e:#}")),
                Ok(meta) if meta.name != chart::CHART_NAME => Some(format!(
                    "{} is the chart `{}`; Jeeves deploys the Rocket.Chat chart (`{}`)",
                    path.display(),
                    meta.name,
                    chart::CHART_NAME
                )),
                Ok(meta) if meta.version != self.helm.version => Some(format!(
                    "{} is version {}, but helm.version is {}",
                    path.display(),
                    meta.version,
                    self.helm.version
                )),
                Ok(_) => None,
            };
            if let Some(message) = problem {
                errors.push(ConfigError {
                    source: self.source.of("helm.chart"),
                    key: "helm.chart".into(),
                    message,
                });
            }
        }
        if self.helm.mongodb == super::MongodbMode::External {
            let oplog = self.helm.reads.oplog_uri;
            let missing = match &self.mongo {
                None => Some("MONGO_URI"),
                Some(m) if oplog && m.oplog_uri.is_none() => Some("MONGO_OPLOG_URI"),
                Some(_) => None,
            };
            if let Some(var) = missing {
                errors.push(ConfigError {
                    source: self.mongo_source.clone(),
                    key: var.into(),
                    message: format!(
                        "helm.mongodb = \"external\" with chart {} needs {} in the environment or .env; or set helm.mongodb = \"operator\" (a replica set Jeeves runs)",
                        self.helm.version,
                        if oplog {
                            "MONGO_URI and MONGO_OPLOG_URI (the Rocket.Chat database and its oplog)"
                        } else {
                            "MONGO_URI (the Rocket.Chat database)"
                        }
                    ),
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Checks that the SSH key exists and is private, as OpenSSH insists. Only for commands that
    /// will log in to hosts, so `render` or `up --only terraform` work on a machine without it.
    pub fn check_ssh_key(&self) -> Result<(), ConfigErrors> {
        let path = &self.ssh.key_path;
        let err = |message: String| -> ConfigErrors {
            ConfigError {
                source: self.source.of("ssh.key_path"),
                key: "ssh.key_path".into(),
                message,
            }
            .into()
        };
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            // No key file: logging in with an ssh-agent's keys alone (or the IdentityFile of
            // the user's ssh_config) is fine; the login says what it tried if it fails.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && agent_or_ssh_config(self) => {
                return Ok(());
            }
            Err(e) => {
                return Err(err(format!(
                    "cannot read the SSH private key {}: {e} (set ssh.key_path or SSH_KEY_PATH, or run an ssh-agent holding the key)",
                    path.display()
                )));
            }
        };
        if !meta.is_file() {
            return Err(err(format!("{} is not a file", path.display())));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "{} has mode {mode:04o}; an SSH private key must not be readable by group or others (chmod 600 {})",
                    path.display(),
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

/// An ssh-agent is reachable (SSH_AUTH_SOCK names a socket), or an ssh_config may name the key.
fn agent_or_ssh_config(settings: &Settings) -> bool {
    use std::os::unix::fs::FileTypeExt;
    settings.ssh.ssh_config.is_some()
        || std::env::var_os("SSH_AUTH_SOCK")
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.file_type().is_socket())
}
