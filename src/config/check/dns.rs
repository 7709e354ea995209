//! `[dns]`: the Route 53 hosted zone (empty: the zone whose name is the longest suffix of the
//! domain), the record's TTL, and how long to wait for Route 53 to report the change in sync.

use super::Checker;
use crate::config::{DnsSettings, pipeline, validate};

pub(super) fn check(c: &mut Checker, raw: pipeline::Dns) -> Option<DnsSettings> {
    let zone_id = if raw.zone_id.is_empty() {
        Some(None)
    } else {
        c.check("dns.zone_id", validate::zone_id(&raw.zone_id))
            .map(Some)
    };
    let ttl = c.check("dns.ttl", validate::count(raw.ttl, 1, 604_800));
    let wait_timeout = c.check(
        "dns.wait_timeout",
        validate::nonzero_duration(&raw.wait_timeout),
    );
    Some(DnsSettings {
        zone_id: zone_id?,
        ttl: ttl?,
        wait_timeout: wait_timeout?,
    })
}
