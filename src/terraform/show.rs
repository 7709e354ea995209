//! What Jeeves reads of `terraform show -json <plan>`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::PlannedChange;

/// The resource changes in `terraform show -json <plan>`.
pub(super) fn plan_changes(json: &str) -> Result<Vec<PlannedChange>> {
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
            Some(PlannedChange::new(action, rc.address))
        })
        .collect())
}

/// Address → SHA-256 of `change.actions`, `change.after` and `change.after_unknown` in `terraform
/// show -json <plan>`, for every resource change but no-ops and reads.
pub(super) fn plan_digests(json: &str) -> Result<BTreeMap<String, String>> {
    use sha2::{Digest, Sha256};
    #[derive(Deserialize)]
    struct Plan {
        #[serde(default)]
        resource_changes: Vec<ResourceChange>,
    }
    #[derive(Deserialize)]
    struct ResourceChange {
        address: String,
        change: serde_json::Value,
    }
    let plan: Plan = serde_json::from_str(json).context("cannot read `terraform show -json`")?;
    Ok(plan
        .resource_changes
        .into_iter()
        .filter(|rc| !matches!(rc.change["actions"].as_array().map(Vec::as_slice), Some([a]) if a == "no-op" || a == "read"))
        .map(|rc| {
            let made = serde_json::json!([rc.change["actions"], rc.change["after"], rc.change["after_unknown"]]);
            (rc.address, hex::encode(Sha256::digest(made.to_string().as_bytes())))
        })
        .collect())
}
