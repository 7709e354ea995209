//! `[ssh]`: how Jeeves logs in to the hosts — user, key, port, known_hosts, timeouts, sudo.
//! Whether the key file exists is a preflight check (`preflight.rs`), not this one.

use std::path::Path;

use super::Checker;
use crate::config::{SshSettings, pipeline, validate};

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
        // From the environment only (`load.rs`).
        key_passphrase: None,
    })
}
