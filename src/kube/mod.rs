//! kubectl and helm, local tools as terraform is, for the stages and the commands that reach
//! the cluster through the API tunnel. An adapter: it knows nothing of stages, the runner,
//! commands, the hosts layer or the reporter (`tests/layering.py`); what it prints goes to a
//! `ToolLog` its caller gives it.

mod tools;

pub use tools::{FIELD_MANAGER, ToolLog, Tools, absent, all, server_side, succeeded};
