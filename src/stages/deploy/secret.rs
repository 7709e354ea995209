//! The MongoDB secret the chart reads through `existingMongodbSecret`: the database URIs from the
//! environment for an external MongoDB, or — for the chart's bundled MongoDB — generated
//! credentials (read by the subchart through `mongodb.auth.existingSecret`) and the URIs that
//! reach it. Nothing here is written to disk or to an argument: the document goes to kubectl on
//! standard input, and the live secret is compared in memory.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result, bail};
use base64::Engine;

use crate::chart::{self, secret_keys::*};
use crate::config::Settings;
use crate::kube::{Tools, succeeded};
use crate::report::Change;
use crate::stage::StageContext;

/// The secret's data as it should be, plain text.
pub struct MongoSecret {
    data: BTreeMap<&'static str, String>,
}

/// A live secret's data, decoded (`kubectl get secret -o json`).
pub fn decode(secret: &serde_json::Value) -> BTreeMap<String, String> {
    secret["data"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str()?)
                .ok()?;
            Some((k.clone(), String::from_utf8(bytes).ok()?))
        })
        .collect()
}

pub fn generated() -> Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for the MongoDB passwords")?;
    Ok(hex::encode(bytes))
}

impl MongoSecret {
    /// What the secret must hold. For the bundled MongoDB the credentials already in the live
    /// secret are kept (the database was initialised with them); they are generated only for a
    /// release not installed yet (`fresh`), since a new password would not open an existing
    /// database. `None`: an external MongoDB without URIs in the environment (config checks stop
    /// that before a deploy).
    pub fn desired(
        s: &Settings,
        live: &BTreeMap<String, String>,
        fresh: bool,
    ) -> Result<Option<MongoSecret>> {
        if s.helm.mongodb == crate::config::MongodbMode::Operator {
            // The operator's URI, copied once the replica set runs (`mongodb/`).
            return Ok(None);
        }
        let oplog = s.helm.reads.oplog_uri;
        let mut data = BTreeMap::new();
        if s.helm.bundled_mongodb {
            let mut keep = |key: &'static str| -> Result<String> {
                let value = match live.get(key) {
                    Some(v) if !v.is_empty() => v.clone(),
                    _ if fresh => generated()?,
                    _ => bail!(
                        "secret {}/{} has no `{key}`, but release {} is installed: its MongoDB was initialised with the lost value, and a new one would lock Rocket.Chat out. Restore the secret from a backup (or uninstall the release and delete its volumes to start empty)",
                        s.helm.namespace,
                        s.helm.mongodb_secret,
                        s.helm.release
                    ),
                };
                data.insert(key, value.clone());
                Ok(value)
            };
            let password = keep(PASSWORDS)?;
            let root = keep(ROOT_PASSWORD)?;
            keep(REPLICA_SET_KEY)?;
            // As the chart's own `rocketchat.mongodb.url` and `.oplogUrl` build them
            // (templates/_helpers.tpl): user and database `rocketchat`, root user `root`.
            let host = chart::bundled_mongodb_host(&s.helm.release);
            data.insert(
                URI,
                format!("mongodb://rocketchat:{password}@{host}/rocketchat?replicaSet=rs0"),
            );
            if oplog {
                data.insert(
                    OPLOG_URI,
                    format!("mongodb://root:{root}@{host}/local?replicaSet=rs0&authSource=admin"),
                );
            }
        } else {
            let Some(m) = &s.mongo else { return Ok(None) };
            data.insert(URI, m.uri.clone());
            if oplog && let Some(o) = &m.oplog_uri {
                data.insert(OPLOG_URI, o.clone());
            }
        }
        Ok(Some(MongoSecret { data }))
    }

    /// `helm.mongodb = "operator"`: the connection string the operator wrote, under the key the
    /// chart reads (`mongodb/mod.rs` says why it is copied).
    pub fn from_uri(uri: String) -> MongoSecret {
        MongoSecret {
            data: BTreeMap::from([(URI, uri)]),
        }
    }

    /// The live secret holds exactly these values under these keys (other keys are left alone).
    pub fn matches(&self, live: &BTreeMap<String, String>) -> bool {
        self.data
            .iter()
            .all(|(k, v)| live.get(*k).is_some_and(|l| l == v))
    }

    /// The keys, for messages (never the values).
    pub fn keys(&self) -> String {
        self.data.keys().copied().collect::<Vec<_>>().join(", ")
    }

    /// The Secret and its Namespace, for `kubectl apply --server-side -f -`.
    pub fn document(&self, s: &Settings) -> serde_json::Value {
        let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
        let data: serde_json::Map<String, serde_json::Value> = self
            .data
            .iter()
            .map(|(k, v)| (k.to_string(), b64(v).into()))
            .collect();
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                // The same Namespace as templates/traefik/00-namespaces.yaml.hbs, field for
                // field: both are applied by the one field manager, and a server-side apply that
                // leaves out a field the manager set before removes it.
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": s.helm.namespace,
                        "labels": {"app.kubernetes.io/managed-by": "jeeves"}
                    }
                },
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "Opaque",
                    "metadata": {"name": s.helm.mongodb_secret, "namespace": s.helm.namespace},
                    "data": data
                }
            ]
        })
    }
}

/// A secret to apply: missing, or not holding what it should.
pub struct Update {
    pub secret: MongoSecret,
    /// A live secret is replaced: pods read it only when they start, so they must roll.
    pub replaces: bool,
    /// As the plan shows it.
    pub change: Change,
}

/// The secret as the cluster has it.
pub struct Live {
    exists: bool,
    data: BTreeMap<String, String>,
}

impl Live {
    pub fn exists(&self) -> bool {
        self.exists
    }

    pub fn value(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }
}

/// Reads the live secret (absent is not an error).
pub async fn read(tools: &Tools, cx: &StageContext<'_>) -> Result<Live> {
    let s = cx.settings;
    let out = tools
        .kubectl(
            cx,
            &[
                "get",
                "secret",
                &s.helm.mongodb_secret,
                "-n",
                &s.helm.namespace,
                "-o",
                "json",
            ],
        )
        .await?;
    let live = if out.status.success() {
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).with_context(|| {
            format!(
                "`kubectl get secret {}` answered something that is not JSON",
                s.helm.mongodb_secret
            )
        })?;
        let data = decode(&doc);
        // The live credentials (the bundled MongoDB's generated passwords among them) are
        // redacted from here on, whatever tool echoes them.
        for value in data.values() {
            cx.reporter.redactor().add(value.clone());
        }
        data
    } else if out.stderr.contains("NotFound") {
        Default::default()
    } else {
        bail!(
            "cannot read secret {}/{}:\n{}",
            s.helm.namespace,
            s.helm.mongodb_secret,
            out.tail(10)
        );
    };
    Ok(Live {
        exists: out.status.success(),
        data: live,
    })
}

/// The live secret compared in memory with what it must hold. `fresh`: the release is not
/// installed yet, so the bundled MongoDB's credentials may be generated.
pub fn update(s: &Settings, live: &Live, fresh: bool) -> Result<Option<Update>> {
    let Some(wanted) = MongoSecret::desired(s, &live.data, fresh)? else {
        return Ok(None);
    };
    if wanted.matches(&live.data) {
        return Ok(None);
    }
    let change = Change::new(
        if live.exists { "update" } else { "create" },
        format!(
            "secret {}/{} ({}; {})",
            s.helm.namespace,
            s.helm.mongodb_secret,
            wanted.keys(),
            if s.helm.bundled_mongodb {
                "credentials of the bundled MongoDB, generated once"
            } else {
                "from the environment"
            }
        ),
    );
    Ok(Some(Update {
        secret: wanted,
        replaces: live.exists,
        change,
    }))
}

/// `kubectl apply --server-side -f -`: the values reach kubectl on standard input only.
pub async fn apply(tools: &Tools, cx: &StageContext<'_>, secret: &MongoSecret) -> Result<()> {
    let s = cx.settings;
    // Generated passwords are secrets from the moment they exist (kubectl's error tail, a
    // later tool's output).
    for value in secret.data.values() {
        cx.reporter.redactor().add(value.clone());
    }
    succeeded(
        tools
            .apply_stdin(serde_json::to_vec(&secret.document(s))?)
            .await?,
        &format!(
            "applying secret {}/{}",
            s.helm.namespace, s.helm.mongodb_secret
        ),
    )?;
    cx.host(
        s.helm.mongodb_secret.clone(),
        format!("MongoDB secret applied ({})", secret.keys()),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::load(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs(pairs.iter().copied()),
        )
        .unwrap()
    }

    #[test]
    fn external_carries_the_uris_the_chart_reads() {
        let env = [
            ("JEEVES_HELM_MONGODB", "external"),
            ("MONGO_URI", "mongodb://u:p@db/rc"),
            ("MONGO_OPLOG_URI", "mongodb://u:p@db/local"),
        ];
        for (version, keys) in [
            ("7.0.2", "mongo-uri"),
            ("6.25.1", "mongo-oplog-uri, mongo-uri"),
        ] {
            let mut pairs = env.to_vec();
            pairs.push(("JEEVES_HELM_VERSION", version));
            pairs.push(("JEEVES_HELM_CHART", "rocketchat"));
            let s = settings(&pairs);
            let secret = MongoSecret::desired(&s, &BTreeMap::new(), true)
                .unwrap()
                .unwrap();
            assert_eq!(secret.keys(), keys);
            let mut read = s.helm.reads.secret_keys(false);
            read.sort();
            assert_eq!(secret.keys(), read.join(", "));
            let doc = secret.document(&s);
            assert_eq!(
                doc["items"][1]["data"]["mongo-uri"],
                base64::engine::general_purpose::STANDARD.encode("mongodb://u:p@db/rc")
            );
            assert_eq!(doc["items"][0]["metadata"]["name"], s.helm.namespace);
        }
    }

    #[test]
    fn bundled_generates_credentials_once_and_keeps_them() {
        let s = settings(&[("JEEVES_HELM_MONGODB", "bundled")]);
        let first = MongoSecret::desired(&s, &BTreeMap::new(), true)
            .unwrap()
            .unwrap();
        let mut read = s.helm.reads.secret_keys(true);
        read.sort();
        assert_eq!(first.keys(), read.join(", "));
        let live: BTreeMap<String, String> = first
            .data
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(live[PASSWORDS].len(), 48);
        assert_ne!(live[PASSWORDS], live[ROOT_PASSWORD]);
        assert!(
            live[URI].starts_with(&format!("mongodb://rocketchat:{}@", live[PASSWORDS])),
            "{}",
            live[URI]
        );
        assert!(live[URI].contains("@rocketchat-mongodb-headless:27017/rocketchat?replicaSet=rs0"));
        // A re-run keeps what the database was initialised with.
        let again = MongoSecret::desired(&s, &live, false).unwrap().unwrap();
        assert!(again.matches(&live));
        // A key lost while the release is installed is an error naming it, never a new value.
        let mut partial = live.clone();
        partial.remove(REPLICA_SET_KEY);
        let err = MongoSecret::desired(&s, &partial, false)
            .err()
            .expect("a lost credential is refused");
        assert!(
            format!("{err}").contains("has no `mongodb-replica-set-key`"),
            "{err}"
        );
        // Before the first install it is simply made; what is there stays.
        let made = MongoSecret::desired(&s, &partial, true).unwrap().unwrap();
        assert_eq!(made.data[PASSWORDS], live[PASSWORDS]);
    }

    /// One field manager applies the app's Namespace twice (with the Traefik resources and with
    /// the secret): the two must not differ, or each apply removes what the other set.
    #[test]
    fn the_secrets_namespace_is_the_templates_namespace() {
        let s = settings(&[
            ("MONGO_URI", "m"),
            ("MONGO_OPLOG_URI", "o"),
            ("JEEVES_HELM_MONGODB", "external"),
        ]);
        let templates = crate::templates::Templates::load(&s.templates_dir).unwrap();
        let name = templates
            .traefik_names()
            .find(|n| n.contains("namespaces"))
            .unwrap()
            .to_string();
        let text = templates
            .render(&name, &crate::stages::template_context(&s))
            .unwrap();
        let doc = text
            .split("---")
            .find(|d| d.contains(&format!("name: {}\n", s.helm.namespace)))
            .expect("the app's Namespace in the template");
        let labels: serde_json::Map<String, serde_json::Value> = doc
            .lines()
            .skip_while(|l| l.trim() != "labels:")
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .filter_map(|l| l.trim().split_once(": "))
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        assert!(!labels.is_empty(), "{doc}");
        let secret = MongoSecret::desired(&s, &Default::default(), true)
            .unwrap()
            .unwrap()
            .document(&s);
        assert_eq!(
            secret["items"][0]["metadata"],
            serde_json::json!({"name": s.helm.namespace, "labels": labels})
        );
    }
}
