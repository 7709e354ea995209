//! Settings from the environment: `JEEVES_<SECTION>_<KEY>` for any pipeline key, and the
//! conventional shorthands (`DOMAIN`, `CERT_EMAIL`, `SSH_KEY_PATH`), applied onto the pipeline
//! file's table before it is read, each remembered as its key's source. (`.env` is read into
//! the environment beforehand, by `env.rs`.)

use std::collections::BTreeMap;

use serde::Serialize;

use super::env::Env;
use super::pipeline;
use super::sources::Sources;
use super::{ConfigError, ConfigErrors};

/// Environment variables that are not pipeline-key overrides.
const RESERVED: [&str; 5] = [
    "JEEVES_PIPELINE",
    "JEEVES_STATE_DIR",
    "JEEVES_SSH_KEY_PASSPHRASE",
    "JEEVES_LOG",
    // Read at build time by `jeeves version`; a CI that sets it for the build may keep it.
    "JEEVES_GIT_COMMIT",
];

/// Conventional variables that set a pipeline key (a `JEEVES_*` variable for the same key wins).
const SHORTHANDS: [(&str, &str, &str); 3] = [
    ("DOMAIN", "tls", "domain"),
    ("CERT_EMAIL", "tls", "email"),
    ("SSH_KEY_PATH", "ssh", "key_path"),
];

/// Applies `DOMAIN`-style shorthands, then `JEEVES_<SECTION>_<KEY>` variables, onto the table.
/// The value's type follows the key's default (numbers, booleans, comma-separated lists).
///
/// A variable that names a section but no key in it (`JEEVES_SSH_PROT`) is an error: it was
/// meant as an override and would otherwise be lost. Any other `JEEVES_*` variable (another
/// tool's, a CI's `JEEVES_BUILD_ID`) is not ours: it only earns a warning, returned.
pub(super) fn apply(
    table: &mut toml::Table,
    env: &Env,
    sources: &mut Sources,
) -> Result<Vec<String>, ConfigErrors> {
    let mut warnings = Vec::new();
    let defaults = section_defaults();
    let mut errors = Vec::new();
    let mut overrides: Vec<(String, &str, &str, String)> = Vec::new();
    for (var, section, key) in SHORTHANDS {
        if let Some(value) = env.get(var) {
            overrides.push((var.to_string(), section, key, value.to_string()));
        }
    }
    for (var, value) in env.iter() {
        let Some(rest) = var.strip_prefix("JEEVES_") else {
            continue;
        };
        if RESERVED.contains(&var) || value.is_empty() {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let target = defaults.iter().find_map(|(section, keys)| {
            let key = lower.strip_prefix(section.as_str())?.strip_prefix('_')?;
            Some((section, key, keys))
        });
        match target {
            Some((section, key, keys)) if keys.contains_key(key) => {
                overrides.push((var.to_string(), section.as_str(), leak_key(keys, key), value.to_string()));
            }
            Some((section, key, keys)) => errors.push(ConfigError {
                source: env.describe(var),
                key: format!("{section}.{key}"),
                message: format!(
                    "{var} names no key of [{section}] (its keys: {})",
                    keys.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                ),
            }),
            None => warnings.push(format!(
                "{} is not a Jeeves setting and is ignored (overrides are JEEVES_<SECTION>_<KEY>, e.g. JEEVES_SSH_PORT for ssh.port)",
                env.describe(var)
            )),
        }
    }
    for (var, section, key, raw) in overrides {
        let dotted = format!("{section}.{key}");
        let default = &defaults[section][key];
        let value = match default {
            toml::Value::Integer(_) => raw
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| "a whole number"),
            toml::Value::Boolean(_) => match raw.trim() {
                "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
                "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
                _ => Err("true or false"),
            },
            toml::Value::Array(_) => Ok(toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.into()))
                    .collect(),
            )),
            toml::Value::String(_) => Ok(toml::Value::String(raw.clone())),
            _ => Err("set in the pipeline file (tables cannot come from the environment)"),
        };
        match value {
            Ok(value) => {
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = entry {
                    t.insert(key.to_string(), value);
                }
                sources.overrides.insert(dotted, env.describe(&var));
            }
            Err(expected) => errors.push(ConfigError {
                source: env.describe(&var),
                key: dotted,
                message: format!("`{raw}` is not valid here: expected {expected}"),
            }),
        }
    }
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The `'static` key string from the defaults table (keys are known at compile time).
fn leak_key<'a>(keys: &'a toml::Table, key: &str) -> &'a str {
    keys.get_key_value(key)
        .map(|(k, _)| k.as_str())
        .unwrap_or_default()
}

fn section_defaults() -> BTreeMap<String, toml::Table> {
    fn table<T: Serialize>(v: T) -> toml::Table {
        toml::Table::try_from(v).expect("defaults serialise to TOML")
    }
    let mut project = toml::Table::new();
    project.insert("name".into(), toml::Value::String(String::new()));
    project.insert("templates".into(), toml::Value::String(String::new()));
    project.insert("region".into(), toml::Value::String(String::new()));
    BTreeMap::from([
        ("project".to_string(), project),
        (
            "terraform".to_string(),
            table(pipeline::Terraform::default()),
        ),
        ("ssh".to_string(), table(pipeline::Ssh::default())),
        ("microk8s".to_string(), table(pipeline::Microk8s::default())),
        ("cluster".to_string(), table(pipeline::Cluster::default())),
        (
            "tls".to_string(),
            table(pipeline::Tls {
                renew_before: "30days".into(),
                ..Default::default()
            }),
        ),
        ("haproxy".to_string(), table(pipeline::Haproxy::default())),
        ("tunnel".to_string(), table(pipeline::Tunnel::default())),
        ("traefik".to_string(), table(pipeline::Traefik::default())),
        ("helm".to_string(), table(pipeline::Helm::default())),
        ("mongodb".to_string(), table(pipeline::Mongodb::default())),
        ("dns".to_string(), table(pipeline::Dns::default())),
        ("tools".to_string(), table(pipeline::Tools::default())),
        ("check".to_string(), table(pipeline::Check::default())),
        (
            "state".to_string(),
            table(pipeline::StateBackend::default()),
        ),
        (
            "maintenance".to_string(),
            table(pipeline::Maintenance::default()),
        ),
        // A `JEEVES_BACKUP_*` variable turns backups on with the other keys' defaults.
        ("backup".to_string(), table(pipeline::Backup::default())),
    ])
}
