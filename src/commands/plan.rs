use anyhow::Result;

use super::Session;
use crate::cli::{GlobalArgs, SelectArgs};
use crate::config::Settings;
use crate::report::Redactor;
use crate::runner::{self, Mode};
use crate::ssh::HostKeyPolicy;

/// Probes only. It takes the lock too: terraform's plan file and state lock are shared with `up`.
pub async fn run(
    g: &GlobalArgs,
    settings: &Settings,
    redactor: Redactor,
    args: &SelectArgs,
) -> Result<u8> {
    let stages = runner::select(args)?;
    super::check_ssh_key_for(settings, &stages)?;
    let session = Session::open(g, settings, redactor, "plan")?;
    super::up::execute(
        settings,
        &session,
        Mode::Plan,
        &stages,
        &[],
        HostKeyPolicy::Strict,
        "plan",
    )
    .await
}
