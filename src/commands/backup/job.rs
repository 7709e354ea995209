//! Backup Jobs: created (from the CronJob), waited for (complete or failed, whichever comes
//! first), and read (their log).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use tokio::sync::Notify;

use super::archives::Report;
use crate::kube::{Tools, succeeded};
use crate::process::{Deadline, Said};
use crate::report::Redactor;
use crate::stages::deploy::BACKUP_MOUNT_PATH;

pub struct Jobs<'a> {
    pub tools: &'a Tools,
    pub namespace: &'a str,
    pub cronjob: &'a str,
    pub timeout: Duration,
    pub deadline: Deadline,
    pub verbose: bool,
    pub redactor: &'a Redactor,
    /// Where the archives are, for the report: `volume NS/CLAIM` or `s3://BUCKET/PREFIX/`.
    pub archives_at: String,
}

/// A Job name: the CronJob's name (at most 52 characters) and an 11-character suffix, as the
/// CronJob controller names its own (`<cronjob>-<minutes since the epoch>`, 8 digits); manual
/// runs take the milliseconds in 10 characters, so they never meet a scheduled one's name, nor
/// each other's when two start within one second (a re-run, two Jenkins jobs: the seconds did,
/// and the second failed with "already exists").
pub(super) fn job_name(cronjob: &str, tag: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let digits = 10 - tag.len();
    let n = millis % 10u128.pow(digits as u32);
    format!("{cronjob}-{tag}{n:0digits$}")
}

impl Jobs<'_> {
    fn say(&self) -> impl Fn(Said<'_>) + '_ {
        move |s| {
            if self.verbose {
                match s {
                    Said::Stdout(l) | Said::Stderr(l) | Said::Notice(l) => {
                        eprintln!("kubectl: {}", self.redactor.redact(l))
                    }
                }
            }
        }
    }

    /// The backup CronJob, whose pod template every Job of `backup`, `--list` and `restore` is
    /// made from.
    pub(super) async fn cronjob(&self) -> Result<serde_json::Value> {
        let out = succeeded(
            self.kubectl(&[
                "get",
                "cronjob",
                self.cronjob,
                "-n",
                self.namespace,
                "-o",
                "json",
            ])
            .await?,
            &format!(
                "reading CronJob {}/{} (is [backup] applied? run `jeeves up --only deploy`)",
                self.namespace, self.cronjob
            ),
        )?;
        serde_json::from_str(&out.stdout)
            .context("`kubectl get cronjob -o json` answered something that is not JSON")
    }

    pub(super) async fn kubectl(&self, args: &[&str]) -> Result<crate::process::Output> {
        self.tools
            .kubectl_within(args, self.deadline, self.say())
            .await
    }

    /// One backup now: `kubectl create job NAME --from=cronjob/CRONJOB`, waited for.
    pub async fn backup(&self) -> Result<Report> {
        let name = job_name(self.cronjob, "");
        let from = format!("--from=cronjob/{}", self.cronjob);
        succeeded(
            self.kubectl(&["create", "job", &name, &from, "-n", self.namespace])
                .await?,
            &format!(
                "creating backup Job {}/{name} from CronJob {} (is [backup] applied? run `jeeves up --only deploy`)",
                self.namespace, self.cronjob
            ),
        )?;
        eprintln!(
            "backup Job {}/{name} created from cronjob/{}; waiting for it (backup.timeout {}s)",
            self.namespace,
            self.cronjob,
            self.timeout.as_secs()
        );
        let log = self.wait_and_read(&name).await?;
        Ok(Report::from_log(
            &log,
            self.volume(),
            Some(format!("{}/{name}", self.namespace)),
        ))
    }

    /// The archives on the volume: a Job from the CronJob's template running the script's
    /// `list`, read and deleted.
    pub async fn list(&self) -> Result<Report> {
        let cronjob = self.cronjob().await?;
        let name = job_name(self.cronjob, "l");
        let job = list_job(&cronjob, &name, self.namespace)?;
        succeeded(
            self.tools.apply_stdin(serde_json::to_vec(&job)?).await?,
            &format!("creating the listing Job {}/{name}", self.namespace),
        )?;
        let log = self.wait_and_read(&name).await;
        let deleted = self
            .kubectl(&["delete", "job", &name, "-n", self.namespace])
            .await;
        let log = log?;
        succeeded(
            deleted?,
            &format!("deleting the listing Job {}/{name}", self.namespace),
        )?;
        Ok(Report::from_log(&log, self.volume(), None))
    }

    fn volume(&self) -> String {
        self.archives_at.clone()
    }

    /// `kubectl wait --for=condition=CONDITION` on `job`, stopped once `stop` is notified;
    /// notifies `done` when it has ended.
    async fn wait_for(
        &self,
        job: &str,
        timeout: &str,
        condition: &str,
        stop: &Notify,
        done: &Notify,
    ) -> Result<crate::process::Output> {
        let cond = format!("--for=condition={condition}");
        let out = self
            .tools
            .kubectl_until(
                &["wait", &cond, job, "-n", self.namespace, timeout],
                self.deadline,
                self.say(),
                stop.notified(),
            )
            .await;
        done.notify_one();
        out
    }

    /// Waits until the Job is Complete (its log) or Failed (an error with its log's tail),
    /// within `backup.timeout`.
    pub(super) async fn wait_and_read(&self, name: &str) -> Result<String> {
        let job = format!("job/{name}");
        let timeout = format!("--timeout={}s", self.timeout.as_secs());
        // A Job that failed is never Complete: one kubectl waits for each condition, and the
        // first to end asks the other to stop and waits for it (no kubectl outlives Jeeves).
        let (complete_done, failed_done) = (Notify::new(), Notify::new());
        let (on_complete, on_failed) = tokio::join!(
            self.wait_for(&job, &timeout, "complete", &failed_done, &complete_done),
            self.wait_for(&job, &timeout, "failed", &complete_done, &failed_done),
        );
        let (on_complete, on_failed) = (on_complete?, on_failed?);
        let (complete, out) = if on_failed.status.success() && !on_complete.status.success() {
            (false, on_failed)
        } else {
            (true, on_complete)
        };
        // Ctrl-C: kubectl was asked to stop; the Job runs on in the cluster.
        crate::interrupt::check().with_context(|| {
            format!(
                "stopped waiting for backup Job {}/{name}, which runs on in the cluster (`jeeves backup --list` shows what it wrote)",
                self.namespace
            )
        })?;
        // Every container's: the dump's and, with S3, the upload's.
        let logs = self
            .kubectl(&["logs", &job, "-n", self.namespace, "--all-containers"])
            .await?;
        let log = if logs.status.success() {
            logs.stdout
        } else {
            format!("(no log: {})", logs.tail(3))
        };
        let tail = crate::process::tail(&log, "", 20);
        if !out.status.success() {
            bail!(
                "backup Job {}/{name} did not finish: {} (backup.timeout is {}s); its log:\n{tail}\nInspect it with `kubectl describe {job} -n {}` (after `jeeves tunnel`)",
                self.namespace,
                out.tail(3),
                self.timeout.as_secs(),
                self.namespace
            );
        }
        if !complete {
            bail!(
                "backup Job {}/{name} failed{}; its log:\n{tail}\nInspect it with `kubectl describe {job} -n {}` (after `jeeves tunnel`)",
                self.namespace,
                self.why_failed(name).await,
                self.namespace
            );
        }
        Ok(log)
    }

    /// ` (REASON: MESSAGE)` from the Job's Failed condition, with the way out of a deadline
    /// (the pod is gone then, and its log with it); empty when it cannot be read, since the
    /// failure is reported either way.
    async fn why_failed(&self, name: &str) -> String {
        let Ok(out) = self
            .kubectl(&["get", "jobs", "-n", self.namespace, "-o", "json"])
            .await
        else {
            return String::new();
        };
        let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        let failed = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|j| j["metadata"]["name"] == name)
            .flat_map(|j| {
                j["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|c| c["type"] == "Failed" && c["status"] == "True");
        match failed {
            Some(c) if c["reason"] == "DeadlineExceeded" => format!(
                " (DeadlineExceeded: {}; backup.timeout is {}s, raise it if the database has grown)",
                c["message"].as_str().unwrap_or_default(),
                self.timeout.as_secs()
            ),
            Some(c) => format!(
                " ({}: {})",
                c["reason"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default()
            ),
            None => String::new(),
        }
    }
}

/// A restore Job: the CronJob's pod with roles changed. On the volume, its `mongodump`
/// container runs the script's `restore DIR NAME`; with S3, the `upload` container (the aws
/// CLI) becomes the init container that downloads NAME into the pod's volume, and `mongodump`
/// the container that restores it.
pub(super) fn restore_job(
    cronjob: &serde_json::Value,
    name: &str,
    namespace: &str,
    archive: &str,
    s3: Option<(&str, &str)>,
) -> Result<serde_json::Value> {
    let template = &cronjob["spec"]["jobTemplate"];
    let mut spec = template["spec"].clone();
    let pod = &mut spec["template"]["spec"];
    let take = |list: &serde_json::Value, wanted: &str| -> Result<serde_json::Value> {
        list.as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == wanted).cloned())
            .with_context(|| {
                format!(
                    "the backup CronJob has no `{wanted}` container; run `jeeves up --only deploy`"
                )
            })
    };
    let all: Vec<serde_json::Value> = [&pod["initContainers"], &pod["containers"]]
        .iter()
        .filter_map(|l| l.as_array())
        .flatten()
        .cloned()
        .collect();
    let all = serde_json::Value::Array(all);
    let mut restore = take(&all, "mongodump")?;
    restore["args"] = serde_json::json!(["restore", BACKUP_MOUNT_PATH, archive]);
    match s3 {
        None => {
            pod["containers"] = serde_json::json!([restore]);
        }
        Some((bucket, prefix)) => {
            let mut download = take(&all, "upload")?;
            download["args"] =
                serde_json::json!(["download", BACKUP_MOUNT_PATH, bucket, prefix, archive]);
            pod["initContainers"] = serde_json::json!([download]);
            pod["containers"] = serde_json::json!([restore]);
        }
    }
    spec["ttlSecondsAfterFinished"] = 86400.into();
    Ok(job_object(
        template,
        name,
        namespace,
        serde_json::json!({"jeeves/restore": archive}),
        spec,
    ))
}

/// A Job with the CronJob template's labels, these annotations and this spec.
fn job_object(
    template: &serde_json::Value,
    name: &str,
    namespace: &str,
    annotations: serde_json::Value,
    spec: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": template["metadata"]["labels"],
            "annotations": annotations
        },
        "spec": spec
    })
}

/// The listing Job: what `kubectl create job --from=cronjob/…` makes (the template's spec, its
/// labels, `cronjob.kubernetes.io/instantiate: manual`), with the script's `list` as the
/// container's arguments and without its environment (the database URI), removed by the TTL
/// controller if Jeeves cannot delete it.
fn list_job(cronjob: &serde_json::Value, name: &str, namespace: &str) -> Result<serde_json::Value> {
    let template = &cronjob["spec"]["jobTemplate"];
    let mut spec = template["spec"].clone();
    let container = spec["template"]["spec"]["containers"]
        .as_array_mut()
        .and_then(|c| c.iter_mut().find(|c| c["name"] == "mongodump"))
        .context(
            "the backup CronJob has no `mongodump` container; run `jeeves up --only deploy`",
        )?;
    container["args"] = serde_json::json!(["list", BACKUP_MOUNT_PATH]);
    // Listing needs no database: the pod gets no credentials, and lists even when the Secret
    // is gone.
    if let Some(c) = container.as_object_mut() {
        c.remove("env");
    }
    spec["ttlSecondsAfterFinished"] = 300.into();
    Ok(job_object(
        template,
        name,
        namespace,
        serde_json::json!({"cronjob.kubernetes.io/instantiate": "manual"}),
        spec,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_fit_and_list_jobs_run_the_listing() {
        let cronjob = "r".repeat(52);
        assert_eq!(job_name(&cronjob, "").len(), 63);
        assert_eq!(job_name(&cronjob, "l").len(), 63);
        let cj = serde_json::json!({"spec": {"jobTemplate": {"spec": {"backoffLimit": 0,
            "template": {"spec": {"containers": [{"name": "mongodump",
            "args": ["dump", "/backup", "7"], "env": [{"name": "MONGO_URI"}]}]}}}}}});
        let job = list_job(&cj, "x-l1", "ns").unwrap();
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["args"],
            serde_json::json!(["list", "/backup"])
        );
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert!(job["spec"]["template"]["spec"]["containers"][0]["env"].is_null());
        assert!(list_job(&serde_json::json!({}), "x", "ns").is_err());
    }

    #[test]
    fn restore_jobs_swap_the_pods_roles() {
        let dump = serde_json::json!({"name": "mongodump", "args": ["dump", "/backup", "0", "60"],
            "env": [{"name": "MONGO_URI"}]});
        let upload =
            serde_json::json!({"name": "upload", "args": ["upload", "/backup", "b", "p", "7"]});
        let s3 = serde_json::json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "initContainers": [dump.clone()], "containers": [upload]}}}}}});
        let job = restore_job(
            &s3,
            "x-r1",
            "ns",
            "mongodb-20261206T140000Z.archive.gz",
            Some(("b", "p")),
        )
        .unwrap();
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["initContainers"][0]["name"], "upload");
        assert_eq!(
            pod["initContainers"][0]["args"],
            serde_json::json!([
                "download",
                "/backup",
                "b",
                "p",
                "mongodb-20261206T140000Z.archive.gz"
            ])
        );
        assert_eq!(pod["containers"][0]["name"], "mongodump");
        assert_eq!(
            pod["containers"][0]["args"],
            serde_json::json!(["restore", "/backup", "mongodb-20261206T140000Z.archive.gz"])
        );
        assert_eq!(
            pod["containers"][0]["env"], dump["env"],
            "the URI by reference, as the dump has it"
        );
        let volume = serde_json::json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [dump], "volumes": [{"name": "archives", "persistentVolumeClaim": {"claimName": "c"}}]}}}}}});
        let job = restore_job(
            &volume,
            "x-r1",
            "ns",
            "mongodb-20261206T140000Z.archive.gz",
            None,
        )
        .unwrap();
        let pod = &job["spec"]["template"]["spec"];
        assert!(pod["initContainers"].is_null(), "{pod}");
        assert_eq!(pod["containers"][0]["args"][0], "restore");
        assert_eq!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"], "c");
        assert!(
            restore_job(&volume, "x", "ns", "a", Some(("b", "p"))).is_err(),
            "S3 needs the upload container"
        );
    }
}
