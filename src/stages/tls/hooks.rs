//! certbot's renewal hooks on the controller, so that renewal keeps working without Jeeves: the
//! pre hook stops haproxy (certbot's standalone server needs port 80), the deploy hook rebuilds
//! the PEM and reloads a running haproxy, the post hook starts it again. The hooks have fixed
//! contents; they call the scripts a Jeeves run uses (service control, the PEM), installed beside
//! them, so each side effect has one definition.

use anyhow::Result;

use crate::config::Settings;
use crate::ssh::SshSession;

use super::haproxy::{SERVICE_SH, WRITE_PEM_SH};

/// Where the scripts the hooks share with Jeeves live (beside certbot's hook directories, which
/// certbot does not run).
pub(super) const LIB: &str = "/etc/letsencrypt/renewal-hooks/jeeves-haproxy";

/// The hooks' file name in certbot's pre, post and deploy directories.
const NAME: &str = "jeeves-haproxy.sh";

const PRE: &str = include_str!("scripts/hook-pre.sh");
const POST: &str = include_str!("scripts/hook-post.sh");
const DEPLOY: &str = include_str!("scripts/hook-deploy.sh");
/// The pre and post hooks with controllers ≥ 3: certbot listens behind every HAProxy on a port
/// of its own, so a renewal stops nothing.
const NOOP: &str = include_str!("scripts/hook-noop.sh");

/// A file Jeeves installs for the hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HookFile {
    pub path: String,
    pub contents: String,
    pub mode: u32,
}

impl HookFile {
    fn new(path: String, contents: impl Into<String>, mode: u32) -> HookFile {
        HookFile {
            path,
            contents: contents.into(),
            mode,
        }
    }
}

/// Every file the hooks need, shared scripts first: a hook never runs without what it calls.
pub(super) fn files(settings: &Settings) -> Vec<HookFile> {
    let hooks = format!("{}/renewal-hooks", super::LE);
    let (pre, post) = if settings.cluster.single() {
        (PRE, POST)
    } else {
        (NOOP, NOOP)
    };
    vec![
        HookFile::new(format!("{LIB}/haproxy.sh"), SERVICE_SH, 0o755),
        HookFile::new(format!("{LIB}/write-pem.sh"), WRITE_PEM_SH, 0o755),
        // certbot passes the deploy hook no arguments: they are kept here, one a line (domain
        // and path are validated: no newlines, nothing a shell would read).
        HookFile::new(
            format!("{LIB}/deploy-hook.args"),
            format!("{}\n{}\n", settings.domain, settings.haproxy.pem_path),
            0o644,
        ),
        HookFile::new(format!("{hooks}/pre/{NAME}"), pre, 0o755),
        HookFile::new(format!("{hooks}/post/{NAME}"), post, 0o755),
        HookFile::new(format!("{hooks}/deploy/{NAME}"), DEPLOY, 0o755),
    ]
}

/// Writes `files` on the controller, each atomically.
pub(super) fn install(session: &SshSession, files: &[HookFile]) -> Result<()> {
    for f in files {
        session.upload(&f.path, f.contents.as_bytes(), f.mode)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hooks name the shared scripts where `files` installs them.
    #[test]
    fn the_hooks_call_the_shared_scripts_where_they_are_installed() {
        let s = crate::config::Settings::load(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs([("MONGO_URI", "m")]),
        )
        .unwrap();
        let files = files(&s);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        for (hook, calls) in [
            (PRE, vec!["haproxy.sh"]),
            (POST, vec!["haproxy.sh"]),
            (
                DEPLOY,
                vec!["deploy-hook.args", "write-pem.sh", "haproxy.sh"],
            ),
        ] {
            assert!(hook.contains(LIB), "{hook}");
            for c in calls {
                assert!(hook.contains(c), "{hook}");
                assert!(paths.contains(&format!("{LIB}/{c}").as_str()), "{paths:?}");
            }
        }
        let args = files.iter().find(|f| f.path.ends_with(".args")).unwrap();
        assert_eq!(
            args.contents,
            "chat.jeeves.test\n/etc/haproxy/certs/chat.jeeves.test.pem\n"
        );
    }
}
