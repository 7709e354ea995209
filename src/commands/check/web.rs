//! The public side, as a browser meets it: HTTPS on the controller's public address with the
//! domain as SNI (a certificate valid for the domain, verified against the system's roots, or
//! those of `SSL_CERT_FILE` instead, and how long it has left), Rocket.Chat's `/api/info` through
//! HAProxy and Traefik, and :80 redirecting to https. The address is the inventory's, which
//! the DNS check compares with the record. The requests are the `https` adapter's, which `up`
//! waits with too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Finding;
use crate::config::Settings;
use crate::https::{Response, Site, TIMEOUT, Trust};

const REPAIR_TLS: &str = "jeeves up --only tls";

pub(super) async fn check(settings: &Settings, ip: &str) -> Vec<Finding> {
    let site = Site {
        ip,
        domain: &settings.domain,
        timeout: TIMEOUT,
    };
    let mut out = Vec::new();
    match site.https_get("/api/info", Trust::Roots).await {
        Err(e) => out.push(Finding::fail(
            "https/certificate",
            format!(
                "no verified HTTPS from {ip}:443 for {}: {e:#}",
                settings.domain
            ),
            REPAIR_TLS,
        )),
        Ok(answer) => {
            out.push(certificate(settings, answer.not_after));
            out.push(api_info(&answer.response));
        }
    }
    out.push(match site.http_get("/").await {
        Ok(response) => redirect(settings, &response),
        Err(e) => Finding::fail(
            "http/redirect",
            format!("no answer on {ip}:80: {e:#}"),
            REPAIR_TLS,
        ),
    });
    out
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The served certificate's remaining life against `check.cert_min_remaining` (fail) and
/// `tls.renew_before` (warn: the next `up` renews it).
fn certificate(settings: &Settings, not_after: i64) -> Finding {
    let left = not_after - now();
    let days = |secs: u64| secs as f64 / 86_400.0;
    let until = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + Duration::from_secs(not_after.max(0) as u64),
    );
    let said = format!(
        "valid for {}, {:.1} days left (until {until})",
        settings.domain,
        left as f64 / 86_400.0
    );
    let min = settings.check.cert_min_remaining.as_secs();
    let renew = settings.tls.renew_before.as_secs();
    if left < min as i64 {
        Finding::fail(
            "https/certificate",
            format!(
                "{said}: under check.cert_min_remaining ({:.0} days)",
                days(min)
            ),
            "jeeves up --only tls (renews a certificate with less than tls.renew_before left)",
        )
    } else if left < renew as i64 {
        Finding::warn(
            "https/certificate",
            format!(
                "{said}: renewal due (tls.renew_before {:.0} days)",
                days(renew)
            ),
            REPAIR_TLS,
        )
    } else {
        Finding::ok("https/certificate", said)
    }
}

/// `/api/info` answers 200 with `"success": true` (Rocket.Chat's `API.v1.success`).
fn api_info(response: &Response) -> Finding {
    match response.rocketchat() {
        Ok(version) => Finding::ok(
            "https/api-info",
            format!("Rocket.Chat {version} answers /api/info"),
        ),
        Err(what) => Finding::fail(
            "https/api-info",
            format!("GET /api/info answered {what}"),
            "see the pods/* and helm/* checks; then jeeves up --only deploy",
        ),
    }
}

/// GET / on :80 with the domain as Host: HAProxy's `301` to `https://<domain>/`.
fn redirect(settings: &Settings, response: &Response) -> Finding {
    let location = response.header("location").unwrap_or_default();
    let want = format!("https://{}/", settings.domain);
    if response.status == 301 && location == want {
        Finding::ok("http/redirect", format!(":80 redirects to {want}"))
    } else {
        Finding::fail(
            "http/redirect",
            format!(
                ":80 answered HTTP {} (location `{location}`), not 301 to {want}",
                response.status
            ),
            REPAIR_TLS,
        )
    }
}
