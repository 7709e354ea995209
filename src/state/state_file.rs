use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::SharedState;
use crate::stage_name::StageName;

const STATE_VERSION: u32 = 1;

/// One machine of the stack, as terraform reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Instance id (`i-…` on AWS).
    pub id: String,
    /// The machine's hostname, which MicroK8s uses as the node name.
    pub hostname: String,
    pub public_ip: String,
    pub private_ip: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The first controller: the one a single-controller stack has, and the cluster's origin.
    pub controller: Option<Host>,
    /// The controllers after the first (`[cluster] controllers` 3 or 5), in terraform's order.
    /// Written only when there are any, so that a single-controller state file reads and is
    /// written exactly as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_controllers: Vec<Host>,
    #[serde(default)]
    pub workers: Vec<Host>,
    /// terraform's outputs `backup_bucket` and `backup_prefix` (terraform/aws makes the bucket):
    /// where `[backup]` without a bucket sends its archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_prefix: Option<String>,
}

impl Inventory {
    pub fn is_empty(&self) -> bool {
        self.controller.is_none() && self.more_controllers.is_empty() && self.workers.is_empty()
    }

    /// Every controller, the first one first.
    pub fn controllers(&self) -> Vec<&Host> {
        self.controller
            .iter()
            .chain(self.more_controllers.iter())
            .collect()
    }

    /// The controller, or the error that says how to get one.
    pub fn controller(&self) -> Result<&Host> {
        self.controller
            .as_ref()
            .context("the inventory has no controller; run `jeeves up --only terraform` first")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageResult {
    Changed,
    Unchanged,
    Failed,
    Skipped,
}

impl StageResult {
    pub fn as_str(self) -> &'static str {
        match self {
            StageResult::Changed => "changed",
            StageResult::Unchanged => "unchanged",
            StageResult::Failed => "failed",
            StageResult::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRecord {
    pub result: StageResult,
    /// RFC 3339, UTC.
    pub finished_at: String,
    pub duration_ms: u64,
    /// SHA-256 of the settings the stage read, to tell "configuration changed since" in status.
    pub inputs: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub inventory: Inventory,
    #[serde(default)]
    pub stages: BTreeMap<StageName, StageRecord>,
    /// Instance id → the microk8s channel bootstrap last found that worker tracking (a probe) or
    /// put it on (a snap install or refresh that succeeded), kept only while it is the
    /// configured one: with the cluster's own view of the node, it lets a converged run leave
    /// the worker alone (`stages::bootstrap`'s probe).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub worker_channels: BTreeMap<String, String>,
    /// The domain of the stack this state describes, recorded by `up`: a command configured for
    /// another domain (`stop`/`start`) refuses to act on it. Absent in states written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            inventory: Inventory::default(),
            stages: BTreeMap::new(),
            worker_channels: BTreeMap::new(),
            domain: None,
        }
    }
}

/// The private state directory of one pipeline.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
    /// The S3 state this directory is the working copy of (`[state] backend = "s3"`).
    shared: Option<Arc<SharedState>>,
}

impl StateDir {
    /// Creates the directory (and `logs/`) with mode 0700 when missing, and tightens it when
    /// it exists with looser permissions.
    pub fn open(path: &Path) -> Result<StateDir> {
        for dir in [path.to_path_buf(), path.join("logs")] {
            fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
            set_mode(&dir, 0o700)?;
        }
        Ok(StateDir {
            path: path.to_path_buf(),
            shared: None,
        })
    }

    /// The directory without creating it (read-only commands such as `status`).
    pub fn existing(path: &Path) -> StateDir {
        StateDir {
            path: path.to_path_buf(),
            shared: None,
        }
    }

    /// Makes this directory the working copy of `shared`: each save is pushed to it.
    pub fn share(&mut self, shared: Arc<SharedState>) {
        self.shared = Some(shared);
    }

    pub fn shared(&self) -> Option<&SharedState> {
        self.shared.as_deref()
    }

    /// Pushes what changed in the working copy to the shared state, if there is one.
    pub fn push(&self) -> Result<()> {
        if let Some(shared) = &self.shared {
            shared.push()?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn state_file(&self) -> PathBuf {
        self.file("state.json")
    }

    /// Where the state was read from, for messages: the bucket's object with the S3 backend,
    /// else the local file.
    pub fn describe(&self) -> String {
        match &self.shared {
            Some(shared) => format!(
                "{} (working copy {})",
                shared.url("state.json"),
                self.state_file().display()
            ),
            None => self.state_file().display().to_string(),
        }
    }

    /// Reads `state.json`; a missing file is an empty state, a corrupt one a clear error.
    pub fn load(&self) -> Result<State> {
        let file = self.state_file();
        let text = match fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        let state: State = serde_json::from_str(&text).with_context(|| {
            format!(
                "the state file {} is corrupt; move it aside (mv {0} {0}.bad) and run `jeeves up --only terraform` to rebuild the inventory from terraform outputs",
                file.display()
            )
        })?;
        if state.version != STATE_VERSION {
            bail!(
                "the state file {} has version {}, this Jeeves reads version {STATE_VERSION}",
                file.display(),
                state.version
            );
        }
        Ok(state)
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(state).context("cannot serialise the state")?;
        text.push(b'\n');
        write_private(&self.state_file(), &text)?;
        // known_hosts and the certificate cache written during the stage go with it.
        self.push()
    }
}

/// Creates `dir` and the directories above it that are missing, each private (0700), as the
/// state directory's are.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes `contents` to `path` atomically with mode 0600: a temporary file in the same
/// directory, fsync, rename, then fsync of the directory. A crash leaves the old or the new
/// file, never a torn one.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(private_file_permissions())
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    if let Ok(d) = fs::File::open(dir) {
        // Makes the rename itself durable; not all filesystems support it, hence no error.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn private_file_permissions() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o600)
}

#[cfg(not(unix))]
fn private_file_permissions() -> fs::Permissions {
    fs::metadata(".")
        .map(|m| m.permissions())
        .expect("metadata of .")
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set mode {mode:o} on {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<()> {
    Ok(())
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_state_is_empty_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(&dir.path().join("p")).unwrap();
        assert_eq!(sd.load().unwrap(), State::default());
        let mut s = State::default();
        s.inventory.controller = Some(Host {
            id: "i-1".into(),
            hostname: "controller".into(),
            public_ip: "203.0.113.10".into(),
            private_ip: "10.0.0.10".into(),
        });
        s.stages.insert(
            StageName::Terraform,
            StageRecord {
                result: StageResult::Changed,
                finished_at: now_rfc3339(),
                duration_ms: 12,
                inputs: "abc".into(),
                error: None,
            },
        );
        sd.save(&s).unwrap();
        assert_eq!(sd.load().unwrap(), s);
        // One controller: the file says nothing of more, as files written before did not, and
        // such a file loads as one controller.
        let text = fs::read_to_string(dir.path().join("p/state.json")).unwrap();
        assert!(!text.contains("more_controllers"), "{text}");
        s.inventory.more_controllers = vec![s.inventory.controller.clone().unwrap()];
        sd.save(&s).unwrap();
        assert_eq!(sd.load().unwrap().inventory.controllers().len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn state_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p");
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        let sd = StateDir::open(&p).unwrap();
        sd.save(&State::default()).unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o700, "an existing loose directory is tightened");
        assert_eq!(mode(&p.join("logs")), 0o700);
        assert_eq!(mode(&p.join("state.json")), 0o600);
    }

    #[test]
    fn corrupt_state_says_how_to_recover() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(dir.path()).unwrap();
        fs::write(sd.file("state.json"), "{\"version\": 1, \"inventory\": ").unwrap();
        let err = format!("{:#}", sd.load().unwrap_err());
        assert!(err.contains("corrupt"), "{err}");
        assert!(err.contains("--only terraform"), "{err}");
    }

    #[test]
    fn a_reader_never_sees_a_partial_state_while_it_is_saved() {
        // The state file is replaced whole (a temporary file renamed over it): a reader, like
        // a process that died mid-write and the next run that loads, finds the old or the new
        // state, never a torn one. Written in place (truncate, then write), a reader in this
        // loop finds a partial file within a few saves (checked).
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(dir.path()).unwrap();
        let small = State::default();
        let mut big = State::default();
        for i in 0..400 {
            big.inventory.workers.push(Host {
                id: format!("i-{i:017}"),
                hostname: format!("worker-{i}"),
                public_ip: "203.0.113.11".into(),
                private_ip: "10.0.0.11".into(),
            });
        }
        sd.save(&small).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..200 {
                    sd.save(if i % 2 == 0 { &big } else { &small }).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let mut loads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let state = sd.load().expect("a whole state file at every moment");
                assert!(state == small || state == big, "a state never saved");
                loads += 1;
            }
            assert!(loads > 0, "the reader read while the writer saved");
        });
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}
