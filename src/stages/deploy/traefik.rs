//! The Traefik objects: the CRD bundle and the resources from `templates/traefik/`, rendered,
//! compared with the live ones, and server-side applied with field manager `jeeves`.
//!
//! The live objects carry the SHA-256 of what was applied (annotation
//! `jeeves.io/manifests-sha256`); when it matches, a server-side `kubectl diff` still finds
//! changes made to them since (`kubectl edit`, `set image`, a deleted field).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::sha256;
use crate::config::Settings;
use crate::kube::{FIELD_MANAGER, Tools, server_side, succeeded};
use crate::process::Output;
use crate::report::Change;
use crate::stage::StageContext;
use crate::state::write_private;
use crate::templates::{TemplateContext, Templates};

pub const HASH_ANNOTATION: &str = "jeeves.io/manifests-sha256";

/// The rendered Traefik resources (no secrets in them), and the CRD bundle they need.
pub struct Manifests {
    /// Where kubectl reads them: `traefik.yaml` in the stage's state directory.
    pub path: PathBuf,
    text: String,
    /// Objects in the manifests.
    pub objects: usize,
    /// Of the CRD bundle and the manifests: the hash annotation the live objects carry.
    pub sha: String,
    /// A pinned https:// URL or an absolute path.
    pub crds: String,
    /// The manifests hold IngressRoutes, whose backends must exist once the release is up.
    pub routes: bool,
    /// The namespaces of the Services the IngressRoutes name (read beside the live objects,
    /// so a converged probe needs no second round trip).
    pub route_namespaces: BTreeSet<String>,
    /// Where the objects come from: `templates/traefik`, and `templates/backup` with `[backup]`.
    pub sources: &'static str,
}

impl Manifests {
    /// Renders them for `dir`; nothing is written until `write`.
    pub fn render(
        templates: &Templates,
        ctx: &TemplateContext,
        settings: &Settings,
        dir: &Path,
    ) -> Result<Manifests> {
        let sources = if ctx.backup.is_some() {
            "templates/traefik and templates/backup"
        } else {
            "templates/traefik"
        };
        let mut text = String::new();
        for name in templates.manifest_names(ctx) {
            let doc = templates.render(name, ctx)?;
            text.push_str(&format!("---\n# {name}\n{}\n", doc.trim_end()));
        }
        // Read back as Kubernetes will: the objects, and what the routes lead to.
        let mut docs = Vec::new();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v = serde_json::Value::deserialize(doc).with_context(|| {
                format!("the rendered Traefik resources ({sources}) are not YAML")
            })?;
            if !v.is_null() {
                docs.push(v);
            }
        }
        let objects = docs.len();
        let routes = docs.iter().any(|d| d["kind"] == "IngressRoute");
        let route_namespaces = super::routes::namespaces(&super::routes::backends(
            &serde_json::json!({ "items": docs }),
        ))
        .into_iter()
        .map(str::to_string)
        .collect();
        // Absolute already when local (settings resolve it against the pipeline file).
        let crds = settings.traefik.crds.clone();
        // A pinned URL names its content; a local file is hashed by content.
        let crds_id = if crds.starts_with("https://") {
            crds.clone()
        } else {
            sha256(
                &std::fs::read(&crds)
                    .with_context(|| format!("cannot read {crds} (traefik.crds)"))?,
            )
        };
        Ok(Manifests {
            path: dir.join("traefik.yaml"),
            objects,
            sha: sha256(format!("{crds_id}\n{text}").as_bytes()),
            crds,
            routes,
            route_namespaces,
            sources,
            text,
        })
    }

    pub fn write(&self) -> Result<()> {
        write_private(&self.path, self.text.as_bytes())
    }
}

/// `kubectl get -f traefik.yaml -o json`: the live objects, for their hash annotation here and
/// for the routes' backends (`routes::check_live`). Exits non-zero when one is missing.
pub async fn read_live(tools: &Tools, cx: &StageContext<'_>, m: &Manifests) -> Result<Output> {
    let manifests = m.path.display().to_string();
    tools
        .kubectl(cx, &["get", "-f", &manifests, "-o", "json"])
        .await
}

/// A server-side `kubectl diff` of the rendered objects against the live ones. Exit 0: no
/// differences, 1: differences, >1: kubectl or diff failed. Read beside `read_live`, and only
/// looked at when that found the objects.
pub async fn diff(tools: &Tools, cx: &StageContext<'_>, m: &Manifests) -> Result<Output> {
    let manifests = m.path.display().to_string();
    let mut args = server_side("diff").to_vec();
    args.push(&manifests);
    tools.kubectl(cx, &args).await
}

/// `Some` when the manifests must be applied: the live objects (`read_live`) are missing, carry
/// another rendering's hash, or were changed outside Jeeves since (`diff`).
pub fn judge(
    cx: &StageContext<'_>,
    m: &Manifests,
    live: &Output,
    diff: Result<Output>,
) -> Result<Option<Change>> {
    // Every rendered object present and carrying this rendering's hash.
    let hashes: Option<Vec<String>> = live
        .status
        .success()
        .then(|| serde_json::from_str::<serde_json::Value>(&live.stdout).ok())
        .flatten()
        .map(|list| {
            super::routes::items(&list)
                .into_iter()
                .map(|o| {
                    o["metadata"]["annotations"][HASH_ANNOTATION]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        });
    let applied = hashes
        .as_ref()
        .is_some_and(|h| h.len() == m.objects && h.iter().all(|h| *h == m.sha));
    // The diff names the objects that would change: after a new rendering (the objects exist,
    // so their CRDs do), or changes made to them since (`kubectl edit`, `set image`, a deleted
    // field) when the hash says this rendering was applied. Without the live objects it is not
    // looked at (a missing CRD fails it).
    let diff = if live.status.success() {
        Some(diff?)
    } else {
        None
    };
    if !applied {
        let differ = match &diff {
            None => String::new(),
            Some(d) if d.status.code() == Some(1) => {
                format!("; these would change: {}", drifted(&d.stdout).join(", "))
            }
            Some(_) => ", the live ones carry another rendering's hash".to_string(),
        };
        return Ok(Some(Change::new(
            "apply",
            format!(
                "Traefik: CRDs from {}, {} object(s) from {} (server-side, field manager {FIELD_MANAGER}){differ}",
                m.crds, m.objects, m.sources,
            ),
        )));
    }
    let diff = diff.context("the live objects were read")?;
    match diff.status.code() {
        Some(0) => Ok(None),
        Some(1) => Ok(Some(Change::new(
            "apply",
            format!(
                "Traefik: live objects changed outside Jeeves ({}); re-apply the rendered manifests",
                drifted(&diff.stdout).join(", ")
            ),
        ))),
        _ => {
            cx.warn(format!(
                "cannot compare the live Traefik objects with the rendered manifests (kubectl diff exit {}): {}; trusting the {HASH_ANNOTATION} annotations",
                diff.status.code().unwrap_or(-1),
                diff.tail(5)
            ));
            Ok(None)
        }
    }
}

/// The objects a `kubectl diff` reports, from its `diff -u -N LIVE/<object> MERGED/<object>`
/// headers (`apps.v1.Deployment.traefik.traefik`: group.version.Kind.namespace.name).
fn drifted(diff: &str) -> Vec<String> {
    diff.lines()
        .filter(|l| l.starts_with("diff "))
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .collect()
}

/// The CRDs (waiting until they are Established), then the objects, their hash annotation,
/// and the Traefik Deployment's rollout.
pub async fn apply(tools: &Tools, cx: &StageContext<'_>, m: &Manifests) -> Result<()> {
    let s = cx.settings;
    let manifests = m.path.display().to_string();
    tools.apply_crds(cx, &m.crds, "the Traefik CRDs").await?;
    cx.host("traefik", "CRDs established");
    succeeded(
        tools
            .kubectl(
                cx,
                &[&server_side("apply")[..], &[manifests.as_str()]].concat(),
            )
            .await?,
        &format!("applying the Traefik resources ({manifests})"),
    )?;
    let annotation = format!("{HASH_ANNOTATION}={}", m.sha);
    succeeded(
        tools
            .kubectl(
                cx,
                &["annotate", "--overwrite", "-f", &manifests, &annotation],
            )
            .await?,
        "recording the applied manifests' hash",
    )?;
    let timeout = format!("--timeout={}s", s.helm.timeout.as_secs());
    succeeded(
        tools
            .kubectl(
                cx,
                &[
                    "rollout",
                    "status",
                    "deployment/traefik",
                    "-n",
                    &s.traefik.namespace,
                    &timeout,
                ],
            )
            .await?,
        "waiting for the Traefik deployment to roll out",
    )?;
    cx.host(
        "traefik",
        format!("{} object(s) applied, rolled out", m.objects),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_names_the_objects_kubectl_diff_reports() {
        let out = "diff -u -N /tmp/LIVE-1266/apps.v1.Deployment.traefik.traefik /tmp/MERGED-1266/apps.v1.Deployment.traefik.traefik
--- /tmp/LIVE-1266/apps.v1.Deployment.traefik.traefik\t2026-11-22 18:25:19
+++ /tmp/MERGED-1266/apps.v1.Deployment.traefik.traefik\t2026-11-22 18:25:19
@@ -1,3 +1,3 @@
-        image: traefik:tampered
+        image: docker.io/library/traefik:v3.3.4
diff -u -N /tmp/LIVE-1266/v1.Namespace..psautoinfra /tmp/MERGED-1266/v1.Namespace..psautoinfra
";
        assert_eq!(
            drifted(out),
            [
                "apps.v1.Deployment.traefik.traefik",
                "v1.Namespace..psautoinfra"
            ]
        );
        assert!(drifted("").is_empty());
    }
}
