//! Jeeves: a pipeline runner that stands up Rocket.Chat (microservices) on MicroK8s on AWS.

pub mod aws;
pub mod chart;
pub mod cli;
pub mod commands;
pub mod config;
pub mod exit_code;
pub mod fleet;
pub mod https;
pub mod interrupt;
pub mod kube;
pub mod mongo_version;
pub mod process;
pub mod report;
pub mod runner;
pub mod saved_plan;
pub mod ssh;
pub mod stage;
pub mod stage_name;
pub mod stages;
pub mod state;
pub mod templates;
pub mod terraform;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::config::Env;
use crate::report::Redactor;

/// Parses the command line, runs the command, and turns its outcome into an exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return exit_code::exit(if e.use_stderr() {
                exit_code::USAGE
            } else {
                exit_code::SUCCESS
            });
        }
    };
    // Before any thread exists: loading `.env` sets process environment variables.
    let (env_file, required) = match &cli.global.env_file {
        Some(file) => (file.clone(), true),
        None => (std::path::PathBuf::from(".env"), false),
    };
    let env = match Env::load_process(&env_file, required) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code::exit(exit_code::USAGE);
        }
    };
    let redactor = Redactor::new(env.secret_values());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit_code::exit(exit_code::STAGE_FAILED);
        }
    };
    match runtime.block_on(commands::dispatch(cli, env, redactor.clone())) {
        Ok(code) => exit_code::exit(code),
        Err(e) => {
            eprintln!("error: {}", redactor.redact(&format!("{e:#}")));
            exit_code::exit(exit_code::for_error(&e))
        }
    }
}
