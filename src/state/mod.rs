//! What Jeeves remembers between runs, in `.jeeves/<pipeline>/` (mode 0700): the inventory from
//! terraform outputs, each stage's last result, and the channel bootstrap last found or put each
//! worker on. Whether a stage has work to do is decided by probing the real world; state
//! says where the world is, and a recorded channel counts only while the cluster's live view of
//! the worker agrees with it. With the S3 backend
//! the directory is the working copy of the bucket's state (`shared.rs`), and the run lock is an
//! S3 object (`s3_lock.rs`).

mod lock;
mod s3_lock;
mod shared;
mod state_file;

pub use lock::{LockBusy, LockHolder, RunLock};
pub use s3_lock::{S3Lock, S3LockInfo, holder as s3_lock_holder, unlock as s3_unlock};
pub use shared::SharedState;
pub use state_file::{
    Host, Inventory, StageRecord, StageResult, State, StateDir, create_private_dir, now_rfc3339,
    write_private,
};

/// Runs an S3 call from synchronous code inside the (multi-threaded) runtime: the state
/// directory is saved, and the lock released on drop, from plain functions.
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
