//! The operator: its chart's CRDs and its Helm release (`[mongodb] operator_*`).
//!
//! helm installs a chart's `crds/` on the first install only and never upgrades or deletes them
//! (helm's "Custom Resource Definitions" best practices; pkg/action/install.go installs them,
//! upgrade.go never reads them). An operator upgrade whose CRDs grew a field would then meet the
//! old schema, which prunes the field. So Jeeves takes the CRDs from the pinned chart itself
//! (`helm show crds`), applies them server-side before the release, and records their hash on
//! each (`jeeves.io/manifests-sha256`): unchanged CRDs are not applied again. The release gets
//! `--skip-crds`, so only one party ever writes them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::super::sha256;
use super::super::traefik::HASH_ANNOTATION;
use crate::config::Settings;
use crate::kube::{Tools, succeeded};
use crate::report::Change;
use crate::stage::StageContext;
use crate::state::write_private;
use crate::templates::{MONGODB_OPERATOR_VALUES, TemplateContext, Templates};

pub struct Rendered {
    values_path: PathBuf,
    values: String,
    /// Of the chart (name, version, or the local file's content) and the values: the release's
    /// description carries it.
    sha: String,
    /// Where `helm show crds` is written at probe time (the CRDs are not secret).
    crds_path: PathBuf,
}

impl Rendered {
    pub fn render(templates: &Templates, ctx: &TemplateContext, dir: &Path) -> Result<Rendered> {
        let values = templates.render(MONGODB_OPERATOR_VALUES, ctx)?;
        Ok(Rendered {
            values_path: dir.join("mongodb-operator-values.yaml"),
            crds_path: dir.join("mongodb-operator-crds.yaml"),
            sha: sha256(values.as_bytes()),
            values,
        })
    }

    pub fn write(&self) -> Result<()> {
        write_private(&self.values_path, self.values.as_bytes())
    }
}

/// `helm` arguments naming the pinned chart: a path as is, else the chart in its repository.
fn chart_args(s: &Settings) -> Vec<String> {
    let m = &s.mongodb;
    match &m.operator_local_chart {
        Some(path) => vec![path.display().to_string()],
        None => vec![
            m.operator_chart.clone(),
            "--repo".into(),
            m.operator_repo.clone(),
            "--version".into(),
            m.operator_version.clone(),
        ],
    }
}

/// What the release's description records: the chart and the values it was installed with.
fn description(s: &Settings, r: &Rendered) -> Result<String> {
    let m = &s.mongodb;
    let chart =
        match &m.operator_local_chart {
            Some(path) => sha256(&std::fs::read(path).with_context(|| {
                format!("cannot read {} (mongodb.operator_chart)", path.display())
            })?),
            None => format!(
                "{}/{}-{}",
                m.operator_repo, m.operator_chart, m.operator_version
            ),
        };
    Ok(format!(
        "jeeves chart=mongodb-kubernetes-{} sha256={}",
        m.operator_version,
        sha256(format!("{chart}\n{}", r.sha).as_bytes())
    ))
}

pub fn crds_change(cx: &StageContext<'_>) -> Change {
    let m = &cx.settings.mongodb;
    Change::new(
        "apply",
        format!(
            "CRDs of chart mongodb-kubernetes {} (server-side; helm never upgrades a chart's crds/)",
            m.operator_version
        ),
    )
}

/// The chart's CRDs, written for kubectl, compared by hash with the live ones.
pub async fn probe_crds(
    tools: &Tools,
    cx: &StageContext<'_>,
    r: &Rendered,
) -> Result<Option<Change>> {
    let mut args = vec!["show".to_string(), "crds".into()];
    args.extend(chart_args(cx.settings));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Quiet: the CRDs are thousands of lines.
    let crds = succeeded(
        tools.helm_quiet(cx, &args).await?,
        "`helm show crds` of the MongoDB operator's chart",
    )?;
    write_private(&r.crds_path, crds.stdout.as_bytes())?;
    let sha = sha256(crds.stdout.as_bytes());
    let path = r.crds_path.display().to_string();
    let live = tools
        .kubectl(cx, &["get", "-f", &path, "-o", "json"])
        .await?;
    let current = live.status.success()
        && serde_json::from_str::<serde_json::Value>(&live.stdout)
            .ok()
            .is_some_and(|list| {
                let items = super::super::routes::items(&list);
                !items.is_empty()
                    && items
                        .iter()
                        .all(|o| o["metadata"]["annotations"][HASH_ANNOTATION] == sha.as_str())
            });
    Ok((!current).then(|| crds_change(cx)))
}

pub async fn apply_crds(tools: &Tools, cx: &StageContext<'_>, r: &Rendered) -> Result<()> {
    let path = r.crds_path.display().to_string();
    let text = std::fs::read(&r.crds_path)
        .with_context(|| format!("cannot read {path}, written by the probe"))?;
    tools
        .apply_crds(cx, &path, "the MongoDB operator's CRDs")
        .await?;
    let annotation = format!("{HASH_ANNOTATION}={}", sha256(&text));
    succeeded(
        tools
            .kubectl(cx, &["annotate", "--overwrite", "-f", &path, &annotation])
            .await?,
        "recording the applied CRDs' hash",
    )?;
    cx.host(
        cx.settings.mongodb.operator_release.clone(),
        format!(
            "CRDs of mongodb-kubernetes {} applied and Established",
            cx.settings.mongodb.operator_version
        ),
    );
    Ok(())
}

/// `from`: the chart the release runs now (`None`: not installed).
pub fn release_change(cx: &StageContext<'_>, from: Option<&str>) -> Change {
    let m = &cx.settings.mongodb;
    let to = format!("mongodb-kubernetes-{}", m.operator_version);
    let (action, what) = match from {
        None => ("install", to),
        Some(f) if f != to => ("upgrade", format!("{f} → {to}")),
        Some(_) => ("upgrade", format!("{to}, values changed")),
    };
    Change::new(
        action,
        format!(
            "helm release {}/{} (MongoDB operator, chart {what})",
            m.operator_namespace, m.operator_release
        ),
    )
}

/// The release as `helm history` has it: current when its last revision is deployed with this
/// chart and these values (the description Jeeves gave it).
pub async fn probe_release(
    tools: &Tools,
    cx: &StageContext<'_>,
    r: &Rendered,
) -> Result<Option<Change>> {
    let m = &cx.settings.mongodb;
    let out = tools
        .helm(
            cx,
            &[
                "history",
                &m.operator_release,
                "-n",
                &m.operator_namespace,
                "--max",
                "1",
                "-o",
                "json",
            ],
        )
        .await?;
    if !out.status.success() {
        if out.stderr.contains("not found") {
            return Ok(Some(release_change(cx, None)));
        }
        anyhow::bail!(
            "`helm history {}` failed:\n{}",
            m.operator_release,
            out.tail(10)
        );
    }
    let revs = super::super::release::parse(&out.stdout)?;
    let Some(last) = revs.last() else {
        return Ok(Some(release_change(cx, None)));
    };
    let want = description(cx.settings, r)?;
    if last.status == "deployed" && last.description == want {
        return Ok(None);
    }
    Ok(Some(release_change(cx, Some(&last.chart))))
}

/// `helm upgrade --install` of the operator, waiting for it, rolled back by helm on failure.
pub async fn upgrade(tools: &Tools, cx: &StageContext<'_>, r: &Rendered) -> Result<()> {
    let s = cx.settings;
    let m = &s.mongodb;
    let version = succeeded(
        tools.helm(cx, &["version", "--short"]).await?,
        "`helm version --short`",
    )?;
    let rollback = super::super::rollout::rollback_flag(&version.stdout);
    let timeout = format!("{}s", s.helm.timeout.as_secs());
    let description = description(s, r)?;
    let values = r.values_path.display().to_string();
    let mut args = vec![
        "upgrade".to_string(),
        "--install".into(),
        m.operator_release.clone(),
    ];
    args.extend(chart_args(s));
    args.extend(
        [
            "-n",
            &m.operator_namespace,
            "--create-namespace",
            "--skip-crds",
            "-f",
            &values,
            "--wait",
            rollback,
            "--timeout",
            &timeout,
            "--description",
            &description,
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cx.host(
        m.operator_release.clone(),
        format!(
            "helm upgrade --install {} mongodb-kubernetes-{} -n {} {rollback} (waits up to {timeout})",
            m.operator_release, m.operator_version, m.operator_namespace
        ),
    );
    succeeded(
        tools.helm(cx, &args).await?,
        &format!(
            "helm upgrade --install of the MongoDB operator ({})",
            m.operator_release
        ),
    )?;
    cx.host(m.operator_release.clone(), "MongoDB operator deployed");
    Ok(())
}
