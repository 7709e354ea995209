//! The terraform stage: init, plan (-detailed-exitcode), apply of that very plan with its JSON
//! UI turned into progress, then `output -json` into the inventory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use serde::Deserialize;
use tokio::process::Command;

use crate::config::Settings;
use crate::exit_code::UsageError;
use crate::process;
use crate::report::{Change, Level, Reporter};
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::state::{Host, Inventory, StateDir, write_private};

const PLAN_FILE: &str = "terraform.tfplan";
const VARS_FILE: &str = "terraform.tfvars.json";

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

/// The terraform binary, run in the configuration directory with Jeeves' variables.
pub struct Terraform<'a> {
    bin: PathBuf,
    settings: &'a Settings,
    state_dir: &'a StateDir,
    reporter: &'a Reporter,
    stage: StageName,
}

impl<'a> Terraform<'a> {
    pub fn new(
        settings: &'a Settings,
        state_dir: &'a StateDir,
        reporter: &'a Reporter,
        stage: StageName,
    ) -> Result<Self> {
        let bin = process::find_tool(&settings.tools.terraform, "tools.terraform")?;
        Ok(Terraform {
            bin,
            settings,
            state_dir,
            reporter,
            stage,
        })
    }

    /// Every terraform command is bounded by `terraform.timeout`.
    fn deadline(&self) -> process::Deadline {
        process::Deadline {
            within: self.settings.terraform.timeout,
            setting: "terraform.timeout",
        }
    }

    fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("-chdir={}", self.settings.terraform.dir.display()))
            .arg(subcommand)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0");
        cmd
    }

    /// Waits for the state lock rather than failing on it, within the command's own bound: a
    /// terraform left running by a run that was killed holds the lock until it has finished
    /// what it started (Jeeves' tools outlive a SIGKILLed run: `process::run`).
    fn lock_timeout(&self) -> String {
        format!("-lock-timeout={}s", self.deadline().within.as_secs())
    }

    fn abs(&self, name: &str) -> Result<PathBuf> {
        std::path::absolute(self.state_dir.file(name)).context("cannot resolve the state directory")
    }

    /// `-var-file` arguments: Jeeves' own file, then the pipeline's `var_files` (later wins).
    fn var_file_args(&self) -> Result<Vec<String>> {
        let mut args = vec![format!("-var-file={}", self.write_vars()?.display())];
        for f in &self.settings.terraform.var_files {
            let abs = std::path::absolute(f)
                .with_context(|| format!("cannot resolve {}", f.display()))?;
            args.push(format!("-var-file={}", abs.display()));
        }
        Ok(args)
    }

    /// Writes the variables file (pipeline vars + project name and tags), mode 0600.
    fn write_vars(&self) -> Result<PathBuf> {
        let mut vars = self.settings.terraform.vars.clone();
        vars.entry("project")
            .or_insert_with(|| self.settings.project.name.clone().into());
        vars.entry("tags")
            .or_insert_with(|| serde_json::json!(self.settings.project.tags));
        let path = self.abs(VARS_FILE)?;
        write_private(&path, serde_json::to_string_pretty(&vars)?.as_bytes())?;
        Ok(path)
    }

    pub async fn init(&self) -> Result<()> {
        let mut cmd = self.command("init");
        cmd.args(["-input=false", "-no-color"]);
        for (k, v) in &self.settings.terraform.backend_config {
            cmd.arg(format!("-backend-config={k}={v}"));
        }
        process::run_checked(&mut cmd, self.stage, self.reporter, self.deadline(), &[0]).await?;
        Ok(())
    }

    /// `plan -detailed-exitcode -out=…`: the changes, empty when there are none.
    pub async fn plan(&self) -> Result<Vec<Change>> {
        let plan = self.abs(PLAN_FILE)?;
        let mut cmd = self.command("plan");
        cmd.args(["-input=false", "-no-color", "-detailed-exitcode"])
            .arg(self.lock_timeout())
            .args(self.var_file_args()?)
            .arg(format!("-out={}", plan.display()));
        let out = process::run_checked(
            &mut cmd,
            self.stage,
            self.reporter,
            self.deadline(),
            &[0, 2],
        )
        .await?;
        // A saved plan holds variable values in clear text.
        restrict(&plan)?;
        if out.status.code() == Some(0) {
            return Ok(Vec::new());
        }
        let mut show = self.command("show");
        show.arg("-json").arg(&plan);
        let out = process::run(
            &mut show,
            self.stage,
            self.reporter,
            self.deadline(),
            |_| {},
        )
        .await?;
        if !out.status.success() {
            bail!("`terraform show -json` failed:\n{}", out.tail(20));
        }
        let changes = plan_changes(&out.stdout)?;
        // Only outputs changed: still worth applying so the inventory follows.
        Ok(if changes.is_empty() {
            vec![Change::new("update", "outputs")]
        } else {
            changes
        })
    }

    /// Applies the saved plan, turning terraform's JSON UI into progress events.
    pub async fn apply_plan(&self, cx: &StageContext<'_>) -> Result<()> {
        let plan = self.abs(PLAN_FILE)?;
        let mut cmd = self.command("apply");
        cmd.args(["-input=false", "-json"])
            .arg(self.lock_timeout())
            .arg(&plan);
        self.run_json(cmd, cx).await
    }

    /// `apply -auto-approve` without a saved plan (forced runs, where the plan was empty).
    pub async fn apply_fresh(&self, cx: &StageContext<'_>) -> Result<()> {
        self.run_unplanned("apply", cx).await
    }

    pub async fn destroy(&self, cx: &StageContext<'_>) -> Result<()> {
        self.run_unplanned("destroy", cx).await
    }

    async fn run_unplanned(&self, subcommand: &str, cx: &StageContext<'_>) -> Result<()> {
        let mut cmd = self.command(subcommand);
        cmd.args(["-input=false", "-json", "-auto-approve"])
            .arg(self.lock_timeout())
            .args(self.var_file_args()?);
        self.run_json(cmd, cx).await
    }

    async fn run_json(&self, mut cmd: Command, cx: &StageContext<'_>) -> Result<()> {
        let program = process::describe(&cmd);
        let mut errors = Vec::new();
        let out = process::run(
            &mut cmd,
            self.stage,
            self.reporter,
            self.deadline(),
            |line| match serde_json::from_str::<UiLine>(line) {
                Ok(ui) => ui.report(cx, &mut errors),
                Err(_) => cx
                    .reporter
                    .log(Some(self.stage), Level::Output, line.to_string()),
            },
        )
        .await?;
        if !out.status.success() {
            let detail = if errors.is_empty() {
                out.tail(20)
            } else {
                errors.join("\n")
            };
            bail!("{program} failed:\n{detail}");
        }
        Ok(())
    }

    /// `output -json`, as an inventory.
    pub async fn outputs(&self) -> Result<Inventory> {
        let mut cmd = self.command("output");
        cmd.args(["-json", "-no-color"]);
        let out =
            process::run(&mut cmd, self.stage, self.reporter, self.deadline(), |_| {}).await?;
        if !out.status.success() {
            bail!("`terraform output -json` failed:\n{}", out.tail(20));
        }
        parse_outputs(&out.stdout, &self.settings.terraform.dir)
    }
}

#[async_trait]
impl Stage for TerraformStage {
    fn name(&self) -> StageName {
        StageName::Terraform
    }

    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>> {
        let tf = Terraform::new(cx.settings, cx.state_dir, cx.reporter, cx.stage)?;
        cx.info("terraform init");
        tf.init().await?;
        cx.info("terraform plan");
        let mut changes = tf.plan().await?;
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
            let inventory = tf.outputs().await?;
            if inventory != cx.state.inventory {
                cx.info("inventory refreshed from terraform outputs");
                cx.state.inventory = inventory;
            }
        }
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let tf = Terraform::new(cx.settings, cx.state_dir, cx.reporter, cx.stage)?;
        if !self.destructive.is_empty() && !cx.allow_replace {
            confirm_destruction(cx, &self.destructive)?;
        }
        if self.plan_has_changes {
            tf.apply_plan(cx).await?;
        } else {
            tf.apply_fresh(cx).await?;
        }
        cx.state.inventory = tf.outputs().await?;
        let inv = &cx.state.inventory;
        cx.info(format!(
            "inventory: controller {}, {} worker(s)",
            inv.controller
                .as_ref()
                .map(|h| h.public_ip.as_str())
                .unwrap_or("-"),
            inv.workers.len()
        ));
        Ok(())
    }
}

/// One line of terraform's machine-readable UI (`-json`); only the fields Jeeves reads.
#[derive(Debug, Deserialize)]
struct UiLine {
    #[serde(rename = "@level", default)]
    level: String,
    #[serde(rename = "@message", default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    hook: Option<Hook>,
    #[serde(default)]
    diagnostic: Option<Diagnostic>,
}

#[derive(Debug, Deserialize)]
struct Hook {
    resource: Option<HookResource>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    elapsed_seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct HookResource {
    addr: String,
}

#[derive(Debug, Deserialize)]
struct Diagnostic {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    detail: String,
}

impl UiLine {
    fn report(self, cx: &StageContext<'_>, errors: &mut Vec<String>) {
        let addr = self
            .hook
            .as_ref()
            .and_then(|h| h.resource.as_ref())
            .map(|r| r.addr.clone());
        match (self.kind.as_str(), addr) {
            ("apply_start", Some(addr)) => {
                let action = self.hook.map(|h| h.action).unwrap_or_default();
                cx.host(addr, format!("{action}: started"));
            }
            ("apply_progress", Some(addr)) => {
                let secs = self
                    .hook
                    .and_then(|h| h.elapsed_seconds)
                    .unwrap_or_default();
                cx.host(addr, format!("still working ({secs:.0}s)"));
            }
            ("apply_complete", Some(addr)) => {
                let hook = self.hook.expect("addr came from the hook");
                let secs = hook.elapsed_seconds.unwrap_or_default();
                cx.host(addr, format!("{}: done ({secs:.0}s)", hook.action));
            }
            ("apply_errored", Some(addr)) => cx.host(addr, "failed"),
            ("diagnostic", _) => {
                let d = self.diagnostic.unwrap_or(Diagnostic {
                    summary: self.message.clone(),
                    detail: String::new(),
                });
                let text = if d.detail.is_empty() {
                    d.summary
                } else {
                    format!("{}: {}", d.summary, d.detail)
                };
                if self.level == "error" {
                    errors.push(text.clone());
                }
                let level = if self.level == "error" || self.level == "warn" {
                    Level::Warn
                } else {
                    Level::Output
                };
                cx.reporter.log(Some(cx.stage), level, text);
            }
            ("change_summary", _) => cx.info(self.message),
            _ => cx.reporter.log(Some(cx.stage), Level::Output, self.message),
        }
    }
}

#[cfg(unix)]
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", path.display()))
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> Result<()> {
    Ok(())
}

/// The resource changes in `terraform show -json <plan>`.
fn plan_changes(json: &str) -> Result<Vec<Change>> {
    #[derive(Deserialize)]
    struct Plan {
        #[serde(default)]
        resource_changes: Vec<ResourceChange>,
    }
    #[derive(Deserialize)]
    struct ResourceChange {
        address: String,
        change: ChangeBody,
    }
    #[derive(Deserialize)]
    struct ChangeBody {
        actions: Vec<String>,
    }
    let plan: Plan = serde_json::from_str(json).context("cannot read `terraform show -json`")?;
    Ok(plan
        .resource_changes
        .into_iter()
        .filter_map(|rc| {
            let action = match rc
                .change
                .actions
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["no-op"] | ["read"] => return None,
                ["create"] => "create",
                ["update"] => "update",
                ["delete"] => "destroy",
                ["delete", "create"] | ["create", "delete"] => "replace",
                _ => "change",
            };
            Some(Change::new(action, rc.address))
        })
        .collect())
}

/// `terraform output -json` → inventory. Both configurations (AWS and lab) define the outputs
/// `controller` (an object) and `workers` (a list of objects) with the fields of `Host`.
pub fn parse_outputs(json: &str, dir: &Path) -> Result<Inventory> {
    #[derive(Deserialize)]
    struct Output<T> {
        value: T,
    }
    #[derive(Deserialize)]
    struct Outputs {
        controller: Option<Output<Host>>,
        workers: Option<Output<Vec<Host>>>,
    }
    let hint = || {
        format!(
            "the terraform configuration in {} must define the outputs `controller` (object with id, hostname, public_ip, private_ip) and `workers` (list of such objects)",
            dir.display()
        )
    };
    let outputs: Outputs = serde_json::from_str(json).with_context(hint)?;
    if outputs.controller.is_none() && outputs.workers.is_none() {
        // No outputs at all: nothing applied yet (or destroyed).
        return Ok(Inventory::default());
    }
    let (Some(controller), Some(workers)) = (outputs.controller, outputs.workers) else {
        bail!("{}", hint());
    };
    Ok(Inventory {
        controller: Some(controller.value),
        workers: workers.value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_become_the_inventory() {
        let json = r#"{
          "controller": {"sensitive": false, "type": "object", "value": {"id": "i-0a", "hostname": "ip-10-0-1-10", "public_ip": "203.0.113.10", "private_ip": "10.0.1.10"}},
          "workers": {"sensitive": false, "type": "list", "value": [{"id": "i-0b", "hostname": "ip-10-0-1-11", "public_ip": "203.0.113.11", "private_ip": "10.0.1.11"}]}
        }"#;
        let inv = parse_outputs(json, Path::new("terraform/aws")).unwrap();
        assert_eq!(inv.controller.unwrap().private_ip, "10.0.1.10");
        assert_eq!(inv.workers.len(), 1);
        assert!(parse_outputs("{}", Path::new("x")).unwrap().is_empty());
        let err = parse_outputs(r#"{"controller": {"value": {"id": "a", "hostname": "b", "public_ip": "c", "private_ip": "d"}}}"#, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("`workers`"), "{err}");
    }

    #[test]
    fn plan_changes_skip_no_ops() {
        let json = r#"{"resource_changes": [
          {"address": "terraform_data.controller", "change": {"actions": ["create"]}},
          {"address": "terraform_data.worker[0]", "change": {"actions": ["no-op"]}},
          {"address": "aws_instance.worker[1]", "change": {"actions": ["delete", "create"]}}
        ]}"#;
        let changes = plan_changes(json).unwrap();
        assert_eq!(
            changes,
            vec![
                Change::new("create", "terraform_data.controller"),
                Change::new("replace", "aws_instance.worker[1]"),
            ]
        );
    }
}
