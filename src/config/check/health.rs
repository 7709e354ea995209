//! `[check]`: the thresholds `jeeves check` judges the live stack by.

use std::time::Duration;

use super::Checker;
use crate::config::{CheckSettings, pipeline, validate};

/// The kubelet's longest back-off between restarts of a crashing container (kubernetes/kubernetes
/// `MaxContainerBackOff`, 300 s: `pkg/kubelet/kubelet.go`, on master
/// `pkg/kubelet/apis/config/v1beta1/defaults.go`). A crash-looping container is waiting in that
/// back-off or running since its last crash: a window at least this long always catches it.
const MAX_CONTAINER_BACKOFF: Duration = Duration::from_secs(300);

pub(super) fn check(c: &mut Checker, raw: pipeline::Check) -> Option<CheckSettings> {
    if raw.max_restarts.is_some() {
        c.check::<()>(
            "check.max_restarts",
            Err("is replaced by check.restart_window: a lifetime restart count grows by one at every stop/start, so pods are judged by their recent crashes instead (README, \"Health: `jeeves check`\"); remove the key".into()),
        );
    }
    let restart_window = c.check(
        "check.restart_window",
        validate::duration(&raw.restart_window).and_then(|d| {
            if d < MAX_CONTAINER_BACKOFF {
                Err(format!(
                    "`{}` is shorter than 5m, the kubelet's longest back-off between restarts: a crash-looping container could pass between two crashes",
                    raw.restart_window
                ))
            } else {
                Ok(d)
            }
        }),
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
        restart_window: restart_window?,
        max_disk_use: max_disk_use?,
        cert_min_remaining: cert_min_remaining?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass() {
        let mut c = Checker::for_test();
        let s = check(&mut c, pipeline::Check::default()).unwrap();
        assert_eq!(c.keys(), Vec::<&str>::new());
        assert_eq!(s.restart_window, Duration::from_secs(15 * 60));
    }

    #[test]
    fn a_window_shorter_than_the_longest_back_off_and_the_old_key_are_refused() {
        let mut c = Checker::for_test();
        let raw = pipeline::Check {
            restart_window: "4m".into(),
            max_restarts: Some(5.into()),
            ..pipeline::Check::default()
        };
        assert!(check(&mut c, raw).is_none());
        assert_eq!(c.keys(), ["check.max_restarts", "check.restart_window"]);
        let mut c = Checker::for_test();
        let raw = pipeline::Check {
            restart_window: "5m".into(),
            ..pipeline::Check::default()
        };
        assert!(check(&mut c, raw).is_some());
    }
}
