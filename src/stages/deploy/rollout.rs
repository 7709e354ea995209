//! What changes the release's pods: `helm upgrade --install` (rolled back by helm when it
//! fails) and the rollout restart after the MongoDB secret changed; each names the Deployments
//! whose pods rolled, read from the cluster before and after (a Deployment rolls its pods when
//! its pod template changes, and only then).

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::release::Values;
use super::sha256;
use crate::kube::{Tools, succeeded};
use crate::stage::StageContext;

/// The release's Deployments (helm's `meta.helm.sh/release-name` annotation) and the hash of
/// each one's pod template.
type Templates = BTreeMap<String, String>;

async fn templates(tools: &Tools, cx: &StageContext<'_>) -> Result<Templates> {
    let s = cx.settings;
    let out = succeeded(
        tools
            .kubectl(
                cx,
                &["get", "deployments", "-n", &s.helm.namespace, "-o", "json"],
            )
            .await?,
        &format!("listing the Deployments in namespace {}", s.helm.namespace),
    )?;
    let list: serde_json::Value = serde_json::from_str(&out.stdout)
        .context("`kubectl get deployments -o json` answered something that is not JSON")?;
    Ok(release_templates(&list, &s.helm.release))
}

fn release_templates(list: &serde_json::Value, release: &str) -> Templates {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["metadata"]["annotations"]["meta.helm.sh/release-name"] == release)
        .filter_map(|d| {
            let name = d["metadata"]["name"].as_str()?;
            Some((
                name.to_string(),
                sha256(d["spec"]["template"].to_string().as_bytes()),
            ))
        })
        .collect()
}

/// Deployments that are new, or whose pod template changed: their pods rolled.
fn rolled(before: &Templates, after: &Templates) -> Vec<String> {
    after
        .iter()
        .filter(|(name, sha)| before.get(*name) != Some(sha))
        .map(|(name, _)| name.clone())
        .collect()
}

fn report(cx: &StageContext<'_>, before: &Templates, after: &Templates) {
    let rolled = rolled(before, after);
    let removed: Vec<&String> = before.keys().filter(|d| !after.contains_key(*d)).collect();
    let mut message = if rolled.is_empty() {
        "no pod template changed: no pods rolled".to_string()
    } else {
        format!("pods rolled: {}", rolled.join(", "))
    };
    if !removed.is_empty() {
        let removed: Vec<&str> = removed.iter().map(|d| d.as_str()).collect();
        message.push_str(&format!("; Deployments removed: {}", removed.join(", ")));
    }
    cx.host(cx.settings.helm.release.clone(), message);
}

/// helm 4 renamed `--atomic` to `--rollback-on-failure` (`--atomic` is deprecated there); helm
/// 3 knows only `--atomic`. From `helm version --short`: `v3.17.0+g…`, `v4.1.4+g…`.
pub fn rollback_flag(version: &str) -> &'static str {
    let major = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 4 => "--rollback-on-failure",
        _ => "--atomic",
    }
}

/// `helm upgrade --install` with the rendered values, waiting, rolled back by helm when it
/// fails (`--atomic`, or helm 4's `--rollback-on-failure`), the values' hash in the release's
/// description; then the Deployments whose pods rolled.
pub async fn upgrade(tools: &Tools, cx: &StageContext<'_>, values: &Values) -> Result<()> {
    let s = cx.settings;
    let version = succeeded(
        tools.helm(cx, &["version", "--short"]).await?,
        "`helm version --short`",
    )?;
    let rollback = rollback_flag(&version.stdout);
    let timeout = format!("{}s", s.helm.timeout.as_secs());
    let description = format!("jeeves values-sha256={}", values.sha);
    let values_path = values.path.display().to_string();
    let local = s.helm.local_chart.as_ref().map(|p| p.display().to_string());
    let mut args = vec!["upgrade", "--install", s.helm.release.as_str()];
    match &local {
        // A chart on disk is used as it is (config checks hold it to helm.version).
        Some(path) => args.push(path.as_str()),
        None => args.extend([
            s.helm.chart.as_str(),
            "--repo",
            s.helm.repo.as_str(),
            "--version",
            s.helm.version.as_str(),
        ]),
    }
    args.extend([
        "-n",
        s.helm.namespace.as_str(),
        "--create-namespace",
        "-f",
        values_path.as_str(),
    ]);
    let extra = values.extra.as_ref().map(|(p, _)| p.display().to_string());
    if let Some(extra) = &extra {
        args.extend(["-f", extra.as_str()]);
    }
    args.extend([
        "--wait",
        rollback,
        "--timeout",
        timeout.as_str(),
        "--description",
        description.as_str(),
    ]);
    let before = templates(tools, cx).await?;
    cx.host(
        s.helm.release.clone(),
        format!(
            "helm upgrade --install {} {}-{} {rollback} (waits up to {timeout})",
            s.helm.release, s.helm.chart, s.helm.version
        ),
    );
    succeeded(
        tools.helm(cx, &args).await?,
        &format!("helm upgrade --install of release {}", s.helm.release),
    )?;
    cx.host(s.helm.release.clone(), "release deployed");
    report(cx, &before, &templates(tools, cx).await?);
    Ok(())
}

/// Rolls every Deployment of the release: Rocket.Chat reads MONGO_URL from the secret when a
/// pod starts, so a changed database URI reaches it only through new pods.
pub async fn restart(tools: &Tools, cx: &StageContext<'_>) -> Result<()> {
    let s = cx.settings;
    let before = templates(tools, cx).await?;
    let selector = format!("app.kubernetes.io/instance={}", s.helm.release);
    succeeded(
        tools
            .kubectl(
                cx,
                &[
                    "rollout",
                    "restart",
                    "deployment",
                    "-l",
                    &selector,
                    "-n",
                    &s.helm.namespace,
                ],
            )
            .await?,
        "restarting the release's Deployments after the MongoDB secret changed",
    )?;
    cx.host(
        s.helm.release.clone(),
        "Deployments restarted: their pods read the changed MongoDB secret",
    );
    report(cx, &before, &templates(tools, cx).await?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(name: &str, release: &str, image: &str) -> serde_json::Value {
        json!({"metadata": {"name": name, "annotations": {"meta.helm.sh/release-name": release}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": image}]}}}})
    }

    #[test]
    fn the_deployments_whose_pod_template_changed_rolled() {
        let before = json!({"items": [
            deployment("rocketchat-rocketchat", "rocketchat", "rc:7.6.0"),
            deployment("rocketchat-presence", "rocketchat", "presence:7.6.0"),
            deployment("rocketchat-stream-hub", "rocketchat", "hub:7.6.0"),
            deployment("traefik", "other", "traefik:v3"),
        ]});
        let mut scaled = deployment("rocketchat-presence", "rocketchat", "presence:7.6.0");
        scaled["spec"]["replicas"] = 2.into();
        let after = json!({"items": [
            deployment("rocketchat-rocketchat", "rocketchat", "rc:8.6.1"),
            scaled,
            deployment("rocketchat-account", "rocketchat", "account:8.6.1"),
            deployment("traefik", "other", "traefik:v4"),
        ]});
        let (b, a) = (
            release_templates(&before, "rocketchat"),
            release_templates(&after, "rocketchat"),
        );
        assert!(!b.contains_key("traefik"), "another release's Deployment");
        // Scaling changes no pod template: those pods stay.
        assert_eq!(
            rolled(&b, &a),
            ["rocketchat-account", "rocketchat-rocketchat"]
        );
        assert!(rolled(&a, &a).is_empty());
    }

    #[test]
    fn helm_4_rolls_back_with_its_new_flag() {
        assert_eq!(rollback_flag("v3.17.0+g301108e\n"), "--atomic");
        assert_eq!(rollback_flag("v4.1.4+g05fa379\n"), "--rollback-on-failure");
        assert_eq!(rollback_flag("garbled"), "--atomic");
    }
}
