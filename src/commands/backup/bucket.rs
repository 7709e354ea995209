//! `jeeves backup --list` with `destination = "s3"`: the archives in the bucket, read from
//! here with the runner's AWS credentials. No cluster is involved, so the list is there when
//! the cluster is not (which is what the bucket is for).

use anyhow::{Context, Result};

use super::archives::{Report, from_objects};
use crate::aws::s3::Bucket;
use crate::config::{BackupBucket, Settings};

/// `s3://BUCKET/PREFIX/`, where the archives are.
pub fn url(s3: &BackupBucket) -> String {
    format!("s3://{}/{}/", s3.bucket, s3.prefix)
}

pub async fn list(settings: &Settings, s3: &BackupBucket) -> Result<Report> {
    let region = if s3.region.is_empty() {
        settings.project.region.clone().unwrap_or_default()
    } else {
        s3.region.clone()
    };
    let endpoint = (!s3.endpoint_url.is_empty()).then_some(s3.endpoint_url.as_str());
    let bucket = Bucket::open_at(&s3.bucket, &s3.prefix, &region, endpoint).await?;
    let objects = bucket.objects("mongodb-").await.with_context(|| {
        format!(
            "listing the backup archives (backup.bucket {}, backup.prefix {})",
            s3.bucket, s3.prefix
        )
    })?;
    Ok(Report {
        volume: url(s3),
        job: None,
        wrote: None,
        point_in_time: None,
        consistency: None,
        removed: Vec::new(),
        archives: from_objects(objects),
    })
}
