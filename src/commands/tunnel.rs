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
    let opened = api_tunnel::open(
        &Fleet::new(&settings.ssh, HostKeyPolicy::Strict),
        state_dir.load()?.inventory.controller()?,
        ApiTunnelOptions::from_settings(settings)?,
        state_dir.file("kubeconfig.probe"),
        Box::new(|line| eprintln!("tunnel: {line}")),
    )
    .await?;
    let path = std::path::absolute(kubeconfig_path(settings))?;
    write_private(&path, opened.kubeconfig.as_bytes())?;
    println!(
        "tunnel open: {} → the MicroK8s API on the controller",
        opened.tunnel.local
    );
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
