//! `ssh.ssh_config`: the user's OpenSSH client config applied to the stack's hosts, resolved by
//! OpenSSH itself (`ssh -G`), so `Host` patterns, `Match`, `Include` and defaults mean exactly
//! what they mean to `ssh`. What the config sets is what differs from `ssh -F /dev/null -G` for
//! the same host; the pipeline's `[ssh]` values stand for everything else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config::{JumpHost, parse_jump_host};

/// What the config sets for one host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub key_path: Option<PathBuf>,
    pub jump: Option<JumpHost>,
}

pub fn resolve(config: &Path, host: &str) -> Result<Resolved> {
    let with = ssh_g(config, host)?;
    let without = ssh_g(Path::new("/dev/null"), host)?;
    let set = |key: &str| -> Option<&Vec<String>> {
        with.get(key).filter(|v| without.get(key) != Some(*v))
    };
    let first = |key: &str| set(key).and_then(|v| v.first()).cloned();
    let port = match first("port") {
        Some(p) => Some(
            p.parse::<u16>()
                .with_context(|| format!("{}: Port {p} for {host}", config.display()))?,
        ),
        None => None,
    };
    let key_path = set("identityfile")
        .and_then(|files| files.iter().map(|f| expand_home(f)).find(|f| f.is_file()));
    let jump = match first("proxyjump").filter(|j| j != "none") {
        None => None,
        Some(j) if j.contains(',') => bail!(
            "{}: ProxyJump {j} for {host}: Jeeves takes one jump host, not a chain",
            config.display()
        ),
        Some(j) => parse_jump_host(&j)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{}: ProxyJump for {host}", config.display()))?,
    };
    Ok(Resolved {
        hostname: first("hostname"),
        user: first("user"),
        port,
        key_path,
        jump,
    })
}

/// `ssh -F config -G host`: the configuration OpenSSH would use, one `key value` per line
/// (keys in lower case; `identityfile` may repeat).
fn ssh_g(config: &Path, host: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let ssh = which::which("ssh")
        .context("ssh.ssh_config is resolved by OpenSSH's `ssh -G`: install the OpenSSH client")?;
    let out = std::process::Command::new(ssh)
        .arg("-F")
        .arg(config)
        .arg("-G")
        .arg("--")
        .arg(host)
        .output()
        .context("cannot run ssh -G")?;
    if !out.status.success() {
        bail!(
            "`ssh -F {} -G {host}` failed: {}",
            config.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.split_once(' ') {
            map.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    Ok(map)
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real `ssh -G` on a config with a pattern, a Match-free host block and defaults.
    #[test]
    fn what_the_config_sets_for_a_host_and_nothing_else() {
        if which::which("ssh").is_err() {
            panic!("the OpenSSH client is needed (tests/run installs openssh-client)");
        }
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("deploy_key");
        std::fs::write(&key, "x").unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "Host 10.0.1.*\n  User ops\n  Port 2222\n  IdentityFile {}\n  ProxyJump jump@bastion.example.com:2200\n\nHost 10.9.9.9\n  HostName internal.example.com\n",
                key.display()
            ),
        )
        .unwrap();
        let r = resolve(&config, "10.0.1.5").unwrap();
        assert_eq!(r.user.as_deref(), Some("ops"));
        assert_eq!(r.port, Some(2222));
        assert_eq!(r.key_path.as_deref(), Some(key.as_path()));
        assert_eq!(r.hostname, None);
        assert_eq!(
            r.jump,
            Some(JumpHost {
                user: Some("jump".into()),
                host: "bastion.example.com".into(),
                port: 2200
            })
        );
        let other = resolve(&config, "10.9.9.9").unwrap();
        assert_eq!(other.hostname.as_deref(), Some("internal.example.com"));
        assert_eq!((other.user, other.port, other.jump), (None, None, None));
        assert_eq!(resolve(&config, "192.0.2.1").unwrap(), Resolved::default());
    }
}
