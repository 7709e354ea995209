//! The cluster API behind the tunnel, as kubectl sees it: the controller's kubeconfig pointed at
//! the tunnel's local end, and the wait until the API answers through it. The tunnel itself
//! (an SSH session's port forward) is the hosts layer's (`fleet::api_tunnel`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

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

/// Waits until the API answers `/readyz` (`ok`) through the tunnel that `kubeconfig` points
/// at, asking with `kubectl` (blocking: for the hosts layer's tunnel thread), `within` at most.
pub fn wait_ready(kubectl: &Path, kubeconfig: &Path, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    let mut delay = Duration::from_millis(200);
    loop {
        let out = std::process::Command::new(kubectl)
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
                within.as_secs(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(5));
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
