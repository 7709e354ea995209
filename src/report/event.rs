use serde::Serialize;

use crate::stage_name::StageName;
use crate::state::StageResult;

/// One thing a change would do, e.g. `create terraform_data.controller` on `terraform`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What is changed: a host, a resource address, a file.
    pub target: String,
    /// What happens to it: `create`, `update`, `join`, `reload`, …
    pub action: String,
}

impl Change {
    pub fn new(action: impl Into<String>, target: impl Into<String>) -> Change {
        Change {
            action: action.into(),
            target: target.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Tool and remote command output, line by line (shown with --verbose).
    Output,
    Info,
    Warn,
}

/// A `jeeves check` verdict: `warn` leaves the exit code 0, `fail` makes it 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// The events of a run. In `--output json` each is one line: `{"ts": …, "event": "<name>", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        command: String,
        pipeline: String,
        stages: Vec<StageName>,
    },
    StageStarted {
        stage: StageName,
    },
    /// The probe's verdict: what apply would change (empty: unchanged).
    StagePlanned {
        stage: StageName,
        changes: Vec<Change>,
    },
    HostProgress {
        stage: StageName,
        host: String,
        message: String,
    },
    Log {
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: Option<StageName>,
        level: Level,
        message: String,
    },
    /// The site answered through HAProxy at the end of a stage that changed what it serves
    /// (`up`'s bounded wait for `/api/info` after a deploy); shown in the summary too.
    SiteAnswered {
        stage: StageName,
        url: String,
        /// How long the stage waited for the answer.
        waited_ms: u64,
    },
    StageFinished {
        stage: StageName,
        result: StageResult,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// One health check of `jeeves check`: what was looked at, what was found, and for a
    /// warning or failure what to run to repair it.
    CheckFinished {
        /// `group/subject`, e.g. `nodes/worker-1`, `tls/certificate`.
        check: String,
        status: CheckStatus,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        repair: Option<String>,
        duration_ms: u64,
    },
    RunFinished {
        /// `success` or `failed`.
        result: String,
        duration_ms: u64,
        exit_code: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl Event {
    /// Every free-text field, for redaction.
    pub(super) fn texts_mut(&mut self) -> Vec<&mut String> {
        match self {
            Event::RunStarted { command, .. } => vec![command],
            Event::StageStarted { .. } => vec![],
            Event::StagePlanned { changes, .. } => changes
                .iter_mut()
                .flat_map(|c| [&mut c.target, &mut c.action])
                .collect(),
            Event::HostProgress { host, message, .. } => vec![host, message],
            Event::SiteAnswered { url, .. } => vec![url],
            Event::Log { message, .. } => vec![message],
            Event::CheckFinished {
                check,
                message,
                repair,
                ..
            } => [check, message]
                .into_iter()
                .chain(repair.iter_mut())
                .collect(),
            Event::StageFinished { error, .. } | Event::RunFinished { error, .. } => {
                error.iter_mut().collect()
            }
        }
    }
}
