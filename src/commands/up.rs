use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use super::{Session, check_ssh_key_for};
use crate::cli::{GlobalArgs, UpArgs};
use crate::config::Settings;
use crate::exit_code::UsageError;
use crate::fleet::Fleet;
use crate::report::{Change, Event, Level, Redactor, Reporter};
use crate::runner::{self, Mode, RunReport, Runner};
use crate::saved_plan::SavedPlan;
use crate::ssh::HostKeyPolicy;
use crate::stage_name::StageName;

pub async fn run(
    g: &GlobalArgs,
    settings: &Arc<Settings>,
    redactor: Redactor,
    args: &UpArgs,
) -> Result<u8> {
    let host_keys = if args.accept_new_host_keys {
        HostKeyPolicy::AcceptNew
    } else {
        HostKeyPolicy::Strict
    };
    if let Some(path) = &args.plan {
        return apply_saved(g, settings, redactor, path, host_keys).await;
    }
    let stages = runner::select(&args.select)?;
    if let Some(f) = args.force.iter().find(|f| !stages.contains(f)) {
        return Err(UsageError(format!(
            "--force {f}: stage `{f}` is not selected for this run"
        ))
        .into());
    }
    check_ssh_key_for(settings, &stages)?;
    let session = Session::open(g, settings, redactor, "up").await?;
    let run = execute(
        settings,
        &session,
        Mode::Up,
        &stages,
        &Options {
            force: &args.force,
            host_keys,
            allow_replace: args.allow_replace,
            saved_tfplan: None,
            allow_downgrade: args.allow_downgrade,
        },
        "up",
    )
    .await?;
    Ok(run.code)
}

/// `up --plan FILE`: the saved plan's stages, after a fresh plan (kept out of sight) has found
/// exactly the saved changes; terraform applies the saved plan file itself. Anything that moved
/// stops the run with exit 2 before a change is made.
async fn apply_saved(
    g: &GlobalArgs,
    settings: &Arc<Settings>,
    redactor: Redactor,
    path: &Path,
    host_keys: HostKeyPolicy,
) -> Result<u8> {
    let saved = SavedPlan::load(path)?;
    saved.check_inputs(settings)?;
    check_ssh_key_for(settings, &saved.stages)?;
    let session = Session::open(g, settings, redactor, "up").await?;
    let tfplan = match saved.terraform_plan_bytes()? {
        Some(bytes) => {
            // Terraform runs in its configuration's directory: an absolute path.
            let file = std::path::absolute(session.state_dir.path().join("approved.tfplan"))?;
            crate::state::write_private(&file, &bytes)?;
            Some(file)
        }
        None => None,
    };
    if saved.stages.contains(&StageName::Terraform) && tfplan.is_none() {
        return Err(UsageError(format!(
            "{}: the saved plan covers terraform but holds no terraform plan",
            path.display()
        ))
        .into());
    }
    crate::interrupt::install()?;
    let started = Instant::now();
    session.reporter.emit(Event::RunStarted {
        command: "up".into(),
        pipeline: settings.name.clone(),
        stages: saved.stages.clone(),
    });
    session.reporter.log(
        None,
        Level::Info,
        format!(
            "saved plan {} ({}): planning again to compare",
            path.display(),
            saved.created_at
        ),
    );
    let opts = Options {
        force: &[],
        host_keys,
        allow_replace: false,
        saved_tfplan: None,
        allow_downgrade: saved.allow_downgrade,
    };
    let (quiet, _) = session.reporter.held();
    let fresh = run_stages(settings, &session, &quiet, Mode::Plan, &saved.stages, &opts).await?;
    let result = match fresh.failed {
        Some((stage, e)) => Err(e.context(format!(
            "planning again to compare with the saved plan failed at {stage}; nothing was applied"
        ))),
        None => match moved(settings, &session, &saved, &fresh.planned).await {
            Err(e) => Err(e),
            Ok(moved) if moved.is_empty() => {
                session.reporter.log(
                    None,
                    Level::Info,
                    "a fresh plan finds the saved plan's changes exactly: applying it",
                );
                let opts = Options {
                    allow_replace: true,
                    saved_tfplan: tfplan.as_deref(),
                    ..opts
                };
                run_stages(
                    settings,
                    &session,
                    &session.reporter,
                    Mode::Up,
                    &saved.stages,
                    &opts,
                )
                .await
                .and_then(RunReport::into_result)
            }
            Ok(moved) => Err(UsageError(format!(
                "the stack has moved since the plan was saved ({}); a fresh plan differs:\n  {}\nNothing was applied: make and approve a new plan (`jeeves plan --out FILE`)",
                saved.created_at,
                moved.join("\n  ")
            ))
            .into()),
        },
    };
    if let Some(file) = &tfplan {
        std::fs::remove_file(file).ok();
        std::fs::remove_file(file.with_extension("show.json")).ok();
    }
    super::finish_run(&session, started, result)
}

/// What differs between the saved plan and the fresh one: each stage's changes, and what
/// terraform would make of each resource.
async fn moved(
    settings: &Settings,
    session: &Session,
    saved: &SavedPlan,
    fresh: &[(StageName, Vec<Change>)],
) -> Result<Vec<String>> {
    let mut moved = saved.moved(fresh);
    if moved.is_empty() && saved.stages.contains(&StageName::Terraform) {
        let tf = crate::stages::terraform::terraform(settings, &session.state_dir)?;
        moved = saved.moved_resources(&tf.digests(&tf.plan_file()?).await?);
    }
    Ok(moved)
}

/// How `up` (or `plan`) may act.
pub(super) struct Options<'a> {
    pub force: &'a [StageName],
    pub host_keys: HostKeyPolicy,
    pub allow_replace: bool,
    pub saved_tfplan: Option<&'a Path>,
    pub allow_downgrade: bool,
}

/// What `execute` ran.
pub(super) struct Executed {
    pub code: u8,
    /// Some stage planned changes.
    pub changes: bool,
    pub planned: Vec<(StageName, Vec<Change>)>,
}

/// Shared by `up` and `plan`: run the stages and report the run.
pub(super) async fn execute(
    settings: &Arc<Settings>,
    session: &Session,
    mode: Mode,
    stages: &[StageName],
    opts: &Options<'_>,
    command: &str,
) -> Result<Executed> {
    crate::interrupt::install()?;
    let started = Instant::now();
    session.reporter.emit(Event::RunStarted {
        command: command.to_string(),
        pipeline: settings.name.clone(),
        stages: stages.to_vec(),
    });
    let mut report = run_stages(settings, session, &session.reporter, mode, stages, opts).await?;
    let changes = report
        .results
        .iter()
        .any(|(_, r)| *r == crate::state::StageResult::Changed);
    let planned = std::mem::take(&mut report.planned);
    let code = super::finish_run(session, started, report.into_result())?;
    Ok(Executed {
        code,
        changes,
        planned,
    })
}

/// The stages with the run's own hosts layer, closed before it returns.
async fn run_stages(
    settings: &Arc<Settings>,
    session: &Session,
    reporter: &Reporter,
    mode: Mode,
    stages: &[StageName],
    opts: &Options<'_>,
) -> Result<RunReport> {
    let mut state = session.state_dir.load()?;
    let fleet = Fleet::new(&settings.ssh, opts.host_keys);
    let runner = Runner {
        settings,
        state_dir: &session.state_dir,
        reporter,
        fleet: &fleet,
        allow_replace: opts.allow_replace,
        saved_tfplan: opts.saved_tfplan,
        allow_downgrade: opts.allow_downgrade,
    };
    let report = runner.run(mode, stages, opts.force, &mut state).await;
    reporter.log(
        None,
        Level::Output,
        format!("ssh: {} handshake(s) in this run", fleet.handshakes()),
    );
    // Closes the run's SSH sessions and tunnel (blocking: libssh2 says goodbye to each host).
    tokio::task::spawn_blocking(move || drop(fleet)).await.ok();
    Ok(report)
}
