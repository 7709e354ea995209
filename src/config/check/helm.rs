//! `[helm]`: the Rocket.Chat chart (from its repository, or a packaged chart on disk), its
//! version — which must be one Jeeves knows the values of (`chart.rs`) — the release, namespace,
//! MongoDB (external or bundled), replicas and extra values.

use std::path::Path;

use super::Checker;
use crate::chart;
use crate::config::{HelmSettings, MongodbMode, pipeline, validate};

/// Whether a local chart is the right chart at `helm.version` is a preflight check of runs that
/// deploy (`preflight.rs`).
pub(super) fn check(c: &mut Checker, raw: pipeline::Helm, base: &Path) -> Option<HelmSettings> {
    c.check("helm.repo", validate::https_url(&raw.repo));
    // A path (it has a `/` or ends in `.tgz`) is a chart on disk; anything else is a name in
    // helm.repo, and the only chart Jeeves knows how to configure is Rocket.Chat's.
    let local_chart = if raw.chart.contains('/') || raw.chart.ends_with(".tgz") {
        c.local_path("helm.chart", &raw.chart, base, false)
            .map(Some)
    } else if raw.chart == chart::CHART_NAME {
        Some(None)
    } else {
        c.check(
            "helm.chart",
            Err(format!(
                "`{}` is not the Rocket.Chat chart: use `{}` (in helm.repo) or the path of a packaged chart",
                raw.chart,
                chart::CHART_NAME
            )),
        )
    };
    let reads = c
        .check("helm.version", validate::pinned_version(&raw.version))
        .and_then(|v| {
            c.check(
                "helm.version",
                chart::supported(&v).ok_or_else(|| {
                    format!(
                        "chart version {v} is not one Jeeves knows the values of (supported: {}; README, \"Rocket.Chat chart versions\")",
                        chart::supported_list()
                    )
                }),
            )
        });
    c.check("helm.release", validate::k8s_name(&raw.release, 53));
    c.check("helm.namespace", validate::k8s_name(&raw.namespace, 63));
    let timeout = c.check("helm.timeout", validate::nonzero_duration(&raw.timeout));
    let mongodb = match raw.mongodb.as_str() {
        "external" => Some(MongodbMode::External),
        "bundled" => Some(MongodbMode::Bundled),
        "operator" => Some(MongodbMode::Operator),
        other => c.check(
            "helm.mongodb",
            Err(format!(
                "`{other}` must be `external`, `bundled` or `operator`"
            )),
        ),
    };
    let bundled_mongodb = mongodb.map(|m| m == MongodbMode::Bundled);
    c.check(
        "helm.mongodb_secret",
        validate::k8s_name(&raw.mongodb_secret, 253),
    );
    for (key, n) in [
        ("rocketchat", raw.replicas.rocketchat),
        ("accounts", raw.replicas.accounts),
        ("authorization", raw.replicas.authorization),
        ("ddp_streamer", raw.replicas.ddp_streamer),
        ("presence", raw.replicas.presence),
    ] {
        c.check(&format!("helm.replicas.{key}"), validate::count(n, 1, 64));
    }
    if raw.replicas.stream_hub.is_some() {
        c.check::<()>(
            "helm.replicas.stream_hub",
            Err("no supported chart reads it (stream-hub runs one replica in chart 6.25.1 and is off from 7.0, removed after Rocket.Chat 8.0): remove the key".into()),
        );
    }
    let values = match serde_json::to_value(&raw.values) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    // The bundled MongoDB's URIs are built from the subchart's defaults (src/chart.rs): a
    // value that moves its user, database, replica set, port or Service would break them.
    if bundled_mongodb == Some(true)
        && let Some(mongodb) = values.get("mongodb").and_then(|m| m.as_object())
    {
        for key in [
            "auth",
            "replicaSetName",
            "service",
            "architecture",
            "nameOverride",
            "fullnameOverride",
        ] {
            if mongodb.contains_key(key) {
                c.check::<()>(
                    &format!("helm.values.mongodb.{key}"),
                    Err("with helm.mongodb = \"bundled\" Jeeves manages the database's credentials and URIs (user and database rocketchat, replica set rs0, port 27017): remove the key, or use an external MongoDB".into()),
                );
            }
        }
    }
    // The chart names its Service after nameOverride; the IngressRoute must follow it.
    if let Some(v) = values.get("nameOverride")
        && v.as_str()
            .is_none_or(|n| validate::k8s_name(n, 63).is_err())
    {
        c.check::<()>(
            "helm.values.nameOverride",
            Err(format!("{v} is not a Kubernetes name")),
        );
    }
    Some(HelmSettings {
        repo: raw.repo,
        chart: raw.chart,
        local_chart: local_chart?,
        reads: reads?,
        version: raw.version,
        release: raw.release,
        namespace: raw.namespace,
        timeout: timeout?,
        microservices: raw.microservices,
        bundled_mongodb: bundled_mongodb?,
        mongodb: mongodb?,
        mongodb_secret: raw.mongodb_secret,
        metrics: raw.metrics,
        replicas: raw.replicas,
        values,
    })
}
