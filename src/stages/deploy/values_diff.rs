//! The release's values, key by key: what `helm get values -o json` says is deployed against
//! what this run would deploy, for the plan to show before an upgrade.
//!
//! The wanted values are the values files merged the way helm merges `-f` files (maps merged
//! key by key, anything else replaced by the later file: helm's `pkg/cli/values/options.go`,
//! `mergeMaps`). Values under a key that names a secret, and strings that carry credentials
//! (a URI's password), are shown as `[masked]`; the Redactor then removes any known secret
//! (MONGO_URI…) from whatever is left.

use serde_json::{Map, Value};

use crate::config::secret_values::{carries_credentials, names_a_secret_item, under_secret};

pub const MASKED: &str = "[masked]";

/// One key whose value differs; `None` is a key that is absent on that side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueChange {
    /// Dotted, with list indexes: `microservices.presence.replicas`, `extraEnv[0].value`;
    /// a key that holds a dot or a slash is quoted: `podAnnotations["prometheus.io/scrape"]`.
    pub path: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl ValueChange {
    /// `path: old → new`, an absent side as `(none)`.
    pub fn describe(&self) -> String {
        let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        format!("{}: {} → {}", self.path, side(&self.old), side(&self.new))
    }
}

/// helm's `mergeMaps`: `b` over `a`, maps merged recursively, anything else replaced.
pub fn merge(a: &mut Map<String, Value>, b: Map<String, Value>) {
    for (k, v) in b {
        match (a.get_mut(&k), v) {
            (Some(Value::Object(old)), Value::Object(new)) => merge(old, new),
            (_, v) => {
                a.insert(k, v);
            }
        }
    }
}

/// Every key whose value differs, in key order; nested maps and lists are followed down to
/// their leaves, so a change inside a list names its index.
pub fn diff(old: &Value, new: &Value) -> Vec<ValueChange> {
    let mut out = Vec::new();
    walk("", old, new, false, &mut out);
    out
}

fn walk(path: &str, old: &Value, new: &Value, secret: bool, out: &mut Vec<ValueChange>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            let item = names_a_secret_item(a) || names_a_secret_item(b);
            for k in keys {
                let p = join(path, k);
                pair(p, a.get(k), b.get(k), under_secret(secret, k, item), out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                pair(p, a.get(i), b.get(i), secret, out);
            }
        }
        // `helm get values` prints `null` for a release installed without values.
        (Value::Null, Value::Object(_)) => walk(path, &Value::Object(Map::new()), new, secret, out),
        (Value::Object(_), Value::Null) => walk(path, old, &Value::Object(Map::new()), secret, out),
        (x, y) => leaf(path.to_string(), Some(x), Some(y), secret, out),
    }
}

/// A key or index on one side or both: a map or list added or removed whole is followed down
/// too, so each of its keys is named and masked on its own.
fn pair(
    path: String,
    old: Option<&Value>,
    new: Option<&Value>,
    secret: bool,
    out: &mut Vec<ValueChange>,
) {
    let empty = |v: &Value| match v {
        Value::Object(_) => Some(Value::Object(Map::new())),
        Value::Array(_) => Some(Value::Array(Vec::new())),
        _ => None,
    };
    match (old, new) {
        (Some(x), Some(y)) => walk(&path, x, y, secret, out),
        (Some(x), None) => match empty(x) {
            Some(e) => walk(&path, x, &e, secret, out),
            None => leaf(path, old, new, secret, out),
        },
        (None, Some(y)) => match empty(y) {
            Some(e) => walk(&path, &e, y, secret, out),
            None => leaf(path, old, new, secret, out),
        },
        (None, None) => {}
    }
}

fn leaf(
    path: String,
    old: Option<&Value>,
    new: Option<&Value>,
    secret: bool,
    out: &mut Vec<ValueChange>,
) {
    if same(old, new) {
        return;
    }
    let show = |v: Option<&Value>| v.map(|v| display(v, secret));
    out.push(ValueChange {
        path,
        old: show(old),
        new: show(new),
    });
}

/// Equal as helm sees them: numbers by value (helm reads every YAML number as a float, so a
/// `1` written and a `1` read back are the same whether they print as `1` or `1.0`).
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            x.len() == y.len() && x.iter().all(|(k, v)| same(Some(v), y.get(k)))
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(Some(a), Some(b)))
        }
        (a, b) => a == b,
    }
}

/// A value as the plan prints it: JSON, masked when it is, or holds, a secret.
fn display(v: &Value, secret: bool) -> String {
    if secret && !v.is_null() {
        return MASKED.into();
    }
    let text = v.to_string();
    if carries_credentials(&text) {
        MASKED.into()
    } else {
        text
    }
}

fn join(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.into())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lines(old: Value, new: Value) -> Vec<String> {
        diff(&old, &new).iter().map(ValueChange::describe).collect()
    }

    #[test]
    fn nested_maps_name_each_changed_leaf() {
        let old = json!({"host": "chat.example.com", "microservices": {"enabled": true,
            "presence": {"replicas": 1}, "account": {"replicas": 1}}});
        let new = json!({"host": "chat.example.com", "microservices": {"enabled": true,
            "presence": {"replicas": 2}, "account": {"replicas": 1}}});
        assert_eq!(lines(old, new), ["microservices.presence.replicas: 1 → 2"]);
    }

    #[test]
    fn added_and_removed_keys_and_whole_maps() {
        let old = json!({"a": 1, "gone": {"x": "y"}, "ingress": {"enabled": false}});
        let new = json!({"a": 1.0, "new": {"p": [1]}, "ingress": {"enabled": false, "tls": null}});
        assert_eq!(
            lines(old, new),
            [
                "gone.x: \"y\" → (none)",
                "ingress.tls: (none) → null",
                "new.p[0]: (none) → 1",
            ]
        );
        // helm prints `null` for a release without values: every wanted key is added.
        assert_eq!(lines(Value::Null, json!({"k": "v"})), ["k: (none) → \"v\""]);
        assert!(diff(&json!({"n": 1}), &json!({"n": 1.0})).is_empty());
        assert!(!diff(&json!({"n": 1}), &json!({"n": "1"})).is_empty());
    }

    #[test]
    fn lists_by_index_and_quoted_keys() {
        let old = json!({"extraEnv": [{"name": "A", "value": "1"}],
            "podAnnotations": {"prometheus.io/scrape": "true"}});
        let new = json!({"extraEnv": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
            "podAnnotations": {"prometheus.io/scrape": "false"}});
        assert_eq!(
            lines(old, new),
            [
                "extraEnv[0].value: \"1\" → \"2\"",
                "extraEnv[1].name: (none) → \"B\"",
                "extraEnv[1].value: (none) → \"3\"",
                "podAnnotations[\"prometheus.io/scrape\"]: \"true\" → \"false\"",
            ]
        );
        // A list shortened, and a scalar that became a list.
        assert_eq!(
            lines(
                json!({"l": [1, 2], "s": "x"}),
                json!({"l": [1], "s": ["x"]})
            ),
            ["l[1]: 2 → (none)", "s: \"x\" → [\"x\"]"]
        );
    }

    #[test]
    fn secrets_are_masked_and_never_shown() {
        let old = json!({"smtp": {"password": "hunter22", "host": "mail"},
            "mongodb": {"auth": {"rootPassword": "r00t-pw", "passwords": ["p1"]}},
            "extraEnv": [{"name": "SMTP_PASSWORD", "value": "old-env-pw"}],
            "existingMongodbSecret": "rocketchat-mongodb",
            "external": "mongodb://rc:s3cr3t-pa55@db:27017/rc"});
        let new = json!({"smtp": {"password": "hunter33", "host": "mail2"},
            "mongodb": {"auth": {"rootPassword": "r00t-pw2", "passwords": ["p2"]}},
            "extraEnv": [{"name": "SMTP_PASSWORD", "value": "new-env-pw"}],
            "existingMongodbSecret": "other-secret",
            "external": "mongodb://rc:n3w-pa55@db:27017/rc"});
        let out = lines(old, new);
        assert_eq!(
            out,
            [
                "existingMongodbSecret: \"rocketchat-mongodb\" → \"other-secret\"",
                "external: [masked] → [masked]",
                "extraEnv[0].value: [masked] → [masked]",
                "mongodb.auth.passwords[0]: [masked] → [masked]",
                "mongodb.auth.rootPassword: [masked] → [masked]",
                "smtp.host: \"mail\" → \"mail2\"",
                "smtp.password: [masked] → [masked]",
            ]
        );
        let all = out.join("\n");
        for secret in ["hunter", "r00t", "p1", "p2", "env-pw", "pa55"] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
        // Rocket.Chat's settings by environment variable, and OAuth client secrets.
        let out = lines(
            json!({}),
            json!({"extraEnv": [
                {"name": "OVERWRITE_SETTING_FileUpload_S3_AWSSecretAccessKey", "value": "wJalr-s3"},
                {"name": "OVERWRITE_SETTING_Accounts_OAuth_Google_secret", "value": "g00gle-s3"}],
                "oauth": {"clientSecret": "cl1ent-s3"}}),
        );
        let all = out.join("\n");
        for secret in ["wJalr", "g00gle", "cl1ent"] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
        // Secrets added or removed, alone or inside a map or list added whole: that they
        // change is shown, never their values.
        assert_eq!(
            lines(
                json!({"gone": {"token": "old-t0ken"}}),
                json!({"apiToken": "t0ken-value", "smtp": {"password": "pw-added"},
                    "extraEnv": [{"name": "DB_PASSWORD", "value": "pw-in-list"}]})
            ),
            [
                "apiToken: (none) → [masked]",
                "extraEnv[0].name: (none) → \"DB_PASSWORD\"",
                "extraEnv[0].value: (none) → [masked]",
                "gone.token: [masked] → (none)",
                "smtp.password: (none) → [masked]",
            ]
        );
    }

    #[test]
    fn later_files_win_key_by_key_as_helm_merges_them() {
        let mut a = json!({"a": {"x": 1, "y": 2}, "l": [1, 2], "s": {"k": 1}})
            .as_object()
            .unwrap()
            .clone();
        let b = json!({"a": {"y": 3, "z": 4}, "l": [9], "s": "flat"})
            .as_object()
            .unwrap()
            .clone();
        merge(&mut a, b);
        assert_eq!(
            Value::Object(a),
            json!({"a": {"x": 1, "y": 3, "z": 4}, "l": [9], "s": "flat"})
        );
    }
}
