use std::io::Write;
use std::time::SystemTime;

use super::event::{Event, Level};
use super::reporter::Sink;
use super::summary::{Summary, format_ms};

/// Timestamped lines, no ANSI codes: what a Jenkins console shows.
pub(super) struct PlainSink {
    out: Box<dyn Write + Send>,
    verbose: bool,
    summary: Summary,
}

impl PlainSink {
    pub fn stdout(verbose: bool) -> PlainSink {
        PlainSink {
            out: Box::new(std::io::stdout()),
            verbose,
            summary: Summary::default(),
        }
    }
}

/// One event as a line without timestamp, or `None` when the event has no line of its own.
pub(super) fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::RunStarted {
            command,
            pipeline,
            stages,
        } if stages.is_empty() => format!("jeeves {command}: pipeline {pipeline}"),
        Event::RunStarted {
            command,
            pipeline,
            stages,
        } => {
            let names: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
            format!(
                "jeeves {command}: pipeline {pipeline}, stages {}",
                names.join(", ")
            )
        }
        Event::CheckFinished {
            check,
            status,
            message,
            repair,
            ..
        } => {
            let mut s = format!("[check] {:<4} {check}: {message}", status.as_str());
            if let Some(r) = repair {
                s.push_str(&format!("\n[check]      repair: {r}"));
            }
            s
        }
        Event::StageStarted { stage } => format!("[{stage}] started"),
        Event::StagePlanned { stage, changes } if changes.is_empty() => {
            format!("[{stage}] plan: unchanged")
        }
        Event::StagePlanned { stage, changes } => {
            let mut s = format!(
                "[{stage}] plan: {} change{}",
                changes.len(),
                if changes.len() == 1 { "" } else { "s" }
            );
            for c in changes {
                s.push_str(&format!("\n[{stage}]   {} {}", c.action, c.target));
            }
            s
        }
        Event::HostProgress {
            stage,
            host,
            message,
        } => format!("[{stage}] {host}: {message}"),
        Event::SiteAnswered {
            stage,
            url,
            waited_ms,
        } => format!("[{stage}] {}", site_answered(url, *waited_ms)),
        Event::Log {
            stage: Some(stage),
            message,
            ..
        } => format!("[{stage}] {message}"),
        Event::Log {
            stage: None,
            message,
            ..
        } => message.clone(),
        Event::StageFinished {
            stage,
            result,
            duration_ms,
            error,
        } => match error {
            Some(e) => format!(
                "[{stage}] {} after {}: {e}",
                result.as_str(),
                format_ms(*duration_ms)
            ),
            None => format!(
                "[{stage}] {} ({})",
                result.as_str(),
                format_ms(*duration_ms)
            ),
        },
        Event::RunFinished {
            result,
            duration_ms,
            exit_code,
            ..
        } => {
            format!(
                "run {result} in {} (exit {exit_code})",
                format_ms(*duration_ms)
            )
        }
    })
}

/// The site's answer after a stage's wait, as the progress and the summary say it.
pub(super) fn site_answered(url: &str, waited_ms: u64) -> String {
    format!(
        "{url} answered 200 through HAProxy (waited {})",
        format_ms(waited_ms)
    )
}

impl Sink for PlainSink {
    fn event(&mut self, ts: SystemTime, event: &Event) {
        if let Event::Log {
            level: Level::Output,
            ..
        } = event
            && !self.verbose
        {
            return;
        }
        if let Event::StageFinished {
            stage,
            result,
            duration_ms,
            ..
        } = event
        {
            self.summary.add(*stage, *result, *duration_ms);
        }
        if let Event::CheckFinished { status, .. } = event {
            self.summary.add_check(*status);
        }
        if let Event::SiteAnswered { url, waited_ms, .. } = event {
            self.summary.site(url, *waited_ms);
        }
        let ts = humantime::format_rfc3339_seconds(ts);
        if let Some(text) = describe(event) {
            for line in text.lines() {
                let _ = writeln!(self.out, "{ts} {line}");
            }
        }
        if let Event::RunFinished { .. } = event {
            let _ = write!(self.out, "{}", self.summary.render());
        }
        let _ = self.out.flush();
    }
}
