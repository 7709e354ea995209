//! Over SSH, through the run's fleet: every host answers, its root file system has room, and
//! HAProxy on the controller runs the config Jeeves renders (the tls stage's own probe).

use anyhow::{Context, Result};

use super::Finding;
use crate::config::Settings;
use crate::fleet::Fleet;
use crate::ssh::RemoteCommand;
use crate::ssh::probe::{self, Sections};
use crate::state::Host;

const HOST_SH: &str = include_str!("scripts/host.sh");
const SECTIONS: &[&str] = &["disk", "microk8s"];

/// What one host said.
struct HostFacts {
    disk_percent: u32,
    /// `v1.32.0 1.32/stable`, or empty when the snap is missing.
    microk8s: String,
}

fn parse(p: &Sections) -> Result<HostFacts> {
    Ok(HostFacts {
        disk_percent: p
            .values("disk")
            .next()
            .and_then(|v| v.parse().ok())
            .context("`df -P /` printed no use percentage")?,
        microk8s: p
            .lines("microk8s")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
    })
}

fn facts(fleet: &Fleet, host: &Host) -> Result<HostFacts> {
    let session = fleet.lease(host)?;
    let cmd = RemoteCommand::new("sh").args(["-c", HOST_SH, "jeeves-check"]);
    parse(&probe::run(&session, &cmd, SECTIONS)?)
}

/// Every host in parallel, then HAProxy on the controller.
pub(super) async fn check(
    settings: &Settings,
    fleet: &Fleet,
    hosts: &[(&str, Host)],
) -> Vec<Finding> {
    let tasks: Vec<_> = hosts
        .iter()
        .map(|(_, h)| {
            let (fleet, h) = (fleet.clone(), h.clone());
            tokio::task::spawn_blocking(move || facts(&fleet, &h))
        })
        .collect();
    let mut out = Vec::new();
    let controllers = hosts.iter().filter(|(r, _)| *r == "controller").count();
    for (i, ((role, host), task)) in hosts.iter().zip(tasks).enumerate() {
        let name = &host.hostname;
        let result = task
            .await
            .context("the SSH thread panicked")
            .and_then(|r| r);
        match result {
            // A controller after the first: the cluster carries on without it while a majority
            // of the datastore's voters answers, but one more loss would stop it.
            Err(e) if i > 0 && *role == "controller" => out.push(Finding::fail(
                format!("ssh/{name}"),
                format!(
                    "controller {name} ({}) does not answer over SSH (dead, or powered off): {e:#}; the control plane runs on the other {} controller(s) while a majority of the datastore's voters answers",
                    host.public_ip,
                    controllers - 1
                ),
                format!(
                    "start its instance (jeeves start; ec2/* checks) or let terraform replace it; then jeeves up, which joins it to the control plane again ({name} in bootstrap's plan)"
                ),
            )),
            Err(e) => out.push(Finding::fail(
                format!("ssh/{name}"),
                format!("{role} {name} ({}) does not answer over SSH: {e:#}", host.public_ip),
                format!(
                    "check that the instance runs (ec2/* checks) and that sshd listens on {}; then jeeves up --only bootstrap",
                    host.public_ip
                ),
            )),
            Ok(f) => {
                let snap = if f.microk8s.is_empty() {
                    "MicroK8s not installed".to_string()
                } else {
                    format!("MicroK8s {}", f.microk8s)
                };
                out.push(Finding::ok(format!("ssh/{name}"), format!("{role} {} answers; {snap}", host.public_ip)));
                let max = settings.check.max_disk_use;
                out.push(if f.disk_percent > max {
                    Finding::fail(
                        format!("disk/{name}"),
                        format!("/ is {}% full (check.max_disk_use {max}%)", f.disk_percent),
                        format!("free space on {name}: unused container images (`microk8s ctr images ls`), old logs in /var/log; or grow its root volume"),
                    )
                } else {
                    Finding::ok(format!("disk/{name}"), format!("/ is {}% full", f.disk_percent))
                });
            }
        }
    }
    if let Some((_, controller)) = hosts.first() {
        out.extend(haproxy(settings, fleet, controller).await);
    }
    out
}

async fn haproxy(settings: &Settings, fleet: &Fleet, controller: &Host) -> Vec<Finding> {
    // Blocking SSH on this worker thread (as the tls stage's probe does): no copy of the settings.
    let health = tokio::task::block_in_place(|| {
        let session = fleet.lease(controller)?;
        crate::stages::tls::haproxy_health(&session, settings, controller)
    });
    let repair = "jeeves up --only tls";
    let h = match health {
        Ok(h) => h,
        Err(e) => {
            return vec![Finding::fail(
                "haproxy/service",
                format!("cannot probe HAProxy on {}: {e:#}", controller.hostname),
                repair,
            )];
        }
    };
    let path = &settings.haproxy.config_path;
    let service = if h.active {
        Finding::ok(
            "haproxy/service",
            format!("active on {}", controller.hostname),
        )
    } else {
        Finding::fail(
            "haproxy/service",
            format!("haproxy is not active on {}", controller.hostname),
            repair,
        )
    };
    let config = if !h.config_present {
        Finding::fail("haproxy/config", format!("{path} is missing"), repair)
    } else if !h.config_rendered {
        Finding::fail(
            "haproxy/config",
            format!(
                "{path} differs from the haproxy.cfg Jeeves renders now (`jeeves render` shows it)"
            ),
            repair,
        )
    } else if !h.unloaded.is_empty() {
        Finding::fail(
            "haproxy/config",
            format!(
                "written after the running haproxy loaded it: {}",
                h.unloaded.join(", ")
            ),
            repair,
        )
    } else {
        Finding::ok(
            "haproxy/config",
            format!("{path} is the rendered config, loaded"),
        )
    };
    vec![service, config]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_facts() {
        let p = Sections::parse(
            "@disk\n41\n@microk8s\nv1.32.0 1.32/stable\n@end\n",
            SECTIONS,
        )
        .unwrap();
        let f = parse(&p).unwrap();
        assert_eq!(
            (f.disk_percent, f.microk8s.as_str()),
            (41, "v1.32.0 1.32/stable")
        );
        let p = Sections::parse("@disk\n@microk8s\n@end\n", SECTIONS).unwrap();
        assert!(parse(&p).is_err());
    }
}
