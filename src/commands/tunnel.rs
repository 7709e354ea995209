use anyhow::{Context, Result};

use crate::config::Settings;
use crate::exit_code;
use crate::ssh::HostKeyPolicy;
use crate::stages::tunnel::{self, kubeconfig_path};
use crate::state::{StateDir, write_private};

/// Holds the tunnel open in the foreground until Ctrl-C (or SIGTERM), then closes it.
pub async fn run(settings: &Settings) -> Result<u8> {
    settings.check_ssh_key()?;
    let state_dir = StateDir::open(&settings.state_dir)?;
    let inv = state_dir.load()?.inventory;
    let s = settings.clone();
    let scratch = state_dir.file("kubeconfig.probe");
    let opened = tokio::task::spawn_blocking(move || {
        tunnel::open(&s, &inv, HostKeyPolicy::Strict, &scratch)
    })
    .await
    .context("the tunnel thread panicked")??;
    let path = std::path::absolute(kubeconfig_path(settings))?;
    write_private(&path, opened.kubeconfig.as_bytes())?;
    println!(
        "tunnel open: {} → the MicroK8s API on the controller",
        opened.tunnel.local
    );
    println!("export KUBECONFIG={}", path.display());
    println!("Press Ctrl-C to close it.");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    drop(opened.tunnel);
    eprintln!("tunnel closed");
    Ok(exit_code::SUCCESS)
}
