//! `[backup]`: the MongoDB backup CronJob's schedule, retention, image, volume and how long
//! `jeeves backup` waits for one.

use super::Checker;
use crate::config::{BackupBucket, BackupDestination, BackupSettings, pipeline, validate};

/// CronJob names are at most 52 characters (the Job controller appends an 11-character suffix
/// to name its Jobs).
const CRONJOB_NAME_MAX: usize = 52;

/// `release`: `helm.release` when it passed its own check (the objects are named after it);
/// `pipeline`: the pipeline's name, the default key prefix of S3 archives.
pub(super) fn check(
    c: &mut Checker,
    raw: pipeline::Backup,
    release: Option<&str>,
    pipeline: &str,
) -> Option<BackupSettings> {
    let destination = destination(c, &raw, pipeline);
    let schedule = c.check("backup.schedule", validate::cron_schedule(&raw.schedule));
    let keep = c.check("backup.keep", validate::count(raw.keep, 1, 1000));
    let image = c.check("backup.image", validate::pinned_image(&raw.image));
    let storage_class = c.check(
        "backup.storage_class",
        validate::k8s_name(&raw.storage_class, 253),
    );
    let storage_size = c.check("backup.storage_size", validate::quantity(&raw.storage_size));
    let timeout = c.check("backup.timeout", validate::nonzero_duration(&raw.timeout));
    let name = format!("{}-mongodb-backup", release?);
    let name = c.check(
        "helm.release",
        (name.len() <= CRONJOB_NAME_MAX)
            .then_some(name)
            .ok_or_else(|| {
                format!(
                    "names the backup CronJob `<release>-mongodb-backup`, which must be at most {CRONJOB_NAME_MAX} characters: shorten the release name to {} or fewer",
                    CRONJOB_NAME_MAX - "-mongodb-backup".len()
                )
            }),
    );
    Some(BackupSettings {
        name: name?,
        schedule: schedule?,
        keep: keep?,
        image: image?,
        storage_class: storage_class?,
        storage_size: storage_size?,
        timeout: timeout?,
        destination: destination?,
    })
}

/// `backup.destination` and the keys only `s3` reads (set with `volume`: an error, as for
/// `[state]`, so a half-made switch is not silently ignored).
fn destination(
    c: &mut Checker,
    raw: &pipeline::Backup,
    pipeline: &str,
) -> Option<BackupDestination> {
    let s3_only = [
        ("backup.bucket", &raw.bucket),
        ("backup.prefix", &raw.prefix),
        ("backup.region", &raw.region),
        ("backup.endpoint_url", &raw.endpoint_url),
        ("backup.credentials_secret", &raw.credentials_secret),
    ];
    match raw.destination.as_str() {
        "volume" => {
            let mut ok = true;
            for (key, value) in s3_only {
                if !value.is_empty() {
                    c.check::<()>(
                        key,
                        Err("is read only by destination = \"s3\" (backup.destination is \"volume\")".into()),
                    );
                    ok = false;
                }
            }
            ok.then_some(BackupDestination::Volume)
        }
        "s3" => {
            // Empty: terraform's `backup_bucket` output (and, with no prefix either, its
            // `backup_prefix`), read once terraform has run (`Settings::backup_from_outputs`).
            let bucket = if raw.bucket.is_empty() {
                Some(String::new())
            } else {
                c.check("backup.bucket", super::state::bucket_name(&raw.bucket))
            };
            let prefix = if raw.prefix.is_empty() && raw.bucket.is_empty() {
                Some(String::new())
            } else if raw.prefix.is_empty() {
                Some(pipeline.to_string())
            } else {
                c.check("backup.prefix", super::state::key_prefix(&raw.prefix))
            };
            let region = if raw.region.is_empty() {
                Some(String::new())
            } else {
                c.check("backup.region", super::state::region(&raw.region))
            };
            let endpoint_url = if raw.endpoint_url.is_empty() {
                Some(String::new())
            } else {
                c.check("backup.endpoint_url", endpoint_url(&raw.endpoint_url))
            };
            let credentials_secret = if raw.credentials_secret.is_empty() {
                Some(String::new())
            } else {
                c.check(
                    "backup.credentials_secret",
                    validate::k8s_name(&raw.credentials_secret, 253),
                )
            };
            let upload_image = c.check(
                "backup.upload_image",
                validate::pinned_image(&raw.upload_image),
            );
            Some(BackupDestination::S3(BackupBucket {
                bucket: bucket?,
                prefix: prefix?,
                region: region?,
                endpoint_url: endpoint_url?,
                credentials_secret: credentials_secret?,
                upload_image: upload_image?,
            }))
        }
        other => c.check(
            "backup.destination",
            Err(format!(
                "`{other}` is not a backup destination: expected s3 or volume"
            )),
        ),
    }
}

/// An http(s) URL without spaces or quotes (it goes into the Job's environment).
fn endpoint_url(value: &str) -> Result<String, String> {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() > "https://".len()
        && !value
            .chars()
            .any(|ch| ch.is_whitespace() || ch == '\'' || ch == '"' || ch.is_control());
    ok.then(|| value.to_string()).ok_or_else(|| {
        format!("`{value}` is not an http:// or https:// URL (e.g. http://minio.internal:9000)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass() {
        let mut c = Checker::for_test();
        let b = check(
            &mut c,
            pipeline::Backup::default(),
            Some("rocketchat"),
            "lab",
        )
        .unwrap();
        assert_eq!(c.keys(), Vec::<&str>::new());
        assert_eq!(b.name, "rocketchat-mongodb-backup");
        assert_eq!(b.schedule, "0 3 * * *");
        assert_eq!(b.keep, 7);
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let mut c = Checker::for_test();
        let raw = pipeline::Backup {
            schedule: "0 3 * *".into(),
            keep: 0,
            image: "mongo".into(),
            storage_class: "Fast SSD".into(),
            storage_size: "ten gigs".into(),
            timeout: "0s".into(),
            ..Default::default()
        };
        assert!(check(&mut c, raw, Some("rocketchat"), "lab").is_none());
        assert_eq!(
            c.keys(),
            [
                "backup.schedule",
                "backup.keep",
                "backup.image",
                "backup.storage_class",
                "backup.storage_size",
                "backup.timeout"
            ]
        );
        let mut c = Checker::for_test();
        let long = "r".repeat(40);
        assert!(check(&mut c, pipeline::Backup::default(), Some(&long), "lab").is_none());
        assert_eq!(c.keys(), ["helm.release"]);
    }

    #[test]
    fn s3_takes_a_bucket_and_defaults_its_prefix_to_the_pipeline() {
        let mut c = Checker::for_test();
        let raw = pipeline::Backup {
            destination: "s3".into(),
            bucket: "rc-backups".into(),
            endpoint_url: "http://127.0.0.1:5055".into(),
            ..Default::default()
        };
        let b = check(&mut c, raw, Some("rocketchat"), "lab").unwrap();
        let BackupDestination::S3(s3) = b.destination else {
            panic!("{:?}", b.destination)
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("rc-backups", "lab")
        );
        assert_eq!(s3.endpoint_url, "http://127.0.0.1:5055");
        // No bucket: terraform's outputs fill bucket and prefix in, once there are some.
        let raw = pipeline::Backup {
            destination: "s3".into(),
            ..Default::default()
        };
        let b = check(&mut c, raw, Some("rocketchat"), "lab").unwrap();
        let BackupDestination::S3(s3) = b.destination else {
            panic!("{:?}", b.destination)
        };
        assert_eq!((s3.bucket.as_str(), s3.prefix.as_str()), ("", ""));
        for (raw, key) in [
            (
                pipeline::Backup {
                    destination: "tape".into(),
                    ..Default::default()
                },
                "backup.destination",
            ),
            (
                pipeline::Backup {
                    bucket: "b-b-b".into(),
                    ..Default::default()
                },
                "backup.bucket",
            ),
            (
                pipeline::Backup {
                    destination: "s3".into(),
                    bucket: "rc-backups".into(),
                    endpoint_url: "minio:9000".into(),
                    ..Default::default()
                },
                "backup.endpoint_url",
            ),
        ] {
            let mut c = Checker::for_test();
            assert!(check(&mut c, raw, Some("rocketchat"), "lab").is_none());
            assert_eq!(c.keys(), [key]);
        }
    }
}
