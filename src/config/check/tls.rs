//! `[tls]`: the ACME account's e-mail, the ACME server, staging, and when to renew.
//! (`tls.domain` is `Settings::domain`, checked by `finish`.)

use super::Checker;
use crate::config::{TlsSettings, pipeline, validate};

pub(super) fn check(c: &mut Checker, raw: pipeline::Tls) -> Option<TlsSettings> {
    let email = if c.may_skip(&raw.email) {
        Some(String::new())
    } else {
        c.check("tls.email", validate::email(&raw.email))
    };
    // Empty: Let's Encrypt (production, or staging with `staging`).
    let acme_server = if raw.acme_server.is_empty() {
        Some(None)
    } else {
        c.check("tls.acme_server", validate::https_url(&raw.acme_server))
            .map(Some)
    };
    let renew_before = c.check("tls.renew_before", validate::duration(&raw.renew_before));
    Some(TlsSettings {
        email: email?,
        acme_server: acme_server?,
        staging: raw.staging,
        renew_before: renew_before?,
    })
}
