//! The Rocket.Chat Helm release: its values rendered, its state read from `helm history`, what
//! a killed or failed helm left behind, and the helm calls that recover, install or upgrade it.
//!
//! A release whose chart version (`helm history`) and values (`helm get values -o json`,
//! compared key by key: `values_diff.rs`) are the ones wanted is left alone; otherwise the plan
//! shows the chart old → new and each value that changes. (The description still carries the
//! SHA-256 of the values, for a person reading `helm history`.) A helm killed mid-operation
//! leaves its last revision `pending-install`, `pending-upgrade` or `pending-rollback`, and
//! every later helm call on the release fails with "another operation
//! (install/upgrade/rollback) is in progress". A failed install without `--atomic` leaves
//! `failed` with nothing deployed, and `upgrade --install` then fails with "has no deployed
//! releases". Both are recovered before the upgrade: a rollback to the last revision that was
//! deployed, or — when none ever was — an uninstall.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::sha256;
use super::values_diff;
use crate::config::Settings;
use crate::kube::{Tools, succeeded};
use crate::report::Change;
use crate::stage::StageContext;
use crate::state::write_private;
use crate::templates::{ROCKETCHAT_VALUES, TemplateContext, Templates};

/// One revision of `helm history -o json`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Revision {
    pub revision: u64,
    pub status: String,
    pub chart: String,
    /// The chart's `appVersion`: the Rocket.Chat it ran.
    #[serde(default)]
    pub app_version: String,
    #[serde(default)]
    pub description: String,
}

/// What must happen before the release can be upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// `helm rollback <release> <revision>`: the last revision that was deployed.
    Rollback(u64),
    /// `helm uninstall <release>`: nothing was ever deployed.
    Uninstall,
}

/// The revisions, oldest first. Output that does not parse is an error, never a guess.
pub fn parse(history: &str) -> Result<Vec<Revision>> {
    let mut revs: Vec<Revision> = serde_json::from_str(history)
        .context("`helm history -o json` answered something that is not a list of revisions")?;
    revs.sort_by_key(|r| r.revision);
    Ok(revs)
}

/// `None` when the last revision is one an upgrade can start from.
pub fn recovery(revs: &[Revision]) -> Option<Recovery> {
    let last = revs.last()?;
    let stuck = last.status.starts_with("pending-");
    let good = revs
        .iter()
        .rev()
        .find(|r| r.status == "deployed" || r.status == "superseded");
    match (stuck, last.status.as_str(), good) {
        (true, _, Some(g)) => Some(Recovery::Rollback(g.revision)),
        (true, _, None) | (false, "failed", None) => Some(Recovery::Uninstall),
        _ => None,
    }
}

/// The release's values files (no secrets in them: the chart reads the MongoDB secret).
pub struct Values {
    /// `rocketchat-values.yaml` in the stage's state directory.
    pub path: PathBuf,
    text: String,
    /// `helm.values` from the pipeline file, passed after the rendered values.
    pub extra: Option<(PathBuf, String)>,
    /// Of the chart, its timeout and both files: recorded in the release's description.
    pub sha: String,
    /// Both files merged as helm merges them: what `helm get values` answers once deployed.
    pub wanted: serde_json::Value,
}

impl Values {
    /// Renders them for `dir`; nothing is written until `write`.
    pub fn render(
        templates: &Templates,
        ctx: &TemplateContext,
        settings: &Settings,
        dir: &Path,
    ) -> Result<Values> {
        let text = templates.render(ROCKETCHAT_VALUES, ctx)?;
        let extra = crate::stages::extra_values(settings)?;
        let chart = format!(
            "{} {} {} {}",
            settings.helm.repo,
            settings.helm.chart,
            settings.helm.version,
            settings.helm.timeout.as_secs()
        );
        let sha =
            sha256(format!("{chart}\n{text}\n{}", extra.as_deref().unwrap_or_default()).as_bytes());
        let path = dir.join("rocketchat-values.yaml");
        let mut wanted = values_map(&text).with_context(|| {
            format!(
                "the rendered Helm values are not a YAML map (templates/{ROCKETCHAT_VALUES}, written to {})",
                path.display()
            )
        })?;
        if let Some(extra) = &extra {
            values_diff::merge(&mut wanted, values_map(extra).context("helm.values")?);
        }
        Ok(Values {
            path,
            text,
            extra: extra.map(|e| (dir.join(crate::templates::EXTRA_VALUES), e)),
            sha,
            wanted: serde_json::Value::Object(wanted),
        })
    }

    pub fn write(&self) -> Result<()> {
        write_private(&self.path, self.text.as_bytes())?;
        if let Some((path, text)) = &self.extra {
            write_private(path, text.as_bytes())?;
        }
        Ok(())
    }
}

/// A values file as helm reads it: a map (an empty file is an empty map).
fn values_map(text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    Ok(
        match serde_norway::from_str::<serde_json::Value>(text).context("not YAML")? {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => serde_json::Map::new(),
            other => bail!("a values file must be a map, not {other}"),
        },
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Deployed with this chart version and these values.
    Current,
    Install,
    Upgrade,
}

/// What `helm history` says of the release.
pub struct Probe {
    pub release: Release,
    /// What an interrupted or failed helm left, to undo before the upgrade.
    pub recovery: Option<Recovery>,
    /// The recovery, as the plan shows it.
    pub recover_change: Option<Change>,
    /// The install or upgrade, as the plan shows it: the chart version (old → new), then each
    /// value that changes (old → new, secrets masked).
    pub changes: Vec<Change>,
    /// The revision running now (the one a recovery rolls back to, else the last deployed).
    pub running: Option<Revision>,
}

/// This chart version, these values, deployed — or what must happen to get there.
pub async fn probe(tools: &Tools, cx: &StageContext<'_>, values: &Values) -> Result<Probe> {
    let s = cx.settings;
    // The last revision's values are read beside the history (two calls at once, so one wait
    // instead of two in a row): they
    // are the running ones unless the last revision failed or is pending. Read quietly: on a
    // release not installed yet it fails, and is not used.
    let history_args = [
        "history",
        &s.helm.release,
        "-n",
        &s.helm.namespace,
        "--max",
        "50",
        "-o",
        "json",
    ];
    let (history, last_values) = tokio::join!(
        tools.helm(cx, &history_args),
        live_values(tools, None, s, |_| {}),
    );
    let history = history?;
    // helm names a chart `<Chart.yaml name>-<version>`, from a repository or a path alike.
    let chart = format!("{}-{}", crate::chart::CHART_NAME, s.helm.version);
    let revs = if history.status.success() {
        parse(&history.stdout)
            .with_context(|| format!("reading the history of release {}", s.helm.release))?
    } else if history.stderr.contains("not found") {
        Vec::new()
    } else {
        bail!(
            "`helm history {}` failed:\n{}",
            s.helm.release,
            history.tail(10)
        );
    };
    let recovery = recovery(&revs);
    // What is running: the revision a recovery rolls back to, else the last one deployed.
    let running = match recovery {
        Some(Recovery::Rollback(rev)) => revs.iter().find(|r| r.revision == rev),
        _ => revs.iter().rev().find(|r| r.status == "deployed"),
    };
    let live = match running {
        Some(r) if revs.last().is_some_and(|l| l.revision == r.revision) && last_values.is_ok() => {
            last_values.ok()
        }
        Some(r) => {
            Some(live_values(tools, Some(r.revision), s, |said| cx.tool_said(said, false)).await?)
        }
        None => None,
    };
    let value_changes = live
        .as_ref()
        .map(|live| values_diff::diff(live, &values.wanted))
        .unwrap_or_default();
    let current = recovery.is_none()
        && revs.last().is_some_and(|last| {
            last.status == "deployed" && last.chart == chart && value_changes.is_empty()
        });
    let release = match recovery {
        _ if revs.is_empty() => Release::Install,
        Some(Recovery::Uninstall) => Release::Install,
        _ if current => Release::Current,
        _ => Release::Upgrade,
    };
    let recover_change = match (recovery, revs.last()) {
        (Some(r), Some(last)) => Some(Change::new(
            "recover",
            match r {
                Recovery::Rollback(rev) => format!(
                    "helm release {}: revision {} is {} (a helm that was interrupted); roll back to revision {rev}, the last deployed",
                    s.helm.release, last.revision, last.status
                ),
                Recovery::Uninstall => format!(
                    "helm release {}: revision {} is {} and nothing was ever deployed; uninstall it, then install",
                    s.helm.release, last.revision, last.status
                ),
            },
        )),
        _ => None,
    };
    let rel = format!("helm release {} in {}", s.helm.release, s.helm.namespace);
    let changes = match (release, running) {
        (Release::Current, _) => Vec::new(),
        (Release::Install, _) => vec![Change::new("install", format!("{rel}: chart {chart}"))],
        (Release::Upgrade, Some(running)) => {
            let what = if running.chart != chart {
                format!("chart {} → {chart}", running.chart)
            } else if value_changes.is_empty() {
                format!(
                    "chart {chart}, the same values (revision {} is not deployed)",
                    revs.last().map_or(0, |r| r.revision)
                )
            } else {
                format!("chart {chart} (unchanged)")
            };
            let mut changes = vec![Change::new("upgrade", format!("{rel}: {what}"))];
            changes.extend(
                value_changes
                    .iter()
                    .map(|v| Change::new("value", v.describe())),
            );
            changes
        }
        (Release::Upgrade, None) => vec![Change::new(
            "upgrade",
            format!("{rel}: chart {chart} (no revision was ever deployed to compare with)"),
        )],
    };
    Ok(Probe {
        release,
        recovery,
        recover_change,
        changes,
        running: running.cloned(),
    })
}

/// The user-supplied values of one revision: `helm get values -o json`, helm's record of what
/// that revision was deployed with (the values files merged), not a hash of them.
async fn live_values(
    tools: &Tools,
    revision: Option<u64>,
    s: &crate::config::Settings,
    say: impl FnMut(crate::process::Said<'_>),
) -> Result<serde_json::Value> {
    let rev = revision.map(|r| r.to_string());
    let mut args = vec!["get", "values", &s.helm.release, "-n", &s.helm.namespace];
    if let Some(rev) = &rev {
        args.extend(["--revision", rev.as_str()]);
    }
    args.extend(["-o", "json"]);
    let which = rev
        .as_ref()
        .map_or(String::new(), |r| format!(" --revision {r}"));
    let out = succeeded(
        tools.helm_saying(&args, say).await?,
        &format!("`helm get values {}{which}`", s.helm.release),
    )?;
    serde_json::from_str(&out.stdout).with_context(|| {
        format!(
            "`helm get values {}{which} -o json` answered something that is not JSON",
            s.helm.release
        )
    })
}

/// Undoes what an interrupted or failed helm left, waiting for it.
pub async fn recover(tools: &Tools, cx: &StageContext<'_>, recovery: Recovery) -> Result<()> {
    let s = cx.settings;
    let timeout = format!("{}s", s.helm.timeout.as_secs());
    let ns = s.helm.namespace.as_str();
    let rel = s.helm.release.as_str();
    let (args, what) = match recovery {
        Recovery::Rollback(rev) => {
            let rev = rev.to_string();
            let args: Vec<String> = [
                "rollback",
                rel,
                &rev,
                "-n",
                ns,
                "--wait",
                "--timeout",
                &timeout,
            ]
            .map(String::from)
            .to_vec();
            (args, format!("rolled back to revision {rev}"))
        }
        Recovery::Uninstall => (
            ["uninstall", rel, "-n", ns, "--wait", "--timeout", &timeout]
                .map(String::from)
                .to_vec(),
            "uninstalled (nothing had been deployed)".to_string(),
        ),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    succeeded(
        tools.helm(cx, &args).await?,
        &format!("recovering release {rel} ({})", args[0]),
    )?;
    cx.host(rel.to_string(), what);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revs(statuses: &[&str]) -> Vec<Revision> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| Revision {
                revision: i as u64 + 1,
                status: s.to_string(),
                chart: "rocketchat-7.0.2".into(),
                app_version: "8.6.1".into(),
                description: String::new(),
            })
            .collect()
    }

    #[test]
    fn what_a_killed_or_failed_helm_left_is_recovered() {
        assert_eq!(recovery(&revs(&["superseded", "deployed"])), None);
        assert_eq!(recovery(&revs(&["deployed", "failed"])), None);
        assert_eq!(
            recovery(&revs(&["superseded", "deployed", "pending-upgrade"])),
            Some(Recovery::Rollback(2))
        );
        assert_eq!(
            recovery(&revs(&["deployed", "failed", "pending-rollback"])),
            Some(Recovery::Rollback(1))
        );
        assert_eq!(
            recovery(&revs(&["pending-install"])),
            Some(Recovery::Uninstall)
        );
        assert_eq!(recovery(&revs(&["failed"])), Some(Recovery::Uninstall));
        assert_eq!(recovery(&[]), None);
    }

    #[test]
    fn history_that_does_not_parse_is_an_error() {
        assert!(parse("Error: something").is_err());
        let r = parse(r#"[{"revision": 2, "status": "deployed", "chart": "rocketchat-7.0.2", "app_version": "8.6.1", "description": "x", "updated": "…"}, {"revision": 1, "status": "superseded", "chart": "rocketchat-6.25.1"}]"#).unwrap();
        assert_eq!(r[1].revision, 2);
        assert_eq!(
            (r[0].app_version.as_str(), r[1].app_version.as_str()),
            ("", "8.6.1")
        );
    }
}
