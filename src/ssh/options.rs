//! Where and how to log in: the host (`Target`), the login options (`SshOptions`) and the jump
//! host that may stand between (`Jump`).

use std::path::PathBuf;
use std::time::Duration;

use super::host_keys::HostKeyPolicy;

/// A host to log in to: a name for messages and the address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub address: String,
    pub port: u16,
}

/// How to log in (the hosts layer, `fleet`, builds these from the pipeline's `[ssh]`).
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub user: String,
    pub key_path: PathBuf,
    /// From JEEVES_SSH_KEY_PASSPHRASE; never logged.
    pub passphrase: Option<String>,
    pub known_hosts: PathBuf,
    pub host_keys: HostKeyPolicy,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub keepalive: Duration,
    /// Prefix privileged commands with `sudo -n` (when the user is not root).
    pub sudo: bool,
    /// Reach every host through this one, as OpenSSH's ProxyJump does: an SSH session to the
    /// jump host forwards a connection to the host's sshd; keys and login are end to end.
    pub jump: Option<Jump>,
}

/// A jump host (bastion): where it is and who logs in there (same key, agent and known_hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub target: Target,
    pub user: String,
}

impl SshOptions {
    /// Whether privileged commands need `sudo -n`.
    pub fn needs_sudo(&self) -> bool {
        self.sudo && self.user != "root"
    }
}
