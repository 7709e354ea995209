//! `helm.mongodb = "operator"`: MongoDB Controllers for Kubernetes (chart `mongodb-kubernetes`,
//! pinned) and the `MongoDBCommunity` replica set Rocket.Chat uses.
//!
//! In the order `apply` runs them: the chart's CRDs, applied server-side from the chart itself
//! (helm installs `crds/` on the first install only and never upgrades them, so Jeeves applies
//! them before every install or upgrade whose CRDs changed: the live CRDs carry the hash of what
//! was applied); the operator's release; the users' passwords (generated once, kept in a Secret
//! Jeeves manages, never printed); the `MongoDBCommunity`; a wait for its `Running` phase; then
//! the operator's connection string copied into the Secret the Rocket.Chat chart reads
//! (`existingMongodbSecret`, key `mongo-uri`) — all before the Rocket.Chat release.
//!
//! Why a copy: the operator writes the URI under `connectionString.standard` in a Secret named
//! `<name>-<user db>-<user>` (mongodb/mongodb-kubernetes 1.10.0,
//! `mongodb-community-operator/controllers/mongodb_users.go`, `updateConnectionStringSecrets`;
//! the name from `api/v1/mongodbcommunity_types.go`, `GetConnectionStringSecretName`), and the
//! chart reads the key `mongo-uri`; no operator setting renames the key. The copy is the URI the
//! operator wrote, byte for byte, so a password the operator rotates reaches Rocket.Chat on the
//! next `up` (and its pods roll).

use anyhow::Result;

use crate::config::{MongodbMode, Settings};
use crate::kube::Tools;
use crate::report::Change;
use crate::stage::StageContext;
use crate::templates::{MongodbContext, TemplateContext, Templates};

mod operator;
mod replica_set;
mod status;

pub use replica_set::{CONNECTION_KEY, connection_secret};
pub use status::{Status, read_status};

/// Rocket.Chat's MongoDB user, and the database it is defined in and writes to.
pub const USER: &str = "rocketchat";

/// The admin user the operator creates beside Rocket.Chat's (`templates/mongodb/`), defined in
/// `admin`: the backup Job's user in operator mode.
pub const ADMIN_USER: &str = "admin";

/// Where the backup Job reads its connection string, and the database a restore restores.
pub struct BackupSource {
    pub secret: String,
    pub key: &'static str,
    /// Empty: the URI's own database (external and bundled: Rocket.Chat's URI).
    pub database: String,
}

/// The backup Job's URI: in operator mode the admin user's connection string, whose roles
/// (`backup`, `restore`) let `mongodump --oplog` read `local.oplog.rs` and
/// `config.transactions`, which Rocket.Chat's user may not (MongoDB manual, "Built-In Roles");
/// a restore then restores Rocket.Chat's database only. Elsewhere the Secret Rocket.Chat reads.
pub fn backup_source(s: &Settings) -> BackupSource {
    match s.helm.mongodb {
        MongodbMode::Operator => BackupSource {
            secret: replica_set::user_connection_secret(&s.mongodb.name, "admin", ADMIN_USER),
            key: CONNECTION_KEY,
            database: USER.into(),
        },
        _ => BackupSource {
            secret: s.helm.mongodb_secret.clone(),
            key: crate::chart::secret_keys::URI,
            database: String::new(),
        },
    }
}

/// The Secret holding the users' passwords (keys: `rocketchat`, `admin`).
pub fn password_secret(s: &Settings) -> String {
    format!("{}-passwords", s.mongodb.name)
}

/// What `templates/mongodb/` gets: `None` unless `helm.mongodb = "operator"`.
pub fn context(s: &Settings) -> Option<MongodbContext> {
    let m = &s.mongodb;
    (s.helm.mongodb == MongodbMode::Operator).then(|| MongodbContext {
        operator_version: m.operator_version.clone(),
        name: m.name.clone(),
        version: m.version.clone(),
        image_type: m.image_type.clone(),
        members: m.members,
        anti_affinity: m.anti_affinity,
        affinity: m.anti_affinity != crate::config::AntiAffinity::None,
        required: m.anti_affinity == crate::config::AntiAffinity::Required,
        storage_class: m.storage_class.clone(),
        storage_size: m.storage_size.clone(),
        mongod: m.mongod.clone(),
        agent: m.agent.clone(),
        operator: m.operator.clone(),
        user: USER.into(),
        password_secret: password_secret(s),
    })
}

/// The operator's values and the `MongoDBCommunity`, rendered into `<state>/deploy/` (no
/// secrets in either).
pub struct Rendered {
    operator: operator::Rendered,
    replica_set: replica_set::Rendered,
}

impl Rendered {
    pub fn render(
        templates: &Templates,
        ctx: &TemplateContext,
        dir: &std::path::Path,
    ) -> Result<Option<Rendered>> {
        if ctx.mongodb.is_none() {
            return Ok(None);
        }
        Ok(Some(Rendered {
            operator: operator::Rendered::render(templates, ctx, dir)?,
            replica_set: replica_set::Rendered::render(templates, ctx, dir)?,
        }))
    }

    pub fn write(&self) -> Result<()> {
        self.operator.write()?;
        self.replica_set.write()
    }
}

/// One thing `apply` does for the database, in this order.
pub enum Step {
    /// `helm show crds` of the pinned chart, applied server-side, Established, hash recorded.
    Crds,
    /// `helm upgrade --install` of the operator.
    Operator,
    /// The passwords Secret: missing keys generated (the live ones kept).
    Passwords(replica_set::Passwords),
    /// The `MongoDBCommunity`, applied server-side, hash recorded.
    ReplicaSet,
    /// Until `status.phase` is `Running` with every member (bounded by `helm.timeout`).
    AwaitRunning,
    /// The operator's connection string into the chart's Secret (`mongo-uri`).
    CopyUri,
}

/// What the probe found: the steps, the plan's lines, and whether Rocket.Chat's pods must roll
/// (the URI they read changed).
pub struct Plan {
    pub steps: Vec<Step>,
    pub changes: Vec<Change>,
    pub restart: bool,
    /// The live `MongoDBCommunity` (None: not created yet).
    pub replica_set: Option<serde_json::Value>,
}

/// Reads the operator's release, its CRDs, the live replica set and the Secrets, and plans.
/// Refuses (exit 2) a topology whose requests the live nodes cannot schedule.
pub async fn probe(
    tools: &Tools,
    cx: &StageContext<'_>,
    rendered: &Rendered,
    app_secret: &super::secret::Live,
    force: bool,
) -> Result<Plan> {
    let (fits, crds, release, rs) = tokio::join!(
        replica_set::check_fits(tools, cx),
        operator::probe_crds(tools, cx, &rendered.operator),
        operator::probe_release(tools, cx, &rendered.operator),
        replica_set::probe(tools, cx, &rendered.replica_set, app_secret),
    );
    fits?;
    let (crds, release, rs) = (crds?, release?, rs?);
    let mut plan = Plan {
        steps: Vec::new(),
        changes: Vec::new(),
        restart: rs.restart,
        replica_set: rs.live.clone(),
    };
    if let Some(change) = crds.or_else(|| force.then(|| operator::crds_change(cx))) {
        plan.steps.push(Step::Crds);
        plan.changes.push(change);
    }
    if let Some(change) = release.or_else(|| force.then(|| operator::release_change(cx, None))) {
        plan.steps.push(Step::Operator);
        plan.changes.push(change);
    }
    if let Some((passwords, change)) = rs.passwords {
        plan.steps.push(Step::Passwords(passwords));
        plan.changes.push(change);
    }
    let replica_set = rs.replica_set.or_else(|| force.then(|| rs.forced.clone()));
    let changed = replica_set.is_some() || !plan.steps.is_empty();
    if let Some(change) = replica_set {
        plan.steps.push(Step::ReplicaSet);
        plan.changes.push(change);
    }
    // Anything changed, or the replica set not Running now: wait for it before Rocket.Chat.
    if changed || !rs.running {
        plan.steps.push(Step::AwaitRunning);
        plan.changes.push(Change::new(
            "wait",
            format!(
                "MongoDBCommunity {}/{} phase Running with {} member(s) (up to helm.timeout)",
                cx.settings.helm.namespace, cx.settings.mongodb.name, cx.settings.mongodb.members
            ),
        ));
    }
    if let Some(change) = rs.copy {
        plan.steps.push(Step::CopyUri);
        plan.changes.push(change);
    } else if changed || !rs.running {
        // The operator rewrites its Secret as it reconciles: copied again after the wait, and
        // applied only if it differs.
        plan.steps.push(Step::CopyUri);
    }
    Ok(plan)
}

/// Runs one step; `true` when Rocket.Chat's Secret was replaced (its pods must roll).
pub async fn apply(tools: &Tools, cx: &StageContext<'_>, r: &Rendered, step: Step) -> Result<bool> {
    match step {
        Step::Crds => operator::apply_crds(tools, cx, &r.operator).await?,
        Step::Operator => operator::upgrade(tools, cx, &r.operator).await?,
        Step::Passwords(p) => replica_set::apply_passwords(tools, cx, &p).await?,
        Step::ReplicaSet => replica_set::apply(tools, cx, &r.replica_set).await?,
        Step::AwaitRunning => status::await_running(tools, cx).await?,
        Step::CopyUri => return replica_set::copy_uri(tools, cx).await,
    }
    Ok(false)
}
