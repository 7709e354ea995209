use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};
use ssh2::{CheckResult, HashType, KnownHostFileKind, Session};

/// How an unknown host key is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The key must already be in known_hosts (the default).
    Strict,
    /// Trust on first use: an unknown key is added (`--accept-new-host-keys`). A changed key is
    /// still refused.
    AcceptNew,
}

/// The host's key is not the pinned one, or not pinned at all (strict mode): never retried,
/// and a stage stops before running anything anywhere.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostKeyRejected(pub String);

/// Serialises writes of known_hosts by parallel connections.
static WRITE: Mutex<()> = Mutex::new(());

fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(key)))
}

/// Checks the server's host key against `known_hosts`; aborts on a mismatch with the host, the
/// expected and the offered fingerprints.
pub fn verify(
    session: &Session,
    host: &str,
    port: u16,
    known_hosts: &Path,
    policy: HostKeyPolicy,
) -> Result<()> {
    let (key, key_type) = session.host_key().context("the server sent no host key")?;
    let offered = session
        .host_key_hash(HashType::Sha256)
        .map(|h| format!("SHA256:{}", STANDARD_NO_PAD.encode(h)))
        .unwrap_or_else(|| fingerprint(key));
    let mut kh = session.known_hosts()?;
    if known_hosts.exists() {
        kh.read_file(known_hosts, KnownHostFileKind::OpenSSH)
            .with_context(|| format!("cannot read known_hosts {}", known_hosts.display()))?;
    }
    match kh.check_port(host, port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => {
            let expected: Vec<String> = kh
                .hosts()?
                .iter()
                .filter(|h| {
                    h.name().is_some_and(|n| {
                        n.split(',')
                            .any(|n| n == host || n == format!("[{host}]:{port}"))
                    })
                })
                .filter_map(|h| STANDARD.decode(h.key()).ok())
                .map(|k| fingerprint(&k))
                .collect();
            bail!(HostKeyRejected(format!(
                "host key mismatch for {host}:{port}: known_hosts {} expects {}, the server offered {offered}. \
                 Either the host was rebuilt (remove its line from known_hosts and pin the new key) or someone is \
                 intercepting the connection; nothing was run",
                known_hosts.display(),
                if expected.is_empty() {
                    "another key".to_string()
                } else {
                    expected.join(" or ")
                }
            )))
        }
        CheckResult::NotFound if policy == HostKeyPolicy::AcceptNew => {
            let _guard = WRITE.lock().unwrap_or_else(|e| e.into_inner());
            // Re-read: another connection may have written the file meanwhile.
            let mut kh = session.known_hosts()?;
            if known_hosts.exists() {
                kh.read_file(known_hosts, KnownHostFileKind::OpenSSH)?;
            }
            let name = if port == 22 {
                host.to_string()
            } else {
                format!("[{host}]:{port}")
            };
            kh.add(
                &name,
                key,
                "added by jeeves --accept-new-host-keys",
                key_type.into(),
            )?;
            if let Some(dir) = known_hosts.parent() {
                std::fs::create_dir_all(dir).ok();
            }
            kh.write_file(known_hosts, KnownHostFileKind::OpenSSH)
                .with_context(|| format!("cannot write {}", known_hosts.display()))?;
            Ok(())
        }
        CheckResult::NotFound => bail!(HostKeyRejected(format!(
            "the host key of {host}:{port} ({offered}) is not in known_hosts {}; pin it first (Jeeves pins AWS hosts \
             from their console output), or pass --accept-new-host-keys to trust it on first use; nothing was run",
            known_hosts.display()
        ))),
        CheckResult::Failure => bail!(
            "cannot check the host key of {host}:{port} against {}",
            known_hosts.display()
        ),
    }
}
