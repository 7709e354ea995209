use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Settings;
use crate::exit_code;
use crate::fleet::Fleet;
use crate::fleet::api_tunnel::{self, ApiTunnelOptions, kubeconfig_path};
use crate::ssh::HostKeyPolicy;
use crate::state::{StateDir, write_private};

/// Holds the tunnel open in the foreground until Ctrl-C (or SIGTERM), then closes it. Closing
/// waits for nothing remote; a second signal while it closes exits at once.
pub async fn run(settings: &Settings) -> Result<u8> {
    settings.check_ssh_key()?;
    let state_dir = StateDir::open(&settings.state_dir)?;
    if let Some(pulled) = super::refresh_working_copy(settings, &state_dir, "tunnel").await? {
        eprintln!(
            "tunnel: pulled [{}] from the state bucket",
            pulled.join(", ")
        );
    }
    let inv = state_dir.load()?.inventory;
    inv.controller()?;
    let controllers = inv.controllers();
    // With several controllers a dead one must not hold the tunnel for the whole
    // ssh.connect_timeout (minutes, for booting instances): the next one is tried instead.
    let mut ssh = settings.ssh.clone();
    if controllers.len() > 1 {
        ssh.connect_timeout = ssh.connect_timeout.min(super::check::CONNECT_TIMEOUT);
    }
    let fleet = Fleet::new(&ssh, HostKeyPolicy::Strict);
    let (opened, host, passed) = api_tunnel::open_first(
        &fleet,
        &controllers,
        ApiTunnelOptions::from_settings(settings)?,
        state_dir.file("kubeconfig.probe"),
        || Box::new(|line| eprintln!("tunnel: {line}")),
    )
    .await?;
    for (name, why) in &passed {
        eprintln!("tunnel: {name} does not serve the API ({why})");
    }
    let passed: Vec<&str> = passed.iter().map(|(name, _)| name.as_str()).collect();
    let path = std::path::absolute(kubeconfig_path(settings))?;
    write_private(&path, opened.kubeconfig.as_bytes())?;
    if controllers.len() == 1 {
        println!(
            "tunnel open: {} → the MicroK8s API on the controller",
            opened.tunnel.local
        );
    } else {
        // Which controller, and which were passed over: the first healthy one serves.
        println!(
            "tunnel open: {} → the MicroK8s API on {} ({}){}",
            opened.tunnel.local,
            host.hostname,
            host.public_ip,
            if passed.is_empty() {
                String::new()
            } else {
                format!("; not answering: {}", passed.join(", "))
            }
        );
    }
    println!("export KUBECONFIG={}", path.display());
    println!("Press Ctrl-C to close it.");
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let tunnel = opened.tunnel;
    let closing = tokio::task::spawn_blocking(move || drop(tunnel));
    let again = tokio::select! {
        r = closing => {
            r.context("closing the tunnel")?;
            None
        }
        _ = int.recv() => Some(libc::SIGINT),
        _ = term.recv() => Some(libc::SIGTERM),
    };
    if let Some(sig) = again {
        eprintln!("tunnel: second signal while closing; exiting at once");
        std::process::exit(128 + sig);
    }
    eprintln!("tunnel closed");
    Ok(exit_code::SUCCESS)
}
