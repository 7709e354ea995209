//! The exit codes Jeeves promises (see docs/commands.md, "Exit codes").

use std::process::ExitCode;

use crate::config::ConfigErrors;
use crate::state::LockBusy;

/// Every run, stage failures included.
pub const SUCCESS: u8 = 0;
/// A stage (or a doctor check) failed.
pub const STAGE_FAILED: u8 = 1;
/// Usage or configuration error; nothing remote was touched.
pub const USAGE: u8 = 2;
/// `plan --detailed-exitcode`: the plan has changes (as terraform's).
pub const CHANGES_PENDING: u8 = 2;
/// Another run holds the state lock.
pub const LOCKED: u8 = 3;

/// Maps an error to its exit code by looking for the typed errors in its chain.
pub fn for_error(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<ConfigErrors>() || cause.is::<UsageError>() {
            return USAGE;
        }
        if cause.is::<LockBusy>() {
            return LOCKED;
        }
        if let Some(crate::interrupt::Interrupted(sig)) = cause.downcast_ref() {
            return 128 + *sig as u8;
        }
    }
    STAGE_FAILED
}

pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// A command-line request that cannot be honoured (exit 2), e.g. `down` without `--yes`
/// on a non-interactive stdin.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
