//! The terraform binary as Jeeves runs it: in the configuration directory with Jeeves' own
//! variables file, every command bounded and waiting for the state lock; plans, apply progress
//! (from terraform's JSON UI) and outputs come back as data. Knows nothing of stages or of how
//! progress is reported; the terraform stage and `jeeves down` both use it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use tokio::process::Command;

use crate::process::{self, Said};
use crate::state::{Host, Inventory, write_private};

mod show;
mod ui;

use ui::UiLine;
mod kept;
pub use kept::KEPT_MODULE;

const PLAN_FILE: &str = "terraform.tfplan";
const VARS_FILE: &str = "terraform.tfvars.json";

/// The terraform binary, run in the configuration directory with Jeeves' variables.
pub struct Terraform {
    opts: Options,
}

/// How to run terraform: plain values (the terraform stage builds them from the pipeline).
#[derive(Debug, Clone)]
pub struct Options {
    pub bin: PathBuf,
    /// The configuration directory (`-chdir`).
    pub dir: PathBuf,
    /// Jeeves' variables, written to a private file in `work_dir` and passed first.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Further `-var-file`s, in order (later wins).
    pub var_files: Vec<PathBuf>,
    pub backend_config: std::collections::BTreeMap<String, String>,
    /// Every command's bound, and how long to wait for the state lock.
    pub timeout: std::time::Duration,
    /// The setting that sets `timeout`, for messages.
    pub timeout_setting: &'static str,
    /// Where the saved plan and the variables file go (private).
    pub work_dir: PathBuf,
}

/// One resource change in a saved plan: `create`, `update`, `replace`, `destroy` or `change`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    pub action: String,
    pub address: String,
}

impl PlannedChange {
    fn new(action: &str, address: impl Into<String>) -> PlannedChange {
        PlannedChange {
            action: action.into(),
            address: address.into(),
        }
    }
}

/// What an apply or destroy reports as it goes, from terraform's JSON UI.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress<'a> {
    Started {
        address: &'a str,
        action: &'a str,
    },
    Working {
        address: &'a str,
        seconds: f64,
    },
    Done {
        address: &'a str,
        action: &'a str,
        seconds: f64,
    },
    Failed {
        address: &'a str,
    },
    /// A diagnostic; `warn` for warnings and errors.
    Diagnostic {
        warn: bool,
        text: &'a str,
    },
    /// The change summary (`Apply complete! Resources: …`).
    Summary(&'a str),
    /// Anything else terraform said, and Jeeves' notices about it.
    Said(Said<'a>),
}

impl Terraform {
    pub fn new(opts: Options) -> Terraform {
        Terraform { opts }
    }

    /// Every terraform command is bounded by `terraform.timeout`.
    fn deadline(&self) -> process::Deadline {
        process::Deadline {
            within: self.opts.timeout,
            setting: self.opts.timeout_setting,
        }
    }

    fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(&self.opts.bin);
        cmd.arg(format!("-chdir={}", self.opts.dir.display()))
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
        std::path::absolute(self.opts.work_dir.join(name))
            .context("cannot resolve the state directory")
    }

    /// `-var-file` arguments: Jeeves' own file, then the pipeline's `var_files` (later wins).
    fn var_file_args(&self) -> Result<Vec<String>> {
        let mut args = vec![format!("-var-file={}", self.write_vars()?.display())];
        for f in &self.opts.var_files {
            let abs = std::path::absolute(f)
                .with_context(|| format!("cannot resolve {}", f.display()))?;
            args.push(format!("-var-file={}", abs.display()));
        }
        Ok(args)
    }

    /// Writes the variables file, mode 0600.
    fn write_vars(&self) -> Result<PathBuf> {
        let path = self.abs(VARS_FILE)?;
        write_private(
            &path,
            serde_json::to_string_pretty(&self.opts.vars)?.as_bytes(),
        )?;
        Ok(path)
    }

    pub async fn init(&self, mut on: impl FnMut(Said<'_>)) -> Result<()> {
        let mut cmd = self.command("init");
        cmd.args(["-input=false", "-no-color"]);
        for (k, v) in &self.opts.backend_config {
            cmd.arg(format!("-backend-config={k}={v}"));
        }
        process::run_checked(&mut cmd, self.deadline(), &[0], &mut on).await?;
        Ok(())
    }

    /// `plan -detailed-exitcode -out=…`: the changes, empty when there are none (`update
    /// outputs` when only outputs change: still worth applying so the inventory follows).
    pub async fn plan(&self, mut on: impl FnMut(Said<'_>)) -> Result<Vec<PlannedChange>> {
        let plan = self.abs(PLAN_FILE)?;
        let mut cmd = self.command("plan");
        cmd.args(["-input=false", "-no-color", "-detailed-exitcode"])
            .arg(self.lock_timeout())
            .args(self.var_file_args()?)
            .arg(format!("-out={}", plan.display()));
        let out = process::run_checked(&mut cmd, self.deadline(), &[0, 2], &mut on).await?;
        // A saved plan holds variable values in clear text.
        restrict(&plan)?;
        if out.status.code() == Some(0) {
            return Ok(Vec::new());
        }
        let changes = self.show(&plan, on).await?;
        Ok(if changes.is_empty() {
            vec![PlannedChange::new("update", "outputs")]
        } else {
            changes
        })
    }

    /// Where `plan` saves its plan file (private).
    pub fn plan_file(&self) -> Result<PathBuf> {
        self.abs(PLAN_FILE)
    }

    /// Applies a plan file another run saved (`jeeves up --plan`). Terraform refuses it when
    /// the state has moved on since: that is `Stale`, with terraform's words.
    pub async fn apply_saved(&self, plan: &Path, on: impl FnMut(Progress<'_>)) -> Result<()> {
        let mut cmd = self.command("apply");
        cmd.args(["-input=false", "-json"])
            .arg(self.lock_timeout())
            .arg(plan);
        self.run_json(cmd, on).await.map_err(|e| {
            let text = format!("{e:#}");
            if text.contains("Saved plan is stale") {
                Stale(text).into()
            } else {
                e
            }
        })
    }

    /// Applies the saved plan, reporting its progress.
    pub async fn apply_plan(&self, on: impl FnMut(Progress<'_>)) -> Result<()> {
        let plan = self.abs(PLAN_FILE)?;
        let mut cmd = self.command("apply");
        cmd.args(["-input=false", "-json"])
            .arg(self.lock_timeout())
            .arg(&plan);
        self.run_json(cmd, on).await
    }

    /// `apply -auto-approve` without a saved plan (forced runs, where the plan was empty).
    pub async fn apply_fresh(&self, on: impl FnMut(Progress<'_>)) -> Result<()> {
        self.run_unplanned("apply", on).await
    }

    pub async fn destroy(&self, on: impl FnMut(Progress<'_>)) -> Result<()> {
        self.run_unplanned("destroy", on).await
    }

    async fn run_unplanned(&self, subcommand: &str, on: impl FnMut(Progress<'_>)) -> Result<()> {
        let mut cmd = self.command(subcommand);
        cmd.args(["-input=false", "-json", "-auto-approve"])
            .arg(self.lock_timeout())
            .args(self.var_file_args()?);
        self.run_json(cmd, on).await
    }

    async fn run_json(&self, mut cmd: Command, mut on: impl FnMut(Progress<'_>)) -> Result<()> {
        let program = process::describe(&cmd);
        let mut errors = Vec::new();
        let out = process::run(&mut cmd, self.deadline(), |said| match said {
            Said::Stdout(line) => match serde_json::from_str::<UiLine>(line) {
                Ok(ui) => ui.report(&mut on, &mut errors),
                Err(_) => on(Progress::Said(said)),
            },
            other => on(Progress::Said(other)),
        })
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
    pub async fn outputs(&self, mut on: impl FnMut(Said<'_>)) -> Result<Inventory> {
        let mut cmd = self.command("output");
        cmd.args(["-json", "-no-color"]);
        let out = process::run(&mut cmd, self.deadline(), |s| {
            if !matches!(s, Said::Stdout(_)) {
                on(s)
            }
        })
        .await?;
        if !out.status.success() {
            bail!("`terraform output -json` failed:\n{}", out.tail(20));
        }
        parse_outputs(&out.stdout, &self.opts.dir)
    }
}

/// Terraform refused a saved plan because the state it was made from has moved on.
#[derive(Debug)]
pub struct Stale(pub String);

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stale {}

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

/// `terraform output -json` → inventory. Both configurations (AWS and lab) define the outputs
/// `controller` (an object) and `workers` (a list of objects) with the fields of `Host`, and
/// `more_controllers` (a list, or null for none) past one controller.
pub fn parse_outputs(json: &str, dir: &Path) -> Result<Inventory> {
    #[derive(Deserialize)]
    struct Output<T> {
        value: T,
    }
    #[derive(Deserialize)]
    struct Outputs {
        controller: Option<Output<Host>>,
        /// Absent from configurations (and states) made before `[cluster] controllers`.
        more_controllers: Option<Output<Option<Vec<Host>>>>,
        workers: Option<Output<Vec<Host>>>,
        backup_bucket: Option<Output<String>>,
        backup_prefix: Option<Output<String>>,
    }
    let hint = || {
        format!(
            "the terraform configuration in {} must define the outputs `controller` (object with id, hostname, public_ip, private_ip) and `workers` (list of such objects)",
            dir.display()
        )
    };
    let outputs: Outputs = serde_json::from_str(json).with_context(hint)?;
    if outputs.controller.is_none() && outputs.workers.is_none() {
        // No hosts: nothing applied yet, or destroyed by `down`, which keeps the backup bucket
        // (kept.rs): its outputs stay, so `backup --list` and `restore` still find the archives.
        return Ok(Inventory {
            backup_bucket: outputs.backup_bucket.map(|o| o.value),
            backup_prefix: outputs.backup_prefix.map(|o| o.value),
            ..Inventory::default()
        });
    }
    let (Some(controller), Some(workers)) = (outputs.controller, outputs.workers) else {
        bail!("{}", hint());
    };
    Ok(Inventory {
        controller: Some(controller.value),
        more_controllers: outputs
            .more_controllers
            .and_then(|o| o.value)
            .unwrap_or_default(),
        workers: workers.value,
        backup_bucket: outputs.backup_bucket.map(|o| o.value),
        backup_prefix: outputs.backup_prefix.map(|o| o.value),
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
        assert_eq!(
            inv.backup_bucket, None,
            "the lab's configuration has no bucket"
        );
        // terraform/aws's backup outputs (outputs.tf), read into the inventory.
        let aws = json.replacen(
            "{",
            r#"{"backup_bucket": {"sensitive": false, "type": "string", "value": "acme-backup-1234"},
                "backup_prefix": {"sensitive": false, "type": "string", "value": "acme"},"#,
            1,
        );
        let inv = parse_outputs(&aws, Path::new("terraform/aws")).unwrap();
        assert_eq!(
            (inv.backup_bucket.as_deref(), inv.backup_prefix.as_deref()),
            (Some("acme-backup-1234"), Some("acme"))
        );
        assert!(parse_outputs("{}", Path::new("x")).unwrap().is_empty());
        let err = parse_outputs(r#"{"controller": {"value": {"id": "a", "hostname": "b", "public_ip": "c", "private_ip": "d"}}}"#, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("`workers`"), "{err}");
    }

    #[test]
    fn more_controllers_join_the_inventory_and_their_absence_is_one_controller() {
        let host = |n: &str| {
            format!(
                r#"{{"id": "i-{n}", "hostname": "{n}", "public_ip": "p{n}", "private_ip": "10.0.0.{n}"}}"#
            )
        };
        let json = format!(
            r#"{{"controller": {{"value": {}}}, "more_controllers": {{"value": [{}, {}]}}, "workers": {{"value": []}}}}"#,
            host("1"),
            host("2"),
            host("3")
        );
        let inv = parse_outputs(&json, Path::new("x")).unwrap();
        let names: Vec<&str> = inv
            .controllers()
            .iter()
            .map(|h| h.hostname.as_str())
            .collect();
        assert_eq!(names, ["1", "2", "3"]);
        // terraform keeps no null output: a single-controller stack has none.
        let json = format!(
            r#"{{"controller": {{"value": {}}}, "workers": {{"value": []}}}}"#,
            host("1")
        );
        let inv = parse_outputs(&json, Path::new("x")).unwrap();
        assert!(inv.more_controllers.is_empty());
        assert_eq!(inv.controllers().len(), 1);
    }

    #[test]
    fn after_down_the_kept_buckets_outputs_stay_in_the_inventory() {
        let json = r#"{"backup_bucket": {"value": "b-1"}, "backup_prefix": {"value": "p/"}}"#;
        let inv = parse_outputs(json, Path::new("x")).unwrap();
        assert!(inv.is_empty());
        assert_eq!(inv.backup_bucket.as_deref(), Some("b-1"));
        assert_eq!(inv.backup_prefix.as_deref(), Some("p/"));
    }

    #[test]
    fn plan_changes_skip_no_ops() {
        let json = r#"{"resource_changes": [
          {"address": "terraform_data.controller", "change": {"actions": ["create"]}},
          {"address": "terraform_data.worker[0]", "change": {"actions": ["no-op"]}},
          {"address": "aws_instance.worker[1]", "change": {"actions": ["delete", "create"]}}
        ]}"#;
        let changes = show::plan_changes(json).unwrap();
        assert_eq!(
            changes,
            vec![
                PlannedChange::new("create", "terraform_data.controller"),
                PlannedChange::new("replace", "aws_instance.worker[1]"),
            ]
        );
    }
}
