use std::sync::{Arc, RwLock};

pub const REDACTED: &str = "[redacted]";

/// Replaces every known secret value in text. Shared: a stage that learns a secret at run time
/// (a join token, say) adds it before the secret can reach any output.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let r = Redactor::default();
        for s in secrets {
            r.add(s);
        }
        r
    }

    pub fn add(&self, secret: impl Into<String>) {
        let secret = secret.into();
        if secret.len() < 4 {
            return; // Too short to redact without mangling ordinary text.
        }
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        if !secrets.contains(&secret) {
            secrets.push(secret);
            // Longest first, so a secret containing another is replaced whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first_and_ignores_short_values() {
        let r = Redactor::new(["abcd".to_string(), "abcdefgh".to_string(), "x".to_string()]);
        assert_eq!(
            r.redact("key=abcdefgh id=abcd x=1"),
            "key=[redacted] id=[redacted] x=1"
        );
        r.add("join-token-123");
        assert_eq!(
            r.redact("microk8s join 10.0.0.1:25000/join-token-123"),
            "microk8s join 10.0.0.1:25000/[redacted]"
        );
    }
}
