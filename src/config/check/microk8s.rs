//! `[microk8s]`: the snap channel, addons, join-token lifetime, the timeouts of readiness and
//! drains, and how many workers are bootstrapped at once.

use super::Checker;
use crate::config::{Microk8sSettings, pipeline, validate};

pub(super) fn check(c: &mut Checker, raw: pipeline::Microk8s) -> Option<Microk8sSettings> {
    let channel = c.check("microk8s.channel", validate::snap_channel(&raw.channel));
    let addons: Vec<String> = raw
        .addons
        .iter()
        .enumerate()
        .filter_map(|(i, a)| c.check(&format!("microk8s.addons[{i}]"), validate::addon(a)))
        .collect();
    let token_ttl = c.check(
        "microk8s.token_ttl",
        validate::nonzero_duration(&raw.token_ttl),
    );
    let ready_timeout = c.check(
        "microk8s.ready_timeout",
        validate::nonzero_duration(&raw.ready_timeout),
    );
    let drain_timeout = c.check(
        "microk8s.drain_timeout",
        validate::nonzero_duration(&raw.drain_timeout),
    );
    let concurrency = c.check(
        "microk8s.concurrency",
        validate::count(raw.concurrency, 1, 256),
    );
    Some(Microk8sSettings {
        channel: channel?,
        addons,
        token_ttl: token_ttl?,
        ready_timeout: ready_timeout?,
        drain_timeout: drain_timeout?,
        concurrency: concurrency?,
    })
}
