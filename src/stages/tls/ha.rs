//! The tls stage's steps that reach every controller (`[cluster] controllers` 3 or 5): before
//! the first certificate, HAProxy on each so that the CA's HTTP-01 request reaches certbot
//! whichever controller it lands on; after the certificate, the first controller's PEM on each.

use anyhow::Result;

use crate::ssh::SshSession;
use crate::stage::StageContext;

use super::haproxy::{self, Service};
use super::peers::{self, PeerPlan};
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
        converge_one(cx, peer, None, " before the certificate");
    }
    Ok(())
}

/// One peer, unless it failed already; a failure is kept on it and the others go on (as
/// bootstrap does with an unreachable peer).
fn converge_one(cx: &StageContext<'_>, peer: &mut PeerPlan, pem: Option<&[u8]>, when: &str) {
    if peer.failed.is_some() {
        return;
    }
    let done = cx
        .fleet
        .lease(&peer.host)
        .and_then(|lease| peers::converge(cx, &lease, peer, pem));
    if let Err(e) = done {
        let e = format!("HAProxy{when}: {e:#}");
        cx.host(&peer.host.hostname, format!("failed: {e}"));
        peer.failed = Some(e);
    }
}

/// The stage's end with controllers ≥ 3: an error naming each peer that failed (the others
/// were converged).
pub(super) fn failed_peers(plan: &Plan) -> Result<()> {
    let failed: Vec<String> = plan
        .peers
        .iter()
        .filter_map(|p| Some(format!("{}: {}", p.host.hostname, p.failed.as_ref()?)))
        .collect();
    if !failed.is_empty() {
        anyhow::bail!(
            "HAProxy failed on {} of the other controllers (the first and the rest serve): {}",
            failed.len(),
            failed.join("; ")
        );
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
    let pem = if plan.peers.iter().any(|p| p.pem && p.failed.is_none()) {
        Some(peers::read_pem(session, cx.settings)?)
    } else {
        None
    };
    for peer in &mut plan.peers {
        converge_one(cx, peer, pem.as_deref(), "");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Host;

    fn host(name: &str, ip: &str) -> Host {
        Host {
            id: format!("i-{name}"),
            hostname: name.into(),
            public_ip: ip.into(),
            private_ip: ip.into(),
        }
    }

    /// An unreachable peer is planned as such, left alone, and fails the stage at the end by
    /// name; a converged one does not.
    #[test]
    fn an_unreachable_peer_fails_the_stage_alone_and_by_name() {
        let s = crate::config::Settings::load(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs([
                ("MONGO_URI", "m"),
                ("JEEVES_CLUSTER_CONTROLLERS", "3"),
            ]),
        )
        .unwrap();
        let facts = super::super::facts::Facts::default();
        let mut plan = Plan::decide(
            &s,
            host("controller", "10.77.0.10"),
            &facts,
            None,
            "global\n".into(),
        );
        let mut fine = PeerPlan::decide(&s, host("controller-2", "10.77.0.102"), &facts, "", None);
        fine.failed = None;
        let down = PeerPlan::unreachable(
            host("controller-3", "10.77.0.103"),
            "connection refused".into(),
        );
        assert_eq!(
            down.changes(&s)
                .iter()
                .map(|c| format!("{} {}", c.action, c.target))
                .collect::<Vec<_>>(),
            ["repair controller-3: unreachable (connection refused); its HAProxy is left as it is"]
        );
        plan.peers = vec![fine, down];
        let e = failed_peers(&plan).unwrap_err().to_string();
        assert_eq!(
            e,
            "HAProxy failed on 1 of the other controllers (the first and the rest serve): controller-3: unreachable (connection refused)"
        );
        plan.peers.pop();
        assert!(failed_peers(&plan).is_ok());
    }
}
