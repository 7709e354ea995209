//! The tls stage's steps that reach every controller (`[cluster] controllers` 3 or 5): before
//! the first certificate, HAProxy on each so that the CA's HTTP-01 request reaches certbot
//! whichever controller it lands on; after the certificate, the first controller's PEM on each.

use anyhow::{Context, Result};

use crate::ssh::SshSession;
use crate::stage::StageContext;

use super::haproxy::{self, Service};
use super::peers;
use super::plan::Plan;

/// Before certbot asks the CA: every controller's HAProxy runs the rendered config (a
/// placeholder PEM where none is), so port 80 forwards the challenge to certbot. What it did is
/// cleared from `plan`; the first controller reloads again once the certificate's PEM is there.
pub(super) fn serve_port_80(
    cx: &StageContext<'_>,
    session: &SshSession,
    plan: &mut Plan,
) -> Result<()> {
    let s = cx.settings;
    let host = plan.controller.hostname.clone();
    let mut changed = plan.placeholder && peers::placeholder(cx, session, &host)?;
    plan.placeholder = false;
    if let Some(config) = plan.config.take() {
        haproxy::install_config(session, s, &config)?;
        cx.host(
            &host,
            format!("{} checked and installed", s.haproxy.config_path),
        );
        changed = true;
    }
    if (changed || plan.start)
        && let Some(done) = haproxy::service(session, Service::ReloadOrStart)?
    {
        cx.host(
            &host,
            format!("haproxy {done} (forwarding ACME challenges)"),
        );
    }
    plan.start = false;
    for peer in &mut plan.peers {
        let lease = cx.fleet.lease(&peer.host)?;
        peers::converge(cx, &lease, peer, None)
            .with_context(|| format!("HAProxy on {} before the certificate", peer.host.hostname))?;
    }
    Ok(())
}

/// After the first controller is done: each other controller gets its PEM (read there once,
/// sent on stdin), the rendered config, and a running, enabled haproxy that has loaded them.
pub(super) fn converge_peers(
    cx: &StageContext<'_>,
    session: &SshSession,
    plan: &mut Plan,
) -> Result<()> {
    let pem = if plan.peers.iter().any(|p| p.pem) {
        Some(peers::read_pem(session, cx.settings)?)
    } else {
        None
    };
    for peer in &mut plan.peers {
        let lease = cx.fleet.lease(&peer.host)?;
        peers::converge(cx, &lease, peer, pem.as_deref())
            .with_context(|| format!("HAProxy on {}", peer.host.hostname))?;
    }
    Ok(())
}
