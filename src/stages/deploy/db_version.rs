//! The MongoDB server Rocket.Chat would run on, read before the release is rolled, and the
//! refusals that protect it (issue 24): a Rocket.Chat never rolls onto a server it exits on
//! (`chart::ChartVersion::mongodb_min`), `bundled` is refused outright where the chart's own
//! MongoDB is one its Rocket.Chat exits on, and no plan moves to an older Rocket.Chat (its
//! database migrations run forward only) unless `--allow-downgrade`.
//!
//! What is read stays cheap, so that `plan` stays fast: one `kubectl get` of the object that
//! names the running server (no pod is started, no secret is read).
//! - bundled: the subchart's StatefulSet (`chart::bundled_mongodb_fullname`), the tag of its
//!   `mongodb` container's image (Bitnami tags are `<version>-debian-<n>-r<k>`); before it
//!   exists, what the release would deploy: `mongodb.image.tag` in the values, else the
//!   chart's default (`chart::ChartVersion::bundled_mongodb`, checked against the real chart by
//!   `tests/charts.rs`).
//! - operator: the `MongoDBCommunity` named `<release>-mongodb`: its `status.version`, which
//!   the operator writes only once the replica set reached Running on that version
//!   (mongodb/mongodb-kubernetes, `mongodb-community-operator/controllers/
//!   replica_set_controller.go`, `withVersion(mdb.GetMongoDBVersion())` in the Running
//!   update; `api/v1/mongodbcommunity_types.go`, `MongoDBCommunityStatus.Version`); else its
//!   `spec.version`; before it exists, the pinned version.

use anyhow::{Context, Result, bail};

use crate::chart::{ChartVersion, MongoVersion};
use crate::config::Settings;
use crate::kube::Tools;
use crate::stage::StageContext;

/// The server's version and where it was read, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub version: MongoVersion,
    /// e.g. "the running StatefulSet rocketchat-mongodb (image tag 6.0.10-debian-11-r8)".
    pub source: String,
}

/// The bundled subchart's running server, or the one the release would deploy.
pub async fn bundled(
    tools: &Tools,
    cx: &StageContext<'_>,
    chart: &ChartVersion,
    wanted: &serde_json::Value,
) -> Result<Server> {
    let s = cx.settings;
    let name = crate::chart::bundled_mongodb_fullname(&s.helm.release);
    let out = tools
        .kubectl(
            cx,
            &[
                "get",
                "statefulset",
                &name,
                "-n",
                &s.helm.namespace,
                "-o",
                "json",
            ],
        )
        .await?;
    if out.status.success() {
        let sts: serde_json::Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("`kubectl get statefulset {name}` answered no JSON"))?;
        return from_statefulset(&name, &sts);
    }
    if !out.stderr.contains("NotFound") {
        bail!("`kubectl get statefulset {name}` failed:\n{}", out.tail(10));
    }
    Ok(planned_bundled(chart, wanted))
}

/// The version the `mongodb` container of the subchart's StatefulSet runs.
pub fn from_statefulset(name: &str, sts: &serde_json::Value) -> Result<Server> {
    let image = sts["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "mongodb")
        .and_then(|c| c["image"].as_str())
        .with_context(|| format!("the StatefulSet {name} has no `mongodb` container"))?;
    let tag = image_tag(image)
        .with_context(|| format!("the StatefulSet {name} runs {image}, which has no tag"))?;
    let version = MongoVersion::coerce(tag).with_context(|| {
        format!("the StatefulSet {name} runs {image}, whose tag is not a MongoDB version")
    })?;
    Ok(Server {
        version,
        source: format!("the running StatefulSet {name} (image {image})"),
    })
}

/// The tag of `registry/repo:tag[@digest]`; none when the reference has no tag.
fn image_tag(image: &str) -> Option<&str> {
    let image = image.split('@').next()?;
    let last = image.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag)
}

/// What the release would deploy: `mongodb.image.tag` from the values, else the chart's.
pub fn planned_bundled(chart: &ChartVersion, wanted: &serde_json::Value) -> Server {
    let tag = wanted["mongodb"]["image"]["tag"].as_str();
    match tag.and_then(MongoVersion::coerce) {
        Some(version) => Server {
            version,
            source: format!(
                "mongodb.image.tag {} in the values (nothing deployed yet)",
                tag.unwrap_or_default()
            ),
        },
        None => Server {
            version: chart.bundled_mongodb_version(),
            source: format!(
                "chart {}'s bundled MongoDB, image tag {} (nothing deployed yet)",
                chart.version, chart.bundled_mongodb
            ),
        },
    }
}

/// The `MongoDBCommunity` named `name`, read with `kubectl get mongodbcommunity NAME -o
/// json`: `None` when it does not exist yet (`pin` is then what would run).
pub fn from_mongodbcommunity(
    name: &str,
    object: Option<&serde_json::Value>,
    pin: MongoVersion,
) -> Result<Server> {
    let Some(object) = object else {
        return Ok(Server {
            version: pin,
            source: format!("the pinned version (MongoDBCommunity {name} not created yet)"),
        });
    };
    let (field, text) = match object["status"]["version"].as_str() {
        Some(v) if !v.is_empty() => ("status.version", v),
        _ => (
            "spec.version",
            object["spec"]["version"]
                .as_str()
                .with_context(|| format!("the MongoDBCommunity {name} has no spec.version"))?,
        ),
    };
    let version = MongoVersion::coerce(text).with_context(|| {
        format!("the MongoDBCommunity {name}'s {field} `{text}` is not a MongoDB version")
    })?;
    Ok(Server {
        version,
        source: format!("the MongoDBCommunity {name} ({field} {text})"),
    })
}

/// The way out of `helm.mongodb = "bundled"`, for the refusals.
const MIGRATION: &str = "use helm.mongodb = \"operator\": `jeeves backup`, switch the mode, \
     `jeeves up`, then `jeeves restore` (README, \"Day 2\")";

/// `Err` (a config error, exit 2) when `bundled` is asked of a chart whose Rocket.Chat exits on
/// the chart's own MongoDB: refused outright, whatever a tag override says (a MongoDB data
/// directory moves one major version at a time, so a newer tag does not upgrade it).
pub fn refuse_bundled(settings: &Settings, chart: &ChartVersion) -> Result<()> {
    if !settings.helm.bundled_mongodb {
        return Ok(());
    }
    if let Some(why) = chart.rejects(chart.bundled_mongodb_version()) {
        return Err(settings
            .config_error(
                "helm.mongodb",
                format!(
                    "\"bundled\" cannot run chart {}: its bundled MongoDB is {}, and {why}; {MIGRATION}",
                    chart.version, chart.bundled_mongodb
                ),
            )
            .into());
    }
    Ok(())
}

/// `Err` (a config error naming both versions and the way out) when the chart's Rocket.Chat
/// exits on `server`.
pub fn refuse_server(settings: &Settings, chart: &ChartVersion, server: &Server) -> Result<()> {
    let Some(why) = chart.rejects(server.version) else {
        return Ok(());
    };
    let accepting: Vec<&str> = crate::chart::SUPPORTED
        .iter()
        .filter(|c| c.rejects(server.version).is_none())
        .map(|c| c.version)
        .collect();
    let pin = if accepting.is_empty() {
        String::new()
    } else {
        format!(", or pin helm.version to {}", accepting.join(" or "))
    };
    Err(settings
        .config_error(
            "helm.version",
            format!(
                "{why}: the server is {} ({}); upgrade MongoDB to {}.{} first{pin}",
                server.version, server.source, chart.mongodb_min.major, chart.mongodb_min.minor
            ),
        )
        .into())
}

/// `Err` when the release would move from Rocket.Chat `running` to an older one, unless
/// `allow`: its database migrations ran forward and are not undone.
pub fn refuse_downgrade(
    settings: &Settings,
    chart: &ChartVersion,
    running_chart: &str,
    running_app: &str,
    allow: bool,
) -> Result<()> {
    if allow || !crate::mongo_version::app_version_older(chart.app_version, running_app) {
        return Ok(());
    }
    Err(settings
        .config_error(
            "helm.version",
            format!(
                "chart {} (Rocket.Chat {}) is older than the running {running_chart} (Rocket.Chat \
                 {running_app}); Rocket.Chat's database migrations run forward only, so the \
                 older server may not read the database the newer one migrated. Pin {running_chart} \
                 or newer, or restore a backup taken before the upgrade; `up --allow-downgrade` \
                 rolls back anyway",
                chart.version, chart.app_version
            ),
        )
        .into())
}

#[cfg(test)]
#[path = "db_version_tests.rs"]
mod tests;
