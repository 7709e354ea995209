//! The certificate: issued by certbot (DNS first, haproxy stopped for port 80), restored from the
//! lineage cached in the state dir, certbot's renewal window, and that cache.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::aws::route53::NoZone;
use crate::config::Settings;
use crate::ssh::{RemoteCommand, SshSession};
use crate::stage::StageContext;
use crate::stage_name::StageName;
use crate::state::write_private;
use crate::templates::AcmeForward;

use super::LE;
use super::facts::CertFacts;
use super::haproxy;

/// The lineage as base64 of a tar.gz, for the cache; and its way back.
const SAVE_CACHE: &str = include_str!("scripts/save-cache.sh");
const RESTORE_CACHE: &str = include_str!("scripts/restore-cache.sh");
const SET_WINDOW: &str = include_str!("scripts/set-window.sh");
const SET_HTTP01: &str = include_str!("scripts/set-http01.sh");

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Exactly the domain, with more than the renewal window left.
pub(super) fn usable(names: &[String], not_after: i64, settings: &Settings) -> bool {
    names == [settings.domain.clone()]
        && not_after - now() > settings.tls.renew_before.as_secs() as i64
}

/// certbot's renewal window that matches `tls.renew_before` (whole days, rounded up, so that
/// whenever Jeeves finds the certificate due, certbot does too).
pub(super) fn certbot_window(settings: &Settings) -> String {
    format!(
        "{} days",
        settings.tls.renew_before.as_secs().div_ceil(86_400)
    )
}

/// The certificate lineage kept in the state dir after issuance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CacheMeta {
    pub domain: String,
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
}

impl CacheMeta {
    pub fn of(settings: &Settings, cert: &CertFacts) -> CacheMeta {
        CacheMeta {
            domain: settings.domain.clone(),
            names: cert.names.clone(),
            not_after: cert.not_after,
        }
    }
}

pub(super) struct Cache {
    pub tar: PathBuf,
    meta: PathBuf,
}

impl Cache {
    pub fn new(settings: &Settings) -> Cache {
        let dir = settings.state_dir.join("tls");
        Cache {
            tar: dir.join(format!("{}.tar.gz", settings.domain)),
            meta: dir.join(format!("{}.json", settings.domain)),
        }
    }

    pub fn read(&self) -> Option<(CacheMeta, Vec<u8>)> {
        let meta: CacheMeta = serde_json::from_slice(&std::fs::read(&self.meta).ok()?).ok()?;
        let tar = std::fs::read(&self.tar).ok()?;
        Some((meta, tar))
    }

    fn write(&self, meta: &CacheMeta, tar: &[u8]) -> Result<()> {
        if let Some(dir) = self.tar.parent() {
            crate::state::create_private_dir(dir)?;
        }
        write_private(&self.tar, tar)?;
        write_private(&self.meta, &serde_json::to_vec_pretty(meta)?)
    }
}

/// Copies the lineage (live, archive, renewal config, account) into the state dir.
pub(super) fn save_cache(
    session: &SshSession,
    settings: &Settings,
    meta: &CacheMeta,
) -> Result<()> {
    let d = &settings.domain;
    // Its output is the lineage, private key included: a failure quotes stderr alone.
    let out = super::run(
        session,
        super::script(SAVE_CACHE, "cache", [LE, d.as_str()]).secret_stdout(),
    )
    .context("reading the certificate lineage for the cache")?;
    let tar = base64::engine::general_purpose::STANDARD
        .decode(out.trim())
        .context("the lineage archive came back garbled")?;
    Cache::new(settings).write(meta, &tar)
}

/// Unpacks the cached lineage on the controller; returns its metadata.
pub(super) fn restore(session: &SshSession, settings: &Settings) -> Result<CacheMeta> {
    let (meta, tar) = Cache::new(settings)
        .read()
        .context("the cached certificate lineage disappeared")?;
    super::run(
        session,
        super::script(RESTORE_CACHE, "restore", [LE]).stdin(tar),
    )
    .context("restoring the certificate lineage on the controller")?;
    Ok(meta)
}

/// Makes certbot's renewal window for the lineage `tls.renew_before`: one definition of "due" on
/// both sides. Returns whether it changed anything.
pub(super) fn set_window(session: &SshSession, settings: &Settings) -> Result<bool> {
    let window = certbot_window(settings);
    let out = super::run(
        session,
        super::script(
            SET_WINDOW,
            "set-window",
            [settings.domain.as_str(), window.as_str()],
        ),
    )
    .with_context(|| format!("setting certbot's renewal window for {}", settings.domain))?;
    Ok(out.trim() == "set")
}

/// certbot's HTTP-01 listener for renewals, as the probe reads it ("port address").
pub(super) fn http01(acme: &AcmeForward) -> String {
    format!("{} {}", acme.port, acme.address)
}

/// Makes `certbot renew` listen where every HAProxy forwards the CA's HTTP-01 requests
/// (controllers ≥ 3); a lineage issued with one controller listened on port 80. Returns whether
/// it changed anything.
pub(super) fn set_http01(
    session: &SshSession,
    settings: &Settings,
    acme: &AcmeForward,
) -> Result<bool> {
    let port = acme.port.to_string();
    let conf = format!("{LE}/renewal/{}.conf", settings.domain);
    let out = super::run(
        session,
        super::script(
            SET_HTTP01,
            "set-http01",
            [conf.as_str(), port.as_str(), acme.address.as_str()],
        ),
    )
    .with_context(|| format!("setting certbot's HTTP-01 listener for {}", settings.domain))?;
    Ok(out.trim() == "set")
}

/// A certificate from certbot (standalone) with haproxy stopped for port 80; the PEM is built
/// from the new lineage before haproxy starts again, so that it serves the new certificate
/// whether or not an old PEM was there. With `acme` (controllers ≥ 3) certbot listens there
/// instead, behind every HAProxy, and nothing is stopped. The domain must already point at the
/// controller (`dns_first`).
pub(super) fn issue(
    cx: &StageContext<'_>,
    session: &SshSession,
    host: &str,
    acme: Option<&AcmeForward>,
) -> Result<()> {
    let s = cx.settings;
    let mut certbot = RemoteCommand::new("certbot").args([
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--keep-until-expiring",
        "--standalone",
        "--cert-name",
        s.domain.as_str(),
        "-d",
        s.domain.as_str(),
        "--email",
        s.tls.email.as_str(),
    ]);
    if let Some(server) = &s.tls.acme_server {
        certbot = certbot.args(["--server", server.as_str()]);
    }
    if s.tls.staging {
        certbot = certbot.arg("--staging");
    }
    // certbot 2.1, certbot/_internal/plugins/standalone.py: the standalone server binds
    // (http01_address, http01_port); both are saved in the renewal config for `certbot renew`.
    let port = acme.map(|a| a.port.to_string());
    if let (Some(a), Some(port)) = (acme, &port) {
        certbot = certbot.args([
            "--http-01-port",
            port.as_str(),
            "--http-01-address",
            a.address.as_str(),
        ]);
    }
    let run_certbot = || {
        cx.host(
            host,
            format!("certbot: requesting a certificate for {}", s.domain),
        );
        let out = session.exec(
            &certbot.sudo(session.options().needs_sudo()),
            &mut |_, line| {
                cx.reporter.log(
                    Some(StageName::Tls),
                    crate::report::Level::Output,
                    format!("{host}: {line}"),
                )
            },
        )?;
        if out.status != 0 {
            bail!(
                "certbot failed (exit {}) for {}:\n{}",
                out.status,
                s.domain,
                out.tail(15)
            );
        }
        cx.host(host, "certificate issued");
        haproxy::build_pem(session, s)?;
        cx.host(host, format!("PEM written: {}", s.haproxy.pem_path));
        Ok(())
    };
    match acme {
        Some(_) => run_certbot(),
        None => haproxy::stopped_for(cx, session, host, "certbot (port 80)", run_certbot),
    }
}

/// A certificate just issued that is already due would be renewed by every run.
pub(super) fn check_issued(settings: &Settings, cert: &CertFacts) -> Result<()> {
    if !cert.fresh {
        bail!(
            "the certificate just issued for {} expires in {} days, inside tls.renew_before ({} days): every run would renew it again. Make tls.renew_before shorter than the certificates' lifetime",
            settings.domain,
            (cert.not_after - now()) / 86_400,
            settings.tls.renew_before.as_secs() / 86_400
        );
    }
    Ok(())
}

/// The domain must point at the controller before certbot asks for a validation: the dns
/// stage's record upsert (waits for INSYNC), or — when no Route 53 zone holds the domain — a
/// resolution check that stops instead of burning a failed validation.
pub(super) async fn dns_first(cx: &mut StageContext<'_>, ip: &str) -> Result<()> {
    let domain = cx.settings.domain.clone();
    match super::super::dns::ensure_record(cx).await {
        Ok(changed) => {
            cx.host(
                &domain,
                if changed {
                    format!("A record → {ip}, INSYNC (DNS before ACME)")
                } else {
                    format!("A record already → {ip}")
                },
            );
            Ok(())
        }
        Err(e) if e.chain().any(|c| c.is::<NoZone>()) => {
            let found: Vec<String> = tokio::net::lookup_host((domain.as_str(), 80))
                .await
                .map(|a| a.map(|a| a.ip().to_string()).collect())
                .unwrap_or_default();
            if found.iter().any(|f| f == ip) {
                cx.host(
                    &domain,
                    format!("not in Route 53; resolves to {ip} (checked before ACME)"),
                );
                Ok(())
            } else {
                Err(anyhow!(
                    "{domain} is in no Route 53 zone and resolves to {} instead of the controller's {ip}; \
                     point it at {ip} (or create the zone) before asking for a certificate — a failed \
                     validation counts against Let's Encrypt's limit of 5 per hour. Nothing was requested",
                    if found.is_empty() {
                        "nothing".to_string()
                    } else {
                        found.join(", ")
                    }
                ))
            }
        }
        Err(e) => Err(e.context(format!(
            "cannot point {domain} at the controller before asking for a certificate; nothing was requested"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache script on this machine's `sh` (dash, as on Ubuntu): a lineage tar cannot read
    /// whole fails it and prints nothing, where `tar | base64` printed a partial archive and
    /// exited 0 (dash has no pipefail).
    #[test]
    fn a_partial_lineage_is_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let le = dir.path();
        for d in [
            "live/chat.example.com",
            "archive/chat.example.com",
            "renewal",
        ] {
            std::fs::create_dir_all(le.join(d)).unwrap();
        }
        std::fs::write(le.join("live/chat.example.com/cert.pem"), "x").unwrap();
        std::fs::write(le.join("renewal/chat.example.com.conf"), "x").unwrap();
        let run = || {
            std::process::Command::new("sh")
                .args(["-c", SAVE_CACHE, "cache"])
                .arg(le)
                .arg("chat.example.com")
                .output()
                .unwrap()
        };
        // No `accounts` directory: tar fails.
        let out = run();
        assert!(!out.status.success(), "{out:?}");
        assert!(out.stdout.is_empty(), "nothing cached: {out:?}");
        std::fs::create_dir_all(le.join("accounts")).unwrap();
        let out = run();
        assert!(out.status.success(), "{out:?}");
        let tar = base64::engine::general_purpose::STANDARD
            .decode(&out.stdout)
            .unwrap();
        assert!(tar.starts_with(&[0x1f, 0x8b]), "a gzip archive");
    }

    /// The renewal listener script on this machine's `sh`: both keys set inside
    /// [renewalparams] (replaced where they are), the mode kept, a right file left alone.
    #[test]
    fn the_renewal_listener_is_set_in_renewalparams_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("chat.example.com.conf");
        std::fs::write(
            &conf,
            "version = 2.1.0\n\n[renewalparams]\nauthenticator = standalone\nhttp01_port = 80\n\n[[webroot_map]]\n",
        )
        .unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
        let run = || {
            let out = std::process::Command::new("sh")
                .args(["-c", SET_HTTP01, "set-http01"])
                .arg(&conf)
                .args(["8402", "10.0.1.5"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert_eq!(run(), "set\n");
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            "version = 2.1.0\n\n[renewalparams]\nauthenticator = standalone\n\nhttp01_port = 8402\nhttp01_address = 10.0.1.5\n[[webroot_map]]\n"
        );
        let mode = std::fs::metadata(&conf).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(run(), "", "already right: left alone");
    }
}
