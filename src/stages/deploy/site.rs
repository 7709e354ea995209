//! The deploy's last step: `https://<domain>/api/info` answers 200 through HAProxy, so that `up`
//! ends with the site serving. HAProxy forwards to Traefik's NodePort only once its health check
//! has passed `rise 2` times, `inter 5s` apart (templates/haproxy.cfg.hbs). A NodePort that was
//! closed when HAProxy started, as on a first deploy, stays DOWN until then, and the site answers
//! 503. A (re)started HAProxy counts its servers UP until a check fails (haproxy `src/server.c`,
//! `srv_settings_cpy`: "health: up, but will fall down at first failure"), so a tls run needs
//! no such wait. The probe asks once: a converged run that finds the site answering changes
//! nothing and waits for nothing; a run where nothing serves :443 (the tls stage has not run:
//! `up --only deploy` on a partly built stack) waits for nothing either.
//!
//! The requests are `check`'s (`crate::https`), to the controller's address with the domain as
//! SNI and Host, whatever DNS says, and accept any certificate: the question is whether the site
//! answers; `check` judges the certificate.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::config::Settings;
use crate::https::{self, Site, TIMEOUT, Trust};
use crate::report::{Change, Event};
use crate::stage::StageContext;

/// Between two requests while waiting: HAProxy's own checks are 5 s apart.
const POLL: Duration = Duration::from_millis(500);

/// The site as the probe found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// `/api/info` answered 200 with `"success": true`.
    Answers,
    /// Something else answered, or nothing in time: what.
    Not(String),
    /// Nothing listens on the controller's :443: no HAProxy yet.
    NoHttps,
}

fn url(settings: &Settings) -> String {
    format!("https://{}/api/info", settings.domain)
}

fn ask<'a>(settings: &'a Settings, ip: &'a str, timeout: Duration) -> Site<'a> {
    Site {
        ip,
        domain: &settings.domain,
        timeout,
    }
}

/// One request, as the probe asks it.
pub async fn probe(cx: &StageContext<'_>) -> Result<Found> {
    let ip = &cx.state.inventory.controller()?.public_ip;
    Ok(
        match ask(cx.settings, ip, TIMEOUT)
            .https_get("/api/info", Trust::Any)
            .await
        {
            Ok(answer) => match answer.response.rocketchat() {
                Ok(_) => Found::Answers,
                Err(what) => Found::Not(what),
            },
            Err(e) if https::refused(&e) => Found::NoHttps,
            Err(e) => Found::Not(format!("{e:#}")),
        },
    )
}

/// Whether `apply` waits for the site, and the plan's line for it: after changes (`changed`),
/// or when it does not answer now. `None`: no wait (it answers and nothing changes, or there is
/// no HAProxy to answer).
pub fn plan(settings: &Settings, found: &Found, changed: bool) -> Option<Change> {
    let bound = humantime::format_duration(settings.haproxy.ready_timeout);
    let now = match found {
        Found::NoHttps => return None,
        Found::Answers if !changed => return None,
        Found::Answers => String::new(),
        Found::Not(what) => format!("; now: {what}"),
    };
    Some(Change::new(
        "wait",
        format!(
            "{} answers 200 through HAProxy (at most {bound}, haproxy.ready_timeout{now})",
            url(settings)
        ),
    ))
}

/// Asks until `/api/info` answers 200, at most `haproxy.ready_timeout`; says how long it took.
pub async fn wait(cx: &StageContext<'_>) -> Result<()> {
    let ip = &cx.state.inventory.controller()?.public_ip;
    let started = Instant::now();
    let bound = cx.settings.haproxy.ready_timeout;
    let deadline = started + bound;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = ask(cx.settings, ip, left.clamp(Duration::from_secs(1), TIMEOUT))
            .https_get("/api/info", Trust::Any)
            .await;
        let what = match attempt.map(|a| a.response.rocketchat()) {
            Ok(Ok(_)) => {
                cx.reporter.emit(Event::SiteAnswered {
                    stage: cx.stage,
                    url: url(cx.settings),
                    waited_ms: started.elapsed().as_millis() as u64,
                });
                return Ok(());
            }
            Ok(Err(what)) => what,
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() + POLL >= deadline {
            bail!(
                "{} did not answer 200 through HAProxy within {} (haproxy.ready_timeout); the \
                 last answer: {what}. `jeeves check` shows the pods and HAProxy",
                url(cx.settings),
                humantime::format_duration(bound)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_after_changes_or_while_the_site_does_not_answer() {
        let settings = Settings::load(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs([("MONGO_URI", "m")]),
        )
        .unwrap();
        assert_eq!(plan(&settings, &Found::Answers, false), None);
        assert_eq!(plan(&settings, &Found::NoHttps, true), None);
        let after = plan(&settings, &Found::Answers, true).unwrap();
        assert_eq!(after.action, "wait");
        assert_eq!(
            after.target,
            "https://chat.jeeves.test/api/info answers 200 through HAProxy (at most 2m, \
             haproxy.ready_timeout)"
        );
        let now = plan(&settings, &Found::Not("HTTP 503".into()), false).unwrap();
        assert!(now.target.ends_with("; now: HTTP 503)"), "{}", now.target);
    }
}
