//! `jeeves completion SHELL`: the completion script clap_complete generates from the command
//! line's own definition, so it never lags behind a new flag.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit_code;

pub fn run(shell: clap_complete::Shell) -> Result<u8> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "jeeves", &mut std::io::stdout());
    Ok(exit_code::SUCCESS)
}
