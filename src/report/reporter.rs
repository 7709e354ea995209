use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Result;

use super::event::{Event, Level};
use super::redactor::Redactor;
use super::{json, junit, log_file, plain, tty};

/// How progress is shown (the `--output` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputMode {
    Auto,
    Plain,
    Json,
}

/// A view of the event stream.
pub(super) trait Sink: Send {
    fn event(&mut self, ts: SystemTime, event: &Event);
    /// Flushes files at the end of a run.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    /// Runs `f` with the sink's live display (a terminal's bars) out of the way.
    fn suspend(&self, f: &mut dyn FnMut()) {
        f()
    }
}

pub struct ReporterOptions {
    pub output: OutputMode,
    pub verbose: bool,
    pub junit: Option<PathBuf>,
    /// The run's log file; `None` for commands that keep no log (render, status).
    pub log_file: Option<PathBuf>,
    pub pipeline: String,
}

/// The one place events go. Cheap to clone and safe to use from worker threads.
#[derive(Clone)]
pub struct Reporter {
    sinks: Arc<Mutex<Vec<Box<dyn Sink>>>>,
    redactor: Redactor,
}

impl Reporter {
    pub fn new(opts: ReporterOptions, redactor: Redactor) -> Result<Reporter> {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        let mode = match opts.output {
            OutputMode::Auto
                if std::env::var_os("CI").is_none()
                    && std::io::IsTerminal::is_terminal(&std::io::stderr()) =>
            {
                OutputMode::Auto
            }
            OutputMode::Auto => OutputMode::Plain,
            m => m,
        };
        match mode {
            OutputMode::Auto => sinks.push(Box::new(tty::TtySink::new(opts.verbose))),
            OutputMode::Plain => sinks.push(Box::new(plain::PlainSink::stdout(opts.verbose))),
            OutputMode::Json => sinks.push(Box::new(json::JsonSink::stdout())),
        }
        if let Some(path) = opts.junit {
            sinks.push(Box::new(junit::JunitSink::new(path, opts.pipeline.clone())));
        }
        if let Some(path) = opts.log_file {
            sinks.push(Box::new(log_file::LogFileSink::create(&path)?));
        }
        Ok(Reporter {
            sinks: Arc::new(Mutex::new(sinks)),
            redactor,
        })
    }

    /// A reporter that shows nothing (tests).
    pub fn silent() -> Reporter {
        Reporter {
            sinks: Arc::new(Mutex::new(Vec::new())),
            redactor: Redactor::default(),
        }
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// A reporter that keeps what it is told for later (`Held::replay`), redacting as this one
    /// does: for a stage's look-ahead probe, whose events are shown when the run reaches the
    /// stage, or never.
    pub fn held(&self) -> (Reporter, Held) {
        let held = Held::default();
        let reporter = Reporter {
            sinks: Arc::new(Mutex::new(vec![Box::new(held.clone())])),
            redactor: self.redactor.clone(),
        };
        (reporter, held)
    }

    pub fn emit(&self, mut event: Event) {
        for text in event.texts_mut() {
            *text = self.redactor.redact(text);
        }
        let ts = SystemTime::now();
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for sink in sinks.iter_mut() {
            sink.event(ts, &event);
        }
    }

    pub fn log(
        &self,
        stage: Option<crate::stage_name::StageName>,
        level: Level,
        message: impl Into<String>,
    ) {
        self.emit(Event::Log {
            stage,
            level,
            message: message.into(),
        });
    }

    /// A sink for what a helper that knows nothing of reporting says (the API tunnel's words):
    /// each line a warning of the run, after `who: `.
    pub fn warnings(&self, who: &'static str) -> Box<dyn Fn(&str) + Send> {
        let reporter = self.clone();
        Box::new(move |line| reporter.log(None, Level::Warn, format!("{who}: {line}")))
    }

    /// Runs `f` (a question on the terminal) with the progress bars out of the way.
    pub fn pause<T>(&self, f: impl FnOnce() -> T) -> T {
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        let mut f = Some(f);
        let mut out = None;
        let mut call = || out = f.take().map(|f| f());
        match sinks.first() {
            Some(display) => display.suspend(&mut call),
            None => call(),
        }
        out.expect("suspend runs its closure")
    }

    pub fn finish(&self) -> Result<()> {
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for sink in sinks.iter_mut() {
            sink.finish()?;
        }
        Ok(())
    }
}

/// Events kept by a `Reporter::held` reporter.
#[derive(Clone, Default)]
pub struct Held(Arc<Mutex<Vec<Event>>>);

impl Held {
    /// Emits the kept events, in order, through `to`.
    pub fn replay(&self, to: &Reporter) {
        let events = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for event in events {
            to.emit(event);
        }
    }
}

impl Sink for Held {
    fn event(&mut self, _ts: SystemTime, event: &Event) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}
