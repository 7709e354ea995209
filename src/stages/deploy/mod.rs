//! The deploy stage: Traefik (CRDs, then the resources from `templates/traefik/`, with the
//! backup objects when `[backup]` is set), the MongoDB secret, the Rocket.Chat Helm release, a
//! check that every IngressRoute backend is a Service, and the optional image-prune DaemonSet,
//! through the tunnel; then, after changes, a bounded wait for the site to answer through
//! HAProxy (`site.rs`). This file is the `Stage` glue: the probe asks each part (`traefik.rs`,
//! `release.rs`, `secret.rs`, `routes.rs`, `maintenance.rs`) what it needs and puts the answers
//! in a `Plan`, a list of steps that `apply` executes in order.
//!
//! Every kubectl and helm call gets the tunnel's kubeconfig (`crate::kube::Tools`). Nothing is
//! applied when nothing changed: the live Traefik objects carry the hash of what was applied, the
//! release's values are compared with `helm get values`, and the MongoDB secret is compared in
//! memory.
//! Mongo URIs reach kubectl on standard input only, never an argument or a file.

use anyhow::{Context, Result};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::report::Change;
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::templates::Templates;

mod backup;
mod db_version;
mod db_version_external;
mod maintenance;
pub mod mongodb;
mod release;
mod rollout;
mod routes;
mod secret;
mod site;
mod traefik;
mod values_diff;

use crate::kube::Tools;
pub use backup::{
    BACKUP_MOUNT_PATH, BACKUP_STARTING_DEADLINE_SECONDS, backup_script_indented,
    upload_script_indented,
};
pub use maintenance::CONTAINERD_SOCKET;
/// For `jeeves start`: what it runs once the pipeline has repaired the stack.
pub use maintenance::after_start;
pub use mongodb::{Status as MongodbStatus, context as mongodb_context};
use release::{Recovery, Release};
use secret::MongoSecret;

/// For `jeeves check`: the MongoDB the bundled subchart's StatefulSet (`kubectl get
/// statefulset NAME -o json`) runs, judged against the chart's Rocket.Chat: `Ok(message)` when
/// it accepts it, `Err(message)` when it exits on it.
pub fn judge_bundled_statefulset(
    settings: &Settings,
    sts: &serde_json::Value,
) -> Result<std::result::Result<String, String>> {
    let chart = settings.helm.reads;
    let name = crate::chart::bundled_mongodb_fullname(&settings.helm.release);
    let server = db_version::from_statefulset(&name, sts)?;
    let said = format!(
        "MongoDB {} ({}); Rocket.Chat {} needs {} or newer",
        server.version, server.source, chart.app_version, chart.mongodb_min
    );
    Ok(match chart.rejects(server.version) {
        None => Ok(said),
        Some(_) => Err(said),
    })
}

/// For `jeeves check` in external mode: the server's version read by a Job
/// (`db_version_external`), judged against the chart's Rocket.Chat: `Ok(message)` when it
/// accepts it, `Err(message)` when it exits on it.
pub async fn judge_external_server(
    settings: &Settings,
    tools: &Tools,
    say: impl FnMut(crate::process::Said<'_>),
) -> Result<std::result::Result<String, String>> {
    let chart = settings.helm.reads;
    let server = db_version_external::read(tools, settings, say).await?;
    let said = format!(
        "MongoDB {} ({}); Rocket.Chat {} needs {} or newer",
        server.version, server.source, chart.app_version, chart.mongodb_min
    );
    Ok(match chart.rejects(server.version) {
        None => Ok(said),
        Some(_) => Err(said),
    })
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The database's version against what the chart's Rocket.Chat accepts: refused (exit 2), or
/// said.
fn refuse_server(
    cx: &StageContext<'_>,
    chart: &crate::chart::ChartVersion,
    server: &db_version::Server,
) -> Result<()> {
    db_version::refuse_server(cx.settings, chart, server)?;
    cx.info(format!(
        "MongoDB {} ({}): Rocket.Chat {} needs {} or newer",
        server.version, server.source, chart.app_version, chart.mongodb_min
    ));
    Ok(())
}

/// The files the stage hands to kubectl and helm (no secrets in any of them).
struct Rendered {
    traefik: traefik::Manifests,
    values: release::Values,
    /// With `[maintenance] image_prune`: the image-prune DaemonSet.
    prune: Option<maintenance::PruneManifest>,
    /// With `helm.mongodb = "operator"`: the operator's values and the `MongoDBCommunity`.
    mongodb: Option<mongodb::Rendered>,
}

/// Renders everything before writing anything, into `<state>/deploy/`.
fn render(settings: &Settings) -> Result<Rendered> {
    let templates = Templates::load(&settings.templates_dir)?;
    let ctx = crate::stages::template_context(settings);
    let dir = settings.state_dir.join("deploy");
    let rendered = Rendered {
        traefik: traefik::Manifests::render(&templates, &ctx, settings, &dir)?,
        values: release::Values::render(&templates, &ctx, settings, &dir)?,
        prune: settings
            .maintenance
            .image_prune
            .then(|| maintenance::PruneManifest::render(&templates, &ctx, &dir))
            .transpose()?,
        mongodb: mongodb::Rendered::render(&templates, &ctx, &dir)?,
    };
    crate::state::create_private_dir(&dir)?;
    if let Some(m) = &rendered.mongodb {
        m.write()?;
    }
    rendered.traefik.write()?;
    rendered.values.write()?;
    if let Some(prune) = &rendered.prune {
        prune.write()?;
    }
    Ok(rendered)
}

/// One thing `apply` does; a plan's steps are in the order they must run.
enum Step {
    /// The Traefik CRDs and objects, then their rollout.
    Traefik,
    /// `helm.mongodb = "operator"`: the operator, the replica set, the wait, the URI's copy.
    Mongodb(mongodb::Step),
    /// The MongoDB secret (missing, or not holding what it should).
    Secret(MongoSecret),
    /// Undo what an interrupted or failed helm left.
    Recover(Recovery),
    /// External mode, before Rocket.Chat rolls: the server's version, read by a Job
    /// (`db_version_external`), refused when the chart's Rocket.Chat exits on it.
    ExternalVersion,
    /// `helm upgrade --install` with the rendered values.
    Upgrade,
    /// Roll the release's Deployments: their pods read the changed secret only when they start.
    Restart,
    /// `Restart`, if the operator's URI replaced the live secret (known only once copied).
    RestartIfUriReplaced,
    /// Every IngressRoute backend is a live Service with its port.
    CheckRoutes,
    /// The image-prune DaemonSet (`[maintenance] image_prune`).
    ImagePrune,
    /// `/api/info` answers 200 through HAProxy (`site.rs`).
    AwaitSite,
}

struct Plan {
    tools: Tools,
    rendered: Rendered,
    steps: Vec<Step>,
}

#[derive(Default)]
pub struct DeployStage {
    plan: Option<Plan>,
}

#[async_trait]
impl Stage for DeployStage {
    fn name(&self) -> StageName {
        StageName::Deploy
    }

    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>> {
        let chart = cx.settings.helm.reads;
        // Before anything is read: the chart's own MongoDB is one its Rocket.Chat exits on.
        db_version::refuse_bundled(cx.settings, chart)?;
        // `[backup]` without a bucket: terraform's, from the inventory the terraform stage read.
        let inv = &cx.state.inventory;
        let rendered = render(
            &cx.settings
                .backup_from_outputs(inv.backup_bucket.as_deref(), inv.backup_prefix.as_deref())?,
        )?;
        // The run's tunnel, opened here when the run has none yet (`up --only deploy`).
        let kubeconfig = super::tunnel::kubeconfig_for_run(cx).await?;
        let tools = Tools::new(cx.settings, kubeconfig)?;
        let cx = &*cx;
        // `up --force deploy` applies the Traefik objects and the release whatever they are.
        let force = cx.force;

        // The probes are independent reads: they all run at once (each kubectl or helm call is
        // a round trip through the tunnel). The live Traefik objects serve both their hash check
        // and the routes' backends; the Services of the namespaces the rendered routes name are
        // read too, in case nothing changes.
        let (live, diff, release, live_secret, services, found) = tokio::join!(
            traefik::read_live(&tools, cx, &rendered.traefik),
            traefik::diff(&tools, cx, &rendered.traefik),
            release::probe(&tools, cx, &rendered.values),
            secret::read(&tools, cx),
            routes::read_services(&tools, cx, &rendered.traefik.route_namespaces),
            site::probe(cx),
        );
        let live = live?;
        let traefik = traefik::judge(cx, &rendered.traefik, &live, diff)?;
        let release = release?;
        // A Rocket.Chat about to roll: never onto an older one, never onto a database it exits
        // on. Refused before anything else is planned. (Nothing rolls when the release is
        // current: no read, plan stays fast.)
        let rolls = release.release != Release::Current;
        if rolls {
            if let Some(running) = &release.running {
                db_version::refuse_downgrade(
                    cx.settings,
                    chart,
                    &running.chart,
                    &running.app_version,
                    cx.allow_downgrade,
                )?;
            }
            if cx.settings.helm.bundled_mongodb {
                let server =
                    db_version::bundled(&tools, cx, chart, &rendered.values.wanted).await?;
                refuse_server(cx, chart, &server)?;
            }
        }
        let live_secret = live_secret?;
        let secret = secret::update(
            cx.settings,
            &live_secret,
            release.release == Release::Install,
        )?;
        let database = match &rendered.mongodb {
            Some(m) => Some(mongodb::probe(&tools, cx, m, &live_secret, force).await?),
            None => None,
        };
        if let (true, Some(plan)) = (rolls, &database) {
            // The operator's replica set as the database probe read it (or the pin, before it
            // exists).
            let pin = crate::mongo_version::MongoVersion::coerce(&cx.settings.mongodb.version)
                .context("mongodb.version is not a version")?;
            let server = db_version::from_mongodbcommunity(
                &cx.settings.mongodb.name,
                plan.replica_set.as_ref(),
                pin,
            )?;
            refuse_server(cx, chart, &server)?;
        }

        let mut steps = Vec::new();
        if traefik.is_some() || force {
            steps.push(Step::Traefik);
        }
        let mut database_changes = Vec::new();
        let mut uri_restart = false;
        if let Some(plan) = database {
            steps.extend(plan.steps.into_iter().map(Step::Mongodb));
            database_changes = plan.changes;
            uri_restart = plan.restart;
        }
        let mut secret_change = None;
        let mut restart = false;
        if let Some(update) = secret {
            steps.push(Step::Secret(update.secret));
            secret_change = Some(update.change);
            restart = update.replaces;
        }
        if let Some(recovery) = release.recovery {
            steps.push(Step::Recover(recovery));
        }
        let upgrade = release.release != Release::Current || force;
        // External mode: nothing in the cluster names the server's version; a Job asks the
        // server, in `up` only (plan starts no pod), after the Secret it reads is written:
        // before a roll, and before the restart a new URI makes (the new server may be older).
        let external =
            (rolls || restart) && cx.settings.helm.mongodb == crate::config::MongodbMode::External;
        let mut version_change = None;
        if external {
            steps.push(Step::ExternalVersion);
            version_change = Some(Change::new(
                "read",
                format!(
                    "the external MongoDB's version, by a Job running mongosh db.version() with secret {}/{}, before Rocket.Chat rolls: refused if Rocket.Chat {} needs newer than {} (not read by plan: it starts no pod)",
                    cx.settings.helm.namespace,
                    cx.settings.helm.mongodb_secret,
                    chart.app_version,
                    chart.mongodb_min
                ),
            ));
        }
        if upgrade {
            steps.push(Step::Upgrade);
        }
        if restart {
            steps.push(Step::Restart);
        } else if uri_restart {
            steps.push(Step::RestartIfUriReplaced);
        }
        if traefik.is_some() || upgrade {
            steps.push(Step::CheckRoutes);
        }
        if steps.is_empty() {
            // Nothing to apply: the routes must still lead somewhere. (Otherwise what they found
            // does not count: apply checks them after it changed things; `--force deploy`
            // applies first and checks after: that is how a deleted Service comes back.)
            routes::check_live(&tools, cx, &rendered.traefik, live, services).await?;
        }

        let prune = match &rendered.prune {
            Some(p) => p.probe(&tools, cx).await?,
            None => None,
        };
        if prune.is_some() || (force && rendered.prune.is_some()) {
            steps.push(Step::ImagePrune);
        }

        let mut changes: Vec<Change> = [
            traefik,
            release.recover_change,
            secret_change,
            version_change,
            prune,
        ]
        .into_iter()
        .flatten()
        .chain(database_changes)
        .chain(release.changes)
        .collect();
        let found = found?;
        if found == site::Found::NoHttps {
            cx.info(
                "nothing serves HTTPS on the controller yet (the tls stage sets HAProxy up): no \
                 wait for /api/info",
            );
        }
        if let Some(wait) = site::plan(cx.settings, &found, !steps.is_empty()) {
            steps.push(Step::AwaitSite);
            changes.push(wait);
        }
        self.plan = Some(Plan {
            tools,
            rendered,
            steps,
        });
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let Plan {
            tools,
            rendered,
            steps,
        } = self.plan.take().context("apply without probe")?;
        let cx = &*cx;
        let mut uri_replaced = false;
        for step in steps {
            match step {
                Step::Traefik => traefik::apply(&tools, cx, &rendered.traefik).await?,
                Step::Mongodb(step) => {
                    let r = rendered.mongodb.as_ref().context("rendered in probe")?;
                    uri_replaced |= mongodb::apply(&tools, cx, r, step).await?;
                }
                Step::RestartIfUriReplaced => {
                    if uri_replaced {
                        rollout::restart(&tools, cx).await?;
                    }
                }
                Step::Secret(secret) => secret::apply(&tools, cx, &secret).await?,
                Step::Recover(recovery) => release::recover(&tools, cx, recovery).await?,
                Step::ExternalVersion => {
                    let server =
                        db_version_external::read(&tools, cx.settings, |s| cx.tool_said(s, false))
                            .await?;
                    refuse_server(cx, cx.settings.helm.reads, &server)?;
                }
                Step::Upgrade => rollout::upgrade(&tools, cx, &rendered.values).await?,
                Step::Restart => rollout::restart(&tools, cx).await?,
                Step::ImagePrune => {
                    if let Some(prune) = &rendered.prune {
                        prune.apply(&tools, cx).await?;
                    }
                }
                Step::AwaitSite => site::wait(cx).await?,
                Step::CheckRoutes => {
                    routes::check(&tools, cx, &rendered.traefik).await?;
                    cx.host(
                        "traefik",
                        "every IngressRoute backend is a live Service with its port",
                    );
                }
            }
        }
        Ok(())
    }
}
