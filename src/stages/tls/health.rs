//! What `jeeves check` reads about HAProxy on the controller, with the tls stage's own probe
//! (one round trip, changes nothing): whether it runs, whether the config on the host is the one
//! Jeeves renders now, and whether the running process has loaded its files.

use anyhow::Result;

use crate::config::Settings;
use crate::ssh::SshSession;
use crate::state::Host;

/// HAProxy on the controller as `check` judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyHealth {
    pub active: bool,
    /// `haproxy.config_path` exists.
    pub config_present: bool,
    /// It holds exactly the haproxy.cfg rendered from the current templates and settings.
    pub config_rendered: bool,
    /// Managed files written after the running haproxy loaded them (a reload that never ran).
    pub unloaded: Vec<String>,
}

/// Probes the controller (read-only); `first`: the first controller, which the config names
/// with controllers ≥ 3. Blocking.
pub fn haproxy_health(
    session: &SshSession,
    settings: &Settings,
    first: &Host,
) -> Result<HaproxyHealth> {
    let rendered = super::haproxy_config(settings, first)?;
    let paths = [
        settings.haproxy.config_path.as_str(),
        settings.haproxy.pem_path.as_str(),
    ];
    let owned: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let facts = super::facts::probe(session, settings, &owned)?;
    Ok(HaproxyHealth {
        active: facts.active,
        config_present: facts.files.contains_key(&settings.haproxy.config_path),
        config_rendered: facts.holds(
            &settings.haproxy.config_path,
            &super::plan::sha256(rendered.as_bytes()),
        ),
        unloaded: super::haproxy::unloaded(&facts, &paths)
            .into_iter()
            .map(String::from)
            .collect(),
    })
}
