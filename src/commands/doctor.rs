use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::Command;

use crate::cli::GlobalArgs;
use crate::config::{Env, Settings, StateSettings, Tools};
use crate::exit_code;

/// Checks what a run needs, prints one line per check, and exits 1 when any check fails
/// (2 when the configuration itself is invalid).
pub async fn run(g: &GlobalArgs, env: &Env) -> Result<u8> {
    let mut failed = 0;
    let mut report = |ok: bool, what: &str, detail: String| {
        if !ok {
            failed += 1;
        }
        println!("{} {:<12} {}", if ok { "✓" } else { "✗" }, what, detail);
    };
    // Never a failure: a missing `.env` is fine, but say whether one was read.
    report(true, "env file", env.file_summary());
    let settings = Settings::load(&g.pipeline, env);
    if let Ok(s) = &settings {
        for warning in &s.warnings {
            report(true, "warning", warning.clone());
        }
        if let Some(region) = &s.project.region {
            crate::aws::use_region(region);
        }
    }
    let tools = match &settings {
        Ok(s) => s.tools.clone(),
        Err(_) => toml::from_str::<Tools>("").expect("defaults"),
    };
    let mut terraform_version = None;
    for (name, setting, args) in [
        ("terraform", &tools.terraform, &["version"][..]),
        ("helm", &tools.helm, &["version", "--short"][..]),
        ("kubectl", &tools.kubectl, &["version", "--client"][..]),
    ] {
        match which::which(setting) {
            Err(_) => report(
                false,
                name,
                format!("`{setting}` not found on PATH (set tools.{name} to its path)"),
            ),
            Ok(path) => {
                let version = tokio::time::timeout(
                    Duration::from_secs(20),
                    Command::new(&path).args(args).output(),
                )
                .await;
                match version {
                    Ok(Ok(out)) if out.status.success() => {
                        let text = String::from_utf8_lossy(&out.stdout);
                        let first = text
                            .lines()
                            .find(|l| !l.trim().is_empty())
                            .unwrap_or("")
                            .trim()
                            .to_string();
                        if name == "terraform" {
                            terraform_version =
                                first.strip_prefix("Terraform v").map(str::to_string);
                        }
                        report(true, name, format!("{first} ({})", path.display()));
                    }
                    _ => report(
                        false,
                        name,
                        format!("{} does not answer `{}`", path.display(), args.join(" ")),
                    ),
                }
            }
        }
    }
    // The terraform module's own floor (`required_version`), checked before `init` trips on it.
    if let (Ok(s), Some(have)) = (&settings, &terraform_version)
        && let Some((file, constraint, floor)) = required_terraform(&s.terraform.dir)
    {
        let ok = version_tuple(have) >= version_tuple(&floor);
        report(
            ok,
            "terraform ≥",
            if ok {
                format!("{have} meets {constraint} ({})", file.display())
            } else {
                format!(
                    "terraform {have} is older than {floor}, which {} requires (required_version = \"{constraint}\"); install terraform {floor} or newer",
                    file.display()
                )
            },
        );
    }
    // `kubectl diff` (drift in the live Traefik objects) runs this program.
    let differ = std::env::var("KUBECTL_EXTERNAL_DIFF").unwrap_or_else(|_| "diff".into());
    let differ = differ
        .split_whitespace()
        .next()
        .unwrap_or("diff")
        .to_string();
    match which::which(&differ) {
        Ok(path) => report(
            true,
            "diff",
            format!("{} (for kubectl diff)", path.display()),
        ),
        Err(_) => report(
            false,
            "diff",
            format!(
                "`{differ}` not found on PATH: kubectl diff cannot find changes made to the live Traefik objects (install diffutils, or set KUBECTL_EXTERNAL_DIFF)"
            ),
        ),
    }
    match &settings {
        Ok(s) => match s.check_ssh_key() {
            Ok(()) => report(
                true,
                "ssh key",
                format!("{} (private)", s.ssh.key_path.display()),
            ),
            Err(e) => report(
                false,
                "ssh key",
                e.0.iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        },
        Err(_) => report(
            false,
            "ssh key",
            "not checked: the configuration is invalid".into(),
        ),
    }
    match crate::aws::identity(Duration::from_secs(20)).await {
        Ok(id) => report(
            true,
            "aws",
            format!(
                "{} (account {}, region {})",
                id.arn,
                id.account,
                id.region.as_deref().unwrap_or("not set")
            ),
        ),
        Err(e) => report(false, "aws", format!("{e:#}")),
    }
    // The S3 state backend: the bucket answers a listing and a read under the prefix.
    if let Ok(s) = &settings
        && s.state != StateSettings::Local
    {
        let checked = async {
            let bucket = super::state_bucket(s).await?.context("an S3 backend")?;
            bucket.list("tls").await?;
            let held = bucket.get("lock").await?.is_some();
            anyhow::Ok((bucket.url(""), held))
        }
        .await;
        match checked {
            Ok((url, held)) => report(
                true,
                "state",
                format!(
                    "{url} readable{}",
                    if held {
                        " (a run holds the lock now)"
                    } else {
                        ""
                    }
                ),
            ),
            Err(e) => report(false, "state", format!("{e:#}")),
        }
    }
    match settings {
        Ok(s) => {
            report(
                true,
                "config",
                format!(
                    "{} is valid (domain {})",
                    s.pipeline_file.display(),
                    s.domain
                ),
            );
            Ok(if failed == 0 {
                exit_code::SUCCESS
            } else {
                exit_code::STAGE_FAILED
            })
        }
        Err(e) => {
            report(
                false,
                "config",
                format!("{} problem(s), listed below", e.0.len()),
            );
            Err(e.into())
        }
    }
}

/// The lower bound of the first `required_version` in the module's `*.tf` files:
/// (file, the constraint as written, its `>=` version).
fn required_terraform(dir: &Path) -> Option<(PathBuf, String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    files.sort();
    files.into_iter().find_map(|file| {
        let text = std::fs::read_to_string(&file).ok()?;
        let constraint = text.lines().find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "required_version").then(|| value.trim().trim_matches('"').to_string())
        })?;
        let floor = constraint
            .split(',')
            .find_map(|c| c.trim().strip_prefix(">="))?
            .trim()
            .to_string();
        Some((file, constraint, floor))
    })
}

/// `1.11.4` → [1, 11, 4]; a pre-release suffix is ignored.
fn version_tuple(v: &str) -> Vec<u32> {
    v.split(['-', '+'])
        .next()
        .unwrap_or(v)
        .split('.')
        .map(|n| n.parse().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modules_floor_is_read_and_compared() {
        let aws = Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/aws");
        let (file, constraint, floor) = required_terraform(&aws).unwrap();
        assert!(file.ends_with("versions.tf"));
        assert_eq!((constraint.as_str(), floor.as_str()), (">= 1.11", "1.11"));
        assert!(version_tuple("1.9.8") < version_tuple("1.11"));
        assert!(version_tuple("1.11.4") >= version_tuple("1.11"));
        assert!(version_tuple("1.12.0-beta1") >= version_tuple("1.11"));
    }
}
