use anyhow::Result;

use super::Session;
use crate::cli::{GlobalArgs, PlanArgs};
use crate::config::Settings;
use crate::report::Redactor;
use crate::runner::{self, Mode};
use crate::ssh::HostKeyPolicy;

/// Probes only. It takes the lock too: terraform's plan file and state lock are shared with `up`.
pub async fn run(
    g: &GlobalArgs,
    settings: &std::sync::Arc<Settings>,
    redactor: Redactor,
    args: &PlanArgs,
) -> Result<u8> {
    let stages = runner::select(&args.select)?;
    super::check_ssh_key_for(settings, &stages)?;
    let session = Session::open(g, settings, redactor, "plan").await?;
    let (code, changes) = super::up::execute(
        settings,
        &session,
        Mode::Plan,
        &stages,
        &super::up::Options {
            force: &[],
            host_keys: HostKeyPolicy::Strict,
            allow_replace: false,
            allow_downgrade: args.allow_downgrade,
        },
        "plan",
    )
    .await?;
    Ok(if args.detailed_exitcode && changes {
        crate::exit_code::CHANGES_PENDING
    } else {
        code
    })
}
