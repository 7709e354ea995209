//! What the tls stage will do, decided once from the probe: data that apply executes and that
//! the plan's change list is rendered from.

use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::state::Host;

use super::certificate::{self, CacheMeta};
use super::facts::{CertFacts, Facts};
use super::haproxy;
use super::hooks::{self, HookFile};
use super::peers::PeerPlan;
use crate::templates::AcmeForward;

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
        /// Controllers ≥ 3: certbot's HTTP-01 listener for renewals is not where every HAProxy
        /// forwards the challenges (a lineage from one controller): its current value.
        http01: Option<String>,
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
    /// The state dir's copy is this lineage (or older, or none): a renewal config this run
    /// changes is cached again.
    pub recache: bool,
    /// The rendered haproxy.cfg, when the host's differs.
    pub config: Option<String>,
    /// haproxy is stopped: start it.
    pub start: bool,
    /// Files changed after the running haproxy loaded them: a reload that never happened (a run
    /// killed after writing them, or a reload that failed).
    pub unloaded: Vec<String>,
    /// haproxy does not start at boot.
    pub enable: bool,
    /// Controllers ≥ 3: where every HAProxy forwards ACME HTTP-01 (certbot on this controller).
    pub acme: Option<AcmeForward>,
    /// Controllers ≥ 3, a certificate to issue and no PEM here: a placeholder lets haproxy run
    /// (and forward the challenge) before certbot.
    pub placeholder: bool,
    /// The other controllers' HAProxy (set by the stage's probe after `decide`).
    pub peers: Vec<PeerPlan>,
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
        let acme = super::acme_forward(settings, &controller);
        let certificate = match (host_cert, cached) {
            (Some(c), _) => Certificate::Keep {
                lineage: c.clone(),
                pem: !facts.holds(&settings.haproxy.pem_path, &c.pem),
                window: (c.window != window).then(|| c.window.clone()),
                http01: acme
                    .as_ref()
                    .filter(|a| c.http01 != certificate::http01(a))
                    .map(|_| c.http01.clone()),
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
        let recache = match (&certificate, host_cert) {
            (Certificate::Keep { .. }, Some(c)) => {
                cached.is_none_or(|m| c.not_after >= m.not_after)
            }
            _ => true,
        };
        let config = (!facts.holds(&settings.haproxy.config_path, &sha256(config.as_bytes())))
            .then_some(config);
        let placeholder = acme.is_some()
            && matches!(certificate, Certificate::Issue(_))
            && !facts.files.contains_key(&settings.haproxy.pem_path);
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
            recache,
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
            acme,
            placeholder,
            peers: Vec::new(),
        }
    }

    /// The SHA-256 the PEM here will have after this run when the run does not change it: what
    /// a peer's PEM is compared with.
    pub fn settled_pem(&self) -> Option<&str> {
        match &self.certificate {
            Certificate::Keep {
                lineage,
                pem: false,
                ..
            } => Some(lineage.pem.as_str()),
            _ => None,
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
            http01: String::new(),
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

    /// Controllers ≥ 3: the renewal listener follows the forward, a fresh stack gets a
    /// placeholder PEM before certbot, and each peer's PEM is the first controller's.
    #[test]
    fn three_controllers_forward_acme_and_share_the_pem() {
        let s = Settings::load(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs([
                ("MONGO_URI", "m"),
                ("JEEVES_CLUSTER_CONTROLLERS", "3"),
            ]),
        )
        .unwrap();
        // A lineage issued with one controller (certbot on port 80): its renewal listener moves.
        let mut facts = converged(&s);
        let plan = decide(&s, &facts, Some(&cached(&s, &facts)));
        let changes: Vec<String> = plan
            .changes(&s)
            .iter()
            .map(|c| format!("{} {}", c.action, c.target))
            .collect();
        assert_eq!(
            changes,
            [
                "set certbot's HTTP-01 listener for renewing chat.jeeves.test to 10.77.0.10:8402 (behind every haproxy; now port 80, haproxy stopped for it)"
            ],
        );
        facts.cert.as_mut().unwrap().http01 = "8402 10.77.0.10".into();
        let plan = decide(&s, &facts, Some(&cached(&s, &facts)));
        assert_eq!(plan.changes(&s), vec![], "{plan:?}");
        assert_eq!(plan.settled_pem(), Some("p"));

        // A fresh stack: a placeholder PEM lets haproxy forward before certbot; nothing stopped.
        let mut bare = facts.clone();
        bare.cert = None;
        bare.files.clear();
        let plan = decide(&s, &bare, None);
        assert!(plan.placeholder && plan.settled_pem().is_none());
        let issue = plan
            .changes(&s)
            .into_iter()
            .find(|c| c.action == "issue")
            .unwrap()
            .target;
        assert!(
            issue
                .contains("on 10.77.0.10:8402 behind every controller's haproxy (nothing stopped)"),
            "{issue}"
        );

        // A rebuilt first controller: the cached lineage, whose renewal config may name port 80
        // or an old first controller: its listener is set, and cached, in the same run.
        let plan = decide(&s, &bare, Some(&cached(&s, &facts)));
        assert!(plan.certificate == Certificate::Restore && plan.recache);
        let restore = &plan.changes(&s)[0].target;
        assert!(
            restore.ends_with("it on 10.77.0.10:8402 behind every haproxy"),
            "{restore}"
        );
        // A host lineage older than the cached one: a listener set on it is not cached over it.
        let mut newer = cached(&s, &facts);
        newer.not_after += 86_400;
        let mut port80 = facts.clone();
        port80.cert.as_mut().unwrap().http01 = String::new();
        let plan = decide(&s, &port80, Some(&newer));
        assert!(!plan.recache && !plan.cache, "{plan:?}");
        assert!(decide(&s, &port80, Some(&cached(&s, &facts))).recache);

        // A peer: converged when its PEM is the first controller's and its config the rendered one.
        let peer = Host {
            id: "i-2".into(),
            hostname: "controller-2".into(),
            public_ip: "10.77.0.102".into(),
            private_ip: "10.77.0.102".into(),
        };
        let p = PeerPlan::decide(&s, peer.clone(), &facts, CONFIG, Some("p"));
        assert_eq!(p.changes(&s), vec![], "{p:?}");
        let p = PeerPlan::decide(&s, peer.clone(), &facts, CONFIG, None);
        let changes: Vec<String> = p
            .changes(&s)
            .iter()
            .map(|c| format!("{} {}", c.action, c.target))
            .collect();
        assert_eq!(
            changes,
            [
                "write controller-2: /etc/haproxy/certs/chat.jeeves.test.pem (the first controller's)"
            ]
        );
        let p = PeerPlan::decide(&s, peer, &Facts::default(), CONFIG, Some("p"));
        assert!(p.install && p.no_pem && p.pem && p.config.is_some() && p.start && p.enable);
    }
}
