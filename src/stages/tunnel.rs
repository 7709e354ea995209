//! The tunnel stage and `jeeves tunnel`: the controller's kubeconfig, pointed at a local port
//! forwarded over SSH to the MicroK8s API on the controller's loopback.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;

use crate::config::Settings;
use crate::fleet::Fleet;
use crate::report::Change;
use crate::ssh::{RemoteCommand, Tunnel, TunnelLog};
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::state::{Host, Inventory, write_private};

pub const KUBECONFIG: &str = "kubeconfig";

/// The kubeconfig's path in the state directory.
pub fn kubeconfig_path(settings: &Settings) -> PathBuf {
    settings.state_dir.join(KUBECONFIG)
}

/// `microk8s config` with its server pointed at `https://127.0.0.1:<port>` (127.0.0.1 is in
/// MicroK8s' certificate SANs).
pub fn rewrite_server(kubeconfig: &str, port: u16) -> Result<String> {
    let mut found = false;
    let text: Vec<String> = kubeconfig
        .lines()
        .map(|l| match l.trim_start().strip_prefix("server: ") {
            Some(_) => {
                found = true;
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}server: https://127.0.0.1:{port}")
            }
            None => l.to_string(),
        })
        .collect();
    if !found {
        bail!("`microk8s config` printed no `server:` line");
    }
    Ok(text.join("\n") + "\n")
}

/// An open tunnel and the kubeconfig that uses it.
pub struct Opened {
    pub tunnel: Tunnel,
    pub kubeconfig: String,
}

fn controller(inv: &Inventory) -> Result<Host> {
    inv.controller
        .clone()
        .context("the inventory has no controller; run `jeeves up --only terraform` first")
}

/// The tunnel's words as warnings of the run (the run's log and output), for the stages.
pub fn report_to(reporter: &crate::report::Reporter) -> TunnelLog {
    let reporter = reporter.clone();
    Box::new(move |line| reporter.log(None, crate::report::Level::Warn, format!("tunnel: {line}")))
}

/// Fetches the kubeconfig, opens the tunnel and waits until the API answers `/readyz` through
/// it (the real kubectl, with that kubeconfig, at a private temporary path). The controller's
/// session comes from the fleet and becomes the tunnel's. `log` gets the tunnel's own words (a
/// connection whose channel the controller refused, and why). Blocking.
pub fn open(
    settings: &Settings,
    fleet: &Fleet,
    inv: &Inventory,
    scratch: &Path,
    log: TunnelLog,
) -> Result<Opened> {
    let host = controller(inv)?;
    let session = fleet.lease(&host)?;
    let out = session.run(
        &RemoteCommand::new("microk8s")
            .arg("config")
            .sudo(fleet.sudo()),
    )?;
    if out.stdout.contains("acting as a node in a cluster") {
        bail!(
            "{} answered as a worker node; the inventory's controller is not the control plane",
            host.hostname
        );
    }
    let kubeconfig = rewrite_server(&out.stdout, settings.tunnel.local_port)?;
    let tunnel = Tunnel::open_logging(
        session.detach(),
        settings.tunnel.local_port,
        settings.tunnel.remote_port,
        log,
    )?;
    write_private(scratch, kubeconfig.as_bytes())?;
    let ready = wait_ready(settings, scratch, settings.microk8s.ready_timeout);
    let _ = std::fs::remove_file(scratch);
    ready?;
    Ok(Opened { tunnel, kubeconfig })
}

/// Opens the run's tunnel (the controller's keys pinned first) and leaves it with the fleet
/// until the run ends; returns the kubeconfig that uses it.
pub async fn open_for_run(cx: &StageContext<'_>) -> Result<String> {
    if let Some(c) = &cx.state.inventory.controller {
        cx.pin(std::slice::from_ref(c)).await?;
    }
    let settings = cx.settings.clone();
    let fleet = cx.fleet.clone();
    let inv = cx.state.inventory.clone();
    let scratch = cx.state_dir.file("kubeconfig.probe");
    let log = report_to(cx.reporter);
    let opened = tokio::task::spawn_blocking(move || open(&settings, &fleet, &inv, &scratch, log))
        .await
        .context("the tunnel thread panicked")??;
    let controller = controller(&cx.state.inventory)?.hostname;
    cx.host(
        controller.clone(),
        format!(
            "tunnel {} → {controller}:{} ready (/readyz ok)",
            opened.tunnel.local, cx.settings.tunnel.remote_port
        ),
    );
    cx.fleet.hold_tunnel(opened.tunnel);
    Ok(opened.kubeconfig)
}

fn wait_ready(settings: &Settings, kubeconfig: &Path, timeout: Duration) -> Result<()> {
    let kubectl = crate::process::find_tool(&settings.tools.kubectl, "tools.kubectl")?;
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(200);
    loop {
        let out = std::process::Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("KUBECONFIG", kubeconfig)
            .args(["get", "--raw", "/readyz", "--request-timeout=10s"])
            .output()
            .context("cannot run kubectl")?;
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
            return Ok(());
        }
        if Instant::now() + delay > deadline {
            bail!(
                "the API did not answer /readyz through the tunnel within {}s: {}",
                timeout.as_secs(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[derive(Default)]
pub struct TunnelStage {
    kubeconfig: Option<String>,
}

#[async_trait]
impl Stage for TunnelStage {
    fn name(&self) -> StageName {
        StageName::Tunnel
    }

    /// Opens the tunnel (changing nothing remote) and compares the kubeconfig with the saved one.
    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>> {
        let kubeconfig = open_for_run(cx).await?;
        let path = kubeconfig_path(cx.settings);
        let current = std::fs::read_to_string(&path).ok();
        let changes = if current.as_deref() == Some(kubeconfig.as_str()) {
            Vec::new()
        } else {
            vec![Change::new(
                if current.is_some() { "update" } else { "write" },
                path.display().to_string(),
            )]
        };
        self.kubeconfig = Some(kubeconfig);
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let kubeconfig = self.kubeconfig.as_ref().context("apply without probe")?;
        write_private(&kubeconfig_path(cx.settings), kubeconfig.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_pointed_at_the_local_port() {
        let cfg = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: QUJD\n    server: https://10.0.1.10:16443\n  name: microk8s-cluster\n";
        let out = rewrite_server(cfg, 26443).unwrap();
        assert!(
            out.contains("    server: https://127.0.0.1:26443\n"),
            "{out}"
        );
        assert!(!out.contains("10.0.1.10"));
        assert!(rewrite_server("apiVersion: v1\n", 1).is_err());
    }
}
