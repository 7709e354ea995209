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
/// and a stage stops before changing anything anywhere (its read-only probes of other hosts
/// may already have run).
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
            create_private(known_hosts)?;
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

/// The host keys in an EC2 console output: the lines cloud-init prints between
/// `-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----`, as
/// `(type, base64 key)`. Empty when the block is not there (yet).
pub fn parse_console_keys(console: &str) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut inside = false;
    for line in console.lines() {
        // Console lines may carry a timestamp or `ec2:` prefix; look for the markers anywhere.
        if line.contains("-----BEGIN SSH HOST KEY KEYS-----") {
            inside = true;
            keys.clear();
            continue;
        }
        if line.contains("-----END SSH HOST KEY KEYS-----") {
            if inside {
                return keys;
            }
            continue;
        }
        if inside {
            let mut words = line.split_whitespace();
            while let Some(w) = words.next() {
                if (w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-"))
                    && let Some(b64) = words.next()
                    && STANDARD.decode(b64).is_ok()
                {
                    keys.push((w.to_string(), b64.to_string()));
                    break;
                }
            }
        }
    }
    // No END marker: the block is incomplete (output still being written).
    Vec::new()
}

/// The name a host has in known_hosts: `host` on port 22, `[host]:port` otherwise.
fn known_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Whether known_hosts holds any key for the host (plain names; hashed entries count as absent,
/// which only costs a console lookup that then adds nothing).
pub fn has_entry(known_hosts: &Path, host: &str, port: u16) -> bool {
    let name = known_name(host, port);
    std::fs::read_to_string(known_hosts).is_ok_and(|text| {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_whitespace().next())
            .any(|names| names.split(',').any(|n| n == name))
    })
}

/// What `pin` writes after the instance id in a key's comment.
pub const PINNED_BY: &str = "pinned by jeeves from the EC2 console";

/// The lines of known_hosts that name the host (plain names), and the others.
fn lines_for(text: &str, host: &str, port: u16) -> (Vec<String>, Vec<String>) {
    let name = known_name(host, port);
    text.lines().map(String::from).partition(|l| {
        !l.trim_start().starts_with('#')
            && l.split_whitespace()
                .next()
                .is_some_and(|names| names.split(',').any(|n| n == name))
    })
}

/// The EC2 instance ids whose console the host's pinned keys came from (Jeeves writes the id
/// into each key's comment); empty when none of its keys were pinned that way.
pub fn pinned_instances(known_hosts: &Path, host: &str, port: u16) -> Vec<String> {
    let text = std::fs::read_to_string(known_hosts).unwrap_or_default();
    let mut ids: Vec<String> = lines_for(&text, host, port)
        .0
        .iter()
        .filter(|l| l.ends_with(PINNED_BY))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("i-")))
        .map(String::from)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Removes every key of the host from known_hosts (atomically); returns how many lines went.
pub fn forget(known_hosts: &Path, host: &str, port: u16) -> Result<usize> {
    let _guard = WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let text = std::fs::read_to_string(known_hosts)
        .with_context(|| format!("cannot read known_hosts {}", known_hosts.display()))?;
    let (gone, kept) = lines_for(&text, host, port);
    if !gone.is_empty() {
        let mut out = kept.join("\n");
        out.push('\n');
        // A temporary file beside it, then a rename: readers see the old file or the new.
        // Private (0600), as Jeeves creates known_hosts.
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = known_hosts.with_extension("jeeves-tmp");
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(out.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, known_hosts))
            .with_context(|| format!("cannot write {}", known_hosts.display()))?;
    }
    Ok(gone.len())
}

/// Adds the keys to known_hosts for the host, skipping those already there. A key that
/// conflicts with a pinned one is not added: the connection then fails with both fingerprints.
/// Returns how many keys were added.
pub fn pin(
    known_hosts: &Path,
    host: &str,
    port: u16,
    keys: &[(String, String)],
    comment: &str,
) -> Result<usize> {
    let _guard = WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let session = Session::new()?;
    let mut kh = session.known_hosts()?;
    if known_hosts.exists() {
        kh.read_file(known_hosts, KnownHostFileKind::OpenSSH)
            .with_context(|| format!("cannot read known_hosts {}", known_hosts.display()))?;
    }
    let name = known_name(host, port);
    let mut added = 0;
    for (kind, b64) in keys {
        let key = STANDARD.decode(b64)?;
        let format = match kind.as_str() {
            "ssh-ed25519" => ssh2::KnownHostKeyFormat::Ed25519,
            "ssh-rsa" => ssh2::KnownHostKeyFormat::SshRsa,
            "ecdsa-sha2-nistp256" => ssh2::KnownHostKeyFormat::Ecdsa256,
            "ecdsa-sha2-nistp384" => ssh2::KnownHostKeyFormat::Ecdsa384,
            "ecdsa-sha2-nistp521" => ssh2::KnownHostKeyFormat::Ecdsa521,
            _ => continue,
        };
        if matches!(kh.check_port(host, port, &key), CheckResult::NotFound) {
            kh.add(&name, &key, comment, format)?;
            added += 1;
        }
    }
    if added > 0 {
        create_private(known_hosts)?;
        kh.write_file(known_hosts, KnownHostFileKind::OpenSSH)
            .with_context(|| format!("cannot write {}", known_hosts.display()))?;
    }
    Ok(added)
}

/// Creates known_hosts (and its directory) private, 0600 (0700), when it does not exist yet:
/// libssh2's `write_file` opens it with `fopen`, which would make it 0644, and keeps the mode
/// of a file that is there.
fn create_private(known_hosts: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = known_hosts.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(known_hosts)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", known_hosts.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIFlxPCpy0R5h4QsxJzDJ4L/zoUl9rDwP3xCaTW8obDCQ";

    #[test]
    fn console_keys_come_from_the_cloud_init_block_only() {
        let console = format!(
            "[   12.3] cloud-init[801]: ssh-ed25519 AAAAnotthisone root@x\n\
             ec2: #############################################################\n\
             ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n\
             ec2: 256 SHA256:abc root@ip-10-0-1-10 (ED25519)\n\
             ec2: -----END SSH HOST KEY FINGERPRINTS-----\n\
             -----BEGIN SSH HOST KEY KEYS-----\n\
             ecdsa-sha2-nistp256 {ED} root@ip-10-0-1-10\n\
             ssh-ed25519 {ED} root@ip-10-0-1-10\n\
             -----END SSH HOST KEY KEYS-----\n"
        );
        let keys = parse_console_keys(&console);
        assert_eq!(
            keys,
            vec![
                ("ecdsa-sha2-nistp256".to_string(), ED.to_string()),
                ("ssh-ed25519".to_string(), ED.to_string())
            ]
        );
        // Not printed yet, or cut off mid-block: nothing.
        assert!(parse_console_keys("booting...\n").is_empty());
        assert!(
            parse_console_keys(&format!(
                "-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 {ED} r\n"
            ))
            .is_empty()
        );
    }

    #[test]
    fn a_host_pinned_from_another_instance_is_found_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        let keys = vec![("ssh-ed25519".to_string(), ED.to_string())];
        pin(
            &kh,
            "203.0.113.10",
            22,
            &keys,
            &format!("controller i-0a {PINNED_BY}"),
        )
        .unwrap();
        pin(
            &kh,
            "203.0.113.11",
            22,
            &keys,
            &format!("worker-1 i-0b {PINNED_BY}"),
        )
        .unwrap();
        assert_eq!(pinned_instances(&kh, "203.0.113.10", 22), ["i-0a"]);
        assert!(pinned_instances(&kh, "203.0.113.12", 22).is_empty());
        assert_eq!(forget(&kh, "203.0.113.10", 22).unwrap(), 1);
        assert!(!has_entry(&kh, "203.0.113.10", 22));
        assert!(has_entry(&kh, "203.0.113.11", 22));
    }

    #[test]
    fn pinning_adds_each_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        assert!(!has_entry(&kh, "203.0.113.10", 22));
        let keys = vec![("ssh-ed25519".to_string(), ED.to_string())];
        assert_eq!(pin(&kh, "203.0.113.10", 22, &keys, "i-0a").unwrap(), 1);
        assert_eq!(pin(&kh, "203.0.113.10", 22, &keys, "i-0a").unwrap(), 0);
        assert!(has_entry(&kh, "203.0.113.10", 22));
        assert!(!has_entry(&kh, "203.0.113.10", 2222));
        assert!(!has_entry(&kh, "203.0.113.1", 22));
        let text = std::fs::read_to_string(&kh).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.starts_with(&format!("203.0.113.10 ssh-ed25519 {ED}")),
            "{text}"
        );
    }
}
