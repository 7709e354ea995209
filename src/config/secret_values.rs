//! Which Helm values are secrets: by their key's name (`rootPassword`, `clientSecret`, an env
//! item `{name: SMTP_PASSWORD, value: …}`) or their text (a URI with a password). The plan masks
//! them (`stages::deploy::values_diff`), and the redactor hides them from every output.

use serde_json::{Map, Value};

/// The text of every secret leaf in `values` (the pipeline file's `[helm.values]`), for the
/// redactor: helm and kubectl may echo a value back in an error.
pub fn in_values(values: &Map<String, Value>) -> Vec<String> {
    let mut found = Vec::new();
    collect(&Value::Object(values.clone()), false, &mut found);
    found
}

/// Whether the value under `key` in a map is a secret: inside one already (`secret`), under a
/// key that names a credential, or beside `name` in an item that names one (an env entry
/// `{name: SMTP_PASSWORD, value: …}`, where `item` says so of either side of a change).
pub fn under_secret(secret: bool, key: &str, item: bool) -> bool {
    secret || names_a_secret(key) || (item && key != "name")
}

/// The map is an item whose `name` names a credential.
pub fn names_a_secret_item(m: &Map<String, Value>) -> bool {
    m.get("name")
        .and_then(Value::as_str)
        .is_some_and(names_a_secret)
}

fn collect(v: &Value, secret: bool, found: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let item = names_a_secret_item(m);
            for (k, v) in m {
                collect(v, under_secret(secret, k, item), found);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, secret, found)),
        Value::String(text) if secret || carries_credentials(text) => found.push(text.clone()),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
        Value::Number(n) if secret => found.push(n.to_string()),
        Value::Number(_) => {}
    }
}

/// The last part of a key, lower case, names a credential (`rootPassword`, `smtp_password`,
/// `apiToken`, `secretKey`, `clientSecret`, `OVERWRITE_SETTING_…_AWSSecretAccessKey`,
/// `MONGO_URL`…). Names of Kubernetes Secrets (`existingSecret`, `existingMongodbSecret`) are
/// not secrets themselves and are shown; any other name ending in "secret" is masked (a Secret's
/// name hidden by mistake costs nothing, a secret shown costs it).
fn names_a_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['_', '-'], "");
    if k.ends_with("secret") {
        return !k.starts_with("existing");
    }
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "token",
        "secretkey",
        "apikey",
        "accesskey",
        "privatekey",
        "credential",
        "credentials",
        "mongourl",
        "mongouri",
        "mongooplogurl",
        "mongooploguri",
        "connectionstring",
    ];
    WORDS.iter().any(|w| k.ends_with(w)) || k.ends_with("passwords")
}

/// `scheme://user:password@host`: a URI with a password in it.
pub fn carries_credentials(text: &str) -> bool {
    text.split("://").skip(1).any(|rest| {
        let authority = rest.split(['/', '?', '#', '"']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_leaves_are_found_by_key_item_name_or_credentials_in_the_text() {
        let values = json!({
            "smtp": {"password": "hunter22", "host": "mail"},
            "extraEnv": [{"name": "SMTP_PASSWORD", "value": "env-pw"},
                         {"name": "SITE_NAME", "value": "chat"}],
            "existingMongodbSecret": "rocketchat-mongodb",
            "oauth": {"clientSecret": "cl1ent"},
            "external": "mongodb://rc:s3cr3t@db:27017/rc"});
        let mut found = in_values(values.as_object().unwrap());
        found.sort();
        assert_eq!(
            found,
            [
                "cl1ent",
                "env-pw",
                "hunter22",
                "mongodb://rc:s3cr3t@db:27017/rc"
            ]
        );
    }
}
