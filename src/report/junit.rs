use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event as Xml};

use super::event::{CheckStatus, Event};
use super::reporter::Sink;
use crate::stage_name::StageName;
use crate::state::StageResult;

/// A testcase's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// One testcase: a stage of `up`/`plan`, or a check of `jeeves check`.
struct Case {
    name: String,
    outcome: Outcome,
    ms: u64,
    /// The failure's text, or what a passed case says in `system-out`.
    text: String,
}

/// JUnit XML: one testcase per stage (or per check), written when the run finishes.
pub(super) struct JunitSink {
    path: PathBuf,
    pipeline: String,
    cases: Vec<Case>,
    /// The stages the run selected (from `run_started`): only they become testcases, so a
    /// Jenkins build that runs one stage per step reports each stage once, not once per step
    /// with the others skipped. A selected stage skipped after a failure is still reported.
    selected: Option<Vec<StageName>>,
}

impl JunitSink {
    pub fn new(path: PathBuf, pipeline: String) -> JunitSink {
        JunitSink {
            path,
            pipeline,
            cases: Vec::new(),
            selected: None,
        }
    }

    fn xml(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        let failures = self
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .count();
        let skipped = self
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Skipped)
            .count();
        let total_ms: u64 = self.cases.iter().map(|c| c.ms).sum();
        let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
        w.write_event(Xml::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let mut suites = BytesStart::new("testsuites");
        suites.push_attribute(("name", "jeeves"));
        w.write_event(Xml::Start(suites))?;
        let mut suite = BytesStart::new("testsuite");
        let name = format!("jeeves.{}", self.pipeline);
        suite.push_attribute(("name", name.as_str()));
        suite.push_attribute(("tests", self.cases.len().to_string().as_str()));
        suite.push_attribute(("failures", failures.to_string().as_str()));
        suite.push_attribute(("errors", "0"));
        suite.push_attribute(("skipped", skipped.to_string().as_str()));
        suite.push_attribute(("time", secs(total_ms).as_str()));
        w.write_event(Xml::Start(suite))?;
        for c in &self.cases {
            let mut case = BytesStart::new("testcase");
            case.push_attribute(("classname", name.as_str()));
            case.push_attribute(("name", c.name.as_str()));
            case.push_attribute(("time", secs(c.ms).as_str()));
            w.write_event(Xml::Start(case))?;
            match c.outcome {
                Outcome::Failed => {
                    let first_line = c.text.lines().next().unwrap_or_default().to_string();
                    let mut f = BytesStart::new("failure");
                    f.push_attribute(("message", first_line.as_str()));
                    w.write_event(Xml::Start(f))?;
                    w.write_event(Xml::Text(BytesText::new(&c.text)))?;
                    w.write_event(Xml::End(BytesEnd::new("failure")))?;
                }
                Outcome::Skipped => {
                    w.write_event(Xml::Empty(BytesStart::new("skipped")))?;
                }
                Outcome::Passed => {
                    w.write_event(Xml::Start(BytesStart::new("system-out")))?;
                    w.write_event(Xml::Text(BytesText::new(&c.text)))?;
                    w.write_event(Xml::End(BytesEnd::new("system-out")))?;
                }
            }
            w.write_event(Xml::End(BytesEnd::new("testcase")))?;
        }
        w.write_event(Xml::End(BytesEnd::new("testsuite")))?;
        w.write_event(Xml::End(BytesEnd::new("testsuites")))?;
        let mut bytes = w.into_inner();
        bytes.push(b'\n');
        Ok(bytes)
    }
}

impl Sink for JunitSink {
    fn event(&mut self, _: SystemTime, event: &Event) {
        match event {
            Event::RunStarted { stages, .. } => self.selected = Some(stages.clone()),
            Event::StageFinished {
                stage,
                result,
                duration_ms,
                error,
            } if self.selected.as_ref().is_none_or(|s| s.contains(stage)) => {
                self.cases.push(Case {
                    name: stage.to_string(),
                    outcome: match result {
                        StageResult::Failed => Outcome::Failed,
                        StageResult::Skipped => Outcome::Skipped,
                        StageResult::Changed | StageResult::Unchanged => Outcome::Passed,
                    },
                    ms: *duration_ms,
                    text: match result {
                        StageResult::Failed => error.clone().unwrap_or_else(|| "failed".into()),
                        r => format!("result: {}", r.as_str()),
                    },
                })
            }
            // A warning passes (Jenkins would otherwise fail the build on it); its text says so.
            Event::CheckFinished {
                check,
                status,
                message,
                repair,
                duration_ms,
            } => self.cases.push(Case {
                name: check.clone(),
                outcome: if *status == CheckStatus::Fail {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                },
                ms: *duration_ms,
                text: match repair {
                    Some(r) => format!("{}: {message}\nrepair: {r}", status.as_str()),
                    None => format!("{}: {message}", status.as_str()),
                },
            }),
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<()> {
        let xml = self.xml()?;
        std::fs::write(&self.path, xml)
            .with_context(|| format!("cannot write the JUnit report {}", self.path.display()))
    }
}
