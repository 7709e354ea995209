//! What Jeeves reads of `terraform show -json <plan>`: each resource change's action, and a
//! digest of what it would make.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{PlannedChange, Terraform};
use crate::process::{self, Said};
use crate::state::write_private;

#[derive(Deserialize)]
struct Plan {
    #[serde(default)]
    resource_changes: Vec<ResourceChange>,
}

#[derive(Deserialize)]
struct ResourceChange {
    address: String,
    /// `actions`, `before`, `after`, `after_unknown`, …
    change: serde_json::Value,
}

/// The plan's resource changes with Jeeves' name for their action; no-ops and reads left out.
fn changes(json: &str) -> Result<Vec<(&'static str, ResourceChange)>> {
    let plan: Plan = serde_json::from_str(json).context("cannot read `terraform show -json`")?;
    Ok(plan
        .resource_changes
        .into_iter()
        .filter_map(|rc| {
            let actions: Vec<&str> = rc.change["actions"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let action = match actions.as_slice() {
                ["no-op"] | ["read"] => return None,
                ["create"] => "create",
                ["update"] => "update",
                ["delete"] => "destroy",
                ["delete", "create"] | ["create", "delete"] => "replace",
                _ => "change",
            };
            Some((action, rc))
        })
        .collect())
}

/// The resource changes in `terraform show -json <plan>`.
pub(super) fn plan_changes(json: &str) -> Result<Vec<PlannedChange>> {
    Ok(changes(json)?
        .into_iter()
        .map(|(action, rc)| PlannedChange::new(action, rc.address))
        .collect())
}

/// Address → SHA-256 of `change.actions`, `change.after` and `change.after_unknown`, for the
/// same changes as `plan_changes`.
pub(super) fn plan_digests(json: &str) -> Result<BTreeMap<String, String>> {
    Ok(changes(json)?
        .into_iter()
        .map(|(_, rc)| {
            let c = &rc.change;
            let made = serde_json::json!([c["actions"], c["after"], c["after_unknown"]]);
            let digest = hex::encode(Sha256::digest(made.to_string().as_bytes()));
            (rc.address, digest)
        })
        .collect())
}

impl Terraform {
    /// The resource changes of a saved plan file (`show -json FILE`).
    pub async fn show(&self, plan: &Path, on: impl FnMut(Said<'_>)) -> Result<Vec<PlannedChange>> {
        plan_changes(&self.show_json(plan, on).await?)
    }

    /// Per resource address, a digest of what a plan file would make of it: two plans with the
    /// same actions on the same addresses can still differ in what they create (a data source
    /// that found a newer image).
    pub async fn digests(&self, plan: &Path) -> Result<BTreeMap<String, String>> {
        plan_digests(&self.show_json(plan, |_| {}).await?)
    }

    /// `show -json` of a plan file, read once per plan: a plan's changes and then its digests
    /// (`plan --out`, `up --plan`) are one terraform run, not two. Each run starts every
    /// provider to load its schema, 3 CPU-seconds for the AWS provider (docs/benchmarks.md).
    /// What it read is kept beside the plan file (`<plan>.show.json`, private as the plan is: both
    /// hold the variables' values) under the plan file's SHA-256, its first line.
    async fn show_json(&self, plan: &Path, mut on: impl FnMut(Said<'_>)) -> Result<String> {
        use sha2::{Digest, Sha256};
        let bytes =
            std::fs::read(plan).with_context(|| format!("cannot read {}", plan.display()))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let kept = plan.with_extension("show.json");
        if let Ok(text) = std::fs::read_to_string(&kept)
            && let Some((seen, json)) = text.split_once('\n')
            && seen == digest
        {
            return Ok(json.to_string());
        }
        let mut show = self.command("show");
        show.arg("-json").arg(plan);
        let out = process::run(&mut show, self.deadline(), |s| {
            if !matches!(s, Said::Stdout(_)) {
                on(s)
            }
        })
        .await?;
        if !out.status.success() {
            bail!("`terraform show -json` failed:\n{}", out.tail(20));
        }
        write_private(&kept, format!("{digest}\n{}", out.stdout).as_bytes())?;
        Ok(out.stdout)
    }
}
