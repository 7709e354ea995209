use std::io::Write;
use std::time::SystemTime;

use serde::Serialize;

use super::event::Event;
use super::reporter::Sink;

/// One JSON object per line on stdout (schema: docs/commands.md, "Machine-readable output").
pub(super) struct JsonSink {
    out: Box<dyn Write + Send>,
}

impl JsonSink {
    pub fn stdout() -> JsonSink {
        JsonSink {
            out: Box::new(std::io::stdout()),
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    #[serde(flatten)]
    event: &'a Event,
}

impl Sink for JsonSink {
    fn event(&mut self, ts: SystemTime, event: &Event) {
        let line = Line {
            ts: humantime::format_rfc3339_millis(ts).to_string(),
            event,
        };
        if let Ok(text) = serde_json::to_string(&line) {
            let _ = writeln!(self.out, "{text}");
            let _ = self.out.flush();
        }
    }
}
