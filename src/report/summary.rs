use std::fmt::Write;

use super::event::CheckStatus;
use crate::stage_name::StageName;
use crate::state::StageResult;

/// The end-of-run table: stage, result, time.
#[derive(Debug, Default)]
pub(super) struct Summary {
    rows: Vec<(StageName, StageResult, u64)>,
    /// `jeeves check`: how many checks were ok, warned, failed.
    checks: [usize; 3],
    /// The site's answer after the run's wait for it (`Event::SiteAnswered`).
    site: Option<String>,
}

impl Summary {
    pub fn add(&mut self, stage: StageName, result: StageResult, duration_ms: u64) {
        self.rows.push((stage, result, duration_ms));
    }

    pub fn site(&mut self, url: &str, waited_ms: u64) {
        self.site = Some(super::plain::site_answered(url, waited_ms));
    }

    pub fn add_check(&mut self, status: CheckStatus) {
        self.checks[status as usize] += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.checks.iter().any(|n| *n > 0) {
            let [ok, warn, fail] = self.checks;
            let _ = writeln!(
                out,
                "checks: {ok} ok, {warn} warning{}, {fail} failed",
                if warn == 1 { "" } else { "s" }
            );
        }
        if self.rows.is_empty() {
            return out;
        }
        let _ = writeln!(out, "{:<10} {:<10} {:>8}", "STAGE", "RESULT", "TIME");
        for (stage, result, ms) in &self.rows {
            let _ = writeln!(
                out,
                "{:<10} {:<10} {:>8}",
                stage.as_str(),
                result.as_str(),
                format_ms(*ms)
            );
        }
        if let Some(site) = &self.site {
            let _ = writeln!(out, "{site}");
        }
        out
    }
}

pub(super) fn format_ms(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 120_000 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
