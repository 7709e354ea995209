//! `helm.mongodb = "external"`: the server's version, read from the server itself. Nothing in
//! the cluster names an external server's version (no StatefulSet, no `MongoDBCommunity`), so a
//! short-lived Job asks it: the mongo tools image's `mongosh` with `MONGO_URI` from the Secret
//! Rocket.Chat reads (by `secretKeyRef`: the URI reaches the pod's environment only, never a
//! command line, a file or the Job object), printing `db.version()` — the server's `buildInfo`
//! version (mongodb-js/mongosh 2.x, `packages/shell-api/src/database.ts`, `version()`), the
//! field Rocket.Chat's own start-up check coerces (`mongo_version::MongoVersion::coerce`).
//!
//! A pod costs seconds (image pulled once per node, then the server's round trip), so `up` reads
//! it just before Rocket.Chat rolls (after the Secret is written: on a first install there is
//! nothing to read before) and `check` reads it; `plan` says it will be read and starts no pod,
//! so that a plan stays a read of the cluster's objects. The Job is deleted once read (its log
//! is all it had to say); `ttlSecondsAfterFinished` removes it should Jeeves be stopped first.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::db_version::Server;
use crate::config::Settings;
use crate::kube::{Tools, succeeded};
use crate::mongo_version::MongoVersion;
use crate::process::Said;

/// How long the Job may take (its `activeDeadlineSeconds`) and Jeeves waits for it.
const DEADLINE: Duration = Duration::from_secs(120);
/// Between two reads of the Job's conditions.
const POLL: Duration = Duration::from_secs(2);
/// The line the script prints before the version.
const MARK: &str = "jeeves-version: ";

/// mongosh's script: the URI from the environment, the version on one marked line.
const SCRIPT: &str = "// jeeves-probe: version
const d = connect(process.env.MONGO_URI);
print(\"jeeves-version: \" + d.version());";

/// The Job: one container of the backup image (`[backup] image`, else its default: the
/// official mongo image, which ships mongosh), as unprivileged as the backup Job's.
pub fn job(settings: &Settings, name: &str) -> serde_json::Value {
    let image = settings
        .backup
        .as_ref()
        .map_or_else(crate::config::default_backup_image, |b| b.image.clone());
    let labels = serde_json::json!({
        "app.kubernetes.io/name": "mongodb-version",
        "app.kubernetes.io/instance": settings.helm.release,
        "app.kubernetes.io/managed-by": "jeeves",
    });
    serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": settings.helm.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": DEADLINE.as_secs(),
            "ttlSecondsAfterFinished": 300,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 999, "runAsGroup": 999},
                    "containers": [{
                        "name": "mongosh",
                        "image": image,
                        "command": ["mongosh", "--nodb", "--quiet", "--eval", SCRIPT],
                        "env": [{"name": "MONGO_URI", "valueFrom": {"secretKeyRef": {
                            "name": settings.helm.mongodb_secret,
                            "key": crate::chart::secret_keys::URI,
                        }}}],
                        "securityContext": {"allowPrivilegeEscalation": false,
                                            "capabilities": {"drop": ["ALL"]}},
                    }],
                },
            },
        },
    })
}

/// `<release>-mongodb-version-<nonce>` (8 hex digits), within the 63 characters of a Job's name.
fn job_name(release: &str) -> String {
    // Unique to the run, not the second: a scheduled `check` and an `up` that start in the same
    // second must not share one Job (the first to finish would delete the other's).
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let nonce = nanos ^ std::process::id().rotate_left(16);
    let head: String = release
        .chars()
        .take(63 - "-mongodb-version-00000000".len())
        .collect();
    format!("{head}-mongodb-version-{nonce:08x}")
}

/// The version the Job's log gives.
pub fn parse(log: &str, source: &str) -> Result<Server> {
    let text = log
        .lines()
        .find_map(|l| l.strip_prefix(MARK))
        .with_context(|| {
            format!(
                "mongosh printed no version:\n{}",
                crate::process::tail(log, "", 10)
            )
        })?
        .trim();
    let version = MongoVersion::coerce(text)
        .with_context(|| format!("the server's version `{text}` is not a MongoDB version"))?;
    Ok(Server {
        version,
        source: format!("the external server's db.version() {text}, read by {source}"),
    })
}

/// Runs the Job, waits for it (Complete or Failed, within `DEADLINE`), reads its log and
/// deletes it.
pub async fn read(
    tools: &Tools,
    settings: &Settings,
    mut say: impl FnMut(Said<'_>),
) -> Result<Server> {
    let ns = &settings.helm.namespace;
    let secret = &settings.helm.mongodb_secret;
    // Without the Secret the pod would wait to start until the deadline
    // (CreateContainerConfigError): said at once instead.
    let found = tools
        .kubectl_saying(&["get", "secret", secret, "-n", ns, "-o", "name"], &mut say)
        .await?;
    if crate::kube::absent(&found) {
        bail!(
            "cannot read the external MongoDB's version: no secret {ns}/{secret} with its URI yet (`jeeves up --only deploy` writes it from MONGO_URI)"
        );
    }
    succeeded(found, &format!("reading secret {ns}/{secret}"))?;
    let name = job_name(&settings.helm.release);
    let source = format!("Job {ns}/{name}");
    succeeded(
        tools
            .apply_stdin(serde_json::to_vec(&job(settings, &name))?)
            .await?,
        &format!("creating {source} (mongosh db.version())"),
    )?;
    let outcome = wait(tools, ns, &name, &mut say).await;
    // Read, then deleted whatever the read gave: an error here must not leave the Job behind.
    let logs = tools
        .kubectl_saying(&["logs", &format!("job/{name}"), "-n", ns], &mut say)
        .await;
    let deleted = tools
        .kubectl_saying(&["delete", "job", &name, "-n", ns], &mut say)
        .await;
    let logs = logs?;
    succeeded(deleted?, &format!("deleting {source}"))?;
    let log = if logs.status.success() {
        logs.stdout
    } else {
        format!("(no log: {})", logs.tail(3))
    };
    match outcome? {
        true => parse(&log, &source),
        false => bail!(
            "cannot read the external MongoDB's version: {source} failed (the URI in secret {ns}/{} does not reach a server Rocket.Chat could use); its log:\n{}",
            settings.helm.mongodb_secret,
            crate::process::tail(&log, "", 10)
        ),
    }
}

/// `true` once the Job is Complete, `false` once Failed; an error past `DEADLINE`.
async fn wait(tools: &Tools, ns: &str, name: &str, say: &mut impl FnMut(Said<'_>)) -> Result<bool> {
    let start = Instant::now();
    loop {
        let out = succeeded(
            tools
                .kubectl_saying(&["get", "jobs", "-n", ns, "-o", "json"], &mut *say)
                .await?,
            "listing the Jobs",
        )?;
        let list: serde_json::Value =
            serde_json::from_str(&out.stdout).context("`kubectl get jobs` printed no JSON")?;
        if let Some(done) = finished(&list, name) {
            return Ok(done);
        }
        if start.elapsed() >= DEADLINE {
            bail!(
                "Job {ns}/{name} did not finish within {}s: `kubectl describe job {name} -n {ns}` (after `jeeves tunnel`) says why (an image pull, or a missing secret)",
                DEADLINE.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The Job's outcome from a list of Jobs: `Some(true)` Complete, `Some(false)` Failed.
fn finished(list: &serde_json::Value, name: &str) -> Option<bool> {
    let job = list["items"]
        .as_array()?
        .iter()
        .find(|j| j["metadata"]["name"] == name)?;
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .filter(|c| c["status"] == "True")
        .find_map(|c| match c["type"].as_str() {
            Some("Complete") => Some(true),
            Some("Failed") => Some(false),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::load(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs([
                ("JEEVES_HELM_MONGODB", "external"),
                ("MONGO_URI", "mongodb://rc:s3cr3t@db.internal/rocketchat"),
            ]),
        )
        .unwrap()
    }

    #[test]
    fn the_job_takes_the_uri_by_reference_only() {
        let s = settings();
        let name = job_name(&s.helm.release);
        assert!(name.len() <= 63 && name.starts_with("rocketchat-mongodb-version-"));
        assert!(job_name(&"r".repeat(60)).len() <= 63);
        let job = job(&s, &name);
        let c = &job["spec"]["template"]["spec"]["containers"][0];
        // No value in the object itself: every variable comes by reference (the URI from its
        // Secret), so nothing secret can be in the Job, its events or `kubectl get` of it.
        let env = c["env"].as_array().expect("env");
        assert!(env.iter().all(|e| e.get("value").is_none()), "{env:?}");
        assert_eq!(
            c["env"][0]["valueFrom"]["secretKeyRef"],
            serde_json::json!({"name": "rocketchat-mongodb", "key": "mongo-uri"})
        );
        assert_eq!(c["image"], "docker.io/library/mongo:7.0.28");
        assert_eq!(c["command"][4], SCRIPT);
    }

    #[test]
    fn the_log_gives_the_version_and_the_list_the_outcome() {
        let got = parse(
            "Current Mongosh Log ID: x\njeeves-version: 6.0.10\n",
            "Job ns/j",
        )
        .unwrap();
        assert_eq!(got.version, MongoVersion::new(6, 0, 10));
        assert!(got.source.contains("6.0.10") && got.source.contains("Job ns/j"));
        assert!(parse("MongoServerSelectionError: …\n", "Job ns/j").is_err());
        let list = |t: &str| {
            serde_json::json!({"items": [{"metadata": {"name": "j"},
                "status": {"conditions": [{"type": t, "status": "True"}]}}]})
        };
        assert_eq!(finished(&list("Complete"), "j"), Some(true));
        assert_eq!(finished(&list("Failed"), "j"), Some(false));
        assert_eq!(finished(&list("Complete"), "other"), None);
        assert_eq!(
            finished(
                &serde_json::json!({"items": [{"metadata": {"name": "j"}}]}),
                "j"
            ),
            None
        );
    }
}
