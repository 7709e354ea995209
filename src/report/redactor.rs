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

    /// Adds a secret with the forms it can take in output: base64 (a Kubernetes Secret's data,
    /// an `Authorization: Basic` header), URL-encoded, and — for a URI with a password, such as
    /// `mongodb://user:pass@host` — the password alone, as written and decoded.
    pub fn add(&self, secret: impl Into<String>) {
        let secret = secret.into();
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        for form in forms(&secret) {
            if form.len() < 4 {
                continue; // Too short to redact without mangling ordinary text.
            }
            if !secrets.contains(&form) {
                secrets.push(form);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
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

/// A secret and the forms it can take in output.
fn forms(secret: &str) -> Vec<String> {
    use base64::Engine;
    use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
    let encodings = |v: &str| {
        [
            v.to_string(),
            base64::engine::general_purpose::STANDARD.encode(v),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(v),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v),
            utf8_percent_encode(v, NON_ALPHANUMERIC).to_string(),
        ]
    };
    let mut out: Vec<String> = encodings(secret).into();
    // scheme://user:password@host…: the password is a secret on its own.
    if let Some((_, rest)) = secret.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        out.extend(encodings(password));
        if let Ok(decoded) = percent_decode_str(password).decode_utf8() {
            out.extend(encodings(&decoded));
        }
    }
    out.sort();
    out.dedup();
    out
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

    #[test]
    fn redacts_the_forms_a_secret_takes() {
        use base64::Engine;
        let uri = "mongodb://rc:p%40ss-w0rd@db.internal:27017/rocketchat";
        let r = Redactor::new([uri.to_string()]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(uri);
        for text in [
            uri.to_string(),
            format!("data: {{\"mongo-uri\": \"{b64}\"}}"),
            "MongoServerError: auth failed for rc with p@ss-w0rd".to_string(),
            "password=p%40ss-w0rd".to_string(),
            format!(
                "url={}",
                percent_encoding::utf8_percent_encode(uri, percent_encoding::NON_ALPHANUMERIC)
            ),
        ] {
            let out = r.redact(&text);
            assert!(
                !out.contains("ss-w0rd") && !out.contains(&b64) && out.contains(REDACTED),
                "{text} → {out}"
            );
        }
    }
}
