//! The pipeline as written (`pipeline.rs`) checked into `Settings`: one check per pipeline section,
//! each in the file named after it (`[check]` in `health.rs`), all problems collected in one pass,
//! each with its key and the file or variable its value came from.

use std::path::{Path, PathBuf};

use super::load::Purpose;
use super::pipeline::Pipeline;
use super::sources::Sources;
use super::{ConfigError, ConfigErrors, Settings, validate};

mod backup;
mod cluster;
mod dns;
mod haproxy;
mod health;
mod helm;
mod maintenance;
mod microk8s;
mod mongodb;
mod project;
mod ssh;
mod state;
mod terraform;
mod tls;
mod tools;
mod traefik;
mod tunnel;

pub(crate) use ssh::jump_host as parse_jump_host;

/// Collects every problem in one pass. A section's check returns `None` only when it cannot
/// build its section; either way each problem is recorded here, and `finish` fails when there
/// is any.
pub(super) struct Checker {
    sources: Sources,
    purpose: Purpose,
    errors: Vec<ConfigError>,
}

impl Checker {
    pub fn new(sources: Sources, purpose: Purpose) -> Checker {
        Checker {
            sources,
            purpose,
            errors: Vec::new(),
        }
    }

    /// An unset value that only changing the stack needs (the domain, the ACME e-mail): fine
    /// when the command only inspects.
    fn may_skip(&self, value: &str) -> bool {
        value.is_empty() && self.purpose == Purpose::Inspect
    }

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

    /// A checker for one section's unit tests: values from the file `demo.toml`.
    #[cfg(test)]
    fn for_test() -> Checker {
        Checker::new(
            Sources {
                file: "demo.toml".into(),
                overrides: Default::default(),
            },
            Purpose::Run,
        )
    }

    /// The keys of the problems recorded so far, in order.
    #[cfg(test)]
    fn keys(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.key.as_str()).collect()
    }

    /// Every section checked, in the pipeline file's order (and so the errors' order).
    pub fn finish(
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
        let project = project::check(c, raw.project, &base);
        // `Settings::domain`, for every stage; HAProxy's default PEM path is named after it.
        let domain = if c.may_skip(&raw.tls.domain) {
            Some(String::new())
        } else {
            c.check("tls.domain", validate::domain(&raw.tls.domain))
        };
        let region = project.as_ref().and_then(|(p, _)| p.region.clone());
        let terraform = terraform::check(c, raw.terraform, &base, region.as_deref());
        let ssh = ssh::check(c, raw.ssh, &base, &state_dir);
        let microk8s = microk8s::check(c, raw.microk8s);
        let cluster = cluster::check(c, raw.cluster);
        let tls = tls::check(c, raw.tls);
        let haproxy = haproxy::check(c, raw.haproxy, domain.as_deref());
        let tunnel = tunnel::check(c, raw.tunnel);
        let traefik = traefik::check(c, raw.traefik, &base);
        let helm = helm::check(c, raw.helm, &base);
        let mongodb = mongodb::check(
            c,
            raw.mongodb,
            &base,
            terraform.as_ref().map(|t| &t.vars),
            helm.as_ref()
                .is_some_and(|h| h.mongodb == crate::config::settings::MongodbMode::Operator),
        );
        let dns = dns::check(c, raw.dns);
        let tools = tools::check(c, raw.tools);
        let check = health::check(c, raw.check);
        let state = state::check(c, raw.state, &name);
        let maintenance = maintenance::check(c, raw.maintenance);
        let backup = raw
            .backup
            .map(|b| backup::check(c, b, helm.as_ref().map(|h| h.release.as_str()), &name));

        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        // Every `None` above recorded an error, so these all hold values now.
        let missing = "validated above";
        let (project, templates_dir) = project.expect(missing);
        Ok(Settings {
            name,
            pipeline_file: pipeline_file.to_path_buf(),
            state_dir,
            templates_dir,
            project,
            domain: domain.expect(missing),
            terraform: terraform.expect(missing),
            ssh: ssh.expect(missing),
            microk8s: microk8s.expect(missing),
            cluster: cluster.expect(missing),
            tls: tls.expect(missing),
            haproxy: haproxy.expect(missing),
            tunnel: tunnel.expect(missing),
            traefik: traefik.expect(missing),
            helm: helm.expect(missing),
            mongodb: mongodb.expect(missing),
            dns: dns.expect(missing),
            tools: tools.expect(missing),
            check: check.expect(missing),
            state: state.expect(missing),
            maintenance: maintenance.expect(missing),
            backup: backup.map(|b| b.expect(missing)),
            secrets,
            source: self.sources,
            warnings: Vec::new(),
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
