//! What Jeeves remembers between runs, in `.jeeves/<pipeline>/` (mode 0700): the inventory from
//! terraform outputs and each stage's last result. Whether a stage has work to do is always
//! decided by probing the real world; state only says where the world is.

mod lock;
mod state_file;

pub use lock::{LockBusy, LockHolder, RunLock};
pub use state_file::{
    Host, Inventory, StageRecord, StageResult, State, StateDir, now_rfc3339, write_private,
};
