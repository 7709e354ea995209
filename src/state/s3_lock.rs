//! The run lock as an S3 object, `<prefix>/lock`, created with a conditional write
//! (`If-None-Match: *`) as Terraform's S3 backend does with `use_lockfile = true`
//! (hashicorp/terraform, internal/backend/remote-state/s3/client.go: `lockWithFile` puts the
//! lock info JSON with `IfNoneMatch: "*"`; `unlockWithFile` reads the object, refuses when its
//! ID is not the one given, then deletes it). Unlike the local OS lock, nothing releases it when
//! its holder dies: the next run reports the holder, and `jeeves unlock LOCK_ID` breaks it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::block;
use super::lock::{LockBusy, LockHolder, WAIT_HINT};
use crate::aws::s3::{Bucket, Created};

const OBJECT: &str = "lock";

/// What the lock object holds: the holder (as in the local lock file) and the lock's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3LockInfo {
    pub id: String,
    #[serde(flatten)]
    pub holder: LockHolder,
}

impl S3LockInfo {
    /// The holder, and whether it is known to be dead: a process of this host that is gone.
    fn describe(&self) -> String {
        let mut text = format!("{}, lock id {}", self.holder, self.id);
        if self.holder.host == gethostname::gethostname().to_string_lossy()
            && !alive(self.holder.pid)
        {
            text.push_str(&format!(
                " (stale: pid {} is not running on this host any more)",
                self.holder.pid
            ));
        }
        text
    }
}

/// Held for the run; released (the object deleted, if it is still ours) when dropped.
#[derive(Debug)]
pub struct S3Lock {
    bucket: Bucket,
    id: String,
}

impl S3Lock {
    /// Creates the lock object; while another run's is there, retries every second until
    /// `timeout`, then fails with `LockBusy` naming the holder (exit 3).
    pub fn acquire(bucket: &Bucket, command: &str, timeout: Duration) -> Result<S3Lock> {
        let info = S3LockInfo {
            id: new_id()?,
            holder: LockHolder::current(command),
        };
        let body = serde_json::to_vec(&info)?;
        let deadline = Instant::now() + timeout;
        let mut waiting = false;
        loop {
            if block(bucket.create(OBJECT, body.clone()))? == Created::Yes {
                return Ok(S3Lock {
                    bucket: bucket.clone(),
                    id: info.id,
                });
            }
            let Some(other) = holder(bucket)? else {
                continue; // released between our write and our read: try again at once
            };
            if Instant::now() >= deadline {
                return Err(LockBusy {
                    location: bucket.url(OBJECT),
                    holder: other.describe(),
                    hint: format!(
                        "{WAIT_HINT}; if that run is dead (killed, its agent gone), break the lock with `jeeves unlock {}`",
                        other.id
                    ),
                }
                .into());
            }
            if !waiting {
                // A CI step that waits says why, instead of sitting silent.
                eprintln!(
                    "waiting up to {} for the lock {}, held by {}",
                    humantime::format_duration(timeout),
                    bucket.url(OBJECT),
                    other.describe()
                );
                waiting = true;
            }
            std::thread::sleep(Duration::from_secs(1).min(deadline - Instant::now()));
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for S3Lock {
    fn drop(&mut self) {
        if let Err(e) = unlock(&self.bucket, &self.id) {
            eprintln!(
                "warning: could not release the lock {}: {e:#}; once no run holds it, run `jeeves unlock {}`",
                self.bucket.url(OBJECT),
                self.id
            );
        }
    }
}

/// The lock object's content, if there is one.
pub fn holder(bucket: &Bucket) -> Result<Option<S3LockInfo>> {
    let Some(bytes) = block(bucket.get(OBJECT))? else {
        return Ok(None);
    };
    let info = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "the lock object {} is not a Jeeves lock; look at it, and delete it if no run holds it",
            bucket.url(OBJECT)
        )
    })?;
    Ok(Some(info))
}

/// Deletes the lock object if its id is `id`; returns the holder it removed, None when no lock
/// was held. A different id is refused with the actual holder.
pub fn unlock(bucket: &Bucket, id: &str) -> Result<Option<S3LockInfo>> {
    let Some(info) = holder(bucket)? else {
        return Ok(None);
    };
    if info.id != id {
        // A usage error (exit 2): the id given is not the lock's.
        return Err(crate::exit_code::UsageError(format!(
            "the lock {} has id {}, not {id} (held by {}); nothing was removed",
            bucket.url(OBJECT),
            info.id,
            info.describe()
        ))
        .into());
    }
    block(bucket.delete(OBJECT))?;
    Ok(Some(info))
}

/// A random version-4 UUID (as Terraform's lock ids), from the kernel's random source.
fn new_id() -> Result<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("cannot read /dev/urandom for a lock id")?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Whether a process with this pid exists on this host (`kill(pid, 0)`; EPERM: it exists).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_and_differ() {
        let a = new_id().unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, new_id().unwrap());
    }

    #[test]
    fn a_dead_local_holder_is_called_stale() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut info = S3LockInfo {
            id: "x".into(),
            holder: LockHolder::current("up"),
        };
        assert!(!info.describe().contains("stale"), "this process is alive");
        info.holder.pid = pid;
        assert!(info.describe().contains("stale"), "{}", info.describe());
        info.holder.host = "another-agent".into();
        assert!(!info.describe().contains("stale"), "another host: unknown");
    }
}
