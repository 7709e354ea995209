//! `[ssh]`: how Jeeves logs in to the hosts — user, key, port, known_hosts, timeouts, sudo.
//! Whether the key file exists is a preflight check (`preflight.rs`), not this one.

use std::path::Path;

use super::Checker;
use crate::config::{JumpHost, SshSettings, pipeline, validate};

/// An empty `known_hosts` is the state directory's own file.
pub(super) fn check(
    c: &mut Checker,
    raw: pipeline::Ssh,
    base: &Path,
    state_dir: &Path,
) -> Option<SshSettings> {
    let user = c.check("ssh.user", validate::unix_user(&raw.user));
    let key_path = c.local_path("ssh.key_path", &raw.key_path, base, false);
    let port = c.check("ssh.port", validate::port(raw.port));
    let known_hosts = if raw.known_hosts.is_empty() {
        Some(state_dir.join("known_hosts"))
    } else {
        c.local_path("ssh.known_hosts", &raw.known_hosts, base, false)
    };
    let connect_timeout = c.check(
        "ssh.connect_timeout",
        validate::nonzero_duration(&raw.connect_timeout),
    );
    let command_timeout = c.check(
        "ssh.command_timeout",
        validate::nonzero_duration(&raw.command_timeout),
    );
    let keepalive = c.check("ssh.keepalive", validate::nonzero_duration(&raw.keepalive));
    let jump_host = c.check("ssh.jump_host", jump_host(&raw.jump_host));
    let ssh_config = if raw.ssh_config.is_empty() {
        Some(None)
    } else {
        c.local_path("ssh.ssh_config", &raw.ssh_config, base, false)
            .map(Some)
    };
    Some(SshSettings {
        user: user?,
        key_path: key_path?,
        port: port?,
        known_hosts: known_hosts?,
        connect_timeout: connect_timeout?,
        command_timeout: command_timeout?,
        keepalive: keepalive?,
        sudo: raw.sudo,
        pin_from_console: raw.pin_from_console,
        jump_host: jump_host?,
        ssh_config: ssh_config?,
        // From the environment only (`load.rs`).
        key_passphrase: None,
    })
}

/// `[user@]host[:port]`, as OpenSSH's `-J` takes it; empty is none. Also how an ssh_config's
/// `ProxyJump` is read (`fleet`).
pub(crate) fn jump_host(value: &str) -> Result<Option<JumpHost>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let bad = || format!("`{value}` is not [user@]host[:port]");
    let (user, rest) = match value.split_once('@') {
        Some((u, rest)) => (Some(validate::unix_user(u)?), rest),
        None => (None, value),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (rest, 22),
    };
    if host.is_empty() || port == 0 || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad());
    }
    Ok(Some(JumpHost {
        user,
        host: host.to_string(),
        port,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hosts_are_user_host_port() {
        assert_eq!(jump_host(""), Ok(None));
        assert_eq!(
            jump_host("ops@bastion.example.com:2222"),
            Ok(Some(JumpHost {
                user: Some("ops".into()),
                host: "bastion.example.com".into(),
                port: 2222
            }))
        );
        assert_eq!(
            jump_host("10.0.0.5").unwrap().unwrap(),
            JumpHost {
                user: None,
                host: "10.0.0.5".into(),
                port: 22
            }
        );
        for bad in ["ops@", "host:0", "host:ssh", "a b", "@host"] {
            assert!(jump_host(bad).is_err(), "{bad}");
        }
    }
}
