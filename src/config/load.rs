//! Pipeline file + `.env` + environment, merged in exactly one place into one validated
//! `Settings`. Nothing else in Jeeves reads the pipeline file or configuration variables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::check::Checker;
use super::env::Env;
use super::overrides;
use super::pipeline::Pipeline;
use super::secret_values;
use super::sources::Sources;
use super::{ConfigError, ConfigErrors, MongoUris, Settings};

/// What the command loading the settings will do with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Change or render the stack: every setting must be valid.
    Run,
    /// Only look at what exists (status, logs, ssh, kubeconfig, tunnel): the domain and the
    /// ACME e-mail may be unset (a fresh checkout has neither); a value that is set is still
    /// checked.
    Inspect,
}

impl Settings {
    /// Reads and validates the pipeline file with the environment applied.
    pub fn load(pipeline_file: &Path, env: &Env) -> Result<Settings, ConfigErrors> {
        Settings::load_for(pipeline_file, env, Purpose::Run)
    }

    /// As `load`, with the checks `purpose` needs.
    pub fn load_for(
        pipeline_file: &Path,
        env: &Env,
        purpose: Purpose,
    ) -> Result<Settings, ConfigErrors> {
        let file = pipeline_file.display().to_string();
        let file_err = |message: String| -> ConfigErrors {
            ConfigError {
                source: file.clone(),
                key: String::new(),
                message,
            }
            .into()
        };
        let text = std::fs::read_to_string(pipeline_file).map_err(|e| {
            file_err(format!(
                "cannot read the pipeline file: {e} (choose one with -p/--pipeline, or create a deployment directory with `jeeves init DIR`)"
            ))
        })?;
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_err(format!("not valid TOML: {e}")))?;

        let mut sources = Sources {
            file: file.clone(),
            overrides: HashMap::new(),
        };
        let warnings = overrides::apply(&mut table, env, &mut sources)?;

        let raw: Pipeline =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let key = if key == "." { String::new() } else { key };
                ConfigErrors::from(ConfigError {
                    source: sources.of(&key),
                    key,
                    // toml appends "in `section`"; the key already says where.
                    message: e
                        .inner()
                        .to_string()
                        .split("\nin `")
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                })
            })?;

        let name = pipeline_file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let base = pipeline_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let state_dir = match env.get("JEEVES_STATE_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(".jeeves").join(&name),
        };
        let secrets = env.secret_values();
        let mut settings = Checker::new(sources, purpose).finish(
            raw,
            name,
            pipeline_file,
            base,
            state_dir,
            secrets,
        )?;
        settings.warnings = warnings;
        // Secrets written into [helm.values] are redacted too (helm may echo a value back).
        let in_values = secret_values::in_values(&settings.helm.values);
        settings.secrets.extend(in_values);
        settings.mongo = env.get("MONGO_URI").map(|uri| MongoUris {
            uri: uri.to_string(),
            oplog_uri: env.get("MONGO_OPLOG_URI").map(str::to_string),
        });
        settings.mongo_source = env.describe("MONGO_URI");
        settings.ssh.key_passphrase = env.get("JEEVES_SSH_KEY_PASSPHRASE").map(str::to_string);
        Ok(settings)
    }
}
