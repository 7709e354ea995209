//! `jeeves ssh HOST`: the system's OpenSSH client, exec'd, with the pinned host keys.

use anyhow::{Context, Result, bail};

use crate::cli::SshArgs;
use crate::config::Settings;
use crate::exit_code::UsageError;
use crate::fleet;
use crate::ssh::{HostKeyPolicy, openssh_args};
use crate::state::{Host, Inventory, StateDir};

pub async fn run(settings: &Settings, args: &SshArgs) -> Result<u8> {
    settings.check_ssh_key()?;
    // With the S3 backend, the inventory and the pinned keys as the bucket holds them.
    let state_dir = StateDir::open(&settings.state_dir)?;
    super::refresh_working_copy(settings, &state_dir, "ssh").await?;
    let inv = state_dir.load()?.inventory;
    let host = match pick(&inv, &args.host)? {
        host if args.host == "controller" && inv.controllers().len() > 1 => {
            first_answering(settings, &inv).await?.unwrap_or(host)
        }
        host => host,
    };
    let (target, mut opts) = fleet::login(&settings.ssh, &host, HostKeyPolicy::Strict)?;
    // Absolute, so the command line shown by `ps` or `ssh -v` names the files plainly.
    opts.key_path = std::path::absolute(&opts.key_path)?;
    opts.known_hosts = std::path::absolute(&opts.known_hosts)?;
    let mut ssh_args = openssh_args(&target, &opts);
    ssh_args.extend(args.command.iter().cloned());
    use std::os::unix::process::CommandExt;
    // Replaces this process: the shell gets the terminal, signals and exit status as is.
    let err = std::process::Command::new("ssh").args(&ssh_args).exec();
    Err(err).context("cannot run `ssh` (install the OpenSSH client)")
}

/// With several controllers, `controller` is the first whose SSH answers (within the health
/// check's connect timeout), said on stderr when it is not the first; `None` when none answers
/// (the first is then logged in to, and ssh says why it cannot).
async fn first_answering(settings: &Settings, inv: &Inventory) -> Result<Option<Host>> {
    let mut ssh = settings.ssh.clone();
    ssh.connect_timeout = ssh.connect_timeout.min(super::check::CONNECT_TIMEOUT);
    let fleet = fleet::Fleet::new(&ssh, HostKeyPolicy::Strict);
    let controllers: Vec<Host> = inv.controllers().into_iter().cloned().collect();
    tokio::task::spawn_blocking(move || {
        let mut passed = Vec::new();
        for host in controllers {
            match fleet.lease(&host) {
                Ok(_) => {
                    if !passed.is_empty() {
                        eprintln!(
                            "ssh: {} (the first controller that answers; not answering: {})",
                            host.hostname,
                            passed.join(", ")
                        );
                    }
                    return Some(host);
                }
                Err(_) => passed.push(host.hostname.clone()),
            }
        }
        None
    })
    .await
    .context("the SSH thread panicked")
}

/// `controller`, `worker-N` (1-based) or a hostname, IP or instance id from the inventory.
fn pick(inv: &Inventory, name: &str) -> Result<Host> {
    if inv.is_empty() {
        bail!(
            "the inventory is empty: run `jeeves up --only terraform` first (it records the hosts)"
        );
    }
    let found = if name == "controller" {
        inv.controller.clone()
    } else if let Some(n) = name
        .strip_prefix("worker-")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n >= 1 && inv.workers.len() >= *n)
    {
        Some(inv.workers[n - 1].clone())
    } else {
        inv.controllers()
            .into_iter()
            .chain(&inv.workers)
            .find(|h| {
                [&h.hostname, &h.public_ip, &h.private_ip, &h.id].contains(&&name.to_string())
            })
            .cloned()
    };
    found.ok_or_else(|| {
        let names: Vec<String> = inv
            .controller
            .iter()
            .map(|h| format!("controller ({})", h.hostname))
            .chain(inv.more_controllers.iter().map(|h| h.hostname.clone()))
            .chain(
                inv.workers
                    .iter()
                    .enumerate()
                    .map(|(i, h)| format!("worker-{} ({})", i + 1, h.hostname)),
            )
            .collect();
        UsageError(format!(
            "no host `{name}` in the inventory; the hosts are: {}",
            names.join(", ")
        ))
        .into()
    })
}
