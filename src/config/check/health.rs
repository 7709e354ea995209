//! `[check]`: the thresholds `jeeves check` judges the live stack by.

use super::Checker;
use crate::config::{CheckSettings, pipeline, validate};

pub(super) fn check(c: &mut Checker, raw: pipeline::Check) -> Option<CheckSettings> {
    let max_restarts = c.check(
        "check.max_restarts",
        validate::count(raw.max_restarts, 0, 1_000_000),
    );
    let max_disk_use = c.check(
        "check.max_disk_use",
        validate::count(raw.max_disk_use, 1, 100),
    );
    let cert_min_remaining = c.check(
        "check.cert_min_remaining",
        validate::duration(&raw.cert_min_remaining),
    );
    Some(CheckSettings {
        max_restarts: max_restarts?,
        max_disk_use: max_disk_use?,
        cert_min_remaining: cert_min_remaining?,
    })
}
