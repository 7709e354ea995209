//! SSH to the stack's hosts (ssh2/libssh2): strict host keys, key-file and agent auth,
//! commands built from quoted arguments, streamed output, per-command timeouts, atomic uploads.
//! Knows nothing of stages.

pub mod host_keys;
pub mod probe;
mod remote_command;
mod session;
mod tunnel;

pub use host_keys::{HostKeyPolicy, HostKeyRejected};
pub use remote_command::RemoteCommand;
pub use session::{ExecOutput, Jump, SshOptions, SshSession, Stream, Target};
pub use tunnel::{Tunnel, TunnelLog};
