//! Logging in: the key file (`ssh.key_path`) if it exists, then each ssh-agent identity (when
//! SSH_AUTH_SOCK is set); a failure names what was tried.

use anyhow::{Result, bail};
use ssh2::Session;

use super::options::SshOptions;

pub(super) fn authenticate(session: &Session, opts: &SshOptions) -> Result<()> {
    let mut tried = Vec::new();
    if opts.key_path.is_file() {
        match session.userauth_pubkey_file(
            &opts.user,
            None,
            &opts.key_path,
            opts.passphrase.as_deref(),
        ) {
            Ok(()) if session.authenticated() => return Ok(()),
            Ok(()) => tried.push(format!("key {}", opts.key_path.display())),
            Err(e) => tried.push(format!("key {} ({})", opts.key_path.display(), e.message())),
        }
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        let mut agent = session.agent()?;
        if agent.connect().is_ok() && agent.list_identities().is_ok() {
            let ids = agent.identities()?;
            for id in &ids {
                if agent.userauth(&opts.user, id).is_ok() && session.authenticated() {
                    return Ok(());
                }
            }
            tried.push(format!(
                "{} ssh-agent identit{}",
                ids.len(),
                if ids.len() == 1 { "y" } else { "ies" }
            ));
        }
    }
    if tried.is_empty() {
        bail!(
            "no credentials: {} does not exist and no ssh-agent is running (SSH_AUTH_SOCK)",
            opts.key_path.display()
        );
    }
    bail!("authentication failed; tried {}", tried.join(", "))
}
