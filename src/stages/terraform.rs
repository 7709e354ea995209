//! The terraform stage: init, plan (-detailed-exitcode), a plan that replaces or destroys
//! refused unless confirmed, apply of that very plan with its progress reported, then the
//! outputs into the inventory. Terraform itself is run by the adapter in `crate::terraform`.

use anyhow::Result;
use async_trait::async_trait;

use crate::config::Settings;
use crate::exit_code::UsageError;
use crate::process;
use crate::report::{Change, Level};
use crate::stage::{Stage, StageContext, StageLog};
use crate::stage_name::StageName;
use crate::state::StateDir;
use crate::terraform::{Options, Progress, Terraform};

#[derive(Default)]
pub struct TerraformStage {
    /// Set by the probe when the saved plan has changes to apply.
    plan_has_changes: bool,
    /// `replace ADDRESS` / `destroy ADDRESS` in the saved plan.
    destructive: Vec<String>,
}

fn is_destructive(c: &Change) -> bool {
    c.action == "replace" || c.action == "destroy"
}

/// A plan that replaces or destroys resources is applied only when the user says so: on a
/// terminal by typing `yes` after seeing what would go; elsewhere only with `--allow-replace`
/// (exit 2 otherwise, nothing applied).
fn confirm_destruction(cx: &StageContext<'_>, what: &[String]) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let list = what.join("\n  ");
    if !std::io::stdin().is_terminal() || std::env::var_os("CI").is_some() {
        return Err(UsageError(format!(
            "the terraform plan would replace or destroy:\n  {list}\nNothing was applied. Their data goes with them: if that is intended, run `jeeves up --allow-replace`, or run on a terminal to confirm"
        ))
        .into());
    }
    let answer = cx.reporter.pause(|| -> Result<String> {
        eprint!(
            "\nThe terraform plan would REPLACE or DESTROY:\n  {list}\nTheir data goes with them. Type `yes` to apply: "
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(answer)
    })?;
    if answer.trim() != "yes" {
        return Err(UsageError("not confirmed; nothing was applied".into()).into());
    }
    Ok(())
}

/// The terraform adapter as the pipeline configures it: Jeeves' variables are the pipeline's
/// `[terraform.vars]` plus the project name and tags; the plan and the variables file live in
/// the state directory.
pub fn terraform(settings: &Settings, state_dir: &StateDir) -> Result<Terraform> {
    let tf = &settings.terraform;
    let mut vars: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(serde_json::to_value(&tf.vars)?)?;
    vars.entry("project")
        .or_insert_with(|| settings.project.name.clone().into());
    vars.entry("tags")
        .or_insert_with(|| serde_json::json!(settings.project.tags));
    // Only past one: a single-controller stack's variables stay as they were (the
    // configurations' default is 1).
    if !settings.cluster.single() {
        vars.insert("controllers".into(), settings.cluster.controllers.into());
    }
    Ok(Terraform::new(Options {
        bin: process::find_tool(&settings.tools.terraform, "tools.terraform")?,
        dir: tf.dir.clone(),
        vars,
        var_files: tf.var_files.clone(),
        backend_config: tf.backend_config.clone(),
        timeout: tf.timeout,
        timeout_setting: "terraform.timeout",
        work_dir: state_dir.path().to_path_buf(),
    }))
}

/// An apply's or destroy's progress as the stage's events: per resource as host progress,
/// diagnostics and terraform's own lines in the log.
pub fn report(cx: StageLog<'_>) -> impl FnMut(Progress<'_>) + '_ {
    move |p| match p {
        Progress::Started { address, action } => cx.host(address, format!("{action}: started")),
        Progress::Working { address, seconds } => {
            cx.host(address, format!("still working ({seconds:.0}s)"))
        }
        Progress::Done {
            address,
            action,
            seconds,
        } => cx.host(address, format!("{action}: done ({seconds:.0}s)")),
        Progress::Failed { address } => cx.host(address, "failed"),
        Progress::Diagnostic { warn: true, text } => cx.warn(text),
        Progress::Diagnostic { warn: false, text } => {
            cx.reporter.log(Some(cx.stage), Level::Output, text)
        }
        Progress::Summary(text) => cx.info(text),
        Progress::Said(said) => cx.tool_said(said, true),
    }
}

#[async_trait]
impl Stage for TerraformStage {
    fn name(&self) -> StageName {
        StageName::Terraform
    }

    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>> {
        let tf = terraform(cx.settings, cx.state_dir)?;
        cx.info("terraform init");
        tf.init(|s| cx.tool_said(s, true)).await?;
        let planned = match cx.saved_tfplan {
            // `up --plan FILE`: what was approved, not a new plan.
            Some(saved) => {
                cx.info("the saved terraform plan (jeeves up --plan)");
                tf.show(saved, |s| cx.tool_said(s, true)).await?
            }
            None => {
                cx.info("terraform plan");
                tf.plan(|s| cx.tool_said(s, true)).await?
            }
        };
        let mut changes: Vec<Change> = planned
            .into_iter()
            .map(|c| Change::new(c.action, c.address))
            .collect();
        self.plan_has_changes = !changes.is_empty();
        // What would go comes first, and loudly: a routine repair must not rebuild the cluster.
        changes.sort_by_key(|c| !is_destructive(c));
        self.destructive = changes
            .iter()
            .filter(|c| is_destructive(c))
            .map(|c| format!("{} {}", c.action, c.target))
            .collect();
        if !self.destructive.is_empty() {
            cx.warn(format!(
                "terraform would REPLACE or DESTROY {} resource(s): {}. Their data goes with them; `up` asks first (or needs --allow-replace)",
                self.destructive.len(),
                self.destructive.join(", ")
            ));
        }
        if changes.is_empty() {
            // Nothing to apply, but the inventory may be missing (fresh checkout, remote
            // backend) or stale: refresh it from the outputs.
            let inventory = tf.outputs(|s| cx.tool_said(s, true)).await?;
            if inventory != cx.state.inventory {
                cx.info("inventory refreshed from terraform outputs");
                cx.state.inventory = inventory;
            }
        }
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let tf = terraform(cx.settings, cx.state_dir)?;
        match cx.saved_tfplan {
            // Approved as saved, replacements included; terraform itself refuses it when the
            // state has moved on since.
            Some(saved) => tf
                .apply_saved(saved, report(cx.log()))
                .await
                .map_err(|e| match e.downcast::<crate::terraform::Stale>() {
                    Ok(stale) => UsageError(format!(
                        "terraform refused the saved plan: the state has changed since it was made (another run applied in between). Nothing was applied: make and approve a new plan (`jeeves plan --out FILE`).\n{stale}"
                    ))
                    .into(),
                    Err(e) => e,
                })?,
            None => {
                if !self.destructive.is_empty() && !cx.allow_replace {
                    confirm_destruction(cx, &self.destructive)?;
                }
                if self.plan_has_changes {
                    tf.apply_plan(report(cx.log())).await?;
                } else {
                    tf.apply_fresh(report(cx.log())).await?;
                }
            }
        }
        cx.state.inventory = tf.outputs(|s| cx.tool_said(s, true)).await?;
        let inv = &cx.state.inventory;
        // One controller: said as before; more: each of them.
        let more: String = inv
            .more_controllers
            .iter()
            .map(|h| format!(", {}", h.public_ip))
            .collect();
        cx.info(format!(
            "inventory: controller {}{more}, {} worker(s)",
            inv.controller
                .as_ref()
                .map(|h| h.public_ip.as_str())
                .unwrap_or("-"),
            inv.workers.len()
        ));
        Ok(())
    }
}
