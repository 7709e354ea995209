use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Who holds the lock, written into the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    pub started_at: String,
    pub command: String,
    /// Held only while a read-only command refreshes the working copy (`RunLock::brief`): a run
    /// that finds it waits for it, whatever its `--lock-timeout`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub brief: bool,
}

impl LockHolder {
    /// This process, running `jeeves <command>`.
    pub fn current(command: &str) -> LockHolder {
        LockHolder {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            started_at: super::state_file::now_rfc3339(),
            command: command.to_string(),
            brief: false,
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`jeeves {}` (pid {} on {}, started {})",
            self.command, self.pid, self.host, self.started_at
        )
    }
}

/// Another run holds the lock (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("another run holds the lock {location}: {holder}; {hint}")]
pub struct LockBusy {
    /// The lock file's path or the lock object's `s3://` URL.
    pub location: String,
    pub holder: String,
    /// What to do about it.
    pub hint: String,
}

pub(super) const WAIT_HINT: &str = "wait for it, or pass --lock-timeout to wait automatically";

/// How long a run waits for a brief holder (a read-only command refreshing the working copy,
/// whose S3 calls are bounded at 2 minutes each) before it reports the lock busy as usual.
const BRIEF_WAIT: Duration = Duration::from_secs(180);

/// How long a holder that has locked the file but not written its details yet is given to
/// write them (they follow the lock at once).
const DETAILS_WAIT: Duration = Duration::from_secs(1);

/// An exclusive OS file lock (`flock`) on `<state dir>/lock`, released when dropped or when the
/// process dies, so a crashed run never leaves a stale lock behind.
#[derive(Debug)]
pub struct RunLock {
    file: File,
}

impl RunLock {
    /// The lock for a run of `jeeves <command>`, waiting up to `timeout` for another run to
    /// release it, and as long as `BRIEF_WAIT` for a brief holder (a read-only command that
    /// holds it for the moment it refreshes the working copy: a scheduled `check` never makes
    /// a run fail with exit 3).
    pub fn acquire(path: &Path, command: &str, timeout: Duration) -> Result<RunLock> {
        Self::take(path, LockHolder::current(command), timeout)
    }

    /// The lock for the moment a read-only command (`check`, `tunnel`, `ssh`, `backup`)
    /// refreshes the working copy: never waits for a run (`LockBusy` when one holds it, and the
    /// refresh is skipped), only for another brief holder, and marks itself brief so that a run
    /// starting meanwhile waits for it instead of failing.
    pub fn brief(path: &Path, command: &str) -> Result<RunLock> {
        let holder = LockHolder {
            brief: true,
            ..LockHolder::current(command)
        };
        Self::take(path, holder, Duration::ZERO)
    }

    fn take(path: &Path, holder: LockHolder, timeout: Duration) -> Result<RunLock> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts
            .open(path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let waited = started.elapsed();
                    let other = read_holder(&mut file);
                    let patient = match &other {
                        Some(h) if h.brief => waited < timeout.max(BRIEF_WAIT),
                        Some(_) => waited < timeout,
                        None => waited < timeout.max(DETAILS_WAIT),
                    };
                    if !patient {
                        return Err(LockBusy {
                            location: path.display().to_string(),
                            holder: other.map_or_else(
                                || "a run that has not written its details yet".to_string(),
                                |h| h.to_string(),
                            ),
                            hint: WAIT_HINT.to_string(),
                        }
                        .into());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| {
                file.write_all(
                    serde_json::to_string(&holder)
                        .unwrap_or_default()
                        .as_bytes(),
                )
            })
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write the lock file {}", path.display()))?;
        Ok(RunLock { file })
    }

    /// The current holder, if any run holds the lock (for `status`).
    pub fn holder(path: &Path) -> Option<LockHolder> {
        let mut file = File::open(path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(_) => {
                let mut text = String::new();
                file.read_to_string(&mut text).ok()?;
                serde_json::from_str(&text).ok()
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Clear the holder before unlocking so nobody reads a stale one.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The holder's details as it wrote them; `None` before it has.
fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_holder_then_free_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = RunLock::acquire(&path, "up", Duration::ZERO).unwrap();
        let holder = RunLock::holder(&path).expect("held");
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.command, "up");
        let err = RunLock::acquire(&path, "down", Duration::ZERO).unwrap_err();
        let busy = err.downcast_ref::<LockBusy>().expect("LockBusy");
        assert!(
            busy.holder.contains(&format!("pid {}", std::process::id())),
            "{}",
            busy.holder
        );
        drop(first);
        assert!(RunLock::holder(&path).is_none());
        RunLock::acquire(&path, "down", Duration::ZERO).unwrap();
    }

    #[test]
    fn a_run_waits_for_a_brief_holder_whatever_its_timeout_and_a_brief_holder_never_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let refresh = RunLock::brief(&path, "check").unwrap();
        assert!(RunLock::holder(&path).expect("held").brief);
        let p = path.clone();
        let run = std::thread::spawn(move || {
            let started = Instant::now();
            RunLock::acquire(&p, "up", Duration::ZERO).map(|lock| (lock, started.elapsed()))
        });
        std::thread::sleep(Duration::from_millis(400));
        drop(refresh);
        let (lock, waited) = run.join().unwrap().expect("the run waited for the refresh");
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        let holder = RunLock::holder(&path).expect("held by the run");
        assert!(!holder.brief && holder.command == "up", "{holder:?}");
        // A refresh never waits for a run: it is skipped instead (LockBusy).
        let err = RunLock::brief(&path, "check").unwrap_err();
        assert!(err.is::<LockBusy>(), "{err:#}");
        drop(lock);
    }

    #[test]
    fn waits_up_to_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = RunLock::acquire(&path, "up", Duration::ZERO).unwrap();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            RunLock::acquire(&p, "up", Duration::from_secs(30)).map(drop)
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
        waiter
            .join()
            .unwrap()
            .expect("acquired after the first run released it");
    }
}
