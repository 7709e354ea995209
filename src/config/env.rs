//! The process environment, after the optional `.env` file, as one snapshot that remembers which
//! variables came from the file (so an error can say where a bad value was set).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{ConfigError, ConfigErrors};

#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    from_file: BTreeSet<String>,
    file: String,
}

impl Env {
    /// Loads `env_file` into the process environment (existing variables win, as with every
    /// dotenv tool) and snapshots the result. A missing file is fine.
    ///
    /// Must run before any thread is started: it calls `set_var`.
    pub fn load_process(env_file: &Path) -> Result<Env, ConfigErrors> {
        let mut from_file = BTreeSet::new();
        let file = env_file.display().to_string();
        match dotenvy::from_path_iter(env_file) {
            Ok(iter) => {
                for item in iter {
                    let (key, value) = item.map_err(|e| ConfigError {
                        source: file.clone(),
                        key: String::new(),
                        message: format!("cannot parse the environment file: {e}"),
                    })?;
                    if std::env::var_os(&key).is_none() {
                        // SAFETY: called from `main` before the async runtime or any other
                        // thread exists, so nothing reads the environment concurrently.
                        unsafe { std::env::set_var(&key, &value) };
                        from_file.insert(key);
                    }
                }
            }
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ConfigError {
                    source: file,
                    key: String::new(),
                    message: format!("cannot read the environment file: {e}"),
                }
                .into());
            }
        }
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Ok(Env {
            vars,
            from_file,
            file,
        })
    }

    /// An environment made of exactly these variables (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Env::default()
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// "environment variable X" or "X in .env".
    pub fn describe(&self, key: &str) -> String {
        if self.from_file.contains(key) {
            format!("{key} in {}", self.file)
        } else {
            format!("environment variable {key}")
        }
    }

    /// Values that must never be shown: credentials, passphrases, tokens, connection strings.
    pub fn secret_values(&self) -> Vec<String> {
        self.vars
            .iter()
            .filter(|(k, v)| is_secret_name(k) && v.len() >= 4)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

pub fn is_secret_name(name: &str) -> bool {
    const EXACT: [&str; 5] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "MONGO_URI",
        "MONGO_OPLOG_URI",
    ];
    const SUFFIXES: [&str; 6] = [
        "_PASSWORD",
        "_PASSPHRASE",
        "_TOKEN",
        "_SECRET",
        "_SECRET_KEY",
        "_URI",
    ];
    EXACT.contains(&name) || SUFFIXES.iter().any(|s| name.ends_with(s))
}
