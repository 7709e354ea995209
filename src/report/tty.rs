use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::event::{CheckStatus, Event, Level};
use super::reporter::Sink;
use super::summary::{Summary, format_ms};
use crate::stage_name::StageName;
use crate::state::StageResult;

/// Progress bars on a terminal: a line per stage with a spinner and elapsed time, a sub-line
/// per host for multi-host stages, then the summary table.
pub(super) struct TtySink {
    multi: MultiProgress,
    stages: HashMap<StageName, ProgressBar>,
    hosts: HashMap<(StageName, String), ProgressBar>,
    verbose: bool,
    summary: Summary,
}

impl TtySink {
    pub fn new(verbose: bool) -> TtySink {
        TtySink {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            stages: HashMap::new(),
            hosts: HashMap::new(),
            verbose,
            summary: Summary::default(),
        }
    }

    /// A permanent line above the live bars, written at once (`MultiProgress::println` queues
    /// lines behind its rate limiter and drops them when no bar is drawn again).
    fn line(&self, text: impl AsRef<str>) {
        self.multi.suspend(|| eprintln!("{}", text.as_ref()));
    }

    fn stage_style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner:.cyan} {prefix:<10.bold} {wide_msg} {elapsed:>4}")
            .expect("valid template")
    }

    fn host_style() -> ProgressStyle {
        ProgressStyle::with_template("    {prefix:<24.dim} {wide_msg}").expect("valid template")
    }
}

impl Sink for TtySink {
    fn suspend(&self, f: &mut dyn FnMut()) {
        self.multi.suspend(f)
    }

    fn event(&mut self, _: SystemTime, event: &Event) {
        match event {
            Event::RunStarted { .. } => {}
            Event::StageStarted { stage } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(Self::stage_style());
                bar.set_prefix(stage.as_str());
                bar.set_message("probing");
                bar.enable_steady_tick(Duration::from_millis(120));
                self.stages.insert(*stage, bar);
            }
            Event::StagePlanned { stage, changes } => {
                if let Some(bar) = self.stages.get(stage) {
                    if changes.is_empty() {
                        bar.set_message("unchanged");
                    } else {
                        bar.set_message(format!("{} change(s)", changes.len()));
                        for c in changes {
                            self.line(format!("  {stage}: {} {}", c.action, c.target));
                        }
                    }
                }
            }
            Event::HostProgress {
                stage,
                host,
                message,
            } => {
                let key = (*stage, host.clone());
                if !self.hosts.contains_key(&key) {
                    let anchor = self.stages.get(stage).cloned();
                    let bar = match anchor {
                        Some(a) => self.multi.insert_after(&a, ProgressBar::new_spinner()),
                        None => self.multi.add(ProgressBar::new_spinner()),
                    };
                    bar.set_style(Self::host_style());
                    bar.set_prefix(host.clone());
                    self.hosts.insert(key.clone(), bar);
                }
                if let Some(bar) = self.hosts.get(&key) {
                    bar.set_message(message.clone());
                }
            }
            Event::SiteAnswered {
                stage,
                url,
                waited_ms,
            } => {
                self.summary.site(url, *waited_ms);
                self.line(format!(
                    "  {stage}: {}",
                    super::plain::site_answered(url, *waited_ms)
                ));
            }
            Event::Log {
                stage,
                level,
                message,
            } => match level {
                Level::Output if !self.verbose => {}
                Level::Info => match stage.and_then(|s| self.stages.get(&s)) {
                    Some(bar) => bar.set_message(message.clone()),
                    None => {
                        self.line(message);
                    }
                },
                _ => {
                    let prefix = stage.map(|s| format!("{s}: ")).unwrap_or_default();
                    self.line(format!("{prefix}{message}"));
                }
            },
            Event::StageFinished {
                stage,
                result,
                duration_ms,
                error,
            } => {
                self.summary.add(*stage, *result, *duration_ms);
                let mark = match result {
                    StageResult::Changed => "✓ changed",
                    StageResult::Unchanged => "✓ unchanged",
                    StageResult::Failed => "✗ failed",
                    StageResult::Skipped => "- skipped",
                };
                let hosts: Vec<_> = self
                    .hosts
                    .keys()
                    .filter(|(s, _)| s == stage)
                    .cloned()
                    .collect();
                for key in hosts {
                    if let Some(bar) = self.hosts.remove(&key) {
                        bar.finish_and_clear();
                    }
                }
                if let Some(bar) = self.stages.remove(stage) {
                    bar.finish_and_clear();
                }
                // Finished stages become permanent lines above the live bars.
                let text = match error {
                    Some(e) => format!(
                        "{mark} ({}): {}",
                        format_ms(*duration_ms),
                        e.lines().next().unwrap_or_default()
                    ),
                    None => format!("{mark} ({})", format_ms(*duration_ms)),
                };
                self.line(format!("  {:<10} {text}", stage.as_str()));
            }
            Event::CheckFinished {
                check,
                status,
                message,
                repair,
                ..
            } => {
                self.summary.add_check(*status);
                let mark = match status {
                    CheckStatus::Ok => "✓",
                    CheckStatus::Warn => "!",
                    CheckStatus::Fail => "✗",
                };
                self.line(format!("  {mark} {check:<28} {message}"));
                if let Some(r) = repair {
                    self.line(format!("    {:<28} → {r}", ""));
                }
            }
            Event::RunFinished { .. } => {
                eprintln!();
                eprint!("{}", self.summary.render());
            }
        }
    }
}
