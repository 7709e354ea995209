use anyhow::Result;

use super::Session;
use crate::cli::{GlobalArgs, PlanArgs};
use crate::config::Settings;
use crate::report::Redactor;
use crate::runner::{self, Mode};
use crate::saved_plan::SavedPlan;
use crate::ssh::HostKeyPolicy;
use crate::stage_name::StageName;

/// Probes only. It takes the lock too: terraform's plan file and state lock are shared with `up`.
/// With `--out FILE` the plan is saved for `up --plan FILE` (`crate::saved_plan`).
pub async fn run(
    g: &GlobalArgs,
    settings: &std::sync::Arc<Settings>,
    redactor: Redactor,
    args: &PlanArgs,
) -> Result<u8> {
    let stages = runner::select(&args.select)?;
    super::check_ssh_key_for(settings, &stages)?;
    let session = Session::open(g, settings, redactor, "plan").await?;
    let run = super::up::execute(
        settings,
        &session,
        Mode::Plan,
        &stages,
        &super::up::Options {
            force: &[],
            host_keys: HostKeyPolicy::Strict,
            allow_replace: false,
            saved_tfplan: None,
            allow_downgrade: args.allow_downgrade,
        },
        "plan",
    )
    .await?;
    if let (Some(out), crate::exit_code::SUCCESS) = (&args.out, run.code) {
        // Terraform writes its plan file whether or not it found changes.
        let tfplan = if stages.contains(&StageName::Terraform) {
            let tf = crate::stages::terraform::terraform(settings, &session.state_dir)?;
            let file = tf.plan_file()?;
            let bytes = std::fs::read(&file).map_err(|e| {
                anyhow::anyhow!("cannot read terraform's plan file {}: {e}", file.display())
            })?;
            Some((bytes, tf.digests(&file).await?))
        } else {
            None
        };
        SavedPlan::new(
            settings,
            &stages,
            args.allow_downgrade,
            &run.planned,
            tfplan,
        )?
        .save(out)?;
        eprintln!(
            "Saved the plan to {}. Apply exactly this with `jeeves up --plan {}`; review it with `jeeves show {}`.",
            out.display(),
            out.display(),
            out.display()
        );
    }
    Ok(if args.detailed_exitcode && run.changes {
        crate::exit_code::CHANGES_PENDING
    } else {
        run.code
    })
}
