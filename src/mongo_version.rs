//! A MongoDB server version as Rocket.Chat compares it, and the rules Jeeves applies before it
//! rolls a Rocket.Chat onto a database: the server's version against the chart's requirement
//! (`chart::ChartVersion::mongodb_min`), and no move to an older Rocket.Chat.

use std::fmt;

use serde::Serialize;

/// `major.minor.patch` of a MongoDB server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MongoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl MongoVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> MongoVersion {
        MongoVersion {
            major,
            minor,
            patch,
        }
    }

    /// The first `N[.N[.N]]` in `text`, missing parts 0: what Rocket.Chat's check does with the
    /// server's `buildInfo.version` (`semver.coerce`, in
    /// `apps/meteor/server/startup/serverRunning.{js,ts}`). So `6.0.10-debian-11-r8` (a Bitnami
    /// image tag) is 6.0.10, `8.0.12-ubi8` is 8.0.12 and `7.0` is 7.0.0; `latest` is nothing.
    pub fn coerce(text: &str) -> Option<MongoVersion> {
        let start = text.find(|c: char| c.is_ascii_digit())?;
        let mut parts = text[start..].splitn(4, '.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            (digits.parse::<u32>().ok(), digits.len() == p.len())
        });
        let (major, mut whole) = parts.next()?;
        let major = major?;
        let mut next = |whole: &mut bool| -> u32 {
            if !*whole {
                return 0;
            }
            match parts.next() {
                Some((Some(n), w)) => {
                    *whole = w;
                    n
                }
                _ => {
                    *whole = false;
                    0
                }
            }
        };
        let minor = next(&mut whole);
        let patch = next(&mut whole);
        Some(MongoVersion::new(major, minor, patch))
    }
}

impl fmt::Display for MongoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A Rocket.Chat version (`appVersion`), compared part by part (`8.6.1` > `7.6.0`).
pub fn app_version_older(want: &str, have: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.trim_start_matches('v')
            .split(['.', '-'])
            .map_while(|p| p.parse().ok())
            .collect()
    };
    parts(want) < parts(have)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coerce_reads_versions_as_rocket_chat_does() {
        let v = MongoVersion::new;
        assert_eq!(
            MongoVersion::coerce("6.0.10-debian-11-r8"),
            Some(v(6, 0, 10))
        );
        assert_eq!(MongoVersion::coerce("8.0.12-ubi8"), Some(v(8, 0, 12)));
        assert_eq!(MongoVersion::coerce("8.0.13"), Some(v(8, 0, 13)));
        assert_eq!(MongoVersion::coerce("7.0"), Some(v(7, 0, 0)));
        assert_eq!(MongoVersion::coerce("v5"), Some(v(5, 0, 0)));
        assert_eq!(MongoVersion::coerce("8.0.4-rc1"), Some(v(8, 0, 4)));
        assert_eq!(MongoVersion::coerce("latest"), None);
        assert_eq!(MongoVersion::coerce(""), None);
        assert!(v(8, 0, 0) > v(7, 9, 99));
        assert_eq!(v(6, 0, 10).to_string(), "6.0.10");
    }

    #[test]
    fn an_older_app_version_is_a_downgrade() {
        assert!(app_version_older("7.6.0", "8.6.1"));
        assert!(app_version_older("8.6.0", "8.6.1"));
        assert!(!app_version_older("8.6.1", "8.6.1"));
        assert!(!app_version_older("8.6.1", "7.6.0"));
        assert!(!app_version_older("8.10.0", "8.9.3"));
    }
}
