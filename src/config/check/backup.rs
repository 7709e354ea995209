//! `[backup]`: the MongoDB backup CronJob's schedule, retention, image, volume and how long
//! `jeeves backup` waits for one.

use super::Checker;
use crate::config::{BackupSettings, pipeline, validate};

/// CronJob names are at most 52 characters (the Job controller appends an 11-character suffix
/// to name its Jobs).
const CRONJOB_NAME_MAX: usize = 52;

/// `release`: `helm.release` when it passed its own check (the objects are named after it).
pub(super) fn check(
    c: &mut Checker,
    raw: pipeline::Backup,
    release: Option<&str>,
) -> Option<BackupSettings> {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass() {
        let mut c = Checker::for_test();
        let b = check(&mut c, pipeline::Backup::default(), Some("rocketchat")).unwrap();
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
        };
        assert!(check(&mut c, raw, Some("rocketchat")).is_none());
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
        assert!(check(&mut c, pipeline::Backup::default(), Some(&long)).is_none());
        assert_eq!(c.keys(), ["helm.release"]);
    }
}
