//! `[tools]`: the terraform, helm and kubectl programs to run. Whether they are installed is
//! found by the stage that runs one (`process::find_tool`) and by `doctor`.

use super::Checker;
use crate::config::Tools;

pub(super) fn check(c: &mut Checker, raw: Tools) -> Option<Tools> {
    for (key, tool) in [
        ("tools.terraform", &raw.terraform),
        ("tools.helm", &raw.helm),
        ("tools.kubectl", &raw.kubectl),
    ] {
        if tool.trim().is_empty() {
            c.check::<()>(key, Err("is empty".into()));
        }
    }
    Some(raw)
}
