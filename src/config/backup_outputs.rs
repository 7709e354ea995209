//! `[backup] destination = "s3"` without a bucket: terraform's outputs name it. terraform/aws
//! makes the bucket and an instance profile that may use only one prefix in it, and says both as
//! the outputs `backup_bucket` and `backup_prefix` (terraform/aws/outputs.tf), which the
//! terraform stage reads into the inventory. Pipelines made by `jeeves init` leave the bucket
//! empty, so that what terraform made is what the backups use.

use super::{BackupDestination, ConfigErrors, Settings};

impl Settings {
    /// `[backup]` sends archives to S3 without naming the bucket.
    pub fn backup_bucket_from_terraform(&self) -> bool {
        matches!(
            self.backup.as_ref().map(|b| &b.destination),
            Some(BackupDestination::S3(s3)) if s3.bucket.is_empty()
        )
    }

    /// These settings with an empty `backup.bucket` (and `backup.prefix`) filled in from
    /// terraform's outputs; the same settings when nothing is missing. No `backup_bucket` output
    /// to fill it from: a configuration error naming `backup.bucket` and where it was read
    /// (exit 2).
    pub fn backup_from_outputs(
        &self,
        bucket: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<Settings, ConfigErrors> {
        let Some(backup) = &self.backup else {
            return Ok(self.clone());
        };
        let BackupDestination::S3(s3) = &backup.destination else {
            return Ok(self.clone());
        };
        if !s3.bucket.is_empty() {
            return Ok(self.clone());
        }
        let Some(bucket) = bucket.filter(|b| !b.is_empty()) else {
            return Err(self.config_error(
                "backup.bucket",
                format!(
                    "is empty, and terraform (terraform.dir {}) has no output `backup_bucket` to take it from: run `jeeves up --only terraform` with a configuration that defines it (terraform/aws does), or name the bucket",
                    self.terraform.dir.display()
                ),
            ));
        };
        // terraform/aws's instance profile may use only its own prefix (backup.tf): a prefix
        // of the pipeline's own would be refused by S3 every night, unless the Job has keys of
        // its own (credentials_secret).
        let theirs = prefix.filter(|p| !p.is_empty());
        if let Some(theirs) = theirs
            && !s3.prefix.is_empty()
            && s3.credentials_secret.is_empty()
            && s3.prefix.trim_matches('/') != theirs.trim_matches('/')
        {
            return Err(self.config_error(
                "backup.prefix",
                format!(
                    "is \"{}\", but the bucket is terraform's, whose instance profile may write only under \"{theirs}\" (output `backup_prefix`): leave backup.prefix empty, or give the Job keys of its own (backup.credentials_secret)",
                    s3.prefix
                ),
            ));
        }
        let mut out = self.clone();
        if let Some(BackupDestination::S3(s3)) = out.backup.as_mut().map(|b| &mut b.destination) {
            s3.bucket = bucket.to_string();
            if s3.prefix.is_empty() {
                s3.prefix = prefix
                    .filter(|p| !p.is_empty())
                    .map_or_else(|| self.project.name.clone(), str::to_string);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{BackupDestination, Env, Settings};

    /// The lab pipeline (S3 backups) with this bucket and prefix, as the check leaves them.
    fn settings(name: &str, prefix: &str) -> Settings {
        let lab = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml");
        let mut s = Settings::load(std::path::Path::new(lab), &Env::from_pairs([])).unwrap();
        let Some(BackupDestination::S3(s3)) = s.backup.as_mut().map(|b| &mut b.destination) else {
            panic!("the lab pipeline backs up to S3")
        };
        s3.bucket = name.into();
        s3.prefix = prefix.into();
        s
    }

    fn bucket(s: &Settings) -> (String, String) {
        match &s.backup.as_ref().unwrap().destination {
            BackupDestination::S3(s3) => (s3.bucket.clone(), s3.prefix.clone()),
            BackupDestination::Volume => panic!("volume"),
        }
    }

    #[test]
    fn an_empty_bucket_is_terraforms() {
        let s = settings("", "");
        let got = s
            .backup_from_outputs(Some("acme-backup-1234"), Some("acme"))
            .unwrap();
        assert_eq!(bucket(&got), ("acme-backup-1234".into(), "acme".into()));
        // No prefix output: the pipeline's name, as with a bucket named in the pipeline.
        let got = s
            .backup_from_outputs(Some("acme-backup-1234"), None)
            .unwrap();
        assert_eq!(bucket(&got).1, s.project.name);
        // A prefix of the pipeline's own, where the nodes' instance profile may not write: a
        // configuration error naming it (with keys of the Job's own, allowed).
        let mut own = settings("", "mine");
        if let Some(BackupDestination::S3(s3)) = own.backup.as_mut().map(|b| &mut b.destination) {
            s3.credentials_secret.clear(); // the lab's Job has keys: on AWS, the instance profile
        }
        let err = own
            .backup_from_outputs(Some("b-1"), Some("acme"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("backup.prefix") && err.contains("\"acme\"") && err.contains("lab.toml"),
            "{err}"
        );
        let same = settings("", "acme/");
        let got = same.backup_from_outputs(Some("b-1"), Some("acme")).unwrap();
        assert_eq!(bucket(&got), ("b-1".into(), "acme/".into()));
        let keyed = settings("", "mine");
        let got = keyed
            .backup_from_outputs(Some("b-1"), Some("acme"))
            .unwrap();
        assert_eq!(bucket(&got), ("b-1".into(), "mine".into()));
    }

    #[test]
    fn a_named_bucket_is_kept_and_none_anywhere_is_an_error() {
        let s = settings("rc-backups", "lab");
        let got = s.backup_from_outputs(Some("other"), Some("p")).unwrap();
        assert_eq!(bucket(&got).0, "rc-backups");
        let s = settings("", "");
        let err = s.backup_from_outputs(None, None).unwrap_err().to_string();
        assert!(
            err.contains("backup.bucket")
                && err.contains("backup_bucket")
                && err.contains("lab.toml"),
            "{err}"
        );
    }
}
