//! The tunnel to the cluster API, for the tunnel stage, `jeeves tunnel`, `backup` and `check`: the
//! controller's kubeconfig, pointed at a local port forwarded over the controller's SSH session
//! to the MicroK8s API on its loopback, and open only once the API answers through it. The SSH
//! half is here (the hosts layer owns the sessions); the kubeconfig's rewrite and the wait for
//! `/readyz` are kubectl's, in the adapter (`crate::kube::api`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Fleet;
use crate::config::Settings;
use crate::kube;
use crate::ssh::{RemoteCommand, Tunnel, TunnelLog};
use crate::state::{Host, write_private};

/// Where the tunnel listens and forwards to, and how its readiness is checked.
#[derive(Clone)]
pub struct ApiTunnelOptions {
    /// The local port (`tunnel.local_port`).
    pub local_port: u16,
    /// The API's port on the controller's loopback (`tunnel.remote_port`).
    pub remote_port: u16,
    /// The kubectl that asks `/readyz` through the tunnel.
    pub kubectl: PathBuf,
    /// How long the API may take to answer (`microk8s.ready_timeout`).
    pub ready_timeout: Duration,
}

impl ApiTunnelOptions {
    /// The tunnel as the pipeline configures it.
    pub fn from_settings(settings: &Settings) -> Result<ApiTunnelOptions> {
        Ok(ApiTunnelOptions {
            local_port: settings.tunnel.local_port,
            remote_port: settings.tunnel.remote_port,
            kubectl: crate::process::find_tool(&settings.tools.kubectl, "tools.kubectl")?,
            ready_timeout: settings.microk8s.ready_timeout,
        })
    }
}

/// Where the kubeconfig that uses the tunnel is kept: the state directory.
pub fn kubeconfig_path(settings: &Settings) -> PathBuf {
    settings.state_dir.join("kubeconfig")
}

/// An open tunnel and the kubeconfig that uses it.
pub struct Opened {
    pub tunnel: Tunnel,
    pub kubeconfig: String,
}

/// Fetches the kubeconfig, opens the tunnel and waits until the API answers `/readyz` through
/// it (the real kubectl, with that kubeconfig, at the private temporary path `scratch`). The
/// controller's session comes from the fleet and becomes the tunnel's. `log` gets the tunnel's
/// own words (a connection whose channel the controller refused, and why). The SSH and
/// kubectl work runs on a blocking thread.
pub async fn open(
    fleet: &Fleet,
    controller: &Host,
    opts: ApiTunnelOptions,
    scratch: PathBuf,
    log: TunnelLog,
) -> Result<Opened> {
    let (fleet, controller) = (fleet.clone(), controller.clone());
    tokio::task::spawn_blocking(move || open_blocking(&fleet, &controller, &opts, &scratch, log))
        .await
        .context("the tunnel thread panicked")?
}

/// `open` to each of `controllers` in turn until one serves the API: the first healthy one
/// (`[cluster] controllers` 3 or 5). Returns the tunnel, the controller it reaches and the
/// controllers passed over, each with why (its error's first line); the last one's error is the
/// error. `log` makes each attempt's log. How long a dead controller holds the search is the
/// fleet's connect timeout.
pub async fn open_first(
    fleet: &Fleet,
    controllers: &[&Host],
    opts: ApiTunnelOptions,
    scratch: PathBuf,
    log: impl Fn() -> TunnelLog,
) -> Result<(Opened, Host, Vec<(String, String)>)> {
    let mut passed = Vec::new();
    for (i, host) in controllers.iter().enumerate() {
        match open(fleet, host, opts.clone(), scratch.clone(), log()).await {
            Ok(opened) => return Ok((opened, (*host).clone(), passed)),
            Err(e) if i + 1 < controllers.len() => {
                let why = format!("{e:#}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                passed.push((host.hostname.clone(), why));
            }
            Err(e) => return Err(e),
        }
    }
    bail!("the inventory has no controller")
}

fn open_blocking(
    fleet: &Fleet,
    controller: &Host,
    opts: &ApiTunnelOptions,
    scratch: &Path,
    log: TunnelLog,
) -> Result<Opened> {
    let session = fleet.lease(controller)?;
    let out = session.run(
        &RemoteCommand::new("microk8s")
            .arg("config")
            .sudo(fleet.sudo()),
    )?;
    if out.stdout.contains("acting as a node in a cluster") {
        bail!(
            "{} answered as a worker node; the inventory's controller is not the control plane",
            controller.hostname
        );
    }
    let kubeconfig = kube::api::rewrite_server(&out.stdout, opts.local_port)?;
    let tunnel = Tunnel::open_logging(session.detach(), opts.local_port, opts.remote_port, log)?;
    write_private(scratch, kubeconfig.as_bytes())?;
    let ready = kube::api::wait_ready(&opts.kubectl, scratch, opts.ready_timeout);
    let _ = std::fs::remove_file(scratch);
    ready?;
    Ok(Opened { tunnel, kubeconfig })
}
