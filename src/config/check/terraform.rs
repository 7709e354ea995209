//! `[terraform]`: the configuration directory, its variables and backend, extra variable files
//! (which must exist), and how long one terraform command may run.

use std::path::{Path, PathBuf};

use super::Checker;
use crate::config::{TerraformSettings, pipeline, validate};

pub(super) fn check(
    c: &mut Checker,
    raw: pipeline::Terraform,
    base: &Path,
) -> Option<TerraformSettings> {
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
            let tf = check(&mut c, with_workers(ok), dir.path()).unwrap();
            assert_eq!(c.keys(), Vec::<&str>::new(), "{ok}");
            assert_eq!(tf.vars["worker_count"].to_string(), ok);
        }
        for bad in ["-1", "1001", "2.5", "'3'"] {
            let mut c = Checker::for_test();
            check(&mut c, with_workers(bad), dir.path());
            assert_eq!(c.keys(), ["terraform.vars.worker_count"], "{bad}");
        }
    }
}
