use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use super::{Session, check_ssh_key_for};
use crate::cli::{GlobalArgs, UpArgs};
use crate::config::Settings;
use crate::exit_code::UsageError;
use crate::fleet::Fleet;
use crate::report::{Event, Level, Redactor};
use crate::runner::{self, Mode, Runner};
use crate::ssh::HostKeyPolicy;

pub async fn run(
    g: &GlobalArgs,
    settings: &Arc<Settings>,
    redactor: Redactor,
    args: &UpArgs,
) -> Result<u8> {
    let stages = runner::select(&args.select)?;
    if let Some(f) = args.force.iter().find(|f| !stages.contains(f)) {
        return Err(UsageError(format!(
            "--force {f}: stage `{f}` is not selected for this run"
        ))
        .into());
    }
    check_ssh_key_for(settings, &stages)?;
    let session = Session::open(g, settings, redactor, "up").await?;
    let host_keys = if args.accept_new_host_keys {
        HostKeyPolicy::AcceptNew
    } else {
        HostKeyPolicy::Strict
    };
    let (code, _) = execute(
        settings,
        &session,
        Mode::Up,
        &stages,
        &Options {
            force: &args.force,
            host_keys,
            allow_replace: args.allow_replace,
            allow_downgrade: args.allow_downgrade,
        },
        "up",
    )
    .await?;
    Ok(code)
}

/// How `up` (or `plan`) may act.
pub(super) struct Options<'a> {
    pub force: &'a [crate::stage_name::StageName],
    pub host_keys: HostKeyPolicy,
    pub allow_replace: bool,
    pub allow_downgrade: bool,
}

/// Shared by `up` and `plan`: run the stages and report the run. Returns the exit code and
/// whether any stage planned changes.
pub(super) async fn execute(
    settings: &Arc<Settings>,
    session: &Session,
    mode: Mode,
    stages: &[crate::stage_name::StageName],
    opts: &Options<'_>,
    command: &str,
) -> Result<(u8, bool)> {
    crate::interrupt::install()?;
    let started = Instant::now();
    let reporter = &session.reporter;
    let mut state = session.state_dir.load()?;
    reporter.emit(Event::RunStarted {
        command: command.to_string(),
        pipeline: settings.name.clone(),
        stages: stages.to_vec(),
    });
    let fleet = Fleet::new(&settings.ssh, opts.host_keys);
    let runner = Runner {
        settings,
        state_dir: &session.state_dir,
        reporter,
        fleet: &fleet,
        allow_replace: opts.allow_replace,
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
    let changes = report
        .results
        .iter()
        .any(|(_, r)| *r == crate::state::StageResult::Changed);
    super::finish_run(session, started, report.into_result()).map(|code| (code, changes))
}
