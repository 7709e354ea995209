//! `jeeves backup`: one MongoDB backup now — a Job from the backup CronJob the deploy stage
//! applied (`kubectl create job --from=cronjob/…`, as kubectl's `createJobFromCronJob` makes
//! it) — waited for, and the archives the volume then holds. `--list`: those archives only, read
//! by a short Job from the same template running the script's `list` (the volume is mounted by
//! pods only; the Job's log is how its contents reach us). Through the tunnel, like `up`.

mod archives;
mod bucket;
mod job;

use std::time::Duration;

use anyhow::Result;

use crate::cli::{BackupArgs, GlobalArgs};
use crate::config::{BackupDestination, Settings};
use crate::exit_code::{self, UsageError};
use crate::fleet::Fleet;
use crate::fleet::api_tunnel::{self, ApiTunnelOptions, kubeconfig_path};
use crate::process::Deadline;
use crate::report::{OutputMode, Redactor};
use crate::ssh::HostKeyPolicy;
use crate::stages::deploy::Tools;
use crate::state::{RunLock, StateDir, write_private};

pub async fn run(
    g: &GlobalArgs,
    settings: &Settings,
    redactor: Redactor,
    args: &BackupArgs,
) -> Result<u8> {
    let Some(backup) = &settings.backup else {
        return Err(UsageError(format!(
            "{} has no [backup] section: add one (schedule, keep; see the README, \"Day 2\") and run `jeeves up --only deploy` to create the backup CronJob",
            settings.pipeline_file.display()
        ))
        .into());
    };
    if let (true, BackupDestination::S3(s3)) = (args.list, &backup.destination) {
        let report = bucket::list(settings, s3).await?;
        print!("{}", redactor.redact(&render(g, &report)?));
        return Ok(exit_code::SUCCESS);
    }
    settings.check_ssh_key()?;
    // Ctrl-C or a Jenkins abort stops the kubectl under way (the Job itself runs on in the
    // cluster), closes the tunnel and releases the lock: exit 130 / 143.
    crate::interrupt::install()?;
    let state_dir = StateDir::open(&settings.state_dir)?;
    super::refresh_working_copy(settings, &state_dir, "backup").await?;
    // The tunnel's local port is the one `up` uses: one at a time.
    let _lock = RunLock::acquire(&state_dir.file("lock"), "backup", g.lock_timeout)?;
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
        redactor: &redactor,
        archives_at: match &backup.destination {
            BackupDestination::Volume => {
                format!("volume {}/{}", settings.helm.namespace, backup.name)
            }
            BackupDestination::S3(s3) => bucket::url(s3),
        },
    };
    let out = if args.list {
        jobs.list().await
    } else {
        jobs.backup().await
    };
    drop(opened.tunnel);
    let report = out?;
    print!("{}", redactor.redact(&render(g, &report)?));
    Ok(exit_code::SUCCESS)
}

fn render(g: &GlobalArgs, report: &archives::Report) -> Result<String> {
    Ok(match g.output {
        OutputMode::Json => serde_json::to_string(report)? + "\n",
        OutputMode::Auto | OutputMode::Plain => report.text(),
    })
}
