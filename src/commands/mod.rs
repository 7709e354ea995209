//! One module per command. Settings are loaded here, once; commands get plain data.

mod backup;
mod completion;
mod doctor;
mod down;
mod init;
mod kubeconfig;
mod logs;
mod plan;
mod power;
mod render;
mod ssh;
mod status;
mod tunnel;
mod up;
mod version;

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{ConfigErrors, Env, Purpose, Settings};
use crate::exit_code;
use crate::report::{Event, Redactor, Reporter, ReporterOptions};
use crate::state::{RunLock, StateDir};

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
        Command::Ssh(args) => ssh::run(&settings, &args),
        Command::Logs(args) => logs::run(&settings, &args),
        Command::Backup(args) => backup::run(&g, &settings, redactor, &args).await,
        Command::Doctor | Command::Init(_) | Command::Version | Command::Completion(_) => {
            unreachable!("handled above")
        }
    }
}

fn redactor_extend(redactor: &Redactor, settings: &Settings) {
    for s in &settings.secrets {
        redactor.add(s.clone());
    }
}

/// The state directory, the lock and a reporter with a log file: what `up`, `plan` and `down`
/// share.
struct Session {
    state_dir: StateDir,
    reporter: Reporter,
    _lock: RunLock,
    log_file: PathBuf,
}

impl Session {
    fn open(
        g: &GlobalArgs,
        settings: &Settings,
        redactor: Redactor,
        command: &str,
    ) -> Result<Session> {
        let state_dir = StateDir::open(&settings.state_dir)?;
        let lock = RunLock::acquire(&state_dir.file("lock"), command, g.lock_timeout)?;
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
        Ok(Session {
            state_dir,
            reporter,
            _lock: lock,
            log_file,
        })
    }
}

/// Emits `run_finished`, writes the reports, and turns the run's outcome into an exit code.
fn finish_run(session: &Session, started: std::time::Instant, result: Result<()>) -> Result<u8> {
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
