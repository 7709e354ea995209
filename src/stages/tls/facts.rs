//! What the tls stage's probe finds on the controller, in one round trip.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};

use crate::config::Settings;
use crate::ssh::SshSession;
use crate::ssh::probe::{self, Sections};

/// Tools, the live certificate, the files Jeeves manages (by SHA-256) and the service. Values
/// come in as positional parameters.
const PROBE: &str = include_str!("scripts/probe.sh");

/// The sections PROBE prints.
const SECTIONS: &[&str] = &["tools", "cert", "files", "service", "loaded"];

/// The lineage in /etc/letsencrypt/live for the domain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct CertFacts {
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
    /// More than `tls.renew_before` left.
    pub fresh: bool,
    /// SHA-256 of privkey.pem + fullchain.pem: what the PEM should hash to.
    pub pem: String,
    /// certbot's `renew_before_expiry` for the lineage (empty: its default, 30 days).
    pub window: String,
    /// Where certbot's standalone server listens to renew it: "port address" from the renewal
    /// config (empty: its defaults, port 80 on every address).
    pub http01: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    pub tools: BTreeSet<String>,
    pub cert: Option<CertFacts>,
    /// Path → SHA-256, for the files that exist.
    pub files: BTreeMap<String, String>,
    /// Path → modification time (ms since the epoch).
    pub mtimes: BTreeMap<String, i64>,
    /// When the running haproxy last loaded its files: its newest process's start (ms).
    pub loaded_at: Option<i64>,
    pub active: bool,
    pub enabled: bool,
}

impl Facts {
    /// Whether the file at `path` holds exactly `sha256`.
    pub fn holds(&self, path: &str, sha256: &str) -> bool {
        self.files.get(path).is_some_and(|s| s == sha256)
    }
}

/// Probes the controller; `paths` are the managed files to hash.
pub(super) fn probe(session: &SshSession, settings: &Settings, paths: &[String]) -> Result<Facts> {
    let cmd = super::script(
        PROBE,
        "tls-probe",
        [
            settings.domain.clone(),
            settings.tls.renew_before.as_secs().to_string(),
        ]
        .into_iter()
        .chain(paths.iter().cloned()),
    );
    Ok(parse(
        &probe::run(session, &cmd.sudo(session.options().needs_sudo()), SECTIONS)
            .context("probing TLS")?,
    ))
}

fn parse(p: &Sections) -> Facts {
    let mut cert = CertFacts::default();
    for line in p.lines("cert") {
        match line.split_once(' ') {
            Some(("names", v)) => cert.names = v.split_whitespace().map(String::from).collect(),
            Some(("not_after", v)) => cert.not_after = v.trim().parse().unwrap_or(0),
            Some(("fresh", v)) => cert.fresh = v.trim() == "yes",
            Some(("pem", v)) => cert.pem = v.trim().to_string(),
            Some(("window", v)) => cert.window = v.trim().to_string(),
            Some(("http01", v)) => cert.http01 = v.trim().to_string(),
            _ => {}
        }
    }
    let service: Vec<&str> = p.lines("service").map(str::trim).collect();
    Facts {
        tools: p.values("tools").collect(),
        cert: (!cert.pem.is_empty()).then_some(cert),
        files: p
            .lines("files")
            .filter_map(|l| l.splitn(3, ' ').nth(2).zip(l.split(' ').next()))
            .map(|(path, sha)| (path.to_string(), sha.to_string()))
            .collect(),
        mtimes: p
            .lines("files")
            .filter_map(|l| {
                let mut f = l.splitn(3, ' ');
                let (_, mtime, path) = (f.next()?, f.next()?, f.next()?);
                Some((path.to_string(), mtime.parse().ok()?))
            })
            .collect(),
        loaded_at: p.values("loaded").last().and_then(|v| v.parse().ok()),
        active: service.first() == Some(&"active"),
        enabled: service.get(1) == Some(&"enabled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_becomes_facts() {
        let out = "@tools\nhaproxy\nopenssl\n@cert\nnames chat.example.com \nnot_after 1790000000\nfresh yes\npem abc\nhttp01 8402 10.77.0.10\n@files\nabc 1790000000123 /etc/haproxy/certs/chat.example.com.pem\ndef 1790000000456 /etc/haproxy/haproxy.cfg\n@service\nactive\nenabled\n@loaded\n1790000000200\n@end\n";
        let f = parse(&Sections::parse(out, SECTIONS).unwrap());
        assert_eq!(
            f.tools,
            BTreeSet::from(["haproxy".to_string(), "openssl".to_string()])
        );
        let c = f.cert.clone().unwrap();
        assert_eq!(c.names, vec!["chat.example.com".to_string()]);
        assert_eq!(c.not_after, 1_790_000_000);
        assert!(c.fresh);
        assert_eq!(c.http01, "8402 10.77.0.10");
        assert_eq!(f.files["/etc/haproxy/haproxy.cfg"], "def");
        assert!(f.holds("/etc/haproxy/haproxy.cfg", "def"));
        assert!(!f.holds("/etc/haproxy/haproxy.cfg", "abc") && !f.holds("/nope", "def"));
        assert!(f.active && f.enabled);
        assert_eq!(f.loaded_at, Some(1_790_000_000_200));
        // The config changed after the running haproxy started; the PEM before.
        assert_eq!(
            super::super::haproxy::unloaded(
                &f,
                &[
                    "/etc/haproxy/certs/chat.example.com.pem",
                    "/etc/haproxy/haproxy.cfg"
                ]
            ),
            ["/etc/haproxy/haproxy.cfg"]
        );

        let bare = parse(
            &Sections::parse(
                "@tools\n@cert\n@files\n@service\ninactive\ndisabled\n@loaded\n@end\n",
                SECTIONS,
            )
            .unwrap(),
        );
        assert!(bare.cert.is_none() && bare.tools.is_empty() && bare.files.is_empty());
        assert!(!bare.active && !bare.enabled && bare.loaded_at.is_none());
    }
}
