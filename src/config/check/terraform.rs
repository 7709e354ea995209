//! `[terraform]`: the configuration directory, its variables and backend, extra variable files
//! (which must exist), and how long one terraform command may run.

use std::path::{Path, PathBuf};

use super::Checker;
use crate::config::{TerraformSettings, pipeline, validate};

/// `region` (`project.region`, checked) flows into the `region` variable and the backend's.
pub(super) fn check(
    c: &mut Checker,
    mut raw: pipeline::Terraform,
    base: &Path,
    region: Option<&str>,
) -> Option<TerraformSettings> {
    if let Some(region) = region {
        match raw.vars.get("region").map(|v| v.as_str()) {
            None => {
                raw.vars.insert("region".into(), region.into());
            }
            Some(Some(r)) if r == region => {}
            Some(other) => {
                c.check::<()>(
                    "terraform.vars.region",
                    Err(format!(
                        "{} differs from project.region `{region}`: set the region once, in project.region, and remove this one",
                        other.map(|r| format!("`{r}`")).unwrap_or_else(|| "this value".into())
                    )),
                );
            }
        }
        // The state bucket may live elsewhere: an explicit backend region wins.
        raw.backend_config
            .entry("region".into())
            .or_insert_with(|| region.to_string());
    }
    // Each entry becomes `terraform init -backend-config=KEY=VALUE`, an argument `ps` shows to
    // every user of the machine: credentials belong in the environment, where terraform's
    // backends read them too.
    for key in raw.backend_config.keys() {
        if names_a_credential(key) {
            c.check::<()>(
                &format!("terraform.backend_config.{key}"),
                Err("would put a credential on terraform's command line, which `ps` shows: set it in the environment instead (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN for the S3 backend, or the backend's own variables), or use a profile".to_string()),
            );
        }
    }
    let dir = c.local_path("terraform.dir", &raw.dir, base, true);
    let timeout = c.check(
        "terraform.timeout",
        validate::nonzero_duration(&raw.timeout),
    );
    let vars = match serde_json::to_value(&raw.vars) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    if let Some(v) = vars.get("worker_count")
        && v.as_u64().is_none_or(|n| n > 1000)
    {
        c.check::<()>(
            "terraform.vars.worker_count",
            Err(format!(
                "{v} is not a worker count (a whole number from 0 to 1000)"
            )),
        );
    }

    let var_files: Vec<PathBuf> = raw
        .var_files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let key = format!("terraform.var_files[{i}]");
            let path = c.local_path(&key, f, base, false)?;
            if path.is_file() {
                Some(path)
            } else {
                c.check(&key, Err(format!("{} is not a file", path.display())))
            }
        })
        .collect();

    Some(TerraformSettings {
        dir: dir?,
        vars,
        backend_config: raw.backend_config,
        var_files,
        timeout: timeout?,
    })
}

/// A backend setting that holds a credential: the S3 backend's `access_key`, `secret_key`,
/// `token` and `sse_customer_key`, and other backends' passwords, tokens, client secrets,
/// connection strings and credentials. Not a switch or a file's path naming one
/// (`skip_credentials_validation`, `shared_credentials_files`).
fn names_a_credential(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.starts_with("skip_")
        || ["_file", "_files", "_path"]
            .iter()
            .any(|s| key.ends_with(s))
    {
        return false;
    }
    [
        "secret",
        "password",
        "token",
        "access_key",
        "conn_str",
        "credentials",
        "customer_key",
        "private_key",
    ]
    .iter()
    .any(|word| key.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_workers(value: &str) -> pipeline::Terraform {
        pipeline::Terraform {
            dir: ".".into(),
            vars: format!("worker_count = {value}").parse().unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn worker_count_is_a_whole_number_up_to_1000() {
        let dir = tempfile::tempdir().unwrap();
        for ok in ["0", "3", "1000"] {
            let mut c = Checker::for_test();
            let tf = check(&mut c, with_workers(ok), dir.path(), None).unwrap();
            assert_eq!(c.keys(), Vec::<&str>::new(), "{ok}");
            assert_eq!(tf.vars["worker_count"].to_string(), ok);
        }
        for bad in ["-1", "1001", "2.5", "'3'"] {
            let mut c = Checker::for_test();
            check(&mut c, with_workers(bad), dir.path(), None);
            assert_eq!(c.keys(), ["terraform.vars.worker_count"], "{bad}");
        }
    }

    #[test]
    fn the_project_region_flows_to_the_variables_and_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Checker::for_test();
        let tf = check(&mut c, with_workers("1"), dir.path(), Some("ap-south-2")).unwrap();
        assert_eq!(c.keys(), Vec::<&str>::new());
        assert_eq!(tf.vars["region"], "ap-south-2");
        assert_eq!(tf.backend_config["region"], "ap-south-2");

        // A bucket elsewhere is kept; a second, different stack region is refused.
        let mut raw = with_workers("1");
        raw.backend_config
            .insert("region".into(), "us-east-1".into());
        let mut c = Checker::for_test();
        let tf = check(&mut c, raw, dir.path(), Some("ap-south-2")).unwrap();
        assert_eq!(tf.backend_config["region"], "us-east-1");
        assert!(names_a_credential("secret_key") && names_a_credential("sse_customer_key"));
        assert!(!names_a_credential("skip_credentials_validation"));
        assert!(!names_a_credential("shared_credentials_files") && !names_a_credential("bucket"));
        let mut raw = with_workers("1");
        raw.vars.insert("region".into(), "eu-west-1".into());
        let mut c = Checker::for_test();
        check(&mut c, raw, dir.path(), Some("ap-south-2"));
        assert_eq!(c.keys(), ["terraform.vars.region"]);
    }
}
