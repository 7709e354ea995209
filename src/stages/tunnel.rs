//! The tunnel stage: the run's tunnel to the MicroK8s API (opened by the hosts layer,
//! `fleet::api_tunnel`, which `jeeves tunnel`, `backup` and `check` use too) and the saved
//! kubeconfig that uses it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use async_trait::async_trait;

use crate::fleet::api_tunnel::{self, ApiTunnelOptions, kubeconfig_path};
use crate::report::Change;
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::state::write_private;

/// The kubeconfig of the run's one tunnel to the MicroK8s API: the tunnel the fleet holds
/// already (the tunnel stage's, in a run that has one), else one opened now (the controller's
/// keys pinned first) and left with the fleet until the run ends. The kubeconfig is a private
/// file of the run, removed with the tunnel: the saved one is the tunnel stage's to write, and
/// `plan` writes nothing.
pub async fn kubeconfig_for_run(cx: &StageContext<'_>) -> Result<PathBuf> {
    if let Some(path) = cx.fleet.run_kubeconfig() {
        return Ok(path);
    }
    let host = cx.state.inventory.controller()?.clone();
    cx.pin(std::slice::from_ref(&host)).await?;
    let opened = api_tunnel::open(
        cx.fleet,
        &host,
        ApiTunnelOptions::from_settings(cx.settings)?,
        cx.state_dir.file("kubeconfig.probe"),
        cx.reporter.warnings("tunnel"),
    )
    .await?;
    remove_killed_runs_kubeconfigs(&cx.settings.state_dir)?;
    let file = tempfile::Builder::new()
        .prefix(RUN_KUBECONFIG)
        .tempfile_in(&cx.settings.state_dir)
        .context("cannot create the run's kubeconfig in the state directory")?;
    write_private(file.path(), opened.kubeconfig.as_bytes())?;
    cx.host(
        host.hostname.clone(),
        format!(
            "tunnel {} → {}:{} ready (/readyz ok)",
            opened.tunnel.local, host.hostname, cx.settings.tunnel.remote_port
        ),
    );
    let path = file.into_temp_path();
    let kubeconfig = path.to_path_buf();
    cx.fleet.hold_run_tunnel(opened.tunnel, path);
    Ok(kubeconfig)
}

/// The name of a run's kubeconfig, before tempfile's random part.
const RUN_KUBECONFIG: &str = "kubeconfig.run.";

/// Removes what a run killed before it could (SIGKILL) left: the run holding the state
/// directory's lock is the only one with a kubeconfig of its own there.
fn remove_killed_runs_kubeconfigs(state_dir: &std::path::Path) -> Result<()> {
    for entry in std::fs::read_dir(state_dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(RUN_KUBECONFIG))
        {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
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
        let kubeconfig = std::fs::read_to_string(kubeconfig_for_run(cx).await?)?;
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
    fn a_killed_runs_kubeconfig_is_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "kubeconfig.run.Xy12ab",
            "kubeconfig",
            "kubeconfig.probe",
            "state.json",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        remove_killed_runs_kubeconfigs(dir.path()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["kubeconfig", "kubeconfig.probe", "state.json"]);
    }
}
