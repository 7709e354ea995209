//! A saved plan (`jeeves plan --out FILE`), applied by `jeeves up --plan FILE` and printed by
//! `jeeves show FILE`: what a person approves is what gets applied, as with Terraform's own
//! `plan -out` / `apply FILE` automation workflow.
//!
//! The file holds, as one JSON document (mode 0600):
//! - terraform's plan file (base64), applied as is: terraform refuses it once the state it was
//!   made from has moved on ("Saved plan is stale");
//! - every stage's planned changes, compared with a fresh plan before anything is applied;
//! - a digest of each setting every stage reads (a SHA-256 per leaf, so the file names the
//!   setting that moved without holding its value), and of the templates and a local chart.
//!
//! A saved plan holds what terraform's plan file holds: the variable values and a snapshot of
//! the prior state. Archive it with the care given to the state itself.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::exit_code::UsageError;
use crate::report::Change;
use crate::stage_name::StageName;

const FORMAT: &str = "jeeves-plan/1";

/// One stage's part of a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePlan {
    pub stage: StageName,
    pub changes: Vec<SavedChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedChange {
    pub action: String,
    pub target: String,
}

impl SavedChange {
    /// What a fresh plan must find again. A `run` change is a stage that could not probe yet
    /// (its `target` carries the reason, which names passing details such as an error's
    /// wording): only its action counts.
    fn comparable(&self) -> (&str, &str) {
        if self.action == "run" {
            (&self.action, "")
        } else {
            (&self.action, &self.target)
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub pipeline: String,
    pub domain: String,
    pub created_at: String,
    pub jeeves_version: String,
    /// The stages the plan covers, in order (`--only`, `--from`, `--skip` as given to `plan`).
    pub stages: Vec<StageName>,
    /// Planned with `--allow-downgrade`: the move to an older Rocket.Chat was shown and approved.
    #[serde(default)]
    pub allow_downgrade: bool,
    pub plans: Vec<StagePlan>,
    /// Per stage: setting path (`helm.version`, `templates/haproxy.cfg.hbs`) → SHA-256.
    pub inputs: BTreeMap<StageName, BTreeMap<String, String>>,
    /// `terraform plan -out`'s file, base64; absent when the plan does not cover terraform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform_plan: Option<String>,
    /// Per resource address, a digest of what terraform's plan would make of it
    /// (`crate::terraform::Terraform::digests`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub terraform_digests: BTreeMap<String, String>,
}

impl SavedPlan {
    pub fn new(
        settings: &Settings,
        stages: &[StageName],
        allow_downgrade: bool,
        planned: &[(StageName, Vec<Change>)],
        terraform_plan: Option<(Vec<u8>, BTreeMap<String, String>)>,
    ) -> Result<SavedPlan> {
        let (terraform_plan, terraform_digests) = match terraform_plan {
            Some((bytes, digests)) => (Some(bytes), digests),
            None => (None, BTreeMap::new()),
        };
        Ok(SavedPlan {
            format: FORMAT.into(),
            pipeline: settings.name.clone(),
            domain: settings.domain.clone(),
            created_at: crate::state::now_rfc3339(),
            jeeves_version: env!("CARGO_PKG_VERSION").into(),
            stages: stages.to_vec(),
            allow_downgrade,
            plans: planned
                .iter()
                .map(|(stage, changes)| StagePlan {
                    stage: *stage,
                    changes: changes
                        .iter()
                        .map(|c| SavedChange {
                            action: c.action.clone(),
                            target: c.target.clone(),
                        })
                        .collect(),
                })
                .collect(),
            inputs: stages
                .iter()
                .map(|s| Ok((*s, inputs(*s, settings)?)))
                .collect::<Result<_>>()?,
            terraform_plan: terraform_plan
                .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes)),
            terraform_digests,
        })
    }

    /// Written private: it holds what terraform's plan file holds.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        crate::state::write_private(path, &json)
            .with_context(|| format!("cannot write the saved plan {}", path.display()))
    }

    /// A file that is not a saved plan is a usage error naming it.
    pub fn load(path: &Path) -> Result<SavedPlan> {
        let bad = |why: String| UsageError(format!("{}: {why}", path.display()));
        let text = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let plan: SavedPlan = serde_json::from_slice(&text).map_err(|e| {
            bad(format!(
                "not a saved plan made by `jeeves plan --out` ({e})"
            ))
        })?;
        if plan.format != FORMAT {
            return Err(bad(format!(
                "format `{}`; this jeeves reads `{FORMAT}`",
                plan.format
            ))
            .into());
        }
        Ok(plan)
    }

    pub fn terraform_plan_bytes(&self) -> Result<Option<Vec<u8>>> {
        self.terraform_plan
            .as_ref()
            .map(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .context("the saved plan's terraform plan is not valid base64")
            })
            .transpose()
    }

    pub fn changes(&self, stage: StageName) -> &[SavedChange] {
        self.plans
            .iter()
            .find(|p| p.stage == stage)
            .map(|p| p.changes.as_slice())
            .unwrap_or_default()
    }

    /// Refuses (exit 2) a plan made for another pipeline or domain, or whose settings have moved
    /// since: the list names each setting.
    pub fn check_inputs(&self, settings: &Settings) -> Result<()> {
        if self.pipeline != settings.name || self.domain != settings.domain {
            return Err(UsageError(format!(
                "the saved plan is for pipeline `{}` ({}), not `{}` ({}); nothing was applied",
                self.pipeline, self.domain, settings.name, settings.domain
            ))
            .into());
        }
        let mut moved = Vec::new();
        for (stage, saved) in &self.inputs {
            let now = inputs(*stage, settings)?;
            let keys: std::collections::BTreeSet<&String> =
                saved.keys().chain(now.keys()).collect();
            for k in keys {
                if saved.get(k) != now.get(k) {
                    moved.push(format!("{stage}: {k}"));
                }
            }
        }
        if !moved.is_empty() {
            moved.dedup();
            return Err(UsageError(format!(
                "the settings moved since the plan was saved ({}):\n  {}\nNothing was applied: make and approve a new plan (`jeeves plan --out FILE`)",
                self.created_at,
                moved.join("\n  ")
            ))
            .into());
        }
        Ok(())
    }

    /// What differs between the saved plan and a fresh one, per stage: `stage: + action
    /// target` for a change the saved plan lacks, `-` for one it has that is gone.
    pub fn moved(&self, fresh: &[(StageName, Vec<Change>)]) -> Vec<String> {
        let mut out = Vec::new();
        for stage in &self.stages {
            let saved = self.changes(*stage);
            let now: Vec<SavedChange> = fresh
                .iter()
                .find(|(s, _)| s == stage)
                .map(|(_, c)| {
                    c.iter()
                        .map(|c| SavedChange {
                            action: c.action.clone(),
                            target: c.target.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let has = |list: &[SavedChange], c: &SavedChange| {
                list.iter().any(|x| x.comparable() == c.comparable())
            };
            for c in now.iter().filter(|c| !has(saved, c)) {
                out.push(format!("{stage}: + {} {}", c.action, c.target));
            }
            for c in saved.iter().filter(|c| !has(&now, c)) {
                out.push(format!("{stage}: - {} {}", c.action, c.target));
            }
        }
        out
    }
}

impl SavedPlan {
    /// The resources a fresh terraform plan would make differently from the saved one, though
    /// with the same action (the actions were compared by `moved`).
    pub fn moved_resources(&self, fresh: &BTreeMap<String, String>) -> Vec<String> {
        self.terraform_digests
            .iter()
            .filter(|(address, digest)| fresh.get(*address).is_some_and(|d| d != *digest))
            .map(|(address, _)| {
                format!("terraform: ~ {address} (the fresh plan would make it differently)")
            })
            .collect()
    }
}

/// A stage's inputs as setting path → SHA-256 of its value (the stage's `inputs_fingerprint`
/// parts, named), plus the files it renders from.
fn inputs(stage: StageName, settings: &Settings) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, value) in crate::stages::inputs_named(stage, settings) {
        flatten(name, &value, &mut out);
    }
    let files: Vec<std::path::PathBuf> = match stage {
        StageName::Tls | StageName::Deploy => {
            let mut files = Vec::new();
            walk(&settings.templates_dir, &mut files)?;
            if stage == StageName::Deploy && Path::new(&settings.helm.chart).is_file() {
                files.push(settings.helm.chart.clone().into());
            }
            files
        }
        _ => Vec::new(),
    };
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
        let name = f
            .strip_prefix(&settings.templates_dir)
            .map(|p| format!("templates/{}", p.display()))
            .unwrap_or_else(|_| f.display().to_string());
        out.insert(name, hex::encode(Sha256::digest(&bytes)));
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries {
        let path = e?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        leaf => {
            out.insert(
                prefix.to_string(),
                hex::encode(Sha256::digest(leaf.to_string().as_bytes())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(changes: &[(&str, &str)]) -> SavedPlan {
        SavedPlan {
            format: FORMAT.into(),
            pipeline: "p".into(),
            domain: "d".into(),
            created_at: String::new(),
            jeeves_version: String::new(),
            stages: vec![StageName::Terraform, StageName::Bootstrap],
            allow_downgrade: false,
            plans: vec![StagePlan {
                stage: StageName::Terraform,
                changes: changes
                    .iter()
                    .map(|(a, t)| SavedChange {
                        action: a.to_string(),
                        target: t.to_string(),
                    })
                    .collect(),
            }],
            inputs: BTreeMap::new(),
            terraform_plan: None,
            terraform_digests: BTreeMap::new(),
        }
    }

    #[test]
    fn a_fresh_plan_that_differs_names_each_change() {
        let saved = plan(&[("create", "aws_instance.worker[1]")]);
        let same = vec![(
            StageName::Terraform,
            vec![Change::new("create", "aws_instance.worker[1]")],
        )];
        assert!(saved.moved(&same).is_empty());
        let fresh = vec![
            (
                StageName::Terraform,
                vec![Change::new("replace", "aws_instance.controller")],
            ),
            (StageName::Bootstrap, vec![Change::new("join", "worker-2")]),
        ];
        assert_eq!(
            saved.moved(&fresh),
            [
                "terraform: + replace aws_instance.controller",
                "terraform: - create aws_instance.worker[1]",
                "bootstrap: + join worker-2",
            ]
        );
    }

    #[test]
    fn a_stage_that_could_not_probe_compares_by_action() {
        let saved = plan(&[("run", "everything once terraform's changes are applied: x")]);
        let fresh = vec![(
            StageName::Terraform,
            vec![Change::new("run", "everything once …: y")],
        )];
        assert!(saved.moved(&fresh).is_empty());
    }

    #[test]
    fn settings_are_flattened_to_paths_with_digests_not_values() {
        let mut out = BTreeMap::new();
        flatten(
            "helm",
            &serde_json::json!({"version": "7.0.2", "replicas": {"rocketchat": 2}}),
            &mut out,
        );
        assert_eq!(
            out.keys().collect::<Vec<_>>(),
            ["helm.replicas.rocketchat", "helm.version"]
        );
        assert!(!out.values().any(|v| v.contains("7.0.2")));
    }
}
