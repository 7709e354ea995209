//! `[haproxy]`: where HAProxy's configuration and PEM live on the controller, the address it
//! forwards to, and how long `up` waits for the site to answer through it after a deploy.

use super::Checker;
use crate::config::{HaproxySettings, pipeline, validate};

/// An empty `pem_path` is named after the domain (`None` when the domain was invalid: that
/// error is recorded already).
pub(super) fn check(
    c: &mut Checker,
    raw: pipeline::Haproxy,
    domain: Option<&str>,
) -> Option<HaproxySettings> {
    let config_path = c.check(
        "haproxy.config_path",
        validate::remote_path(&raw.config_path),
    );
    let pem_path = if raw.pem_path.is_empty() {
        domain.map(|d| format!("/etc/haproxy/certs/{d}.pem"))
    } else {
        c.check("haproxy.pem_path", validate::remote_path(&raw.pem_path))
    };
    if let Some(pem) = &pem_path
        && pem.starts_with("/etc/letsencrypt/")
    {
        c.check::<()>(
            "haproxy.pem_path",
            Err("must be outside /etc/letsencrypt (certbot owns that tree)".into()),
        );
    }
    let backend_address = c.check(
        "haproxy.backend_address",
        validate::ipv4(&raw.backend_address),
    );
    let ready_timeout = c.check(
        "haproxy.ready_timeout",
        validate::nonzero_duration(&raw.ready_timeout),
    );
    Some(HaproxySettings {
        config_path: config_path?,
        pem_path: pem_path?,
        backend_address: backend_address?,
        ready_timeout: ready_timeout?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pem_is_named_after_the_domain_unless_set() {
        let mut c = Checker::for_test();
        let h = check(
            &mut c,
            pipeline::Haproxy::default(),
            Some("chat.example.com"),
        )
        .unwrap();
        assert_eq!(h.pem_path, "/etc/haproxy/certs/chat.example.com.pem");
        // No domain: its own error was recorded already, none is added here.
        assert!(check(&mut c, pipeline::Haproxy::default(), None).is_none());
        assert_eq!(c.keys(), Vec::<&str>::new());

        let raw = pipeline::Haproxy {
            pem_path: "/etc/ssl/private/chat.pem".into(),
            ..Default::default()
        };
        let h = check(&mut c, raw, None).unwrap();
        assert_eq!(h.pem_path, "/etc/ssl/private/chat.pem");
    }
}
