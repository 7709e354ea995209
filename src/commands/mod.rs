//! One module per command. Settings are loaded here, once, for every command but `doctor`
//! (which loads them itself, to report what is wrong in them), `init`, `version` and
//! `completion` (which need none); commands get plain data.

mod backup;
mod check;
mod completion;
mod doctor;
mod down;
mod init;
mod kubeconfig;
mod logs;
mod plan;
mod power;
mod render;
mod show;
mod ssh;
mod status;
mod tunnel;
mod unlock;
mod up;
mod version;

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::StateSettings;
use crate::config::{ConfigErrors, Env, Purpose, Settings};
use crate::exit_code;
use crate::report::{Event, Level, Redactor, Reporter, ReporterOptions};
use crate::state::{RunLock, S3Lock, SharedState, StateDir};

pub async fn dispatch(cli: Cli, env: Env, redactor: Redactor) -> Result<u8> {
    let g = cli.global;
    if g.verbose {
        eprintln!("info: {}", env.file_summary());
    }
    // Commands that need no pipeline.
    match cli.command {
        Command::Doctor => return doctor::run(&g, &env).await,
        Command::Init(args) => return init::run(&args),
        Command::Version => return version::run(g.output),
        Command::Show(args) => return show::run(g.output, &args),
        Command::Completion(args) => return completion::run(args.shell),
        _ => {}
    }
    let purpose = match cli.command {
        Command::Status
        | Command::Tunnel
        | Command::Kubeconfig(_)
        | Command::Ssh(_)
        | Command::Logs(_) => Purpose::Inspect,
        _ => Purpose::Run,
    };
    let settings = std::sync::Arc::new(Settings::load_for(&g.pipeline, &env, purpose)?);
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(region) = &settings.project.region {
        crate::aws::use_region(region);
    }
    redactor_extend(&redactor, &settings);
    match cli.command {
        Command::Up(args) => up::run(&g, &settings, redactor, &args).await,
        Command::Plan(args) => plan::run(&g, &settings, redactor, &args).await,
        Command::Status => status::run(&g, &settings).await,
        Command::Stop(args) => power::stop(&g, &settings, redactor, &args).await,
        Command::Start(args) => power::start(&g, &settings, redactor, &args).await,
        Command::Down(args) => down::run(&g, &settings, redactor, &args).await,
        Command::Render(args) => render::run(&settings, &args),
        Command::Tunnel => tunnel::run(&settings).await,
        Command::Kubeconfig(args) => kubeconfig::run(&settings, &args),
        Command::Ssh(args) => ssh::run(&settings, &args).await,
        Command::Logs(args) => logs::run(&settings, &args),
        Command::Unlock(args) => unlock::run(&settings, &args).await,
        Command::Check => check::run(&g, &settings, redactor).await,
        Command::Backup(args) => backup::run(&g, &settings, redactor, &args).await,
        Command::Restore(args) => backup::restore(&g, &settings, redactor, &args).await,
        Command::Doctor
        | Command::Init(_)
        | Command::Version
        | Command::Show(_)
        | Command::Completion(_) => {
            unreachable!("handled above")
        }
    }
}

fn redactor_extend(redactor: &Redactor, settings: &Settings) {
    for s in &settings.secrets {
        redactor.add(s.clone());
    }
}

/// A command that takes the stack away (`down`, `stop`) goes ahead only with `--yes`, or on a
/// terminal once the pipeline's name is typed. `command`: `jeeves down`; `what`: what it does,
/// as the refusal says it; `question`: the prompt's verb phrase; `undone`: what did not happen.
fn confirm_by_name(
    settings: &Settings,
    yes: bool,
    command: &str,
    what: &str,
    question: &str,
    undone: &str,
) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(exit_code::UsageError(format!(
            "`{command}` {what}; pass --yes to confirm when stdin is not a terminal"
        ))
        .into());
    }
    eprint!(
        "{question} of pipeline `{}` ({})? Type the pipeline name to confirm: ",
        settings.name, settings.domain
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != settings.name {
        return Err(exit_code::UsageError(format!("not confirmed; {undone}")).into());
    }
    Ok(())
}

/// The reporter of a command's run, with its log file `logs/<time>-<command>.log` in the state
/// directory.
fn run_reporter(
    g: &GlobalArgs,
    settings: &Settings,
    state_dir: &StateDir,
    redactor: Redactor,
    command: &str,
) -> Result<(Reporter, PathBuf)> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    let log_file = state_dir
        .path()
        .join("logs")
        .join(format!("{stamp}-{command}.log"));
    let reporter = Reporter::new(
        ReporterOptions {
            output: g.output,
            verbose: g.verbose,
            junit: g.junit.clone(),
            log_file: Some(log_file.clone()),
            pipeline: settings.name.clone(),
        },
        redactor,
    )?;
    Ok((reporter, log_file))
}

/// The state directory, the lock and a reporter with a log file: what `up`, `plan` and `down`
/// share.
///
/// With the S3 backend, the S3 lock is taken after the local one (two runs in one checkout
/// never both reach S3) and released before it; the state is pulled once it is held.
struct Session {
    state_dir: StateDir,
    reporter: Reporter,
    _s3_lock: Option<S3Lock>,
    _lock: RunLock,
    log_file: PathBuf,
}

impl Session {
    async fn open(
        g: &GlobalArgs,
        settings: &Settings,
        redactor: Redactor,
        command: &str,
    ) -> Result<Session> {
        let mut state_dir = StateDir::open(&settings.state_dir)?;
        let lock = RunLock::acquire(&state_dir.file("lock"), command, g.lock_timeout)?;
        let mut s3_lock = None;
        let mut pulled = None;
        if let Some(bucket) = state_bucket(settings).await? {
            s3_lock = Some(S3Lock::acquire(&bucket, command, g.lock_timeout)?);
            let shared = std::sync::Arc::new(SharedState::new(bucket, state_dir.path()));
            pulled = Some(shared.pull()?);
            state_dir.share(shared);
        }
        let (reporter, log_file) = run_reporter(g, settings, &state_dir, redactor, command)?;
        if let (Some(names), Some(shared)) = (pulled, state_dir.shared()) {
            reporter.log(
                None,
                Level::Info,
                format!(
                    "state: lock taken, pulled [{}] from s3://{}/{}/",
                    names.join(", "),
                    shared.bucket().name,
                    shared.bucket().prefix
                ),
            );
        }
        Ok(Session {
            state_dir,
            reporter,
            _s3_lock: s3_lock,
            _lock: lock,
            log_file,
        })
    }
}

/// For commands that take no S3 lock (`tunnel`, `check`, `ssh`, `backup`): with the S3 backend,
/// refreshes the working copy from the bucket unless a local run holds it (that run keeps it
/// current). The local lock is held briefly meanwhile (`RunLock::brief`): a run starting then waits
/// for the refresh instead of failing with exit 3. Objects are written whole, so a read without the
/// S3 lock sees an old or a new version, never a torn one. Called before the command takes any
/// local lock of its own.
async fn refresh_working_copy(
    settings: &Settings,
    state_dir: &StateDir,
    command: &str,
) -> Result<Option<Vec<String>>> {
    let Some(bucket) = state_bucket(settings).await? else {
        return Ok(None);
    };
    let _local = match RunLock::brief(&state_dir.file("lock"), command) {
        Ok(lock) => lock,
        Err(e) if e.is::<crate::state::LockBusy>() => return Ok(None),
        Err(e) => return Err(e),
    };
    SharedState::new(bucket, state_dir.path()).pull().map(Some)
}

/// The state bucket, when `[state] backend = "s3"`.
async fn state_bucket(settings: &Settings) -> Result<Option<crate::aws::s3::Bucket>> {
    match &settings.state {
        StateSettings::Local => Ok(None),
        StateSettings::S3 {
            bucket,
            key_prefix,
            region,
        } => Ok(Some(
            crate::aws::s3::Bucket::open(bucket, key_prefix, region.as_deref()).await?,
        )),
    }
}

/// Emits `run_finished`, writes the reports, and turns the run's outcome into an exit code.
fn finish_run(session: &Session, started: std::time::Instant, result: Result<()>) -> Result<u8> {
    // Whatever the outcome, the bucket gets what this run learnt (pinned keys included).
    let result = match (result, session.state_dir.push()) {
        (result, Ok(())) => result,
        (Ok(()), Err(e)) => Err(e.context(
            "the run succeeded but its state could not be pushed to the state bucket; run it again to push it",
        )),
        (Err(run), Err(push)) => {
            session.reporter.log(
                None,
                Level::Warn,
                format!("the state could not be pushed to the state bucket either: {push:#}"),
            );
            Err(run)
        }
    };
    let code = match &result {
        Ok(()) => exit_code::SUCCESS,
        Err(e) => exit_code::for_error(e),
    };
    session.reporter.emit(Event::RunFinished {
        result: if code == exit_code::SUCCESS {
            "success"
        } else {
            "failed"
        }
        .to_string(),
        duration_ms: started.elapsed().as_millis() as u64,
        exit_code: code,
        error: result.as_ref().err().map(|e| format!("{e:#}")),
    });
    session.reporter.finish()?;
    if result.is_err() {
        eprintln!("full log: {}", session.log_file.display());
    }
    result.map(|()| code)
}

/// Checks the SSH key only when a selected stage logs in to hosts.
fn check_ssh_key_for(
    settings: &Settings,
    stages: &[crate::stage_name::StageName],
) -> Result<(), ConfigErrors> {
    if stages.iter().any(|s| s.uses_ssh()) {
        settings.check_ssh_key()?;
    }
    if stages.contains(&crate::stage_name::StageName::Deploy) {
        settings.check_deploy()?;
    }
    Ok(())
}
