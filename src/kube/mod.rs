//! kubectl and helm, local tools as terraform is, for the stages and the commands that reach
//! the cluster through the API tunnel, and the reads of what they print that stages and
//! commands share (`node.rs`), and the API behind the tunnel as kubectl sees it (`api.rs`). An adapter: it knows nothing of stages, the runner, commands,
//! the hosts layer or the reporter (`tests/layering.py`); what the tools print goes to a
//! `ToolLog` its caller gives it.

pub mod api;
mod node;
mod tools;

pub use node::{CORDONED, cordoned, marked};
pub use tools::{FIELD_MANAGER, ToolLog, Tools, absent, all, server_side, succeeded};

/// The objects of a `kubectl get … -o json` list (none when it has no `items`).
pub fn items(list: &serde_json::Value) -> &[serde_json::Value] {
    list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}
