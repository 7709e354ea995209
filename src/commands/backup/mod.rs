//! `jeeves backup`: one MongoDB backup now — a Job from the backup CronJob the deploy stage
//! applied (`kubectl create job --from=cronjob/…`, as kubectl's `createJobFromCronJob` makes
//! it) — waited for, and the archives the volume then holds. `--list`: those archives only, read
//! by a short Job from the same template running the script's `list` (the volume is mounted by
//! pods only; the Job's log is how its contents reach us), or, with S3, read from the bucket.
//! Through the tunnel, like `up`. `jeeves restore` (`restore.rs`) shares the Jobs.

mod archives;
mod bucket;
mod job;
mod restore;

use std::time::Duration;

use anyhow::Result;

use crate::cli::{BackupArgs, GlobalArgs, RestoreArgs};
use crate::config::{BackupDestination, BackupSettings, Settings};
use crate::exit_code::{self, UsageError};
use crate::fleet::Fleet;
use crate::fleet::api_tunnel::{self, ApiTunnelOptions, kubeconfig_path};
use crate::kube::Tools;
use crate::process::Deadline;
use crate::report::{OutputMode, Redactor};
use crate::ssh::HostKeyPolicy;
use crate::state::{RunLock, StateDir, write_private};

fn no_backup(settings: &Settings) -> anyhow::Error {
    UsageError(format!(
        "{} has no [backup] section: add one (schedule, keep; see the README, \"Day 2\") and run `jeeves up --only deploy` to create the backup CronJob",
        settings.pipeline_file.display()
    ))
    .into()
}

pub async fn run(
    g: &GlobalArgs,
    settings: &Settings,
    redactor: Redactor,
    args: &BackupArgs,
) -> Result<u8> {
    let settings = &with_outputs(settings, "backup").await?;
    let Some(backup) = &settings.backup else {
        return Err(no_backup(settings));
    };
    if let (true, BackupDestination::S3(s3)) = (args.list, &backup.destination) {
        let report = bucket::list(settings, s3).await?;
        print!("{}", redactor.redact(&render(g, &report)?));
        return Ok(exit_code::SUCCESS);
    }
    let out = with_cluster(g, settings, backup, &redactor, "backup", async |jobs| {
        if args.list {
            jobs.list().await
        } else {
            jobs.backup().await
        }
    })
    .await?;
    print!("{}", redactor.redact(&render(g, &out)?));
    Ok(exit_code::SUCCESS)
}

/// `jeeves restore [ARCHIVE]`: see `restore.rs`.
pub async fn restore(
    g: &GlobalArgs,
    settings: &Settings,
    redactor: Redactor,
    args: &RestoreArgs,
) -> Result<u8> {
    let settings = &with_outputs(settings, "restore").await?;
    let Some(backup) = &settings.backup else {
        return Err(no_backup(settings));
    };
    // A malformed name is refused before anything else (exit 2, nothing remote run).
    if let Some(name) = &args.archive {
        restore::check_name(name)?;
    }
    super::confirm_by_name(
        settings,
        args.yes,
        "jeeves restore",
        "replaces the database's collections with an archive's",
        "Restore a MongoDB backup over the database",
        "nothing was restored",
    )?;
    // With S3 the archive is chosen from the bucket before the cluster is touched; on the
    // volume only a pod can list it.
    let (chosen, s3) = match &backup.destination {
        BackupDestination::S3(s3) => {
            let listed = bucket::list(settings, s3).await?;
            let chosen = restore::choose(args.archive.as_deref(), &listed)?;
            (Some(chosen), Some((s3.bucket.as_str(), s3.prefix.as_str())))
        }
        BackupDestination::Volume => (None, None),
    };
    let release = settings.helm.release.clone();
    let done = with_cluster(g, settings, backup, &redactor, "restore", async |jobs| {
        let archive = match chosen {
            Some(c) => c,
            None => restore::choose(args.archive.as_deref(), &jobs.list().await?)?,
        };
        jobs.restore(&release, &archive, s3).await
    })
    .await?;
    let text = match g.output {
        OutputMode::Json => serde_json::to_string(&done)? + "\n",
        OutputMode::Auto | OutputMode::Plain => done.text(),
    };
    print!("{}", redactor.redact(&text));
    Ok(exit_code::SUCCESS)
}

/// The settings with `[backup]`'s bucket from terraform's outputs when the pipeline names none
/// (the inventory of the state's working copy, refreshed first from a shared state).
async fn with_outputs(settings: &Settings, command: &str) -> Result<Settings> {
    if !settings.backup_bucket_from_terraform() {
        return Ok(settings.clone());
    }
    let state_dir = StateDir::open(&settings.state_dir)?;
    super::refresh_working_copy(settings, &state_dir, command).await?;
    let inv = state_dir.load()?.inventory;
    Ok(settings.backup_from_outputs(inv.backup_bucket.as_deref(), inv.backup_prefix.as_deref())?)
}

/// Runs `f` with the backup Jobs of the cluster, reached through the tunnel under the run lock
/// (the tunnel's local port is the one `up` uses: one at a time); the tunnel is closed after.
async fn with_cluster<T>(
    g: &GlobalArgs,
    settings: &Settings,
    backup: &BackupSettings,
    redactor: &Redactor,
    command: &str,
    f: impl AsyncFnOnce(&job::Jobs<'_>) -> Result<T>,
) -> Result<T> {
    settings.check_ssh_key()?;
    // Ctrl-C or a Jenkins abort stops the kubectl under way (the Job itself runs on in the
    // cluster), closes the tunnel and releases the lock: exit 130 / 143.
    crate::interrupt::install()?;
    let state_dir = StateDir::open(&settings.state_dir)?;
    super::refresh_working_copy(settings, &state_dir, command).await?;
    let _lock = RunLock::acquire(&state_dir.file("lock"), command, g.lock_timeout)?;
    let verbose = g.verbose;
    let opened = api_tunnel::open(
        &Fleet::new(&settings.ssh, HostKeyPolicy::Strict),
        state_dir.load()?.inventory.controller()?,
        ApiTunnelOptions::from_settings(settings)?,
        state_dir.file("kubeconfig.probe"),
        Box::new(move |line| {
            if verbose {
                eprintln!("tunnel: {line}")
            }
        }),
    )
    .await?;
    let kubeconfig = kubeconfig_path(settings);
    write_private(&kubeconfig, opened.kubeconfig.as_bytes())?;
    let tools = Tools::kubectl_only(settings, kubeconfig)?;
    let jobs = job::Jobs {
        tools: &tools,
        namespace: &settings.helm.namespace,
        cronjob: &backup.name,
        timeout: backup.timeout,
        // Past the wait's own timeout, a margin for kubectl to say so.
        deadline: Deadline {
            within: backup.timeout + Duration::from_secs(60),
            setting: "backup.timeout",
        },
        verbose: g.verbose,
        redactor,
        archives_at: match &backup.destination {
            BackupDestination::Volume => {
                format!("volume {}/{}", settings.helm.namespace, backup.name)
            }
            BackupDestination::S3(s3) => bucket::url(s3),
        },
    };
    let out = f(&jobs).await;
    drop(opened.tunnel);
    out
}

fn render(g: &GlobalArgs, report: &archives::Report) -> Result<String> {
    Ok(match g.output {
        OutputMode::Json => serde_json::to_string(report)? + "\n",
        OutputMode::Auto | OutputMode::Plain => report.text(),
    })
}
