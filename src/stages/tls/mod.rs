//! The tls stage: HAProxy on the controller terminates TLS for the domain with a real ACME
//! certificate.
//!
//! - DNS first: the domain must point at the controller before any ACME request (a failed
//!   validation costs one of Let's Encrypt's 5 per hour).
//! - A certificate for exactly the domain with more than `tls.renew_before` left is kept:
//!   certbot is not called. One missing on the host is restored from the lineage cached in the
//!   state dir when that is still fresh (a rebuilt controller does not burn the 5-per-week
//!   duplicate-certificate limit); only otherwise does certbot (standalone) run, with haproxy
//!   stopped for port 80 and started again whatever happened.
//! - Renewal keeps working without Jeeves: certbot's pre/post/deploy hooks stop and start
//!   haproxy and rebuild the PEM.
//! - The PEM (key + full chain, 0600) lives outside /etc/letsencrypt/live; haproxy.cfg is
//!   checked with `haproxy -c` beside the live file before it replaces it; haproxy reloads only
//!   when the config or the PEM changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::route53::NoZone;
use crate::config::Settings;
use crate::report::Change;
use crate::ssh::probe::{self, Sections};
use crate::ssh::{RemoteCommand, SshOptions, SshSession, Target};
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::state::{Host, write_private};
use crate::templates::{HAPROXY_CFG, TemplateContext, Templates};

const LE: &str = "/etc/letsencrypt";
const HOOK: &str = "jeeves-haproxy.sh";

/// One round trip: tools, the live certificate, the files Jeeves manages (by SHA-256), and
/// the service. Values come in as positional parameters.
const PROBE: &str = include_str!("scripts/probe.sh");

/// Builds the HAProxy PEM from the lineage: key, then full chain; 0600; atomic.
const WRITE_PEM: &str = include_str!("scripts/write-pem.sh");

/// The lineage as base64 of a tar.gz, for the cache; and its way back.
const SAVE_CACHE: &str = include_str!("scripts/save-cache.sh");
const RESTORE_CACHE: &str = include_str!("scripts/restore-cache.sh");
const SET_WINDOW: &str = include_str!("scripts/set-window.sh");

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct CertFacts {
    names: Vec<String>,
    not_after: i64,
    fresh: bool,
    /// SHA-256 of privkey.pem + fullchain.pem: what the PEM should hash to.
    pem: String,
    /// certbot's `renew_before_expiry` for the lineage (empty: its default, 30 days).
    window: String,
}

/// certbot's renewal window that matches `tls.renew_before` (whole days, rounded up, so that
/// whenever Jeeves finds the certificate due, certbot does too).
fn certbot_window(settings: &Settings) -> String {
    format!(
        "{} days",
        settings.tls.renew_before.as_secs().div_ceil(86_400)
    )
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Facts {
    tools: BTreeSet<String>,
    cert: Option<CertFacts>,
    /// Path → SHA-256, for the files that exist.
    files: BTreeMap<String, String>,
    /// Path → modification time (ms since the epoch).
    mtimes: BTreeMap<String, i64>,
    /// When the running haproxy last loaded its files: its newest process's start (ms).
    loaded_at: Option<i64>,
    active: bool,
    enabled: bool,
}

/// The sections PROBE prints.
const SECTIONS: &[&str] = &["tools", "cert", "files", "service", "loaded"];

fn parse_facts(p: &Sections) -> Facts {
    let mut cert = CertFacts::default();
    for line in p.lines("cert") {
        match line.split_once(' ') {
            Some(("names", v)) => cert.names = v.split_whitespace().map(String::from).collect(),
            Some(("not_after", v)) => cert.not_after = v.trim().parse().unwrap_or(0),
            Some(("fresh", v)) => cert.fresh = v.trim() == "yes",
            Some(("pem", v)) => cert.pem = v.trim().to_string(),
            Some(("window", v)) => cert.window = v.trim().to_string(),
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

/// The certificate lineage kept in the state dir after issuance.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheMeta {
    domain: String,
    names: Vec<String>,
    /// Unix seconds.
    not_after: i64,
}

struct Cache {
    tar: PathBuf,
    meta: PathBuf,
}

impl Cache {
    fn new(settings: &Settings) -> Cache {
        let dir = settings.state_dir.join("tls");
        Cache {
            tar: dir.join(format!("{}.tar.gz", settings.domain)),
            meta: dir.join(format!("{}.json", settings.domain)),
        }
    }

    fn read(&self) -> Option<(CacheMeta, Vec<u8>)> {
        let meta: CacheMeta = serde_json::from_slice(&std::fs::read(&self.meta).ok()?).ok()?;
        let tar = std::fs::read(&self.tar).ok()?;
        Some((meta, tar))
    }

    fn write(&self, meta: &CacheMeta, tar: &[u8]) -> Result<()> {
        if let Some(dir) = self.tar.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_private(&self.tar, tar)?;
        write_private(&self.meta, &serde_json::to_vec_pretty(meta)?)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Exactly the domain, with more than the renewal window left.
fn usable(names: &[String], not_after: i64, settings: &Settings) -> bool {
    names == [settings.domain.clone()]
        && not_after - now() > settings.tls.renew_before.as_secs() as i64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertAction {
    Keep,
    Restore,
    Issue,
}

struct Plan {
    controller: Host,
    facts: Facts,
    install: Vec<&'static str>,
    cert: CertAction,
    /// Renewal hooks to write: (path, contents).
    hooks: Vec<(String, String)>,
    config: String,
    /// The lineage on the host is good but the state dir has no fresh copy of it.
    cache_refresh: bool,
    /// Files changed after the running haproxy loaded them: a reload that never happened (a
    /// run killed after writing them, or a reload that failed).
    unloaded: Vec<String>,
}

/// How precisely a process's start is known: its start is counted in clock ticks (10 ms) from a
/// boot time read to 10 ms. A file is unloaded only when written later than that.
const START_PRECISION_MS: i64 = 30;

/// Of `paths`, those modified after the running haproxy last loaded its files.
fn unloaded<'a>(facts: &Facts, paths: &[&'a str]) -> Vec<&'a str> {
    let Some(loaded) = facts.loaded_at.filter(|_| facts.active) else {
        return Vec::new();
    };
    paths
        .iter()
        .copied()
        .filter(|p| {
            facts
                .mtimes
                .get(*p)
                .is_some_and(|m| *m > loaded + START_PRECISION_MS)
        })
        .collect()
}

fn hooks(settings: &Settings) -> Vec<(String, String)> {
    let q = |s: &str| {
        shlex::try_quote(s)
            .map(|c| c.into_owned())
            .unwrap_or_default()
    };
    let head = "#!/bin/sh\n# Installed by Jeeves: certbot runs this on renewal (standalone needs port 80, which haproxy holds).\n";
    let live = format!("{LE}/live/{}", settings.domain);
    let pem = &settings.haproxy.pem_path;
    let cfg = &settings.haproxy.config_path;
    vec![
        (
            format!("{LE}/renewal-hooks/pre/{HOOK}"),
            format!("{head}systemctl stop haproxy\n"),
        ),
        (
            format!("{LE}/renewal-hooks/post/{HOOK}"),
            format!("{head}systemctl start haproxy\n"),
        ),
        (
            format!("{LE}/renewal-hooks/deploy/{HOOK}"),
            format!(
                "{head}# Rebuilds the HAProxy PEM from the renewed lineage, checks the config, reloads.\n\
                 set -e\n\
                 [ \"$RENEWED_LINEAGE\" = {live} ] || exit 0\n\
                 umask 077\n\
                 mkdir -p \"$(dirname {pem_q})\"\n\
                 cat \"$RENEWED_LINEAGE/privkey.pem\" \"$RENEWED_LINEAGE/fullchain.pem\" > {tmp}\n\
                 chmod 600 {tmp}\n\
                 mv -f {tmp} {pem_q}\n\
                 haproxy -c -q -f {cfg_q}\n\
                 if systemctl is-active --quiet haproxy; then systemctl reload haproxy; fi\n",
                live = q(&live),
                pem_q = q(pem),
                tmp = q(&format!("{pem}.jeeves-tmp")),
                cfg_q = q(cfg),
            ),
        ),
    ]
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn connect(settings: &Settings, host: &Host, cx: &StageContext<'_>) -> Result<SshSession> {
    let opts = SshOptions::from_settings(&settings.ssh, cx.host_keys);
    SshSession::connect(
        &Target {
            name: host.hostname.clone(),
            address: host.public_ip.clone(),
            port: settings.ssh.port,
        },
        &opts,
    )
}

fn probe_host(session: &SshSession, settings: &Settings, paths: &[String]) -> Result<Facts> {
    let cmd = RemoteCommand::new("sh")
        .args(["-c", PROBE, "tls-probe", settings.domain.as_str()])
        .arg(settings.tls.renew_before.as_secs().to_string())
        .args(paths.iter().map(String::as_str))
        .sudo(session.options().needs_sudo());
    Ok(parse_facts(
        &probe::run(session, &cmd, SECTIONS).context("probing TLS")?,
    ))
}

/// Runs a privileged command on the controller, failing with its own output.
fn run(session: &SshSession, cmd: RemoteCommand) -> Result<String> {
    let out = session.run(&cmd.sudo(session.options().needs_sudo()))?;
    Ok(out.stdout)
}

fn managed_paths(settings: &Settings) -> Vec<String> {
    let mut paths = vec![
        settings.haproxy.pem_path.clone(),
        settings.haproxy.config_path.clone(),
    ];
    paths.extend(hooks(settings).into_iter().map(|(p, _)| p));
    paths
}

#[derive(Default)]
pub struct TlsStage {
    plan: Option<Plan>,
}

#[async_trait]
impl Stage for TlsStage {
    fn name(&self) -> StageName {
        StageName::Tls
    }

    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>> {
        let settings = cx.settings.clone();
        let controller =
            cx.state.inventory.controller.clone().context(
                "the inventory has no controller; run `jeeves up --only terraform` first",
            )?;
        super::host_pinning::pin_new_hosts(cx, std::slice::from_ref(&controller)).await?;
        let templates = Templates::load(&settings.templates_dir)?;
        let config = templates.render(HAPROXY_CFG, &TemplateContext::new(&settings))?;
        let facts = tokio::task::block_in_place(|| {
            let session = connect(&settings, &controller, cx)?;
            probe_host(&session, &settings, &managed_paths(&settings))
        })?;

        let mut changes = Vec::new();
        let install: Vec<&'static str> = ["haproxy", "certbot"]
            .into_iter()
            .filter(|t| !facts.tools.contains(*t))
            .collect();
        if !install.is_empty() {
            changes.push(Change::new("install", install.join(" ")));
        }
        let host_cert = facts
            .cert
            .as_ref()
            .filter(|c| c.fresh && usable(&c.names, c.not_after, &settings));
        let cached = Cache::new(&settings).read().filter(|(m, _)| {
            m.domain == settings.domain && usable(&m.names, m.not_after, &settings)
        });
        let cert = if host_cert.is_some() {
            CertAction::Keep
        } else if cached.is_some() {
            CertAction::Restore
        } else {
            CertAction::Issue
        };
        let server = settings
            .tls
            .acme_server
            .clone()
            .unwrap_or_else(|| "Let's Encrypt".into());
        match cert {
            CertAction::Keep => {}
            CertAction::Restore => changes.push(Change::new(
                "restore",
                format!(
                    "certificate for {} from the state dir's copy (no new ACME order)",
                    settings.domain
                ),
            )),
            CertAction::Issue => changes.push(Change::new(
                "issue",
                format!(
                    "certificate for {} from {server}: DNS first, then certbot --standalone with haproxy stopped{}",
                    settings.domain,
                    match &facts.cert {
                        Some(c) if c.names != [settings.domain.clone()] => format!(
                            " (the host's certificate names {})",
                            c.names.join(",")
                        ),
                        Some(_) => " (the host's certificate is inside the renewal window)".into(),
                        None => String::new(),
                    }
                ),
            )),
        }
        let hooks: Vec<(String, String)> = hooks(&settings)
            .into_iter()
            .filter(|(p, c)| facts.files.get(p) != Some(&sha256(c.as_bytes())))
            .collect();
        if !hooks.is_empty() {
            changes.push(Change::new(
                "write",
                format!("{} certbot renewal hook(s)", hooks.len()),
            ));
        }
        if let Some(c) = host_cert
            && c.window != certbot_window(&settings)
        {
            changes.push(Change::new(
                "set",
                format!(
                    "certbot's renewal window for {} to {} (tls.renew_before; now {})",
                    settings.domain,
                    certbot_window(&settings),
                    if c.window.is_empty() {
                        "certbot's default, 30 days"
                    } else {
                        c.window.as_str()
                    }
                ),
            ));
        }
        let pem_current = facts.files.get(&settings.haproxy.pem_path);
        if cert != CertAction::Keep || host_cert.map(|c| &c.pem) != pem_current {
            changes.push(Change::new("write", settings.haproxy.pem_path.clone()));
        }
        let config_changed =
            facts.files.get(&settings.haproxy.config_path) != Some(&sha256(config.as_bytes()));
        if config_changed {
            changes.push(Change::new("update", settings.haproxy.config_path.clone()));
        }
        if !facts.active || !facts.enabled {
            changes.push(Change::new("start", "haproxy (enabled, active)"));
        }
        let unloaded: Vec<String> = unloaded(
            &facts,
            &[&settings.haproxy.config_path, &settings.haproxy.pem_path],
        )
        .into_iter()
        .map(String::from)
        .collect();
        if !unloaded.is_empty() {
            changes.push(Change::new(
                "reload",
                format!(
                    "haproxy: the running process has not loaded {} (changed after it started: a reload that never happened)",
                    unloaded.join(", ")
                ),
            ));
        }
        // The host's lineage is newer than the cached one (renewed by certbot since): keep the
        // newer one for the next rebuild.
        let cache_refresh = cert == CertAction::Keep
            && match (&cached, host_cert) {
                (Some((m, _)), Some(c)) => c.not_after > m.not_after,
                _ => true,
            };
        if cache_refresh {
            changes.push(Change::new(
                "cache",
                format!(
                    "certificate lineage of {} in the state dir",
                    settings.domain
                ),
            ));
        }
        self.plan = Some(Plan {
            controller,
            facts,
            install,
            cert,
            hooks,
            config,
            cache_refresh,
            unloaded,
        });
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let plan = self.plan.take().context("apply without probe")?;
        let settings = cx.settings.clone();
        let host = plan.controller.hostname.clone();
        let session = tokio::task::block_in_place(|| connect(&settings, &plan.controller, cx))?;
        let mut active = plan.facts.active;

        if !plan.install.is_empty() {
            cx.host(&host, format!("installing {}", plan.install.join(" ")));
            tokio::task::block_in_place(|| -> Result<()> {
                run(&session, RemoteCommand::new("apt-get").arg("update"))?;
                run(
                    &session,
                    RemoteCommand::new("env")
                        .args(["DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y"])
                        .args(plan.install.iter().copied()),
                )?;
                Ok(())
            })?;
            // A freshly installed haproxy starts with the package's config.
            let f = tokio::task::block_in_place(|| probe_host(&session, &settings, &[]))?;
            active = f.active;
        }
        for (path, contents) in &plan.hooks {
            tokio::task::block_in_place(|| session.upload(path, contents.as_bytes(), 0o755))?;
        }
        if !plan.hooks.is_empty() {
            cx.host(&host, "renewal hooks installed (pre: stop haproxy, post: start haproxy, deploy: PEM + reload)");
        }

        match plan.cert {
            CertAction::Keep => {}
            CertAction::Restore => {
                let (meta, tar) = Cache::new(&settings)
                    .read()
                    .context("the cached certificate lineage disappeared")?;
                tokio::task::block_in_place(|| {
                    run(
                        &session,
                        RemoteCommand::new("sh")
                            .args(["-c", RESTORE_CACHE, "restore", LE])
                            .stdin(tar),
                    )
                })
                .context("restoring the certificate lineage on the controller")?;
                cx.host(
                    &host,
                    format!(
                        "certificate restored from the state dir (valid {} more days; no ACME order)",
                        (meta.not_after - now()) / 86_400
                    ),
                );
            }
            CertAction::Issue => {
                dns_first(cx, &plan.controller.public_ip).await?;
                issue(cx, &session, &host, active)?;
            }
        }

        let facts = tokio::task::block_in_place(|| {
            probe_host(&session, &settings, &managed_paths(&settings))
        })?;
        let cert = facts.cert.clone().context(
            "no certificate for the domain on the controller after the certificate step",
        )?;
        if plan.cert == CertAction::Issue && !cert.fresh {
            bail!(
                "the certificate just issued for {} expires in {} days, inside tls.renew_before ({} days): every run would renew it again. Make tls.renew_before shorter than the certificates' lifetime",
                settings.domain,
                (cert.not_after - now()) / 86_400,
                settings.tls.renew_before.as_secs() / 86_400
            );
        }
        // One definition of "due" on both sides: certbot's window is tls.renew_before.
        let window = certbot_window(&settings);
        if cert.window != window {
            tokio::task::block_in_place(|| {
                run(
                    &session,
                    RemoteCommand::new("sh").args([
                        "-c",
                        SET_WINDOW,
                        "set-window",
                        settings.domain.as_str(),
                        window.as_str(),
                    ]),
                )
            })?;
            cx.host(
                &host,
                format!("certbot's renewal window set to {window} (tls.renew_before)"),
            );
        }
        if plan.cert == CertAction::Issue || plan.cache_refresh {
            tokio::task::block_in_place(|| cache_lineage(&session, &settings, &cert))?;
            cx.info(format!(
                "certificate lineage cached in {} (0600)",
                Cache::new(&settings).tar.display()
            ));
        }

        let pem_changed = facts.files.get(&settings.haproxy.pem_path) != Some(&cert.pem);
        if pem_changed {
            tokio::task::block_in_place(|| {
                run(
                    &session,
                    RemoteCommand::new("sh").args([
                        "-c",
                        WRITE_PEM,
                        "write-pem",
                        settings.domain.as_str(),
                        settings.haproxy.pem_path.as_str(),
                    ]),
                )
            })?;
            cx.host(&host, format!("PEM written: {}", settings.haproxy.pem_path));
        }
        // From the probe just made, like the PEM.
        let config_changed =
            facts.files.get(&settings.haproxy.config_path) != Some(&sha256(plan.config.as_bytes()));
        if config_changed {
            tokio::task::block_in_place(|| install_config(&session, &settings, &plan.config))?;
            cx.host(
                &host,
                format!("{} checked and installed", settings.haproxy.config_path),
            );
        }
        tokio::task::block_in_place(|| -> Result<()> {
            if !facts.active {
                run(
                    &session,
                    RemoteCommand::new("systemctl").args(["start", "haproxy"]),
                )?;
                cx.host(&host, "haproxy started");
            } else if pem_changed || config_changed || !plan.unloaded.is_empty() {
                run(
                    &session,
                    RemoteCommand::new("systemctl").args(["reload", "haproxy"]),
                )?;
                cx.host(&host, "haproxy reloaded");
            }
            if !facts.enabled {
                run(
                    &session,
                    RemoteCommand::new("systemctl").args(["enable", "haproxy"]),
                )?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// The domain must point at the controller before certbot asks for a validation: the dns
/// stage's record upsert (waits for INSYNC), or — when no Route 53 zone holds the domain — a
/// resolution check that stops instead of burning a failed validation.
async fn dns_first(cx: &mut StageContext<'_>, ip: &str) -> Result<()> {
    let domain = cx.settings.domain.clone();
    match super::dns::ensure_record(cx).await {
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

fn issue(cx: &StageContext<'_>, session: &SshSession, host: &str, active: bool) -> Result<()> {
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
    tokio::task::block_in_place(|| -> Result<()> {
        if active {
            cx.host(host, "stopping haproxy for certbot (port 80)");
            run(
                session,
                RemoteCommand::new("systemctl").args(["stop", "haproxy"]),
            )?;
        }
        cx.host(
            host,
            format!("certbot: requesting a certificate for {}", s.domain),
        );
        let result = session.exec(
            &certbot.sudo(session.options().needs_sudo()),
            &mut |_, line| {
                cx.reporter.log(
                    Some(StageName::Tls),
                    crate::report::Level::Output,
                    format!("{host}: {line}"),
                )
            },
        );
        // haproxy comes back whatever certbot did.
        let restarted = if active {
            run(
                session,
                RemoteCommand::new("systemctl").args(["start", "haproxy"]),
            )
            .map(|_| ())
        } else {
            Ok(())
        };
        let out = result?;
        if out.status != 0 {
            bail!(
                "certbot failed (exit {}) for {}:\n{}",
                out.status,
                s.domain,
                out.tail(15)
            );
        }
        restarted.context("haproxy did not start again after certbot")?;
        cx.host(host, "certificate issued");
        Ok(())
    })
}

/// Copies the lineage (live, archive, renewal config, account) into the state dir.
fn cache_lineage(session: &SshSession, settings: &Settings, cert: &CertFacts) -> Result<()> {
    let d = &settings.domain;
    let out = run(
        session,
        RemoteCommand::new("sh").args(["-c", SAVE_CACHE, "cache", LE, d.as_str()]),
    )
    .context("reading the certificate lineage for the cache")?;
    let tar = base64::engine::general_purpose::STANDARD
        .decode(out.trim())
        .context("the lineage archive came back garbled")?;
    Cache::new(settings).write(
        &CacheMeta {
            domain: d.clone(),
            names: cert.names.clone(),
            not_after: cert.not_after,
        },
        &tar,
    )
}

/// Uploads the config beside the live one, checks it with `haproxy -c`, only then replaces it.
/// A failing check leaves the running config untouched and reports haproxy's own words.
fn install_config(session: &SshSession, settings: &Settings, config: &str) -> Result<()> {
    let live = &settings.haproxy.config_path;
    let candidate = format!("{live}.jeeves-new");
    session.upload(&candidate, config.as_bytes(), 0o644)?;
    let sudo = session.options().needs_sudo();
    let check = session.exec(
        &RemoteCommand::new("haproxy")
            .args(["-c", "-f", candidate.as_str()])
            .sudo(sudo),
        &mut |_, _| {},
    )?;
    if check.status != 0 {
        let _ = session.run(
            &RemoteCommand::new("rm")
                .args(["-f", candidate.as_str()])
                .sudo(sudo),
        );
        let mut msg = check.stdout.clone();
        msg.push_str(&check.stderr);
        bail!(
            "the rendered haproxy.cfg fails `haproxy -c` (the running config is untouched):\n{}",
            msg.trim_end()
        );
    }
    run(
        session,
        RemoteCommand::new("mv").args(["-f", candidate.as_str(), live.as_str()]),
    )?;
    Ok(())
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

    #[test]
    fn probe_output_becomes_facts() {
        let out = "@tools\nhaproxy\nopenssl\n@cert\nnames chat.example.com \nnot_after 1790000000\nfresh yes\npem abc\n@files\nabc 1790000000123 /etc/haproxy/certs/chat.example.com.pem\ndef 1790000000456 /etc/haproxy/haproxy.cfg\n@service\nactive\nenabled\n@loaded\n1790000000200\n@end\n";
        let f = parse_facts(&Sections::parse(out, SECTIONS).unwrap());
        assert_eq!(
            f.tools,
            BTreeSet::from(["haproxy".to_string(), "openssl".to_string()])
        );
        let c = f.cert.clone().unwrap();
        assert_eq!(c.names, vec!["chat.example.com".to_string()]);
        assert_eq!(c.not_after, 1_790_000_000);
        assert!(c.fresh);
        assert_eq!(f.files["/etc/haproxy/haproxy.cfg"], "def");
        assert!(f.active && f.enabled);
        // The config changed after the running haproxy started; the PEM before.
        assert_eq!(f.loaded_at, Some(1_790_000_000_200));
        assert_eq!(
            unloaded(
                &f,
                &[
                    "/etc/haproxy/certs/chat.example.com.pem",
                    "/etc/haproxy/haproxy.cfg"
                ]
            ),
            ["/etc/haproxy/haproxy.cfg"]
        );

        let bare = parse_facts(
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
