//! `jeeves restore [ARCHIVE]`: one archive (the newest by default) restored over the database
//! by a Job made from the backup CronJob's pod (`job::restore_job`), while Rocket.Chat's
//! Deployments are scaled to zero (so nothing writes during `mongorestore --drop`), and scaled
//! back to the replicas they had, whether the restore worked or not.

use anyhow::{Context, Result};
use serde::Serialize;

use super::archives::{self, Report};
use super::job::{Jobs, job_name, restore_job};
use crate::exit_code::UsageError;
use crate::kube::succeeded;

/// A Deployment scaled to zero for the restore, and its replicas before.
#[derive(Debug, Clone, Serialize)]
pub struct Scaled {
    pub name: String,
    pub replicas: u64,
}

/// One collection's documents before and after.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Count {
    pub collection: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Restored {
    pub archive: String,
    #[serde(rename = "where")]
    pub at: String,
    pub job: String,
    pub scaled: Vec<Scaled>,
    pub counts: Vec<Count>,
}

impl Restored {
    pub fn text(&self) -> String {
        let mut out = format!("restored {} from {}\n", self.archive, self.at);
        for s in &self.scaled {
            out.push_str(&format!(
                "deployment {} scaled to 0 and back to {}\n",
                s.name, s.replicas
            ));
        }
        out.push_str("collection counts, before → after:\n");
        let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        for c in &self.counts {
            out.push_str(&format!(
                "  {:<40} {:>8} → {}\n",
                c.collection,
                n(c.before),
                n(c.after)
            ));
        }
        out
    }
}

/// `ARCHIVE` when it is one of `listed`, else the newest; an unknown or malformed name is a
/// usage error naming it (exit 2).
pub fn choose(wanted: Option<&str>, listed: &Report) -> Result<String> {
    if let Some(name) = wanted {
        check_name(name)?;
    }
    match wanted {
        Some(name) if listed.archives.iter().any(|a| a.name == name) => Ok(name.to_string()),
        Some(name) => Err(UsageError(format!(
            "no archive `{name}` in {}; `jeeves backup --list` shows those there",
            listed.volume
        ))
        .into()),
        None => listed
            .archives
            .first()
            .map(|a| a.name.clone())
            .ok_or_else(|| {
                UsageError(format!("no archives in {} to restore", listed.volume)).into()
            }),
    }
}

/// An archive's name as the backup writes them, or a usage error naming it (exit 2).
pub fn check_name(name: &str) -> Result<()> {
    if archives::started(name).is_none() {
        return Err(UsageError(format!(
            "`{name}` is not an archive name (mongodb-YYYYMMDDTHHMMSSZ.archive.gz; `jeeves backup --list` shows them)"
        ))
        .into());
    }
    Ok(())
}

/// `jeeves-restore: before|after COLLECTION COUNT` lines of the Job's log.
pub fn counts(log: &str) -> Vec<Count> {
    let mut out: Vec<Count> = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.trim().strip_prefix("jeeves-restore: ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(when), Some(coll), Some(n), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        if when != "before" && when != "after" {
            continue;
        }
        let i = match out.iter().position(|c| c.collection == coll) {
            Some(i) => i,
            None => {
                out.push(Count {
                    collection: coll.to_string(),
                    before: None,
                    after: None,
                });
                out.len() - 1
            }
        };
        if when == "before" {
            out[i].before = Some(n);
        } else {
            out[i].after = Some(n);
        }
    }
    out.sort_by(|a, b| a.collection.cmp(&b.collection));
    out
}

impl Jobs<'_> {
    /// The release's Deployments and their replicas.
    async fn deployments(&self, release: &str) -> Result<Vec<Scaled>> {
        let out = succeeded(
            self.kubectl(&["get", "deployments", "-n", self.namespace, "-o", "json"])
                .await?,
            &format!("listing the Deployments in {}", self.namespace),
        )?;
        let list: serde_json::Value = serde_json::from_str(&out.stdout)
            .context("`kubectl get deployments -o json` answered something that is not JSON")?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["metadata"]["labels"]["app.kubernetes.io/instance"] == release)
            .filter_map(|d| {
                Some(Scaled {
                    name: d["metadata"]["name"].as_str()?.to_string(),
                    replicas: d["spec"]["replicas"].as_u64().unwrap_or(1),
                })
            })
            .collect())
    }

    async fn scale(&self, name: &str, replicas: u64) -> Result<()> {
        let to = format!("--replicas={replicas}");
        succeeded(
            self.kubectl(&["scale", "deployment", name, "-n", self.namespace, &to])
                .await?,
            &format!("scaling deployment {}/{name} to {replicas}", self.namespace),
        )?;
        Ok(())
    }

    /// Scales the release's Deployments to zero, runs the restore Job, and scales them back
    /// (also when the Job failed).
    pub async fn restore(
        &self,
        release: &str,
        archive: &str,
        s3: Option<(&str, &str)>,
    ) -> Result<Restored> {
        let cronjob = self.cronjob().await?;
        let name = job_name(self.cronjob, "r");
        let job = restore_job(&cronjob, &name, self.namespace, archive, s3)?;
        let scaled = self.deployments(release).await?;
        for d in &scaled {
            eprintln!(
                "scaling deployment {}/{} from {} to 0 replicas",
                self.namespace, d.name, d.replicas
            );
            self.scale(&d.name, 0).await?;
        }
        eprintln!(
            "restore Job {}/{name}: mongorestore --drop of {archive} (backup.timeout {}s)",
            self.namespace,
            self.timeout.as_secs()
        );
        let ran = async {
            succeeded(
                self.tools.apply_stdin(serde_json::to_vec(&job)?).await?,
                &format!("creating the restore Job {}/{name}", self.namespace),
            )?;
            self.wait_and_read(&name).await
        }
        .await;
        let mut back = Ok(());
        for d in &scaled {
            eprintln!(
                "scaling deployment {}/{} back to {} replicas",
                self.namespace, d.name, d.replicas
            );
            if let Err(e) = self.scale(&d.name, d.replicas).await {
                back = Err(e);
            }
        }
        let log = ran?;
        back?;
        Ok(Restored {
            archive: archive.to_string(),
            at: self.archives_at.clone(),
            job: format!("{}/{name}", self.namespace),
            scaled,
            counts: counts(&log),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pair_before_and_after_and_names_are_checked() {
        let log = "jeeves-restore: before rocketchat_message 10\n\
                   jeeves-restore: before users 3\n\
                   2026-12-06T14:00:00.000+0000\tdropping collection rocketchat.users\n\
                   jeeves-restore: after users 2\n\
                   jeeves-restore: after rocketchat_message 7\n\
                   jeeves-restore: after new_one 1\n\
                   jeeves-restore: restored mongodb-20261206T140000Z.archive.gz into rocketchat\n";
        let c = counts(log);
        assert_eq!(
            c.iter()
                .map(|c| (c.collection.as_str(), c.before, c.after))
                .collect::<Vec<_>>(),
            [
                ("new_one", None, Some(1)),
                ("rocketchat_message", Some(10), Some(7)),
                ("users", Some(3), Some(2))
            ]
        );
        let listed = Report::from_log(
            "jeeves-backup: archive mongodb-20261206T140000Z.archive.gz 10\n\
             jeeves-backup: archive mongodb-20261205T140000Z.archive.gz 10\n",
            "s3://b/p/".into(),
            None,
        );
        assert_eq!(
            choose(None, &listed).unwrap(),
            "mongodb-20261206T140000Z.archive.gz"
        );
        let err = choose(Some("../etc/passwd"), &listed).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
        assert!(
            err.to_string()
                .contains("`../etc/passwd` is not an archive name"),
            "{err}"
        );
        let err = choose(Some("mongodb-20200101T000000Z.archive.gz"), &listed).unwrap_err();
        assert!(
            err.to_string()
                .contains("no archive `mongodb-20200101T000000Z.archive.gz` in s3://b/p/"),
            "{err}"
        );
    }
}
