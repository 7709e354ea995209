//! Maintenance: after `jeeves start`, the pods left in Succeeded, Failed or Unknown from before
//! the stop are removed (their controllers have made new pods already; the old ones only hold
//! their node's disk and confuse `kubectl get pods`); and, with `[maintenance] image_prune`,
//! the deploy stage keeps an image-prune DaemonSet (`templates/maintenance/`) applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::sha256;
use super::traefik::HASH_ANNOTATION;
use crate::kube::{FIELD_MANAGER, Tools, server_side, succeeded};
use crate::report::Change;
use crate::stage::StageContext;
use crate::state::write_private;
use crate::templates::{TemplateContext, Templates};

/// MicroK8s' containerd socket: `${SNAP_COMMON}/run/containerd.sock` (canonical/microk8s,
/// microk8s-resources/default-args/kubelet `--container-runtime-endpoint`, default-args/ctr).
pub const CONTAINERD_SOCKET: &str = "/var/snap/microk8s/common/run/containerd.sock";

/// The template of the image-prune DaemonSet.
pub const IMAGE_PRUNE: &str = "maintenance/image-prune.yaml";

/// The rendered image-prune DaemonSet, carrying the hash of its text once applied.
pub struct PruneManifest {
    pub path: PathBuf,
    text: String,
    pub sha: String,
}

impl PruneManifest {
    pub fn render(templates: &Templates, ctx: &TemplateContext, dir: &Path) -> Result<Self> {
        let text = templates.render(IMAGE_PRUNE, ctx)?;
        Ok(PruneManifest {
            path: dir.join("image-prune.yaml"),
            sha: sha256(text.as_bytes()),
            text,
        })
    }

    pub fn write(&self) -> Result<()> {
        write_private(&self.path, self.text.as_bytes())
    }

    /// `Some` when the DaemonSet is missing or carries another rendering's hash.
    pub async fn probe(&self, tools: &Tools, cx: &StageContext<'_>) -> Result<Option<Change>> {
        let jsonpath = format!(
            "jsonpath={{.metadata.annotations.{}}}",
            HASH_ANNOTATION.replace('.', "\\.")
        );
        let file = self.path.display().to_string();
        let live = tools
            .kubectl(cx, &["get", "-f", &file, "-o", &jsonpath])
            .await?;
        if live.status.success() && live.stdout.trim() == self.sha {
            return Ok(None);
        }
        Ok(Some(Change::new(
            "apply",
            format!(
                "image-prune DaemonSet kube-system/jeeves-image-prune (crictl rmi --prune every {}s on every node; server-side, field manager {FIELD_MANAGER})",
                cx.settings.maintenance.image_prune_every.as_secs()
            ),
        )))
    }

    pub async fn apply(&self, tools: &Tools, cx: &StageContext<'_>) -> Result<()> {
        let file = self.path.display().to_string();
        let mut args = server_side("apply").to_vec();
        args.push(&file);
        succeeded(
            tools.kubectl(cx, &args).await?,
            &format!("applying the image-prune DaemonSet ({file})"),
        )?;
        let annotation = format!("{HASH_ANNOTATION}={}", self.sha);
        succeeded(
            tools
                .kubectl(cx, &["annotate", "--overwrite", "-f", &file, &annotation])
                .await?,
            "recording the image-prune DaemonSet's hash",
        )?;
        cx.host(
            "image-prune",
            "DaemonSet kube-system/jeeves-image-prune applied",
        );
        Ok(())
    }
}

/// A pod's field selector for every phase but Running and Pending: Succeeded, Failed and
/// Unknown (pods support `status.phase` as a field selector; `!=` terms are ANDed).
pub const LEFTOVER_PHASES: &str = "status.phase!=Running,status.phase!=Pending";

/// One leftover pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub namespace: String,
    pub name: String,
    pub phase: String,
}

/// The pods `kubectl get pods -o json` lists (a `List` of Pods).
pub fn parse_pods(json: &str) -> Result<Vec<Leftover>> {
    let doc: serde_json::Value =
        serde_json::from_str(json).context("`kubectl get pods -o json` did not print JSON")?;
    let items = doc["items"]
        .as_array()
        .context("`kubectl get pods -o json` printed no `items` list")?;
    items
        .iter()
        .map(|p| {
            let field = |path: &str| {
                p.pointer(path)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .with_context(|| format!("a pod without {path} in `kubectl get pods -o json`"))
            };
            Ok(Leftover {
                namespace: field("/metadata/namespace")?,
                name: field("/metadata/name")?,
                phase: field("/status/phase").unwrap_or_else(|_| "Unknown".into()),
            })
        })
        .collect()
}

/// Removes the leftover pods in every namespace; returns how many.
pub async fn remove_leftover_pods(tools: &Tools, cx: &StageContext<'_>) -> Result<usize> {
    let listed = succeeded(
        tools
            .kubectl(
                cx,
                &[
                    "get",
                    "pods",
                    "--all-namespaces",
                    "--field-selector",
                    LEFTOVER_PHASES,
                    "-o",
                    "json",
                ],
            )
            .await?,
        "`kubectl get pods --all-namespaces` (listing the pods left from before the stop)",
    )?;
    let pods = parse_pods(&listed.stdout)?;
    let mut by_namespace: BTreeMap<&str, Vec<&Leftover>> = BTreeMap::new();
    for p in &pods {
        by_namespace.entry(&p.namespace).or_default().push(p);
    }
    for (namespace, pods) in &by_namespace {
        let mut args = vec![
            "delete",
            "pod",
            "--namespace",
            namespace,
            "--ignore-not-found",
            "--wait=false",
        ];
        args.extend(pods.iter().map(|p| p.name.as_str()));
        succeeded(
            tools.kubectl(cx, &args).await?,
            &format!("`kubectl delete pod` in namespace {namespace}"),
        )?;
        for p in pods {
            cx.info(format!(
                "removed pod {}/{} ({})",
                p.namespace, p.name, p.phase
            ));
        }
    }
    Ok(pods.len())
}

/// What `jeeves start` runs once the pipeline has repaired the stack.
pub async fn after_start(cx: &mut StageContext<'_>) -> Result<()> {
    let kubeconfig = crate::stages::tunnel::kubeconfig_for_run(cx).await?;
    let tools = Tools::new(cx.settings, kubeconfig)?;
    let removed = remove_leftover_pods(&tools, cx).await?;
    if removed == 0 {
        cx.info("no pods left in Succeeded, Failed or Unknown from before the stop");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pods_kubectl_lists() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[
            {"metadata":{"name":"a","namespace":"x"},"status":{"phase":"Failed"}},
            {"metadata":{"name":"b","namespace":"y"},"status":{}}]}"#;
        assert_eq!(
            parse_pods(json).unwrap(),
            vec![
                Leftover {
                    namespace: "x".into(),
                    name: "a".into(),
                    phase: "Failed".into()
                },
                Leftover {
                    namespace: "y".into(),
                    name: "b".into(),
                    phase: "Unknown".into()
                },
            ]
        );
        assert!(parse_pods("not json").is_err());
        assert!(parse_pods(r#"{"items":[{"metadata":{"name":"a"}}]}"#).is_err());
    }
}
