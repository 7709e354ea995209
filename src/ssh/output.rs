//! What a command printed: its output and status (`ExecOutput`), which stream a line came from
//! (`Stream`), and the `Collector` that turns a stream's chunks into lines as they arrive.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    /// The last non-empty lines of stderr (or stdout), for error messages.
    pub fn tail(&self, lines: usize) -> String {
        crate::process::tail(&self.stdout, &self.stderr, lines)
    }
}

/// Accumulates a stream and hands out complete lines as they arrive.
#[derive(Default)]
pub(super) struct Collector {
    pub(super) text: String,
    partial: Vec<u8>,
}

impl Collector {
    pub(super) fn push(&mut self, bytes: &[u8], mut on_line: impl FnMut(&str)) {
        self.partial.extend_from_slice(bytes);
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            on_line(line.trim_end_matches(['\n', '\r']));
            self.text.push_str(&line);
        }
    }

    pub(super) fn finish(&mut self, mut on_line: impl FnMut(&str)) {
        if !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            on_line(&line);
            self.text.push_str(&line);
            self.partial.clear();
        }
    }
}
