//! HAProxy on the controllers after the first (`[cluster] controllers` 3 or 5): the same
//! haproxy.cfg and the first controller's PEM, so that the site answers through any of them. The
//! lineage (one ACME account, one certificate) stays on the first controller; Jeeves reads its
//! PEM there and sends it to each peer on stdin, never on a command line or in output.
//! Before the first certificate a peer gets a placeholder PEM of its own, so that its HAProxy
//! runs and forwards the CA's HTTP-01 request to certbot.

use anyhow::{Context, Result};

use crate::config::Settings;
use crate::report::Change;
use crate::ssh::{RemoteCommand, SshSession};
use crate::stage::StageContext;
use crate::state::Host;

use super::facts::{self, Facts};
use super::haproxy::{self, Service};

const PLACEHOLDER_PEM: &str = include_str!("scripts/placeholder-pem.sh");

/// What one peer needs, decided from its probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PeerPlan {
    pub host: Host,
    /// haproxy is not installed.
    pub install: bool,
    /// The rendered haproxy.cfg, when the host's differs.
    pub config: Option<String>,
    /// It has no PEM: a placeholder lets haproxy start before the PEM is copied.
    pub no_pem: bool,
    /// Its PEM differs from the first controller's (or that one changes in this run).
    pub pem: bool,
    pub start: bool,
    pub unloaded: Vec<String>,
    pub enable: bool,
    /// Why it could not be probed, or why converging it failed: it is left as it is, the others
    /// go on, and the stage fails at the end naming it.
    pub failed: Option<String>,
}

/// The files a peer's probe hashes.
pub(super) fn managed_paths(settings: &Settings) -> Vec<String> {
    vec![
        settings.haproxy.pem_path.clone(),
        settings.haproxy.config_path.clone(),
    ]
}

impl PeerPlan {
    /// `config`: the rendered haproxy.cfg; `first_pem`: the SHA-256 the first controller's PEM
    /// will have, when this run does not change it.
    pub fn decide(
        settings: &Settings,
        host: Host,
        facts: &Facts,
        config: &str,
        first_pem: Option<&str>,
    ) -> PeerPlan {
        let pem_path = &settings.haproxy.pem_path;
        PeerPlan {
            host,
            install: !facts.tools.contains("haproxy"),
            config: (!facts.holds(
                &settings.haproxy.config_path,
                &super::plan::sha256(config.as_bytes()),
            ))
            .then(|| config.to_string()),
            no_pem: !facts.files.contains_key(pem_path),
            pem: first_pem.is_none_or(|sha| !facts.holds(pem_path, sha)),
            start: !facts.active,
            unloaded: haproxy::unloaded(facts, &[&settings.haproxy.config_path, pem_path])
                .into_iter()
                .map(String::from)
                .collect(),
            enable: !facts.enabled,
            failed: None,
        }
    }

    /// A peer that could not be probed: nothing is done on it in this run.
    pub fn unreachable(host: Host, reason: String) -> PeerPlan {
        PeerPlan {
            host,
            install: false,
            config: None,
            no_pem: false,
            pem: false,
            start: false,
            unloaded: Vec::new(),
            enable: false,
            failed: Some(format!("unreachable ({reason})")),
        }
    }

    pub fn changes(&self, settings: &Settings) -> Vec<Change> {
        let h = &self.host.hostname;
        let mut changes = Vec::new();
        if let Some(why) = &self.failed {
            changes.push(Change::new(
                "repair",
                format!("{h}: {why}; its HAProxy is left as it is"),
            ));
        }
        if self.install {
            changes.push(Change::new("install", format!("{h}: haproxy")));
        }
        if self.pem {
            changes.push(Change::new(
                "write",
                format!(
                    "{h}: {} (the first controller's)",
                    settings.haproxy.pem_path
                ),
            ));
        }
        if self.config.is_some() {
            changes.push(Change::new(
                "update",
                format!("{h}: {}", settings.haproxy.config_path),
            ));
        }
        if self.start || self.enable {
            changes.push(Change::new(
                "start",
                format!("{h}: haproxy (enabled, active)"),
            ));
        }
        if !self.unloaded.is_empty() {
            changes.push(Change::new(
                "reload",
                format!("{h}: haproxy has not loaded {}", self.unloaded.join(", ")),
            ));
        }
        changes
    }
}

/// Probes a peer (one round trip).
pub(super) fn probe(session: &SshSession, settings: &Settings) -> Result<Facts> {
    facts::probe(session, settings, &managed_paths(settings))
}

/// The first controller's PEM, to be sent to the peers on stdin. Never printed: its read is
/// `secret_stdout`, so a failure (an exit status, a timeout, a signal after part of the file)
/// reports the command and its stderr alone.
pub(super) fn read_pem(session: &SshSession, settings: &Settings) -> Result<Vec<u8>> {
    let pem = super::run(session, pem_read(settings))
        .context("reading the first controller's PEM for the other controllers")?;
    Ok(pem.into_bytes())
}

fn pem_read(settings: &Settings) -> RemoteCommand {
    RemoteCommand::new("cat")
        .arg(settings.haproxy.pem_path.as_str())
        .secret_stdout()
}

/// Writes a self-signed PEM where none is (controllers ≥ 3, before the first certificate), so
/// that haproxy starts and forwards the CA's challenge. Returns whether it wrote one.
pub(super) fn placeholder(cx: &StageContext<'_>, session: &SshSession, host: &str) -> Result<bool> {
    let s = cx.settings;
    let out = super::run(
        session,
        super::script(
            PLACEHOLDER_PEM,
            "placeholder-pem.sh",
            [s.domain.as_str(), s.haproxy.pem_path.as_str()],
        ),
    )
    .with_context(|| format!("writing a placeholder PEM on {host}"))?;
    let written = out.trim() == "written";
    if written {
        cx.host(
            host,
            "placeholder PEM written (self-signed, until the certificate)",
        );
    }
    Ok(written)
}

/// Makes the peer serve the rendered config with `pem` (None: before the first certificate, a
/// placeholder when it has none), then clears what it did from `plan`, so that a second call
/// does only the rest.
pub(super) fn converge(
    cx: &StageContext<'_>,
    session: &SshSession,
    plan: &mut PeerPlan,
    pem: Option<&[u8]>,
) -> Result<()> {
    let s = cx.settings;
    let h = plan.host.hostname.clone();
    let mut changed = false;
    if plan.install {
        super::install(session, &["haproxy"])?;
        cx.host(&h, "installed haproxy");
        plan.install = false;
        changed = true;
    }
    match pem {
        Some(pem) if plan.pem => {
            session.upload(&s.haproxy.pem_path, pem, 0o600)?;
            cx.host(
                &h,
                format!(
                    "PEM written: {} (the first controller's)",
                    s.haproxy.pem_path
                ),
            );
            plan.pem = false;
            changed = true;
        }
        None if plan.no_pem => changed |= placeholder(cx, session, &h)?,
        _ => {}
    }
    plan.no_pem = false;
    if let Some(config) = plan.config.take() {
        haproxy::install_config(session, s, &config)?;
        cx.host(
            &h,
            format!("{} checked and installed", s.haproxy.config_path),
        );
        changed = true;
    }
    if (changed || plan.start || !plan.unloaded.is_empty())
        && let Some(done) = haproxy::service(session, Service::ReloadOrStart)?
    {
        cx.host(&h, format!("haproxy {done}"));
    }
    plan.start = false;
    plan.unloaded.clear();
    if plan.enable {
        haproxy::service(session, Service::Enable)?;
        plan.enable = false;
    }
    Ok(())
}

/// The placeholder script on this machine's `sh`, as a controller runs it; what a failed PEM
/// read may say.
#[cfg(test)]
mod tests {
    use super::*;

    /// A read that fails after part of the PEM (a timeout, a signal, a status) quotes stderr
    /// alone; another command still falls back to its stdout when stderr is empty.
    #[test]
    fn a_failed_pem_read_never_quotes_the_pem() {
        let s = Settings::load(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs([("MONGO_URI", "m")]),
        )
        .unwrap();
        let partial = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n";
        let read = pem_read(&s).sudo(true);
        assert_eq!(read.said(partial, "", 20), "");
        assert_eq!(
            read.said(partial, "cat: x.pem: Permission denied\n", 20),
            "cat: x.pem: Permission denied"
        );
        assert!(
            RemoteCommand::new("cat")
                .said(partial, "", 20)
                .contains("PRIVATE KEY")
        );
    }

    #[test]
    fn a_placeholder_is_written_only_where_no_pem_is() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("certs/chat.example.com.pem");
        let run = || {
            std::process::Command::new("sh")
                .args(["-c", PLACEHOLDER_PEM, "placeholder"])
                .arg("chat.example.com")
                .arg(&pem)
                .output()
                .unwrap()
        };
        let out = run();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "written\n");
        let text = std::fs::read_to_string(&pem).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "key first");
        assert!(text.contains("-----BEGIN CERTIFICATE-----"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pem).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A PEM already there (the real one) is never replaced.
        std::fs::write(&pem, "real").unwrap();
        let out = run();
        assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
        assert_eq!(std::fs::read_to_string(&pem).unwrap(), "real");
    }
}
