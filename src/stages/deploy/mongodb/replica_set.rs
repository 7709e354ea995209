//! The `MongoDBCommunity` replica set: the users' passwords, the object itself, the wait for
//! `Running`, the connection string Rocket.Chat reads, and the status `jeeves check` reports.
//!
//! Names and keys are the operator's (mongodb/mongodb-kubernetes 1.10.0):
//! - connection-string Secret `<name>-<db>-<user>`, in the object's namespace
//!   (`mongodb-community-operator/api/v1/mongodbcommunity_types.go`,
//!   `GetConnectionStringSecretName`, `GetConnectionStringSecretNamespace`), written once the
//!   phase is `Running` (`controllers/replica_set_controller.go`, after `withRunningPhase`) with
//!   the keys `connectionString.standard`, `connectionString.standardSrv`, `username`,
//!   `password` (`controllers/mongodb_users.go`, `updateConnectionStringSecrets`);
//! - the URI `mongodb://<user>:<password>@<name>-<i>.<name>-svc.<ns>.svc.cluster.local:27017,…/<db>?replicaSet=<name>&ssl=false`
//!   (`MongoAuthUserURI`): no `authSource`, so the driver authenticates against the URI's
//!   database, the user's `db` — which is why Rocket.Chat's user is defined in `rocketchat`;
//! - `status.phase` (`Pending`, `Running`, `Failed`), `status.message`,
//!   `status.currentMongoDBMembers`, `status.version` (`pkg/util/status/status.go`,
//!   `controllers/mongodb_status_options.go`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;

use super::super::secret::{Live, MongoSecret, decode, generated};
use super::super::sha256;
use super::super::traefik::HASH_ANNOTATION;
use super::{USER, password_secret};
use crate::config::mongodb::{Allocatable, bytes, millicores};
use crate::kube::{Tools, server_side, succeeded};
use crate::report::Change;
use crate::stage::StageContext;
use crate::state::write_private;
use crate::templates::{MONGODB_COMMUNITY, TemplateContext, Templates};

/// The key of the operator's Secret that holds the URI with the user's database.
pub const CONNECTION_KEY: &str = "connectionString.standard";
/// The admin user's key in the passwords Secret.
const ADMIN: &str = super::ADMIN_USER;

/// The operator's URI, if it is the one for `members`: `MongoAuthUserURI` lists every member
/// (`Hosts()`), and the operator rewrites the Secret only after it reports `Running`
/// (`replica_set_controller.go`), so a URI with another count is one a reconcile is about to
/// replace.
fn current_uri(data: &BTreeMap<String, String>, members: u32) -> Option<&String> {
    let uri = data.get(CONNECTION_KEY)?;
    let hosts = uri.split_once('@')?.1.split('/').next()?;
    (hosts.split(',').count() == members as usize).then_some(uri)
}

/// The operator's Secret with Rocket.Chat's connection string: `<name>-<db>-<user>`, the user
/// defined in the database it uses.
pub fn connection_secret(name: &str) -> String {
    user_connection_secret(name, USER, USER)
}

/// The operator's connection-string Secret of the user `user` defined in `db`:
/// `<name>-<db>-<user>` (`GetConnectionStringSecretName`; the operator's `normalizeName` leaves
/// names of lowercase letters, digits and dashes as they are).
pub fn user_connection_secret(name: &str, db: &str, user: &str) -> String {
    format!("{name}-{db}-{user}")
}

pub struct Rendered {
    path: PathBuf,
    text: String,
    sha: String,
}

impl Rendered {
    pub fn render(templates: &Templates, ctx: &TemplateContext, dir: &Path) -> Result<Rendered> {
        let text = templates.render(MONGODB_COMMUNITY, ctx)?;
        Ok(Rendered {
            path: dir.join("mongodbcommunity.yaml"),
            sha: sha256(text.as_bytes()),
            text,
        })
    }

    pub fn write(&self) -> Result<()> {
        write_private(&self.path, self.text.as_bytes())
    }
}

/// The passwords Secret as it must be: the live values kept, missing ones generated.
pub struct Passwords {
    data: BTreeMap<&'static str, String>,
}

/// What `probe` found.
pub struct Probe {
    pub passwords: Option<(Passwords, Change)>,
    pub replica_set: Option<Change>,
    /// The line `--force deploy` shows.
    pub forced: Change,
    /// Running now, with every member.
    pub running: bool,
    pub copy: Option<Change>,
    /// Rocket.Chat's Secret holds another URI: its pods must roll once it is replaced.
    pub restart: bool,
    /// The `MongoDBCommunity` as read (None: not created yet), whose version the deploy
    /// stage checks against Rocket.Chat's.
    pub live: Option<serde_json::Value>,
}

pub(super) async fn get_json(
    tools: &Tools,
    cx: &StageContext<'_>,
    kind: &str,
    name: &str,
    ns: &str,
) -> Result<Option<serde_json::Value>> {
    let out = tools
        .kubectl(cx, &["get", kind, name, "-n", ns, "-o", "json"])
        .await?;
    if out.status.success() {
        return serde_json::from_str(&out.stdout)
            .map(Some)
            .with_context(|| {
                format!("`kubectl get {kind} {name}` answered something that is not JSON")
            });
    }
    if crate::kube::absent(&out) {
        return Ok(None);
    }
    bail!("cannot read {kind} {ns}/{name}:\n{}", out.tail(10))
}

/// A Secret's data, decoded; each value redacted from here on except the user names (`username`:
/// redacting `rocketchat` would blank every name that holds it).
fn secret_data(cx: &StageContext<'_>, doc: &Option<serde_json::Value>) -> BTreeMap<String, String> {
    let data = doc.as_ref().map(decode).unwrap_or_default();
    for (k, v) in &data {
        if k != "username" {
            cx.reporter.redactor().add(v.clone());
        }
    }
    data
}

pub async fn probe(
    tools: &Tools,
    cx: &StageContext<'_>,
    r: &Rendered,
    app_secret: &Live,
) -> Result<Probe> {
    let s = cx.settings;
    let (ns, name) = (&s.helm.namespace, &s.mongodb.name);
    let pw_name = password_secret(s);
    let conn_name = connection_secret(name);
    let (pw, live, conn) = tokio::join!(
        get_json(tools, cx, "secret", &pw_name, ns),
        get_json(tools, cx, "mongodbcommunity", name, ns),
        get_json(tools, cx, "secret", &conn_name, ns),
    );
    let (pw, live, conn) = (pw?, live?, conn?);
    let pw_data = secret_data(cx, &pw);
    let conn_data = secret_data(cx, &conn);

    let mut data = BTreeMap::new();
    let mut made = Vec::new();
    for key in [USER, ADMIN] {
        match pw_data.get(key) {
            Some(v) if !v.is_empty() => {
                data.insert(key, v.clone());
            }
            _ => {
                data.insert(key, generated()?);
                made.push(key);
            }
        }
    }
    let passwords = (!made.is_empty()).then(|| {
        let change = Change::new(
            if pw.is_some() { "update" } else { "create" },
            format!(
                "secret {ns}/{pw_name} (passwords of {}: generated once, kept in the cluster)",
                made.join(", ")
            ),
        );
        (Passwords { data }, change)
    });

    let target = format!("MongoDBCommunity {ns}/{name}");
    let want = (s.mongodb.members, s.mongodb.version.as_str());
    let replica_set = match &live {
        None => Some(Change::new(
            "create",
            format!("{target} ({} members, MongoDB {})", want.0, want.1),
        )),
        Some(o) if o["metadata"]["annotations"][HASH_ANNOTATION] == r.sha.as_str() => None,
        Some(o) => {
            let mut what = Vec::new();
            let members = o["spec"]["members"].as_u64().unwrap_or(0);
            if members != u64::from(want.0) {
                what.push(format!("members {members} → {}", want.0));
            }
            let version = o["spec"]["version"].as_str().unwrap_or("?");
            if version != want.1 {
                what.push(format!("MongoDB {version} → {}", want.1));
            }
            if what.is_empty() {
                what.push("spec changed (resources, storage or users)".into());
            }
            Some(Change::new(
                "update",
                format!("{target}: {}", what.join(", ")),
            ))
        }
    };
    let status = live
        .as_ref()
        .map(|o| super::status::Status::of(o, &serde_json::Value::Null));
    let running = status.is_some_and(|st| st.ready(want.0, want.1));

    let uri = current_uri(&conn_data, want.0);
    let running = running && uri.is_some();
    let key = crate::chart::secret_keys::URI;
    let copy = match uri {
        Some(u) if app_secret.value(key) == Some(u.as_str()) => None,
        _ => Some(Change::new(
            if app_secret.exists() {
                "update"
            } else {
                "create"
            },
            format!(
                "secret {ns}/{} ({key}: the operator's {CONNECTION_KEY} from {conn_name}{})",
                s.helm.mongodb_secret,
                if uri.is_some() {
                    ""
                } else {
                    ", once the replica set runs"
                }
            ),
        )),
    };
    let restart = copy.is_some() && app_secret.exists();
    Ok(Probe {
        passwords,
        replica_set,
        forced: Change::new("apply", format!("{target} (forced)")),
        running,
        copy,
        restart,
        live,
    })
}

/// The schedulable nodes' allocatable, and the replica set's requests against it: refused with
/// exit 2, naming the setting, when they cannot fit.
pub async fn check_fits(tools: &Tools, cx: &StageContext<'_>) -> Result<()> {
    let out = succeeded(
        tools.kubectl(cx, &["get", "nodes", "-o", "json"]).await?,
        "listing the nodes",
    )?;
    let list: serde_json::Value = serde_json::from_str(&out.stdout)
        .context("`kubectl get nodes` answered something that is not JSON")?;
    let nodes = allocatable(&list);
    if nodes.is_empty() {
        return Ok(());
    }
    let where_ = format!(
        "the allocatable of the cluster's {} schedulable node(s)",
        nodes.len()
    );
    cx.settings
        .mongodb
        .fits(&nodes, &where_)
        .map_err(|(key, why)| cx.settings.config_error(key, why).into())
}

/// `status.allocatable` of the nodes not cordoned; a node without figures is left out.
pub fn allocatable(list: &serde_json::Value) -> Vec<Allocatable> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["spec"]["unschedulable"] != true)
        .filter_map(|n| {
            let a = &n["status"]["allocatable"];
            Some(Allocatable {
                cpu: millicores(a["cpu"].as_str()?)?,
                memory: bytes(a["memory"].as_str()?)?,
            })
        })
        .collect()
}

pub async fn apply_passwords(tools: &Tools, cx: &StageContext<'_>, p: &Passwords) -> Result<()> {
    let s = cx.settings;
    for v in p.data.values() {
        cx.reporter.redactor().add(v.clone());
    }
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let data: serde_json::Map<String, serde_json::Value> = p
        .data
        .iter()
        .map(|(k, v)| (k.to_string(), b64(v).into()))
        .collect();
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": password_secret(s), "namespace": s.helm.namespace,
                     "labels": {"app.kubernetes.io/managed-by": "jeeves"}},
        "data": data
    });
    succeeded(
        tools.apply_stdin(serde_json::to_vec(&doc)?).await?,
        &format!(
            "applying secret {}/{}",
            s.helm.namespace,
            password_secret(s)
        ),
    )?;
    cx.host(
        password_secret(s),
        "MongoDB users' passwords kept (never shown)",
    );
    Ok(())
}

pub async fn apply(tools: &Tools, cx: &StageContext<'_>, r: &Rendered) -> Result<()> {
    let path = r.path.display().to_string();
    succeeded(
        tools
            .kubectl(cx, &[&server_side("apply")[..], &[path.as_str()]].concat())
            .await?,
        "applying the MongoDBCommunity",
    )?;
    let annotation = format!("{HASH_ANNOTATION}={}", r.sha);
    succeeded(
        tools
            .kubectl(cx, &["annotate", "--overwrite", "-f", &path, &annotation])
            .await?,
        "recording the applied MongoDBCommunity's hash",
    )?;
    cx.host(cx.settings.mongodb.name.clone(), "MongoDBCommunity applied");
    Ok(())
}

/// Copies the operator's connection string into the chart's Secret when it differs; `true`
/// when a live Secret was replaced.
pub async fn copy_uri(tools: &Tools, cx: &StageContext<'_>) -> Result<bool> {
    let s = cx.settings;
    let ns = &s.helm.namespace;
    let conn_name = connection_secret(&s.mongodb.name);
    // The operator writes the Secret just after it reports Running: asked until it names every
    // member, within helm.timeout.
    let start = std::time::Instant::now();
    let data = loop {
        let conn = get_json(tools, cx, "secret", &conn_name, ns).await?;
        let data = secret_data(cx, &conn);
        if current_uri(&data, s.mongodb.members).is_some() {
            break data;
        }
        if start.elapsed() >= s.helm.timeout {
            bail!(
                "the operator has not written {CONNECTION_KEY} for {} member(s) in secret {ns}/{conn_name}, though the replica set runs: see `kubectl logs -n {} deployment/mongodb-kubernetes-operator`",
                s.mongodb.members,
                s.mongodb.operator_namespace
            );
        }
        tokio::time::sleep(super::status::POLL).await;
    };
    let uri = &data[CONNECTION_KEY];
    let live = super::super::secret::read(tools, cx).await?;
    if live.value(crate::chart::secret_keys::URI) == Some(uri.as_str()) {
        return Ok(false);
    }
    super::super::secret::apply(tools, cx, &MongoSecret::from_uri(uri.clone())).await?;
    Ok(live.exists())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_uri_for_another_member_count_is_not_current() {
        let data = |uri: &str| BTreeMap::from([(CONNECTION_KEY.to_string(), uri.to_string())]);
        let three = data(
            "mongodb://rc:p@db-0.db-svc.ns.svc.cluster.local:27017,db-1.db-svc.ns.svc.cluster.local:27017,db-2.db-svc.ns.svc.cluster.local:27017/rocketchat?replicaSet=db&ssl=false",
        );
        assert!(current_uri(&three, 3).is_some());
        assert!(current_uri(&three, 2).is_none());
        assert!(current_uri(&BTreeMap::new(), 3).is_none());
    }

    #[test]
    fn the_connection_secret_is_named_as_the_operator_names_it() {
        // `<name>-<db>-<user>`, GetConnectionStringSecretName.
        assert_eq!(
            connection_secret("rocketchat-db"),
            "rocketchat-db-rocketchat-rocketchat"
        );
        assert_eq!(
            user_connection_secret("rocketchat-db", "admin", "admin"),
            "rocketchat-db-admin-admin"
        );
    }

    #[test]
    fn allocatable_leaves_out_cordoned_nodes() {
        let list = json!({"items": [
            {"spec": {}, "status": {"allocatable": {"cpu": "2", "memory": "8008284Ki"}}},
            {"spec": {"unschedulable": true}, "status": {"allocatable": {"cpu": "2", "memory": "8Gi"}}},
            {"spec": {}, "status": {"allocatable": {"cpu": "1500m", "memory": "4Gi"}}},
        ]});
        assert_eq!(
            allocatable(&list),
            [
                Allocatable {
                    cpu: 2000,
                    memory: 8008284 * 1024
                },
                Allocatable {
                    cpu: 1500,
                    memory: 4 << 30
                }
            ]
        );
    }
}
