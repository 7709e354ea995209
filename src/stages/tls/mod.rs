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
//!
//! Parts: `facts` (the probe), `plan` (what to do, as data), `certificate`, `haproxy`, `hooks`,
//! and `health` (what `jeeves check` reads of HAProxy, through the same probe).
//! This file is the stage's glue and how it reaches the controller.

mod certificate;
mod facts;
mod haproxy;
mod health;
mod hooks;
mod plan;

pub use health::{HaproxyHealth, haproxy_health};

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio::task::block_in_place;

use crate::report::Change;
use crate::ssh::{RemoteCommand, SshSession};
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::templates::{HAPROXY_CFG, Templates};

use certificate::Cache;
use haproxy::Service;
use plan::{Certificate, Plan};

const LE: &str = "/etc/letsencrypt";

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
        cx.pin(std::slice::from_ref(&controller)).await?;
        let templates = Templates::load(&settings.templates_dir)?;
        let config = templates.render(HAPROXY_CFG, &crate::stages::template_context(&settings))?;
        let facts = block_in_place(|| {
            let session = cx.fleet.lease(&controller)?;
            facts::probe(&session, &settings, &plan::managed_paths(&settings))
        })?;
        let cached = Cache::new(&settings).read().map(|(meta, _)| meta);
        let plan = Plan::decide(&settings, controller, &facts, cached.as_ref(), config);
        let changes = plan.changes(&settings);
        self.plan = Some(plan);
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let plan = self.plan.take().context("apply without probe")?;
        let settings = cx.settings.clone();
        let host = plan.controller.hostname.clone();
        let session = block_in_place(|| cx.fleet.lease(&plan.controller))?;

        if !plan.install.is_empty() {
            cx.host(&host, format!("installing {}", plan.install.join(" ")));
            block_in_place(|| -> Result<()> {
                run(&session, RemoteCommand::new("apt-get").arg("update"))?;
                run(
                    &session,
                    RemoteCommand::new("env")
                        .args(["DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y"])
                        .args(plan.install.iter().copied()),
                )?;
                Ok(())
            })?;
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
            Certificate::Keep { lineage, .. } => Some(lineage.clone()),
            Certificate::Restore => {
                let meta = block_in_place(|| certificate::restore(&session, &settings))?;
                cx.host(
                    &host,
                    format!(
                        "certificate restored from the state dir (valid {} more days; no ACME order)",
                        (meta.not_after - certificate::now()) / 86_400
                    ),
                );
                None
            }
            Certificate::Issue(_) => {
                certificate::dns_first(cx, &plan.controller.public_ip).await?;
                block_in_place(|| certificate::issue(cx, &session, &host))?;
                // Safe point: certbot is done and haproxy serves again (with the new PEM).
                crate::interrupt::check()?;
                let issued = block_in_place(|| facts::probe(&session, &settings, &[]))?
                    .cert
                    .context("no certificate for the domain on the controller after certbot")?;
                certificate::check_issued(&settings, &issued)?;
                Some(issued)
            }
        };
        // A new lineage follows tls.renew_before too (the script leaves a right one alone).
        if !matches!(plan.certificate, Certificate::Keep { window: None, .. })
            && block_in_place(|| certificate::set_window(&session, &settings))?
        {
            cx.host(
                &host,
                format!(
                    "certbot's renewal window set to {} (tls.renew_before)",
                    certificate::certbot_window(&settings)
                ),
            );
        }
        if plan.cache {
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
        Ok(())
    }
}
