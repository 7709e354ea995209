//! What Jeeves reads of `terraform show -json <plan>`: each resource change's action, and a
//! digest of what it would make.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::PlannedChange;

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
