//! HAProxy on the controller: its service, its PEM, its config, and whether the running process
//! has loaded the files on disk. Each side effect has one function here; certbot's renewal hooks
//! run the same scripts (installed by `hooks`).

use anyhow::{Context, Result, bail};

use crate::config::Settings;
use crate::ssh::{RemoteCommand, SshSession};
use crate::stage::StageContext;

use super::facts::Facts;

/// HAProxy's service (stop, start, reload, reload-or-start, enable): the one definition, for
/// `jeeves up` and for the renewal hooks.
pub(super) const SERVICE_SH: &str = include_str!("scripts/haproxy.sh");

/// Builds the HAProxy PEM from the lineage: the one definition, for `jeeves up` and for the
/// deploy hook.
pub(super) const WRITE_PEM_SH: &str = include_str!("scripts/write-pem.sh");

/// What haproxy's service is asked to do (the actions of `scripts/haproxy.sh` that Jeeves' runs
/// use; `reload` alone is the deploy hook's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Service {
    /// Stop a running haproxy.
    Stop,
    /// Start a stopped haproxy.
    Start,
    /// Have haproxy serve the files on disk: reload a running one, start a stopped one.
    ReloadOrStart,
    /// Start it at boot.
    Enable,
}

impl Service {
    fn action(self) -> &'static str {
        match self {
            Service::Stop => "stop",
            Service::Start => "start",
            Service::ReloadOrStart => "reload-or-start",
            Service::Enable => "enable",
        }
    }
}

/// Controls haproxy's service on the controller: every start, stop, reload and enable of a
/// Jeeves run goes through here. Returns what was done ("stopped", "started", "reloaded",
/// "enabled"), `None` when there was nothing to do.
pub(super) fn service(session: &SshSession, what: Service) -> Result<Option<String>> {
    let out = super::run(
        session,
        super::script(SERVICE_SH, "haproxy.sh", [what.action()]),
    )
    .with_context(|| format!("haproxy: {} on the controller", what.action()))?;
    Ok(out
        .lines()
        .last()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from))
}

/// Runs `work` with haproxy stopped (certbot's standalone server needs its port 80), and starts
/// it again whatever `work` did: succeeded, failed, or ran on after a Ctrl-C (the caller stops at
/// its next safe point, with haproxy serving). `work` builds the PEM from a new lineage before
/// it returns, so haproxy starts with it even when the old PEM is gone.
pub(super) fn stopped_for<T>(
    cx: &StageContext<'_>,
    session: &SshSession,
    host: &str,
    why: &str,
    work: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let stopped = service(session, Service::Stop)?.is_some();
    if stopped {
        cx.host(host, format!("haproxy stopped for {why}"));
    }
    let result = work();
    if !stopped {
        return result;
    }
    let restarted = service(session, Service::Start);
    if restarted.is_ok() {
        cx.host(host, "haproxy started again");
    }
    match (result, restarted) {
        (Ok(v), Ok(_)) => Ok(v),
        (Ok(_), Err(e)) => Err(e.context(format!("haproxy did not start again after {why}"))),
        (Err(e), Ok(_)) => Err(e),
        (Err(e), Err(start)) => Err(e.context(format!(
            "and haproxy did not start again after {why}: {start:#}"
        ))),
    }
}

/// Builds the HAProxy PEM (key, then full chain; 0600; atomic) from the domain's lineage: the
/// only place a Jeeves run writes it.
pub(super) fn build_pem(session: &SshSession, settings: &Settings) -> Result<()> {
    super::run(
        session,
        super::script(
            WRITE_PEM_SH,
            "write-pem.sh",
            [settings.domain.as_str(), settings.haproxy.pem_path.as_str()],
        ),
    )
    .with_context(|| format!("building {}", settings.haproxy.pem_path))?;
    Ok(())
}

/// Uploads the config beside the live one, checks it with `haproxy -c`, only then replaces it.
/// A failing check leaves the running config untouched and reports haproxy's own words.
pub(super) fn install_config(
    session: &SshSession,
    settings: &Settings,
    config: &str,
) -> Result<()> {
    let live = &settings.haproxy.config_path;
    let candidate = format!("{live}.jeeves-new");
    session.upload(&candidate, config.as_bytes(), 0o644)?;
    let sudo = session.options().needs_sudo();
    let check = session.exec(
        &RemoteCommand::new("haproxy")
            .args(["-c", "-f", candidate.as_str()])
            .sudo(sudo),
        &mut |_, _| {},
    )?;
    if check.status != 0 {
        // The check's failure is the error to report; a candidate left behind is harmless (the
        // next install overwrites it) and named in the message.
        let removed = session.run(
            &RemoteCommand::new("rm")
                .args(["-f", candidate.as_str()])
                .sudo(sudo),
        );
        let mut msg = check.stdout.clone();
        msg.push_str(&check.stderr);
        bail!(
            "the rendered haproxy.cfg fails `haproxy -c` (the running config is untouched{}):\n{}",
            match removed {
                Ok(_) => String::new(),
                Err(_) => format!("; {candidate} is left behind"),
            },
            msg.trim_end()
        );
    }
    super::run(
        session,
        RemoteCommand::new("mv").args(["-f", candidate.as_str(), live.as_str()]),
    )?;
    Ok(())
}

/// How precisely a process's start is known: its start is counted in clock ticks (10 ms) from a
/// boot time read to 10 ms. A file is unloaded only when written later than that.
const START_PRECISION_MS: i64 = 30;

/// Of `paths`, those modified after the running haproxy last loaded its files: a reload that
/// never happened (a run killed after writing them, or a reload that failed). Decided from the
/// running process, not from a memory of the last run.
pub(super) fn unloaded<'a>(facts: &Facts, paths: &[&'a str]) -> Vec<&'a str> {
    let Some(loaded) = facts.loaded_at.filter(|_| facts.active) else {
        return Vec::new();
    };
    paths
        .iter()
        .copied()
        .filter(|p| {
            facts
                .mtimes
                .get(*p)
                .is_some_and(|m| *m > loaded + START_PRECISION_MS)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service script on this machine's `sh` with a `systemctl` that records its calls: each
    /// action does what it says and only when there is something to do.
    #[test]
    fn the_service_script_acts_only_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("calls");
        let state = dir.path().join("running");
        std::fs::write(
            bin.join("systemctl"),
            format!(
                "#!/bin/sh\necho \"$*\" >>{log}\ncase \"$1\" in\n\
                 is-active) echo noise; [ -e {state} ] ;;\n\
                 stop) rm -f {state} ;;\n\
                 start) touch {state} ;;\n\
                 esac\n",
                log = log.display(),
                state = state.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            bin.join("systemctl"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let run = |action: &str| {
            std::fs::write(&log, "").unwrap();
            let out = std::process::Command::new("sh")
                .args(["-c", SERVICE_SH, "haproxy.sh", action])
                .env(
                    "PATH",
                    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
                )
                .output()
                .unwrap();
            let calls = std::fs::read_to_string(&log).unwrap();
            let calls: Vec<String> = calls
                .lines()
                .filter(|l| !l.starts_with("is-active"))
                .map(String::from)
                .collect();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                calls,
            )
        };
        // Stopped.
        assert_eq!(run("stop"), (Some(0), String::new(), vec![]));
        assert_eq!(run("reload"), (Some(0), String::new(), vec![]));
        assert_eq!(
            run("reload-or-start"),
            (Some(0), "started\n".into(), vec!["start haproxy".into()])
        );
        // Running.
        assert_eq!(run("start"), (Some(0), String::new(), vec![]));
        assert_eq!(
            run("reload"),
            (Some(0), "reloaded\n".into(), vec!["reload haproxy".into()])
        );
        assert_eq!(
            run("reload-or-start"),
            (Some(0), "reloaded\n".into(), vec!["reload haproxy".into()])
        );
        assert_eq!(
            run("stop"),
            (Some(0), "stopped\n".into(), vec!["stop haproxy".into()])
        );
        assert_eq!(run("restart").0, Some(2));
    }
}
