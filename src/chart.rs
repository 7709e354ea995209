//! The Rocket.Chat Helm chart as Jeeves relies on it: the versions it supports and what each one
//! reads, the names the chart gives its objects, and the version of a chart kept on disk.
//!
//! Every fact here is read from the packaged charts (RocketChat/helm-charts, `gh-pages`,
//! `charts/rocketchat-<version>.tgz`); `tests/charts.rs` renders the real tarballs with the
//! values Jeeves writes and fails when a fact stops being true.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

pub use crate::mongo_version::MongoVersion;

/// The chart's name (`Chart.yaml` `name`), the default of `rocketchat.name`.
pub const CHART_NAME: &str = "rocketchat";

/// What one chart version reads, beyond what every supported version reads alike (`host`,
/// `replicaCount`, `ingress.enabled`, `service.*`, `microservices.enabled`,
/// `microservices.{account,authorization,ddpStreamer,presence}.replicas`,
/// `existingMongodbSecret`, `mongodb.enabled`, `mongodb.auth.existingSecret`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChartVersion {
    pub version: &'static str,
    /// Rocket.Chat's version (`appVersion`), for messages.
    pub app_version: &'static str,
    /// The MongoDB secret's `mongo-oplog-uri` is read (`MONGO_OPLOG_URL`): chart 6.x. Chart 7.x
    /// reads `mongo-uri` only.
    pub oplog_uri: bool,
    /// The bundled MongoDB subchart's images still default to `docker.io/bitnami/*`, a namespace
    /// emptied in 2025: the values move them to `bitnamilegacy/*`, as chart 7.0.x does itself.
    pub legacy_bitnami_images: bool,
    /// The chart's NATS and MongoDB monitors have switches of their own that render nothing
    /// else: `nats.podMonitor.enabled` (`templates/nats-monitor.yaml`) and
    /// `mongodb.serviceMonitor.enabled` (`templates/mongodb-monitor.yaml`), chart 7.x. In 6.x
    /// they follow `nats.exporter.enabled` and `mongodb.metrics.enabled`, which also run the
    /// exporters: Jeeves leaves those as the chart has them.
    pub monitor_switches: bool,
    /// The oldest MongoDB server this chart's Rocket.Chat starts on: below it the server prints
    /// "YOUR CURRENT MONGODB VERSION IS NOT SUPPORTED" and exits 1
    /// (`apps/meteor/server/startup/serverRunning.{js,ts}`, `semver.satisfies(…, '<X')`, unless
    /// `BYPASS_MONGO_VALIDATION`). No upper bound: the check has none. The source for each
    /// row is on the row.
    pub mongodb_min: MongoVersion,
    /// The MongoDB the chart's bundled subchart runs when nothing overrides it: the tag of the
    /// subchart's `image` (`charts/mongodb/values.yaml`, bitnami/mongodb 13.18.5), checked by
    /// `tests/charts.rs` against the StatefulSet the real `helm template` renders.
    pub bundled_mongodb: &'static str,
}

/// The supported versions, oldest first. To add one: a row here, its tarball in
/// `tests/fixtures/charts/`, and `bash tests/run` (docs/stages.md, "Rocket.Chat chart versions").
pub const SUPPORTED: &[ChartVersion] = &[
    ChartVersion {
        version: "6.25.1",
        app_version: "7.6.0",
        oplog_uri: true,
        legacy_bitnami_images: true,
        monitor_switches: false,
        // Rocket.Chat 7.x: `serverRunning.js` exits below 5.0.0 (RocketChat/Rocket.Chat#32162,
        // 7.0.0, "Removed Mongo 4.4 support"; 5.0 deprecated, 6.0+ recommended).
        mongodb_min: MongoVersion::new(5, 0, 0),
        bundled_mongodb: "6.0.10-debian-11-r8",
    },
    ChartVersion {
        version: "7.0.2",
        app_version: "8.6.1",
        oplog_uri: false,
        legacy_bitnami_images: false,
        monitor_switches: true,
        // Rocket.Chat 8.x: 8.0.0 dropped MongoDB 5.0 and 6.0 (RocketChat/Rocket.Chat#35961:
        // `serverRunning.ts` exits below 7.0.0), then required 8.2, lowered to 8.0 by
        // RocketChat/Rocket.Chat#38596 (merged 2026-02-10, first in 8.2.x; release notes of
        // 8.2.1 and later: "MongoDB: 8.0"). 8.6.1 against 6.0.10 prints "PLEASE UPGRADE TO
        // VERSION 8.0 OR LATER" and exits 1 (Canepro/rc-repro, docs, finding 3).
        mongodb_min: MongoVersion::new(8, 0, 0),
        bundled_mongodb: "6.0.10-debian-11-r8",
    },
];

/// The default pin: the newest supported version.
pub const DEFAULT_VERSION: &str = "7.0.2";

pub fn supported(version: &str) -> Option<&'static ChartVersion> {
    SUPPORTED.iter().find(|c| c.version == version)
}

pub fn supported_list() -> String {
    SUPPORTED
        .iter()
        .map(|c| c.version)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Helm's `trunc 63 | trimSuffix "-"`, which every name below goes through.
fn dns_name(name: &str) -> String {
    let cut: String = name.chars().take(63).collect();
    cut.strip_suffix('-').unwrap_or(&cut).to_string()
}

/// `rocketchat.fullname` (`templates/_helpers.tpl`, 6.25.1 and 7.0.2 alike):
/// `printf "%s-%s" .Release.Name (default .Chart.Name .Values.nameOverride) | trunc 63 |
/// trimSuffix "-"`. The chart has no `fullnameOverride`. Names the main Service (ports http 80,
/// metrics 9100), the Deployment and the chart's own Secret.
pub fn fullname(release: &str, name_override: Option<&str>) -> String {
    let name = name_override
        .filter(|n| !n.is_empty())
        .unwrap_or(CHART_NAME);
    dns_name(&format!("{release}-{name}"))
}

/// The ddp-streamer Service in microservices mode
/// (`templates/microservices-ddp-streamer-service.yaml`: `{{ .Release.Name }}-ddp-streamer`,
/// port http 3000).
pub fn ddp_streamer_service(release: &str) -> String {
    format!("{release}-ddp-streamer")
}

/// The bundled MongoDB's headless Service and port, as the bitnami subchart (13.18.5) names it:
/// `mongodb.service.nameOverride` = `<mongodb.fullname>-headless` for the replicaset
/// architecture, where `mongodb.fullname` is `common.names.fullname` — the release name alone
/// when it already contains `mongodb`, else `<release>-mongodb`, each cut to 63. (The Rocket.Chat
/// chart's own `rocketchat.mongodb.fullname` always writes `<release>-mongodb-headless`, which
/// misses the Service for such release names.) Port `service.ports.mongodb`: 27017.
pub fn bundled_mongodb_host(release: &str) -> String {
    format!("{}-headless:27017", bundled_mongodb_fullname(release))
}

/// The subchart's `mongodb.fullname` (see `bundled_mongodb_host`): also the name of its
/// StatefulSet, whose `mongodb` container runs the bundled server.
pub fn bundled_mongodb_fullname(release: &str) -> String {
    if release.contains("mongodb") {
        dns_name(release)
    } else {
        dns_name(&format!("{release}-mongodb"))
    }
}

/// The keys of the MongoDB secret (`existingMongodbSecret`, and for the bundled MongoDB
/// `mongodb.auth.existingSecret`) that the chart reads: the URIs, and the subchart's
/// credentials (bitnami/mongodb 13.18.5, `templates/replicaset/statefulset.yaml`).
pub mod secret_keys {
    pub const URI: &str = "mongo-uri";
    pub const OPLOG_URI: &str = "mongo-oplog-uri";
    /// One password per `auth.usernames` entry, comma-separated.
    pub const PASSWORDS: &str = "mongodb-passwords";
    pub const ROOT_PASSWORD: &str = "mongodb-root-password";
    pub const REPLICA_SET_KEY: &str = "mongodb-replica-set-key";
}

impl ChartVersion {
    /// `Some(why)` when this chart's Rocket.Chat refuses a MongoDB server `server`.
    pub fn rejects(&self, server: MongoVersion) -> Option<String> {
        (server < self.mongodb_min).then(|| {
            format!(
                "Rocket.Chat {} (chart {}) needs MongoDB {}.{} or newer and exits on {server}",
                self.app_version, self.version, self.mongodb_min.major, self.mongodb_min.minor
            )
        })
    }

    /// The bundled subchart's MongoDB, as a version.
    pub fn bundled_mongodb_version(&self) -> MongoVersion {
        MongoVersion::coerce(self.bundled_mongodb).unwrap_or(MongoVersion::new(0, 0, 0))
    }

    /// Every key of the MongoDB secret this chart version reads, for either MongoDB choice.
    pub fn secret_keys(&self, bundled: bool) -> Vec<&'static str> {
        use secret_keys::*;
        let mut keys = vec![URI];
        if self.oplog_uri {
            keys.push(OPLOG_URI);
        }
        if bundled {
            keys.extend([PASSWORDS, ROOT_PASSWORD, REPLICA_SET_KEY]);
        }
        keys
    }
}

/// `name` and `version` of a chart on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartMeta {
    pub name: String,
    pub version: String,
}

/// Reads `Chart.yaml` from a packaged chart (`.tgz`, as `helm package` and chart repositories
/// make them: `<name>/Chart.yaml` inside) or from a chart directory.
pub fn read_meta(path: &Path) -> Result<ChartMeta> {
    let text = if path.is_dir() {
        std::fs::read_to_string(path.join("Chart.yaml"))
            .with_context(|| format!("{} has no readable Chart.yaml", path.display()))?
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut found = None;
        for entry in archive
            .entries()
            .with_context(|| format!("{} is not a gzipped tar archive", path.display()))?
        {
            let mut entry =
                entry.with_context(|| format!("{} is not a readable chart", path.display()))?;
            let entry_path = entry.path()?.to_path_buf();
            // The top-level chart's Chart.yaml, not a subchart's (`<name>/charts/…`).
            if entry_path.components().count() == 2 && entry_path.ends_with("Chart.yaml") {
                let mut text = String::new();
                entry.read_to_string(&mut text)?;
                found = Some(text);
                break;
            }
        }
        found.with_context(|| format!("{} holds no <chart>/Chart.yaml", path.display()))?
    };
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
            .filter(|v| !v.is_empty())
    };
    match (field("name"), field("version")) {
        (Some(name), Some(version)) => Ok(ChartMeta { name, version }),
        _ => bail!(
            "the Chart.yaml of {} has no name or version",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fullname_is_the_charts() {
        assert_eq!(fullname("rocketchat", None), "rocketchat-rocketchat");
        assert_eq!(fullname("chat", None), "chat-rocketchat");
        assert_eq!(fullname("chat", Some("rc")), "chat-rc");
        assert_eq!(fullname("chat", Some("")), "chat-rocketchat");
        // trunc 63, then trimSuffix "-".
        let release = "r".repeat(52);
        assert_eq!(fullname(&release, Some("x-y")), format!("{release}-x-y"));
        assert_eq!(fullname(&"a".repeat(62), None), "a".repeat(62));
    }

    #[test]
    fn the_bundled_mongodb_is_where_the_subchart_puts_it() {
        assert_eq!(
            bundled_mongodb_host("rocketchat"),
            "rocketchat-mongodb-headless:27017"
        );
        assert_eq!(
            bundled_mongodb_host("chat-mongodb-x"),
            "chat-mongodb-x-headless:27017"
        );
    }

    #[test]
    fn the_vendored_charts_are_the_supported_ones() {
        for c in SUPPORTED {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
                "tests/fixtures/charts/rocketchat-{}.tgz",
                c.version
            ));
            let meta = read_meta(&path).unwrap();
            assert_eq!(
                meta,
                ChartMeta {
                    name: CHART_NAME.into(),
                    version: c.version.into()
                }
            );
        }
        assert!(supported(DEFAULT_VERSION).is_some());
        assert!(supported("6.24.0").is_none());
    }

    #[test]
    fn each_chart_accepts_the_mongodb_its_rocket_chat_starts_on() {
        let v = MongoVersion::new;
        let (six, seven) = (supported("6.25.1").unwrap(), supported("7.0.2").unwrap());
        assert_eq!(six.rejects(v(6, 0, 10)), None);
        assert_eq!(six.rejects(v(5, 0, 0)), None);
        assert!(six.rejects(v(4, 4, 29)).is_some());
        assert_eq!(seven.rejects(v(8, 0, 0)), None);
        assert_eq!(seven.rejects(v(8, 2, 1)), None);
        let why = seven.rejects(v(7, 0, 14)).unwrap();
        assert!(
            why.contains("8.0 or newer") && why.contains("7.0.14"),
            "{why}"
        );
        // The broken pair of issue 24: chart 7.0.2's own bundled MongoDB.
        assert!(seven.rejects(seven.bundled_mongodb_version()).is_some());
        assert_eq!(six.rejects(six.bundled_mongodb_version()), None);
    }
}
