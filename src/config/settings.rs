//! Pipeline file + `.env` + environment, merged in exactly one place into one validated
//! `Settings`. Nothing else in Jeeves reads the pipeline file or configuration variables.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::env::Env;
use super::pipeline::{self, Pipeline};
use super::validate;
use super::{ConfigError, ConfigErrors};
use crate::chart::{self, ChartVersion};

/// Environment variables that are not pipeline-key overrides.
const RESERVED: [&str; 4] = [
    "JEEVES_PIPELINE",
    "JEEVES_STATE_DIR",
    "JEEVES_SSH_KEY_PASSPHRASE",
    "JEEVES_LOG",
];

/// Conventional variables that set a pipeline key (a `JEEVES_*` variable for the same key wins).
const SHORTHANDS: [(&str, &str, &str); 3] = [
    ("DOMAIN", "tls", "domain"),
    ("CERT_EMAIL", "tls", "email"),
    ("SSH_KEY_PATH", "ssh", "key_path"),
];

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// The pipeline's name: the file name without `.toml`. Names the state directory.
    pub name: String,
    pub pipeline_file: PathBuf,
    /// `.jeeves/<name>` (or `$JEEVES_STATE_DIR`).
    pub state_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub project: ProjectSettings,
    pub domain: String,
    pub terraform: TerraformSettings,
    pub ssh: SshSettings,
    pub microk8s: Microk8sSettings,
    pub tls: TlsSettings,
    pub haproxy: HaproxySettings,
    pub tunnel: pipeline::Tunnel,
    pub traefik: pipeline::Traefik,
    pub helm: HelmSettings,
    pub dns: DnsSettings,
    pub tools: pipeline::Tools,
    /// Values to redact from every output (never serialised).
    #[serde(skip)]
    pub secrets: Vec<String>,
    /// MONGO_URI and MONGO_OPLOG_URI from the environment or .env (never serialised), for the
    /// external-MongoDB secret the deploy stage creates.
    #[serde(skip)]
    pub mongo: Option<MongoUris>,
    #[serde(skip)]
    source: Sources,
    #[serde(skip)]
    mongo_source: String,
}

#[derive(Clone)]
pub struct MongoUris {
    pub uri: String,
    /// Needed only by the chart versions that read `mongo-oplog-uri` (`ChartVersion::oplog_uri`).
    pub oplog_uri: Option<String>,
}

impl std::fmt::Debug for MongoUris {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MongoUris(<redacted>)")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectSettings {
    pub name: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TerraformSettings {
    pub dir: PathBuf,
    /// Passed to terraform as a JSON variables file.
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub backend_config: BTreeMap<String, String>,
    pub var_files: Vec<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct SshSettings {
    pub user: String,
    pub key_path: PathBuf,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub keepalive: Duration,
    pub sudo: bool,
    pub pin_from_console: bool,
    /// From JEEVES_SSH_KEY_PASSPHRASE (never serialised).
    #[serde(skip)]
    pub key_passphrase: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Microk8sSettings {
    pub channel: String,
    pub addons: Vec<String>,
    pub token_ttl: Duration,
    pub ready_timeout: Duration,
    pub drain_timeout: Duration,
    pub concurrency: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TlsSettings {
    pub email: String,
    pub acme_server: Option<String>,
    pub staging: bool,
    pub renew_before: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct HaproxySettings {
    pub config_path: String,
    pub pem_path: String,
    pub backend_address: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelmSettings {
    pub repo: String,
    /// The chart's name in `repo`, or the path of a local chart.
    pub chart: String,
    /// `helm.chart` names a chart on disk (a `.tgz` or a directory), used as is: no `--repo`.
    pub local_chart: Option<PathBuf>,
    /// What this chart version reads.
    pub reads: &'static ChartVersion,
    pub version: String,
    pub release: String,
    pub namespace: String,
    pub timeout: Duration,
    pub microservices: bool,
    pub bundled_mongodb: bool,
    pub mongodb_secret: String,
    pub replicas: pipeline::Replicas,
    pub values: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DnsSettings {
    pub zone_id: Option<String>,
    pub ttl: u32,
    pub wait_timeout: Duration,
}

/// Where each key's value came from, for error messages.
#[derive(Debug, Clone, Default)]
struct Sources {
    file: String,
    overrides: HashMap<String, String>,
}

impl Sources {
    /// `tls.domain` → its source; `terraform.var_files[0]` → the source of `terraform.var_files`.
    fn of(&self, key: &str) -> String {
        let whole = key.split('[').next().unwrap_or(key);
        self.overrides
            .get(key)
            .or_else(|| self.overrides.get(whole))
            .cloned()
            .unwrap_or_else(|| self.file.clone())
    }
}

impl Settings {
    /// Reads and validates the pipeline file with the environment applied.
    pub fn load(pipeline_file: &Path, env: &Env) -> Result<Settings, ConfigErrors> {
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
                "cannot read the pipeline file: {e} (choose one with -p/--pipeline)"
            ))
        })?;
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_err(format!("not valid TOML: {e}")))?;

        let mut sources = Sources {
            file: file.clone(),
            overrides: HashMap::new(),
        };
        apply_overrides(&mut table, env, &mut sources)?;

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
        let mut settings = Checker {
            sources,
            errors: Vec::new(),
        }
        .finish(raw, name, pipeline_file, base, state_dir, secrets)?;
        settings.mongo = env.get("MONGO_URI").map(|uri| MongoUris {
            uri: uri.to_string(),
            oplog_uri: env.get("MONGO_OPLOG_URI").map(str::to_string),
        });
        settings.mongo_source = env.describe("MONGO_URI");
        settings.ssh.key_passphrase = env.get("JEEVES_SSH_KEY_PASSPHRASE").map(str::to_string);
        Ok(settings)
    }

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
        if !self.helm.bundled_mongodb {
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
                        "helm.mongodb = \"external\" with chart {} needs {} in the environment or .env; or set helm.mongodb = \"bundled\"",
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

    /// A configuration error about `key` found only by looking at the hosts (exit 2), with the
    /// file or variable the key's value came from.
    pub fn config_error(&self, key: &str, message: String) -> ConfigErrors {
        ConfigError {
            source: self.source.of(key),
            key: key.into(),
            message,
        }
        .into()
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
        let meta = std::fs::metadata(path).map_err(|e| {
            err(format!(
                "cannot read the SSH private key {}: {e} (set ssh.key_path or SSH_KEY_PATH)",
                path.display()
            ))
        })?;
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

/// Applies `DOMAIN`-style shorthands, then `JEEVES_<SECTION>_<KEY>` variables, onto the table.
/// The value's type follows the key's default (numbers, booleans, comma-separated lists).
fn apply_overrides(
    table: &mut toml::Table,
    env: &Env,
    sources: &mut Sources,
) -> Result<(), ConfigErrors> {
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
            _ => errors.push(ConfigError {
                source: env.describe(var),
                key: String::new(),
                message: format!(
                    "{var} does not name a pipeline setting (expected JEEVES_<SECTION>_<KEY>, e.g. JEEVES_SSH_PORT for ssh.port)"
                ),
            }),
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
        Ok(())
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
    BTreeMap::from([
        ("project".to_string(), project),
        (
            "terraform".to_string(),
            table(pipeline::Terraform::default()),
        ),
        ("ssh".to_string(), table(pipeline::Ssh::default())),
        ("microk8s".to_string(), table(pipeline::Microk8s::default())),
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
        ("dns".to_string(), table(pipeline::Dns::default())),
        ("tools".to_string(), table(pipeline::Tools::default())),
    ])
}

/// Collects every problem in one pass.
struct Checker {
    sources: Sources,
    errors: Vec<ConfigError>,
}

impl Checker {
    fn check<T>(&mut self, key: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.errors.push(ConfigError {
                    source: self.sources.of(key),
                    key: key.to_string(),
                    message,
                });
                None
            }
        }
    }

    fn local_path(
        &mut self,
        key: &str,
        value: &str,
        base: &Path,
        must_be_dir: bool,
    ) -> Option<PathBuf> {
        if value.is_empty() {
            return self.check(key, Err("is empty".to_string()));
        }
        let path = resolve_path(value, base);
        if must_be_dir && !path.is_dir() {
            return self.check(
                key,
                Err(format!(
                    "{} is not a directory (relative paths are relative to the pipeline file)",
                    path.display()
                )),
            );
        }
        Some(path)
    }

    fn finish(
        mut self,
        raw: Pipeline,
        name: String,
        pipeline_file: &Path,
        base: PathBuf,
        state_dir: PathBuf,
        secrets: Vec<String>,
    ) -> Result<Settings, ConfigErrors> {
        let c = &mut self;
        c.check(
            "pipeline file name",
            validate::k8s_name(&name, 40).map_err(|e| {
                format!("the pipeline file name (without .toml) names the state directory: {e}")
            }),
        );
        let project_name = c.check("project.name", validate::project_name(&raw.project.name));
        for (k, v) in &raw.project.tags {
            let ok = !k.is_empty() && k.len() <= 128 && v.len() <= 256 && !k.starts_with("aws:");
            if !ok {
                c.check::<()>(&format!("project.tags.{k}"), Err("tag keys are 1–128 characters, values at most 256, and keys may not start with `aws:`".into()));
            }
        }
        let templates_dir = c.local_path("project.templates", &raw.project.templates, &base, true);
        let domain = c.check("tls.domain", validate::domain(&raw.tls.domain));

        let tf_dir = c.local_path("terraform.dir", &raw.terraform.dir, &base, true);
        let tf_timeout = c.check(
            "terraform.timeout",
            validate::nonzero_duration(&raw.terraform.timeout),
        );
        let tf_vars = match serde_json::to_value(&raw.terraform.vars) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        if let Some(v) = tf_vars.get("worker_count")
            && v.as_u64().is_none_or(|n| n > 1000)
        {
            c.check::<()>(
                "terraform.vars.worker_count",
                Err(format!(
                    "{v} is not a worker count (a whole number from 0 to 1000)"
                )),
            );
        }

        let var_files: Vec<PathBuf> = raw
            .terraform
            .var_files
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let key = format!("terraform.var_files[{i}]");
                let path = c.local_path(&key, f, &base, false)?;
                if path.is_file() {
                    Some(path)
                } else {
                    c.check(&key, Err(format!("{} is not a file", path.display())))
                }
            })
            .collect();

        let ssh = &raw.ssh;
        let user = c.check("ssh.user", validate::unix_user(&ssh.user));
        let key_path = c.local_path("ssh.key_path", &ssh.key_path, &base, false);
        let port = c.check("ssh.port", validate::port(ssh.port));
        let known_hosts = if ssh.known_hosts.is_empty() {
            Some(state_dir.join("known_hosts"))
        } else {
            c.local_path("ssh.known_hosts", &ssh.known_hosts, &base, false)
        };
        let connect_timeout = c.check(
            "ssh.connect_timeout",
            validate::nonzero_duration(&ssh.connect_timeout),
        );
        let command_timeout = c.check(
            "ssh.command_timeout",
            validate::nonzero_duration(&ssh.command_timeout),
        );
        let keepalive = c.check("ssh.keepalive", validate::nonzero_duration(&ssh.keepalive));

        let mk = &raw.microk8s;
        let channel = c.check("microk8s.channel", validate::snap_channel(&mk.channel));
        let addons: Vec<String> = mk
            .addons
            .iter()
            .enumerate()
            .filter_map(|(i, a)| c.check(&format!("microk8s.addons[{i}]"), validate::addon(a)))
            .collect();
        let token_ttl = c.check(
            "microk8s.token_ttl",
            validate::nonzero_duration(&mk.token_ttl),
        );
        let ready_timeout = c.check(
            "microk8s.ready_timeout",
            validate::nonzero_duration(&mk.ready_timeout),
        );
        let drain_timeout = c.check(
            "microk8s.drain_timeout",
            validate::nonzero_duration(&mk.drain_timeout),
        );
        let concurrency = c.check(
            "microk8s.concurrency",
            validate::count(mk.concurrency, 1, 256),
        );

        let email = c.check("tls.email", validate::email(&raw.tls.email));
        let acme_server = if raw.tls.acme_server.is_empty() {
            Some(None)
        } else {
            c.check("tls.acme_server", validate::https_url(&raw.tls.acme_server))
                .map(Some)
        };
        let renew_before = c.check(
            "tls.renew_before",
            validate::duration(&raw.tls.renew_before),
        );

        let hp = &raw.haproxy;
        let config_path = c.check(
            "haproxy.config_path",
            validate::remote_path(&hp.config_path),
        );
        let pem_path = if hp.pem_path.is_empty() {
            domain
                .as_ref()
                .map(|d| format!("/etc/haproxy/certs/{d}.pem"))
        } else {
            c.check("haproxy.pem_path", validate::remote_path(&hp.pem_path))
        };
        if let Some(pem) = &pem_path
            && pem.starts_with("/etc/letsencrypt/")
        {
            c.check::<()>(
                "haproxy.pem_path",
                Err("must be outside /etc/letsencrypt (certbot owns that tree)".into()),
            );
        }
        let backend_address = c.check(
            "haproxy.backend_address",
            validate::ipv4(&hp.backend_address),
        );

        c.check("tunnel.local_port", validate::port(raw.tunnel.local_port));
        c.check("tunnel.remote_port", validate::port(raw.tunnel.remote_port));

        // A local CRD bundle is kept as an absolute path, like every other local path.
        let crds = if raw.traefik.crds.starts_with("https://") {
            Some(raw.traefik.crds.clone())
        } else {
            c.local_path("traefik.crds", &raw.traefik.crds, &base, false)
                .map(|p| p.display().to_string())
        };
        let tr = &raw.traefik;
        c.check("traefik.image", validate::pinned_image(&tr.image));
        c.check("traefik.namespace", validate::k8s_name(&tr.namespace, 63));
        c.check("traefik.web_nodeport", validate::node_port(tr.web_nodeport));
        c.check(
            "traefik.websecure_nodeport",
            validate::node_port(tr.websecure_nodeport),
        );
        if tr.web_nodeport == tr.websecure_nodeport {
            c.check::<()>(
                "traefik.websecure_nodeport",
                Err("must differ from traefik.web_nodeport".into()),
            );
        }
        c.check("traefik.replicas", validate::count(tr.replicas, 1, 32));
        if tr.trusted_ips.is_empty() {
            c.check::<()>(
                "traefik.trusted_ips",
                Err("is empty: Traefik would drop HAProxy's X-Forwarded-For and -Proto; list the node and pod networks".into()),
            );
        }
        for (i, net) in tr.trusted_ips.iter().enumerate() {
            c.check(
                &format!("traefik.trusted_ips[{i}]"),
                validate::ipv4_cidr(net),
            );
        }
        c.check(
            "traefik.storage_class",
            validate::k8s_name(&tr.storage_class, 253),
        );
        if !tr
            .storage_size
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_digit())
            || !tr
                .storage_size
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '.')
        {
            c.check::<()>(
                "traefik.storage_size",
                Err(format!(
                    "`{}` is not a Kubernetes quantity (e.g. 1Gi)",
                    tr.storage_size
                )),
            );
        }

        let hm = &raw.helm;
        c.check("helm.repo", validate::https_url(&hm.repo));
        // A path (it has a `/` or ends in `.tgz`) is a chart on disk; anything else is a name in
        // helm.repo, and the only chart Jeeves knows how to configure is Rocket.Chat's.
        let local_chart = if hm.chart.contains('/') || hm.chart.ends_with(".tgz") {
            c.local_path("helm.chart", &hm.chart, &base, false)
                .map(Some)
        } else if hm.chart == chart::CHART_NAME {
            Some(None)
        } else {
            c.check(
                "helm.chart",
                Err(format!(
                    "`{}` is not the Rocket.Chat chart: use `{}` (in helm.repo) or the path of a packaged chart",
                    hm.chart,
                    chart::CHART_NAME
                )),
            )
        };
        let reads = c
            .check("helm.version", validate::pinned_version(&hm.version))
            .and_then(|v| {
                c.check(
                    "helm.version",
                    chart::supported(&v).ok_or_else(|| {
                        format!(
                            "chart version {v} is not one Jeeves knows the values of (supported: {}; README, \"Rocket.Chat chart versions\")",
                            chart::supported_list()
                        )
                    }),
                )
            });
        c.check("helm.release", validate::k8s_name(&hm.release, 53));
        c.check("helm.namespace", validate::k8s_name(&hm.namespace, 63));
        let helm_timeout = c.check("helm.timeout", validate::nonzero_duration(&hm.timeout));
        let bundled_mongodb = match hm.mongodb.as_str() {
            "external" => Some(false),
            "bundled" => Some(true),
            other => c.check(
                "helm.mongodb",
                Err(format!("`{other}` must be `external` or `bundled`")),
            ),
        };
        c.check(
            "helm.mongodb_secret",
            validate::k8s_name(&hm.mongodb_secret, 253),
        );
        for (key, n) in [
            ("rocketchat", hm.replicas.rocketchat),
            ("accounts", hm.replicas.accounts),
            ("authorization", hm.replicas.authorization),
            ("ddp_streamer", hm.replicas.ddp_streamer),
            ("presence", hm.replicas.presence),
        ] {
            c.check(&format!("helm.replicas.{key}"), validate::count(n, 1, 64));
        }
        if hm.replicas.stream_hub.is_some() {
            c.check::<()>(
                "helm.replicas.stream_hub",
                Err("no supported chart reads it (stream-hub runs one replica in chart 6.25.1 and is off from 7.0, removed after Rocket.Chat 8.0): remove the key".into()),
            );
        }
        let helm_values = match serde_json::to_value(&hm.values) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        // The bundled MongoDB's URIs are built from the subchart's defaults (src/chart.rs): a
        // value that moves its user, database, replica set, port or Service would break them.
        if bundled_mongodb == Some(true)
            && let Some(mongodb) = helm_values.get("mongodb").and_then(|m| m.as_object())
        {
            for key in [
                "auth",
                "replicaSetName",
                "service",
                "architecture",
                "nameOverride",
                "fullnameOverride",
            ] {
                if mongodb.contains_key(key) {
                    c.check::<()>(
                        &format!("helm.values.mongodb.{key}"),
                        Err("with helm.mongodb = \"bundled\" Jeeves manages the database's credentials and URIs (user and database rocketchat, replica set rs0, port 27017): remove the key, or use an external MongoDB".into()),
                    );
                }
            }
        }
        // The chart names its Service after nameOverride; the IngressRoute must follow it.
        if let Some(v) = helm_values.get("nameOverride")
            && v.as_str()
                .is_none_or(|n| validate::k8s_name(n, 63).is_err())
        {
            c.check::<()>(
                "helm.values.nameOverride",
                Err(format!("{v} is not a Kubernetes name")),
            );
        }

        let zone_id = if raw.dns.zone_id.is_empty() {
            Some(None)
        } else {
            c.check("dns.zone_id", validate::zone_id(&raw.dns.zone_id))
                .map(Some)
        };
        let ttl = c.check("dns.ttl", validate::count(raw.dns.ttl, 1, 604_800));
        let dns_wait = c.check(
            "dns.wait_timeout",
            validate::nonzero_duration(&raw.dns.wait_timeout),
        );

        for (key, tool) in [
            ("tools.terraform", &raw.tools.terraform),
            ("tools.helm", &raw.tools.helm),
            ("tools.kubectl", &raw.tools.kubectl),
        ] {
            if tool.trim().is_empty() {
                c.check::<()>(key, Err("is empty".into()));
            }
        }

        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        // Every `None` above pushed an error, so these all hold values now.
        let missing = "validated above";
        Ok(Settings {
            name,
            pipeline_file: pipeline_file.to_path_buf(),
            state_dir,
            templates_dir: templates_dir.expect(missing),
            project: ProjectSettings {
                name: project_name.expect(missing),
                tags: raw.project.tags,
            },
            domain: domain.expect(missing),
            terraform: TerraformSettings {
                dir: tf_dir.expect(missing),
                vars: tf_vars,
                backend_config: raw.terraform.backend_config,
                var_files,
                timeout: tf_timeout.expect(missing),
            },
            ssh: SshSettings {
                user: user.expect(missing),
                key_path: key_path.expect(missing),
                port: port.expect(missing),
                known_hosts: known_hosts.expect(missing),
                connect_timeout: connect_timeout.expect(missing),
                command_timeout: command_timeout.expect(missing),
                keepalive: keepalive.expect(missing),
                sudo: raw.ssh.sudo,
                pin_from_console: raw.ssh.pin_from_console,
                key_passphrase: None,
            },
            microk8s: Microk8sSettings {
                channel: channel.expect(missing),
                addons,
                token_ttl: token_ttl.expect(missing),
                ready_timeout: ready_timeout.expect(missing),
                drain_timeout: drain_timeout.expect(missing),
                concurrency: concurrency.expect(missing),
            },
            tls: TlsSettings {
                email: email.expect(missing),
                acme_server: acme_server.expect(missing),
                staging: raw.tls.staging,
                renew_before: renew_before.expect(missing),
            },
            haproxy: HaproxySettings {
                config_path: config_path.expect(missing),
                pem_path: pem_path.expect(missing),
                backend_address: backend_address.expect(missing),
            },
            tunnel: raw.tunnel,
            traefik: pipeline::Traefik {
                crds: crds.expect(missing),
                ..raw.traefik
            },
            helm: HelmSettings {
                repo: hm.repo.clone(),
                chart: hm.chart.clone(),
                local_chart: local_chart.expect(missing),
                reads: reads.expect(missing),
                version: hm.version.clone(),
                release: hm.release.clone(),
                namespace: hm.namespace.clone(),
                timeout: helm_timeout.expect(missing),
                microservices: hm.microservices,
                bundled_mongodb: bundled_mongodb.expect(missing),
                mongodb_secret: hm.mongodb_secret.clone(),
                replicas: hm.replicas.clone(),
                values: helm_values,
            },
            dns: DnsSettings {
                zone_id: zone_id.expect(missing),
                ttl: ttl.expect(missing),
                wait_timeout: dns_wait.expect(missing),
            },
            tools: raw.tools,
            secrets,
            source: self.sources,
            mongo: None,
            mongo_source: String::new(),
        })
    }
}

/// `~/x` → `$HOME/x`; relative → relative to the pipeline file's directory.
fn resolve_path(value: &str, base: &Path) -> PathBuf {
    if let Some(rest) = value.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let p = PathBuf::from(value);
    if p.is_absolute() { p } else { base.join(p) }
}
