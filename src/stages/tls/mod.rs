//! The tls stage: HAProxy on the controller terminates TLS for the domain with a real ACME
//! certificate.
//!
//! - DNS first: the domain must point at the controller before any ACME request (a failed
//!   validation costs one of Let's Encrypt's 5 per hour).
//! - A certificate for exactly the domain with more than `tls.renew_before` left is kept:
//!   certbot is not called. One missing on the host is restored from the lineage cached in the
//!   state dir when that is still fresh (a rebuilt controller does not burn the 5-per-week
//!   duplicate-certificate limit); only otherwise does certbot (standalone) run, with haproxy
//!   stopped for port 80 and started again whatever happened, a Ctrl-C included.
//! - Renewal keeps working without Jeeves: certbot's pre/post/deploy hooks stop and start
//!   haproxy and rebuild the PEM, with the same scripts as a Jeeves run.
//! - The PEM (key + full chain, 0600) lives outside /etc/letsencrypt/live; haproxy.cfg is
//!   checked with `haproxy -c` beside the live file before it replaces it; haproxy reloads only
//!   when the config or the PEM changed, or the running process has not loaded them.
//! - Controllers ≥ 3: HAProxy on every controller with the same config and PEM. The lineage
//!   (one ACME account) stays on the first; every HAProxy forwards `/.well-known/acme-challenge/`
//!   to certbot there, which listens on a port of its own (`ACME_PORT`), so issuance and
//!   renewal stop no HAProxy. One controller: exactly as above.
//!
//! Parts: `facts` (the probe), `plan` (what to do, as data; `changes`, how it reads),
//! `certificate`, `haproxy`, `hooks`, `peers` and `ha` (controllers ≥ 3: HAProxy on every
//! controller, ACME challenges forwarded to certbot on the first),
//! and `health` (what `jeeves check` reads of HAProxy, through the same probe).
//! This file is the stage's glue and how it reaches the controller.

mod certificate;
mod changes;
mod facts;
mod ha;
mod haproxy;
mod health;
mod hooks;
mod peers;
mod plan;

pub use health::{HaproxyHealth, haproxy_health};

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio::task::block_in_place;

use crate::report::Change;
use crate::ssh::{RemoteCommand, SshSession};
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::state::Host;
use crate::templates::{AcmeForward, HAPROXY_CFG, Templates};

use certificate::{Cache, CacheMeta};
use haproxy::Service;
use plan::{Certificate, Plan};

const LE: &str = "/etc/letsencrypt";

/// certbot's HTTP-01 port on the first controller with controllers ≥ 3, behind every HAProxy:
/// one of its own, so that certbot and HAProxy (port 80) run side by side.
const ACME_PORT: u16 = 8402;

/// With controllers ≥ 3: certbot's listener on the first controller, where every HAProxy
/// forwards ACME HTTP-01 requests. None with one controller (its stack is unchanged).
pub fn acme_forward(settings: &crate::config::Settings, first: &Host) -> Option<AcmeForward> {
    (!settings.cluster.single()).then(|| AcmeForward {
        address: first.private_ip.clone(),
        port: ACME_PORT,
    })
}

/// haproxy.cfg as every controller gets it (`first`: the first controller).
fn haproxy_config(settings: &crate::config::Settings, first: &Host) -> Result<String> {
    let mut ctx = crate::stages::template_context(settings);
    ctx.haproxy.acme = acme_forward(settings, first);
    Templates::load(&settings.templates_dir)?.render(HAPROXY_CFG, &ctx)
}

/// Installs packages with apt-get (non-interactive).
fn install(session: &SshSession, packages: &[&str]) -> Result<()> {
    run(session, RemoteCommand::new("apt-get").arg("update"))?;
    run(
        session,
        RemoteCommand::new("env")
            .args(["DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y"])
            .args(packages.iter().copied()),
    )?;
    Ok(())
}

/// Runs a privileged command on the controller, failing with its own output; returns stdout.
fn run(session: &SshSession, cmd: RemoteCommand) -> Result<String> {
    let out = session.run(&cmd.sudo(session.options().needs_sudo()))?;
    Ok(out.stdout)
}

/// One of the stage's scripts, run by `sh` with its values as positional parameters (`name` is
/// its `$0`).
fn script<I, S>(text: &str, name: &str, args: I) -> RemoteCommand
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    RemoteCommand::new("sh").args(["-c", text, name]).args(args)
}

/// Makes the lineage's renewal config right on the first controller: certbot's window
/// `tls.renew_before` (a lineage not kept as it was), and with controllers ≥ 3 its HTTP-01
/// listener where every HAProxy forwards (a kept lineage issued with one controller, or a
/// restored one, whose cached config may name port 80 or an old first controller). Returns
/// whether it changed the file.
fn renewal_config(cx: &StageContext<'_>, session: &SshSession, plan: &Plan) -> Result<bool> {
    let (settings, host) = (cx.settings, &plan.controller.hostname);
    let mut changed = false;
    if !matches!(plan.certificate, Certificate::Keep { window: None, .. })
        && certificate::set_window(session, settings)?
    {
        cx.host(
            host,
            format!(
                "certbot's renewal window set to {} (tls.renew_before)",
                certificate::certbot_window(settings)
            ),
        );
        changed = true;
    }
    let listener = matches!(
        plan.certificate,
        Certificate::Keep {
            http01: Some(_),
            ..
        } | Certificate::Restore
    );
    if let Some(acme) = plan.acme.as_ref().filter(|_| listener)
        && certificate::set_http01(session, settings, acme)?
    {
        cx.host(
            host,
            format!(
                "certbot renews on {}:{} behind every haproxy (no haproxy stop)",
                acme.address, acme.port
            ),
        );
        changed = true;
    }
    Ok(changed)
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
        let controller = cx.state.inventory.controller()?.clone();
        // One controller: the first alone, as ever (`more_controllers` is empty).
        let more = cx.state.inventory.more_controllers.clone();
        let all: Vec<Host> = std::iter::once(controller.clone())
            .chain(more.iter().cloned())
            .collect();
        cx.pin(&all).await?;
        let config = haproxy_config(&settings, &controller)?;
        let facts = block_in_place(|| {
            let session = cx.fleet.lease(&controller)?;
            facts::probe(&session, &settings, &plan::managed_paths(&settings))
        })?;
        let cached = Cache::new(&settings).read().map(|(meta, _)| meta);
        let mut plan = Plan::decide(
            &settings,
            controller,
            &facts,
            cached.as_ref(),
            config.clone(),
        );
        for peer in more {
            let probed = block_in_place(|| {
                let session = cx.fleet.lease(&peer)?;
                peers::probe(&session, &settings)
            });
            let first_pem = plan.settled_pem().map(String::from);
            plan.peers.push(match probed {
                Ok(facts) => {
                    peers::PeerPlan::decide(&settings, peer, &facts, &config, first_pem.as_deref())
                }
                // A host key that is not the pinned one stops everything; an unreachable peer
                // only itself (as in bootstrap): the stage goes on and fails at the end.
                Err(e) if e.chain().any(|c| c.is::<crate::ssh::HostKeyRejected>()) => {
                    return Err(e.context(format!("probing HAProxy on {}", peer.hostname)));
                }
                Err(e) => {
                    cx.host(&peer.hostname, format!("probe failed: {e:#}"));
                    peers::PeerPlan::unreachable(peer, format!("{e:#}"))
                }
            });
        }
        let changes = plan.changes(&settings);
        self.plan = Some(plan);
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let mut plan = self.plan.take().context("apply without probe")?;
        let settings = cx.settings.clone();
        let host = plan.controller.hostname.clone();
        let session = block_in_place(|| cx.fleet.lease(&plan.controller))?;

        if !plan.install.is_empty() {
            cx.host(&host, format!("installing {}", plan.install.join(" ")));
            block_in_place(|| install(&session, &plan.install))?;
        }
        if !plan.hooks.is_empty() {
            block_in_place(|| hooks::install(&session, &plan.hooks))?;
            cx.host(
                &host,
                "renewal hooks installed (pre: stop haproxy, post: start haproxy, deploy: PEM + reload)",
            );
        }
        // Safe point: after a Ctrl-C nothing is asked of the ACME server.
        crate::interrupt::check()?;

        // The lineage now on the host, for the cache.
        let lineage = match &plan.certificate {
            Certificate::Keep { lineage, .. } => Some(CacheMeta::of(&settings, lineage)),
            Certificate::Restore => {
                let meta = block_in_place(|| certificate::restore(&session, &settings))?;
                cx.host(
                    &host,
                    format!(
                        "certificate restored from the state dir (valid {} more days; no ACME order)",
                        (meta.not_after - certificate::now()) / 86_400
                    ),
                );
                Some(meta)
            }
            Certificate::Issue(_) => {
                certificate::dns_first(cx, &plan.controller.public_ip).await?;
                if plan.acme.is_some() {
                    // Every HAProxy forwards the challenge before the CA is asked.
                    block_in_place(|| ha::serve_port_80(cx, &session, &mut plan))?;
                }
                block_in_place(|| certificate::issue(cx, &session, &host, plan.acme.as_ref()))?;
                // Safe point: certbot is done and haproxy serves again (with the new PEM).
                crate::interrupt::check()?;
                let issued = block_in_place(|| facts::probe(&session, &settings, &[]))?
                    .cert
                    .context("no certificate for the domain on the controller after certbot")?;
                certificate::check_issued(&settings, &issued)?;
                Some(CacheMeta::of(&settings, &issued))
            }
        };
        // The renewal config (window, HTTP-01 listener) made right on the host: the cache gets
        // it too, so that the lineage a rebuilt controller restores renews without a second run.
        let renewal_changed = block_in_place(|| renewal_config(cx, &session, &plan))?;
        if plan.cache || (renewal_changed && plan.recache) {
            let lineage = lineage.context("no lineage on the controller to cache")?;
            block_in_place(|| certificate::save_cache(&session, &settings, &lineage))?;
            cx.info(format!(
                "certificate lineage cached in {} (0600)",
                Cache::new(&settings).tar.display()
            ));
        }
        // An issued certificate's PEM was built before haproxy started again.
        if plan.writes_pem() && !matches!(plan.certificate, Certificate::Issue(_)) {
            block_in_place(|| haproxy::build_pem(&session, &settings))?;
            cx.host(&host, format!("PEM written: {}", settings.haproxy.pem_path));
        }
        if let Some(config) = &plan.config {
            block_in_place(|| haproxy::install_config(&session, &settings, config))?;
            cx.host(
                &host,
                format!("{} checked and installed", settings.haproxy.config_path),
            );
        }
        if plan.loads_haproxy()
            && let Some(done) =
                block_in_place(|| haproxy::service(&session, Service::ReloadOrStart))?
        {
            cx.host(&host, format!("haproxy {done}"));
        }
        if plan.enable {
            block_in_place(|| haproxy::service(&session, Service::Enable))?;
        }
        if !plan.peers.is_empty() {
            block_in_place(|| ha::converge_peers(cx, &session, &mut plan))?;
        }
        ha::failed_peers(&plan)
    }
}
