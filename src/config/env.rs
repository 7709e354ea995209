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
    /// Whether the environment file existed (`jeeves doctor` and `-v` say when none was loaded).
    file_found: bool,
    /// `AWS_*` variables that were set but empty, and so removed (see `load_process`).
    emptied_aws: Vec<String>,
}

impl Env {
    /// Loads `env_file` into the process environment (existing variables win, as with every
    /// dotenv tool) and snapshots the result. A missing default `.env` is fine (as with docker
    /// compose); a file named with `--env-file` (`required`) must exist.
    ///
    /// An empty `AWS_*` variable (`AWS_PROFILE=` copied from `.env.example`) is removed from the
    /// process environment: the AWS SDK reads `AWS_PROFILE=` as a profile named "" and fails,
    /// where every user means "not set".
    ///
    /// Must run before any thread is started: it calls `set_var` and `remove_var`.
    pub fn load_process(env_file: &Path, required: bool) -> Result<Env, ConfigErrors> {
        let mut from_file = BTreeSet::new();
        let mut file_found = true;
        let file = env_file.display().to_string();
        match dotenvy::from_path_iter(env_file) {
            Ok(iter) => {
                for item in iter {
                    let (key, value) = item.map_err(|e| ConfigError {
                        source: file.clone(),
                        key: String::new(),
                        message: parse_error(std::fs::read_to_string(env_file).ok().as_deref(), &e),
                    })?;
                    if std::env::var_os(&key).is_none() {
                        // SAFETY: called from `main` before the async runtime or any other
                        // thread exists, so nothing reads the environment concurrently.
                        unsafe { std::env::set_var(&key, &value) };
                        from_file.insert(key);
                    }
                }
            }
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                file_found = false;
            }
            Err(e) => {
                return Err(ConfigError {
                    source: file,
                    key: String::new(),
                    message: format!("cannot read the environment file: {e}"),
                }
                .into());
            }
        }
        let mut emptied_aws = Vec::new();
        for (key, value) in std::env::vars_os() {
            if let Some(key) = key.to_str()
                && key.starts_with("AWS_")
                && value.is_empty()
            {
                emptied_aws.push(key.to_string());
            }
        }
        for key in &emptied_aws {
            // SAFETY: as above, no other thread exists yet.
            unsafe { std::env::remove_var(key) };
        }
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Ok(Env {
            vars,
            from_file,
            file,
            file_found,
            emptied_aws,
        })
    }

    /// "loaded .env (3 variables)" or "no .env: …", for `jeeves doctor` and `-v`.
    pub fn file_summary(&self) -> String {
        let mut text = if self.file_found {
            format!(
                "loaded {} ({} variable(s) set from it)",
                self.file,
                self.from_file.len()
            )
        } else {
            format!(
                "no {} found in this directory: settings come from the pipeline file and the environment only (`jeeves init` writes one; see .env.example)",
                self.file
            )
        };
        if !self.emptied_aws.is_empty() {
            text.push_str(&format!(
                "; empty {} treated as unset",
                self.emptied_aws.join(", ")
            ));
        }
        text
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

/// What is wrong in the environment file, never showing its text: dotenvy's own message quotes
/// the line, and for a quote left open "the line" is the rest of the file, secrets and all. The
/// line number and the variable's name are enough to find it.
fn parse_error(text: Option<&str>, e: &dotenvy::Error) -> String {
    let dotenvy::Error::LineParse(line, _) = e else {
        return format!("cannot parse the environment file: {e}");
    };
    let number = text
        .and_then(|t| {
            t.find(line.as_str())
                .map(|at| t[..at].matches('\n').count() + 1)
        })
        .map(|n| format!(" at line {n}"))
        .unwrap_or_default();
    let key = line
        .trim_start()
        .trim_start_matches("export ")
        .split('=')
        .next()
        .map(str::trim)
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        })
        .map(|k| format!(" ({k})"))
        .unwrap_or_default();
    format!(
        "cannot parse the environment file{number}{key}: a quote left open, or a character a \
         value may not hold unquoted (the line is not shown: it may hold a secret)"
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_does_not_parse_is_named_by_number_and_key_never_shown() {
        let text = "DOMAIN=chat.example.org\nAWS_SECRET_ACCESS_KEY=\"wJalrXUtnFEMI/K7MDENG\nMONGO_URI=mongodb://rc:hunter2@db/rc\n";
        let e = dotenvy::from_read_iter(text.as_bytes())
            .find_map(Result::err)
            .expect("the open quote does not parse");
        // What dotenvy itself would print: the secrets after the open quote.
        assert!(e.to_string().contains("hunter2"), "{e}");
        let message = parse_error(Some(text), &e);
        assert!(
            message.contains("at line 2") && message.contains("(AWS_SECRET_ACCESS_KEY)"),
            "{message}"
        );
        assert!(
            !message.contains("wJalr") && !message.contains("hunter2"),
            "{message}"
        );
    }
}
