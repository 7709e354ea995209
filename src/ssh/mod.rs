//! SSH to the stack's hosts (ssh2/libssh2): strict host keys, key-file and agent auth, a jump
//! host, commands built from quoted arguments, streamed output, per-command timeouts, atomic
//! uploads, and in-process port forwarding (`Tunnel`). Knows nothing of stages.

mod auth;
pub mod host_keys;
mod openssh;
mod options;
mod output;
pub mod probe;
mod remote_command;
mod session;
mod socket;
mod tunnel;

pub use host_keys::{HostKeyPolicy, HostKeyRejected};
pub use openssh::openssh_args;
pub use options::{Jump, SshOptions, Target};
pub use output::{ExecOutput, Stream};
pub use remote_command::RemoteCommand;
pub use session::SshSession;
pub use tunnel::{Tunnel, TunnelLog};
