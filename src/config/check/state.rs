//! `[state]`: where the state, known_hosts, the certificate cache and the run lock are kept
//! between runs: `local` (the state directory) or `s3` (a bucket, a key prefix, a region).

use super::Checker;
use crate::config::{StateSettings, pipeline};

pub(super) fn check(
    c: &mut Checker,
    raw: pipeline::StateBackend,
    pipeline_name: &str,
) -> Option<StateSettings> {
    match raw.backend.as_str() {
        "local" => {
            for (key, value) in [
                ("state.bucket", &raw.bucket),
                ("state.key_prefix", &raw.key_prefix),
                ("state.region", &raw.region),
            ] {
                if !value.is_empty() {
                    c.check::<()>(
                        key,
                        Err("is read only by backend = \"s3\" (state.backend is \"local\")".into()),
                    );
                }
            }
            Some(StateSettings::Local)
        }
        "s3" => {
            let bucket = c.check("state.bucket", bucket_name(&raw.bucket));
            let prefix = if raw.key_prefix.is_empty() {
                Some(format!("jeeves/{pipeline_name}"))
            } else {
                c.check("state.key_prefix", key_prefix(&raw.key_prefix))
            };
            let region = if raw.region.is_empty() {
                Some(None)
            } else {
                c.check("state.region", region(&raw.region)).map(Some)
            };
            Some(StateSettings::S3 {
                bucket: bucket?,
                key_prefix: prefix?,
                region: region?,
            })
        }
        other => c.check(
            "state.backend",
            Err(format!(
                "`{other}` is not a state backend: expected local or s3"
            )),
        ),
    }
}

/// S3's bucket naming rules (general purpose buckets): 3-63 characters of lowercase letters,
/// digits, dots and hyphens, starting and ending with a letter or digit.
pub(super) fn bucket_name(value: &str) -> Result<String, String> {
    let ok_chars = value
        .chars()
        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '.' || ch == '-');
    let ok_ends = value
        .chars()
        .next()
        .zip(value.chars().last())
        .is_some_and(|(a, b)| a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric());
    if value.is_empty() {
        Err("is empty: name the S3 bucket that holds the shared state".into())
    } else if (3..=63).contains(&value.len()) && ok_chars && ok_ends {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{value}` is not an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)"
        ))
    }
}

/// A key prefix without leading or trailing `/` (Jeeves adds the separators).
pub(super) fn key_prefix(value: &str) -> Result<String, String> {
    if value.starts_with('/') || value.ends_with('/') || value.contains("//") {
        Err(format!(
            "`{value}` must not start or end with `/` nor contain `//` (e.g. jeeves/rocketchat)"
        ))
    } else if value.chars().any(|ch| ch.is_control()) {
        Err("contains control characters".into())
    } else {
        Ok(value.to_string())
    }
}

pub(super) fn region(value: &str) -> Result<String, String> {
    let ok = value.split('-').count() >= 3
        && value
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    if ok {
        Ok(value.to_string())
    } else {
        Err(format!("`{value}` is not an AWS region (e.g. eu-west-1)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(backend: &str, bucket: &str, prefix: &str, region: &str) -> pipeline::StateBackend {
        pipeline::StateBackend {
            backend: backend.into(),
            bucket: bucket.into(),
            key_prefix: prefix.into(),
            region: region.into(),
        }
    }

    #[test]
    fn local_is_the_default_and_reads_no_s3_key() {
        let mut c = Checker::for_test();
        let s = check(&mut c, pipeline::StateBackend::default(), "demo");
        assert!(matches!(s, Some(StateSettings::Local)));
        assert!(c.keys().is_empty());
        check(&mut c, raw("local", "b", "", ""), "demo");
        assert_eq!(c.keys(), ["state.bucket"]);
    }

    #[test]
    fn s3_needs_a_bucket_and_defaults_the_prefix_to_the_pipeline() {
        let mut c = Checker::for_test();
        let s = check(&mut c, raw("s3", "team-state", "", ""), "demo");
        match s {
            Some(StateSettings::S3 {
                bucket,
                key_prefix,
                region,
            }) => {
                assert_eq!(bucket, "team-state");
                assert_eq!(key_prefix, "jeeves/demo");
                assert_eq!(region, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(c.keys().is_empty());
        assert!(check(&mut c, raw("s3", "", "/a/", "moon"), "demo").is_none());
        assert_eq!(
            c.keys(),
            ["state.bucket", "state.key_prefix", "state.region"]
        );
        check(&mut c, raw("gcs", "", "", ""), "demo");
        assert_eq!(c.keys().last(), Some(&"state.backend"));
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(bucket_name("my-state.bucket1").is_ok());
        for bad in ["ab", "My-Bucket", "-bucket", "bucket-", "under_score"] {
            assert!(bucket_name(bad).is_err(), "{bad}");
        }
    }
}
