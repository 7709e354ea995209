//! The Helm release as `helm history` shows it, and what a killed or failed helm left behind.
//!
//! A helm killed mid-operation leaves its last revision `pending-install`, `pending-upgrade`
//! or `pending-rollback`, and every later helm call on the release fails with "another
//! operation (install/upgrade/rollback) is in progress". A failed install without `--atomic`
//! leaves `failed` with nothing deployed, and `upgrade --install` then fails with "has no
//! deployed releases". Both are recovered before the upgrade: a rollback to the last revision
//! that was deployed, or — when none ever was — an uninstall.

use anyhow::{Context, Result};
use serde::Deserialize;

/// One revision of `helm history -o json`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Revision {
    pub revision: u64,
    pub status: String,
    pub chart: String,
    #[serde(default)]
    pub description: String,
}

/// What must happen before the release can be upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// `helm rollback <release> <revision>`: the last revision that was deployed.
    Rollback(u64),
    /// `helm uninstall <release>`: nothing was ever deployed.
    Uninstall,
}

/// The revisions, oldest first. Output that does not parse is an error, never a guess.
pub fn parse(history: &str) -> Result<Vec<Revision>> {
    let mut revs: Vec<Revision> = serde_json::from_str(history)
        .context("`helm history -o json` answered something that is not a list of revisions")?;
    revs.sort_by_key(|r| r.revision);
    Ok(revs)
}

/// `None` when the last revision is one an upgrade can start from.
pub fn recovery(revs: &[Revision]) -> Option<Recovery> {
    let last = revs.last()?;
    let stuck = last.status.starts_with("pending-");
    let good = revs
        .iter()
        .rev()
        .find(|r| r.status == "deployed" || r.status == "superseded");
    match (stuck, last.status.as_str(), good) {
        (true, _, Some(g)) => Some(Recovery::Rollback(g.revision)),
        (true, _, None) | (false, "failed", None) => Some(Recovery::Uninstall),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revs(statuses: &[&str]) -> Vec<Revision> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| Revision {
                revision: i as u64 + 1,
                status: s.to_string(),
                chart: "rocketchat-7.0.2".into(),
                description: String::new(),
            })
            .collect()
    }

    #[test]
    fn what_a_killed_or_failed_helm_left_is_recovered() {
        assert_eq!(recovery(&revs(&["superseded", "deployed"])), None);
        assert_eq!(recovery(&revs(&["deployed", "failed"])), None);
        assert_eq!(
            recovery(&revs(&["superseded", "deployed", "pending-upgrade"])),
            Some(Recovery::Rollback(2))
        );
        assert_eq!(
            recovery(&revs(&["deployed", "failed", "pending-rollback"])),
            Some(Recovery::Rollback(1))
        );
        assert_eq!(
            recovery(&revs(&["pending-install"])),
            Some(Recovery::Uninstall)
        );
        assert_eq!(recovery(&revs(&["failed"])), Some(Recovery::Uninstall));
        assert_eq!(recovery(&[]), None);
    }

    #[test]
    fn history_that_does_not_parse_is_an_error() {
        assert!(parse("Error: something").is_err());
        let r = parse(r#"[{"revision": 2, "status": "deployed", "chart": "rocketchat-7.0.2", "app_version": "8.6.1", "description": "x", "updated": "…"}, {"revision": 1, "status": "superseded", "chart": "rocketchat-6.25.1"}]"#).unwrap();
        assert_eq!(r[1].revision, 2);
    }
}
