//! Terraform's machine-readable UI (`-json` of apply and destroy), as `Progress`.

use serde::Deserialize;

use super::Progress;
use crate::process::Said;

/// One line of terraform's machine-readable UI (`-json`); only the fields Jeeves reads.
#[derive(Debug, Deserialize)]
pub(super) struct UiLine {
    #[serde(rename = "@level", default)]
    level: String,
    #[serde(rename = "@message", default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    hook: Option<Hook>,
    #[serde(default)]
    diagnostic: Option<Diagnostic>,
}

#[derive(Debug, Deserialize)]
struct Hook {
    resource: Option<HookResource>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    elapsed_seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct HookResource {
    addr: String,
}

#[derive(Debug, Deserialize)]
struct Diagnostic {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    detail: String,
}

impl UiLine {
    /// As progress; an error diagnostic is also kept for the failure's message.
    pub(super) fn report(self, on: &mut impl FnMut(Progress<'_>), errors: &mut Vec<String>) {
        let addr = self
            .hook
            .as_ref()
            .and_then(|h| h.resource.as_ref())
            .map(|r| r.addr.clone());
        let hook = self.hook.as_ref();
        let action = hook.map(|h| h.action.as_str()).unwrap_or_default();
        let seconds = hook.and_then(|h| h.elapsed_seconds).unwrap_or_default();
        match (self.kind.as_str(), addr.as_deref()) {
            ("apply_start", Some(address)) => on(Progress::Started { address, action }),
            ("apply_progress", Some(address)) => on(Progress::Working { address, seconds }),
            ("apply_complete", Some(address)) => on(Progress::Done {
                address,
                action,
                seconds,
            }),
            ("apply_errored", Some(address)) => on(Progress::Failed { address }),
            ("diagnostic", _) => {
                let d = self.diagnostic.as_ref();
                let summary = d.map(|d| d.summary.as_str()).unwrap_or(&self.message);
                let text = match d.map(|d| d.detail.as_str()).filter(|d| !d.is_empty()) {
                    Some(detail) => format!("{summary}: {detail}"),
                    None => summary.to_string(),
                };
                if self.level == "error" {
                    errors.push(text.clone());
                }
                let warn = self.level == "error" || self.level == "warn";
                on(Progress::Diagnostic { warn, text: &text });
            }
            ("change_summary", _) => on(Progress::Summary(&self.message)),
            _ => on(Progress::Said(Said::Stdout(&self.message))),
        }
    }
}
