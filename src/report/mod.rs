//! One event stream, several views: progress bars on a terminal, plain timestamped lines for
//! Jenkins, JSON lines for machines, JUnit XML, and the full log file. Stages only emit events;
//! they never print, except the terraform stage's confirmation prompt (asked with the views
//! paused).

mod event;
mod json;
mod junit;
mod log_file;
mod plain;
mod redactor;
mod reporter;
mod summary;
mod tty;

pub use event::{Change, CheckStatus, Event, Level};
pub use redactor::Redactor;
pub use reporter::{Held, OutputMode, Reporter, ReporterOptions};
