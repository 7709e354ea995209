//! What the tls stage will do, decided once from the probe: data that apply executes and that
//! the plan's change list is rendered from.

use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::report::Change;
use crate::state::Host;

use super::certificate::{self, CacheMeta};
use super::facts::{CertFacts, Facts};
use super::haproxy;
use super::hooks::{self, HookFile};

/// What happens to the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Certificate {
    /// The host's lineage is exactly the domain and fresh: certbot is not called.
    Keep {
        lineage: CertFacts,
        /// The PEM differs from the lineage: build it again.
        pem: bool,
        /// certbot's renewal window differs from `tls.renew_before`: its current value.
        window: Option<String>,
    },
    /// The state dir's copy of the lineage, still fresh, unpacked on the host (no ACME order);
    /// then certbot's window and the PEM.
    Restore,
    /// DNS first, then certbot with haproxy stopped (the PEM built before it starts again);
    /// then certbot's window.
    Issue(Replacing),
}

/// What a new certificate replaces on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Replacing {
    Nothing,
    /// A lineage for other names.
    Names(Vec<String>),
    /// A lineage inside the renewal window.
    Due,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    pub controller: Host,
    /// Packages to install.
    pub install: Vec<&'static str>,
    /// Hook files missing or different on the host.
    pub hooks: Vec<HookFile>,
    pub certificate: Certificate,
    /// Save the host's lineage in the state dir (a new one, or one newer than the copy there).
    pub cache: bool,
    /// The rendered haproxy.cfg, when the host's differs.
    pub config: Option<String>,
    /// haproxy is stopped: start it.
    pub start: bool,
    /// Files changed after the running haproxy loaded them: a reload that never happened (a run
    /// killed after writing them, or a reload that failed).
    pub unloaded: Vec<String>,
    /// haproxy does not start at boot.
    pub enable: bool,
}

pub(super) fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The files the probe hashes.
pub(super) fn managed_paths(settings: &Settings) -> Vec<String> {
    let mut paths = vec![
        settings.haproxy.pem_path.clone(),
        settings.haproxy.config_path.clone(),
    ];
    paths.extend(hooks::files(settings).into_iter().map(|f| f.path));
    paths
}

impl Plan {
    /// Decides from the host's facts, the state dir's cached lineage and the rendered config.
    pub fn decide(
        settings: &Settings,
        controller: Host,
        facts: &Facts,
        cached: Option<&CacheMeta>,
        config: String,
    ) -> Plan {
        let host_cert = facts
            .cert
            .as_ref()
            .filter(|c| c.fresh && certificate::usable(&c.names, c.not_after, settings));
        let cached = cached.filter(|m| {
            m.domain == settings.domain && certificate::usable(&m.names, m.not_after, settings)
        });
        let window = certificate::certbot_window(settings);
        let certificate = match (host_cert, cached) {
            (Some(c), _) => Certificate::Keep {
                lineage: c.clone(),
                pem: !facts.holds(&settings.haproxy.pem_path, &c.pem),
                window: (c.window != window).then(|| c.window.clone()),
            },
            (None, Some(_)) => Certificate::Restore,
            (None, None) => Certificate::Issue(match &facts.cert {
                None => Replacing::Nothing,
                Some(c) if c.names != [settings.domain.clone()] => {
                    Replacing::Names(c.names.clone())
                }
                Some(_) => Replacing::Due,
            }),
        };
        // A new lineage is always cached; the host's when it is newer than the cached one
        // (renewed by certbot since), so the next rebuild gets it.
        let cache = match (&certificate, host_cert) {
            (Certificate::Issue(_), _) => true,
            (Certificate::Keep { .. }, Some(c)) => cached.is_none_or(|m| c.not_after > m.not_after),
            _ => false,
        };
        let config = (!facts.holds(&settings.haproxy.config_path, &sha256(config.as_bytes())))
            .then_some(config);
        Plan {
            controller,
            install: ["haproxy", "certbot"]
                .into_iter()
                .filter(|t| !facts.tools.contains(*t))
                .collect(),
            hooks: hooks::files(settings)
                .into_iter()
                .filter(|f| !facts.holds(&f.path, &sha256(f.contents.as_bytes())))
                .collect(),
            certificate,
            cache,
            config,
            start: !facts.active,
            unloaded: haproxy::unloaded(
                facts,
                &[&settings.haproxy.config_path, &settings.haproxy.pem_path],
            )
            .into_iter()
            .map(String::from)
            .collect(),
            enable: !facts.enabled,
        }
    }

    /// The PEM is built: from a new lineage, or because the host's differs from its lineage.
    pub fn writes_pem(&self) -> bool {
        !matches!(self.certificate, Certificate::Keep { pem: false, .. })
    }

    /// haproxy must (re)load its files at the end: it is stopped, or a file it serves changed
    /// or was never loaded. Installing haproxy may start it with the package's config.
    pub fn loads_haproxy(&self) -> bool {
        self.start
            || self.writes_pem()
            || self.config.is_some()
            || !self.unloaded.is_empty()
            || self.install.contains(&"haproxy")
    }

    /// The plan as the changes `plan` and `up` report (empty: the stage is unchanged).
    pub fn changes(&self, settings: &Settings) -> Vec<Change> {
        let mut changes = Vec::new();
        if !self.install.is_empty() {
            changes.push(Change::new("install", self.install.join(" ")));
        }
        let domain = &settings.domain;
        match &self.certificate {
            Certificate::Keep { .. } => {}
            Certificate::Restore => changes.push(Change::new(
                "restore",
                format!("certificate for {domain} from the state dir's copy (no new ACME order)"),
            )),
            Certificate::Issue(replacing) => changes.push(Change::new(
                "issue",
                format!(
                    "certificate for {domain} from {}: DNS first, then certbot --standalone with haproxy stopped{}",
                    settings
                        .tls
                        .acme_server
                        .as_deref()
                        .unwrap_or("Let's Encrypt"),
                    match replacing {
                        Replacing::Nothing => String::new(),
                        Replacing::Names(names) =>
                            format!(" (the host's certificate names {})", names.join(",")),
                        Replacing::Due =>
                            " (the host's certificate is inside the renewal window)".into(),
                    }
                ),
            )),
        }
        if !self.hooks.is_empty() {
            changes.push(Change::new(
                "write",
                format!("{} certbot renewal hook file(s)", self.hooks.len()),
            ));
        }
        if let Certificate::Keep {
            window: Some(now), ..
        } = &self.certificate
        {
            changes.push(Change::new(
                "set",
                format!(
                    "certbot's renewal window for {domain} to {} (tls.renew_before; now {})",
                    certificate::certbot_window(settings),
                    if now.is_empty() {
                        "certbot's default, 30 days"
                    } else {
                        now.as_str()
                    }
                ),
            ));
        }
        if self.writes_pem() {
            changes.push(Change::new("write", settings.haproxy.pem_path.clone()));
        }
        if self.config.is_some() {
            changes.push(Change::new("update", settings.haproxy.config_path.clone()));
        }
        if self.start || self.enable {
            changes.push(Change::new("start", "haproxy (enabled, active)"));
        }
        if !self.unloaded.is_empty() {
            changes.push(Change::new(
                "reload",
                format!(
                    "haproxy: the running process has not loaded {} (changed after it started: a reload that never happened)",
                    self.unloaded.join(", ")
                ),
            ));
        }
        if self.cache {
            changes.push(Change::new(
                "cache",
                format!("certificate lineage of {domain} in the state dir"),
            ));
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn settings() -> Settings {
        Settings::load(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs([("MONGO_URI", "m")]),
        )
        .unwrap()
    }

    const CONFIG: &str = "global\n";

    /// A controller where everything is as Jeeves leaves it.
    fn converged(s: &Settings) -> Facts {
        let lineage = CertFacts {
            names: vec![s.domain.clone()],
            not_after: certificate::now() + 90 * 86_400,
            fresh: true,
            pem: "p".into(),
            window: certificate::certbot_window(s),
        };
        let mut files = BTreeMap::from([
            (s.haproxy.pem_path.clone(), "p".to_string()),
            (s.haproxy.config_path.clone(), sha256(CONFIG.as_bytes())),
        ]);
        for f in hooks::files(s) {
            files.insert(f.path, sha256(f.contents.as_bytes()));
        }
        Facts {
            tools: BTreeSet::from(["haproxy".into(), "certbot".into(), "openssl".into()]),
            cert: Some(lineage),
            files,
            mtimes: BTreeMap::new(),
            loaded_at: Some(0),
            active: true,
            enabled: true,
        }
    }

    fn decide(s: &Settings, facts: &Facts, cached: Option<&CacheMeta>) -> Plan {
        let controller = Host {
            id: "i-1".into(),
            hostname: "controller".into(),
            public_ip: "10.77.0.10".into(),
            private_ip: "10.77.0.10".into(),
        };
        Plan::decide(s, controller, facts, cached, CONFIG.into())
    }

    fn cached(s: &Settings, facts: &Facts) -> CacheMeta {
        let c = facts.cert.clone().unwrap();
        CacheMeta {
            domain: s.domain.clone(),
            names: c.names,
            not_after: c.not_after,
        }
    }

    #[test]
    fn a_converged_host_plans_nothing() {
        let s = settings();
        let facts = converged(&s);
        let plan = decide(&s, &facts, Some(&cached(&s, &facts)));
        assert_eq!(plan.changes(&s), vec![], "{plan:?}");
        assert!(!plan.writes_pem() && !plan.loads_haproxy());
    }

    #[test]
    fn the_certificate_is_kept_restored_or_issued() {
        let s = settings();
        let facts = converged(&s);
        let cache = cached(&s, &facts);

        // The host's lineage, no cached copy: kept, and cached.
        let plan = decide(&s, &facts, None);
        assert!(matches!(
            plan.certificate,
            Certificate::Keep {
                pem: false,
                window: None,
                ..
            }
        ));
        assert!(plan.cache && !plan.loads_haproxy());

        // A rebuilt controller: the cached lineage, the PEM built, haproxy loads it.
        let mut bare = facts.clone();
        bare.cert = None;
        bare.files.clear();
        let plan = decide(&s, &bare, Some(&cache));
        assert_eq!(plan.certificate, Certificate::Restore);
        assert!(!plan.cache && plan.writes_pem() && plan.loads_haproxy());
        assert_eq!(plan.hooks.len(), hooks::files(&s).len());

        // Nothing usable anywhere: certbot, then the lineage cached.
        let plan = decide(&s, &bare, None);
        assert_eq!(plan.certificate, Certificate::Issue(Replacing::Nothing));
        assert!(plan.cache && plan.writes_pem());

        // A host certificate for other names or inside the window: replaced.
        let mut other = facts.clone();
        other.cert.as_mut().unwrap().names = vec!["old.example.com".into()];
        assert_eq!(
            decide(&s, &other, None).certificate,
            Certificate::Issue(Replacing::Names(vec!["old.example.com".into()]))
        );
        let mut due = facts.clone();
        due.cert.as_mut().unwrap().fresh = false;
        assert_eq!(
            decide(&s, &due, None).certificate,
            Certificate::Issue(Replacing::Due)
        );
    }

    #[test]
    fn haproxy_loads_what_changed_and_only_then() {
        let s = settings();
        let facts = converged(&s);
        let cache = cached(&s, &facts);

        let mut stopped = facts.clone();
        stopped.active = false;
        let plan = decide(&s, &stopped, Some(&cache));
        assert!(plan.start && plan.loads_haproxy());

        let mut pem = facts.clone();
        pem.files.insert(s.haproxy.pem_path.clone(), "old".into());
        let plan = decide(&s, &pem, Some(&cache));
        assert!(matches!(
            plan.certificate,
            Certificate::Keep { pem: true, .. }
        ));
        assert!(plan.writes_pem() && plan.loads_haproxy());

        let mut touched = facts.clone();
        touched.loaded_at = Some(1_000);
        touched.mtimes.insert(s.haproxy.config_path.clone(), 2_000);
        let plan = decide(&s, &touched, Some(&cache));
        assert_eq!(plan.unloaded, vec![s.haproxy.config_path.clone()]);
        assert!(plan.loads_haproxy() && plan.config.is_none());

        let mut disabled = facts.clone();
        disabled.enabled = false;
        let plan = decide(&s, &disabled, Some(&cache));
        assert!(plan.enable && !plan.loads_haproxy());
    }
}
