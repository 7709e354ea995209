use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event as Xml};

use super::event::Event;
use super::reporter::Sink;
use crate::stage_name::StageName;
use crate::state::StageResult;

/// JUnit XML: one testcase per stage, written when the run finishes.
pub(super) struct JunitSink {
    path: PathBuf,
    pipeline: String,
    cases: Vec<(StageName, StageResult, u64, Option<String>)>,
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
            .filter(|c| c.1 == StageResult::Failed)
            .count();
        let skipped = self
            .cases
            .iter()
            .filter(|c| c.1 == StageResult::Skipped)
            .count();
        let total_ms: u64 = self.cases.iter().map(|c| c.2).sum();
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
        for (stage, result, ms, error) in &self.cases {
            let mut case = BytesStart::new("testcase");
            case.push_attribute(("classname", name.as_str()));
            case.push_attribute(("name", stage.as_str()));
            case.push_attribute(("time", secs(*ms).as_str()));
            w.write_event(Xml::Start(case))?;
            match result {
                StageResult::Failed => {
                    let message = error.clone().unwrap_or_else(|| "failed".into());
                    let first_line = message.lines().next().unwrap_or_default().to_string();
                    let mut f = BytesStart::new("failure");
                    f.push_attribute(("message", first_line.as_str()));
                    w.write_event(Xml::Start(f))?;
                    w.write_event(Xml::Text(BytesText::new(&message)))?;
                    w.write_event(Xml::End(BytesEnd::new("failure")))?;
                }
                StageResult::Skipped => {
                    w.write_event(Xml::Empty(BytesStart::new("skipped")))?;
                }
                StageResult::Changed | StageResult::Unchanged => {
                    let out = format!("result: {}", result.as_str());
                    w.write_event(Xml::Start(BytesStart::new("system-out")))?;
                    w.write_event(Xml::Text(BytesText::new(&out)))?;
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
                self.cases
                    .push((*stage, *result, *duration_ms, error.clone()));
            }
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<()> {
        let xml = self.xml()?;
        std::fs::write(&self.path, xml)
            .with_context(|| format!("cannot write the JUnit report {}", self.path.display()))
    }
}
