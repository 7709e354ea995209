//! The tls stage's plan as the changes `plan` and `up` report.

use crate::config::Settings;
use crate::report::Change;

use super::certificate;
use super::plan::{Certificate, Plan, Replacing};

impl Plan {
    /// The plan as the changes `plan` and `up` report (empty: the stage is unchanged).
    pub fn changes(&self, settings: &Settings) -> Vec<Change> {
        let mut changes = Vec::new();
        if !self.install.is_empty() {
            changes.push(Change::new("install", self.install.join(" ")));
        }
        let domain = &settings.domain;
        match &self.certificate {
            Certificate::Keep { .. } => {}
            Certificate::Restore => changes.push(Change::new(
                "restore",
                format!(
                    "certificate for {domain} from the state dir's copy (no new ACME order){}",
                    match &self.acme {
                        None => String::new(),
                        // The cached renewal config may name port 80 or an old first controller.
                        Some(a) => format!(
                            "; certbot renews it on {}:{} behind every haproxy",
                            a.address, a.port
                        ),
                    }
                ),
            )),
            Certificate::Issue(replacing) => changes.push(Change::new(
                "issue",
                format!(
                    "certificate for {domain} from {}: DNS first, then certbot --standalone {}{}",
                    settings
                        .tls
                        .acme_server
                        .as_deref()
                        .unwrap_or("Let's Encrypt"),
                    match &self.acme {
                        None => "with haproxy stopped".to_string(),
                        Some(a) => format!(
                            "on {}:{} behind every controller's haproxy (nothing stopped)",
                            a.address, a.port
                        ),
                    },
                    match replacing {
                        Replacing::Nothing => String::new(),
                        Replacing::Names(names) =>
                            format!(" (the host's certificate names {})", names.join(",")),
                        Replacing::Due =>
                            " (the host's certificate is inside the renewal window)".into(),
                    }
                ),
            )),
        }
        if !self.hooks.is_empty() {
            changes.push(Change::new(
                "write",
                format!("{} certbot renewal hook file(s)", self.hooks.len()),
            ));
        }
        if let Certificate::Keep {
            window: Some(now), ..
        } = &self.certificate
        {
            changes.push(Change::new(
                "set",
                format!(
                    "certbot's renewal window for {domain} to {} (tls.renew_before; now {})",
                    certificate::certbot_window(settings),
                    if now.is_empty() {
                        "certbot's default, 30 days"
                    } else {
                        now.as_str()
                    }
                ),
            ));
        }
        if let (
            Certificate::Keep {
                http01: Some(now), ..
            },
            Some(a),
        ) = (&self.certificate, &self.acme)
        {
            changes.push(Change::new(
                "set",
                format!(
                    "certbot's HTTP-01 listener for renewing {domain} to {}:{} (behind every haproxy; now {})",
                    a.address,
                    a.port,
                    if now.is_empty() {
                        "port 80, haproxy stopped for it"
                    } else {
                        now.as_str()
                    }
                ),
            ));
        }
        if self.writes_pem() {
            changes.push(Change::new("write", settings.haproxy.pem_path.clone()));
        }
        if self.config.is_some() {
            changes.push(Change::new("update", settings.haproxy.config_path.clone()));
        }
        if self.start || self.enable {
            changes.push(Change::new("start", "haproxy (enabled, active)"));
        }
        if !self.unloaded.is_empty() {
            changes.push(Change::new(
                "reload",
                format!(
                    "haproxy: the running process has not loaded {} (changed after it started: a reload that never happened)",
                    self.unloaded.join(", ")
                ),
            ));
        }
        if self.cache {
            changes.push(Change::new(
                "cache",
                format!("certificate lineage of {domain} in the state dir"),
            ));
        }
        for peer in &self.peers {
            changes.extend(peer.changes(settings));
        }
        changes
    }
}
