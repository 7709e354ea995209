use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::event::Event;
use super::plain::describe;
use super::reporter::Sink;

/// The full log of a run, remote output included, already redacted (mode 0600).
pub(super) struct LogFileSink {
    out: BufWriter<File>,
}

impl LogFileSink {
    pub fn create(path: &Path) -> Result<LogFileSink> {
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts
            .open(path)
            .with_context(|| format!("cannot create the log file {}", path.display()))?;
        Ok(LogFileSink {
            out: BufWriter::new(file),
        })
    }
}

impl Sink for LogFileSink {
    fn event(&mut self, ts: SystemTime, event: &Event) {
        let ts = humantime::format_rfc3339_millis(ts);
        if let Some(text) = describe(event) {
            for line in text.lines() {
                let _ = writeln!(self.out, "{ts} {line}");
            }
        }
        if let Event::RunFinished { error: Some(e), .. } = event {
            let _ = writeln!(self.out, "{ts} error: {e}");
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush().context("cannot write the log file")
    }
}
