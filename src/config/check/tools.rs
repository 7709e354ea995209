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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_must_be_named() {
        let mut c = Checker::for_test();
        assert!(check(&mut c, Tools::default()).is_some());
        assert_eq!(c.keys(), Vec::<&str>::new());
        let raw = Tools {
            terraform: " ".into(),
            helm: "/opt/helm/bin/helm".into(),
            kubectl: String::new(),
        };
        check(&mut c, raw);
        assert_eq!(c.keys(), ["tools.terraform", "tools.kubectl"]);
    }
}
