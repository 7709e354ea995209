//! The state directory as the working copy of a shared state in S3 (`[state] backend = "s3"`):
//! `state.json`, `known_hosts` and the certificate cache (`tls/`) are pulled from the bucket once a
//! run holds the S3 lock (and, without it, by the read-only commands `tunnel`, `check`, `ssh` and
//! `backup`, unless a run holds the local lock), and every file that changed is pushed back after
//! each state save and at the end of the run. Each object is written with server-side encryption
//! requested; the lock object is the only other object Jeeves keeps there.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::{block, create_private_dir, write_private};
use crate::aws::s3::Bucket;

/// The files shared, relative to the state directory. `known_hosts` is the state directory's
/// own (the default `ssh.known_hosts`); a known_hosts elsewhere stays the user's.
const FILES: [&str; 2] = ["state.json", "known_hosts"];
/// The directories shared, every file in them.
const DIRS: [&str; 1] = ["tls"];

#[derive(Debug)]
pub struct SharedState {
    bucket: Bucket,
    dir: PathBuf,
    /// SHA-256 of each object as the bucket holds it (as far as this run knows).
    remote: Mutex<BTreeMap<String, [u8; 32]>>,
}

impl SharedState {
    /// `s3://BUCKET/PREFIX/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("s3://{}/{}/{name}", self.bucket.name, self.bucket.prefix)
    }

    pub fn new(bucket: Bucket, dir: &Path) -> SharedState {
        SharedState {
            bucket,
            dir: dir.to_path_buf(),
            remote: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// Replaces the working copy's files with the bucket's (call with the lock held). A file
    /// the bucket does not have is kept, and pushed by the next push (switching from a local
    /// state to S3). Returns the names pulled.
    pub fn pull(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
        for d in DIRS {
            names.extend(block(self.bucket.list(d))?);
        }
        let mut pulled = Vec::new();
        for name in names {
            let path = self.local_path(&name)?;
            let Some(bytes) = block(self.bucket.get(&name))? else {
                continue;
            };
            if let Some(parent) = path.parent() {
                create_private_dir(parent)?;
            }
            write_private(&path, &bytes)?;
            self.remote
                .lock()
                .expect("not poisoned")
                .insert(name.clone(), digest(&bytes));
            pulled.push(name);
        }
        Ok(pulled)
    }

    /// Writes every shared file whose content differs from the bucket's. Returns the names
    /// pushed.
    pub fn push(&self) -> Result<Vec<String>> {
        let mut pushed = Vec::new();
        for name in self.local_files()? {
            let path = self.dir.join(&name);
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let sum = digest(&bytes);
            if self.remote.lock().expect("not poisoned").get(&name) == Some(&sum) {
                continue;
            }
            block(self.bucket.put(&name, bytes))?;
            self.remote
                .lock()
                .expect("not poisoned")
                .insert(name.clone(), sum);
            pushed.push(name);
        }
        Ok(pushed)
    }

    /// The shared files present in the working copy.
    fn local_files(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = FILES
            .iter()
            .filter(|f| self.dir.join(f).is_file())
            .map(|f| f.to_string())
            .collect();
        for d in DIRS {
            let dir = self.dir.join(d);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
            };
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                let file_name = entry.file_name().to_string_lossy().into_owned();
                // Temporary files of an atomic write in progress are not state.
                if entry.file_type()?.is_file() && !file_name.starts_with('.') {
                    names.push(format!("{d}/{file_name}"));
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Where an object goes in the working copy; a name that would leave the state directory
    /// (`..`, absolute, hidden) is refused.
    fn local_path(&self, name: &str) -> Result<PathBuf> {
        within(&self.dir, name).with_context(|| {
            format!(
                "the state bucket holds an object named {}, which Jeeves does not write; remove it",
                self.bucket.url(name)
            )
        })
    }
}

/// `dir/name` when `name` is relative and made of plain, visible components only.
fn within(dir: &Path, name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    let plain = p
        .components()
        .all(|c| matches!(c, Component::Normal(s) if !s.to_string_lossy().starts_with('.')));
    (plain && !name.is_empty()).then(|| dir.join(p))
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_never_leave_the_state_directory() {
        let dir = Path::new("/state");
        assert_eq!(
            within(dir, "tls/chat.example.com.tar.gz"),
            Some(PathBuf::from("/state/tls/chat.example.com.tar.gz"))
        );
        for bad in [
            "../x",
            "tls/../../x",
            "/etc/passwd",
            "tls/.tmp-1",
            "",
            "./x",
        ] {
            assert_eq!(within(dir, bad), None, "{bad}");
        }
    }
}
