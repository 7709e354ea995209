//! `helm.mongodb = "operator"`: the replica set's phase and each member's health, read as the
//! deploy stage's wait reads them (`stages::deploy::MongodbStatus`), each problem with its repair.

use serde_json::Value;

use super::Finding;
use crate::config::Settings;
use crate::stages::deploy::MongodbStatus;

/// `cr`: the `MongoDBCommunity` (`None`: not found); `pods`: its members' pods (a List).
pub(super) fn findings(settings: &Settings, cr: Option<&Value>, pods: &Value) -> Vec<Finding> {
    let (ns, name) = (&settings.helm.namespace, &settings.mongodb.name);
    let check = format!("mongodb/{name}");
    let Some(cr) = cr else {
        return vec![Finding::fail(
            check,
            format!("no MongoDBCommunity {ns}/{name}: Rocket.Chat has no database"),
            "jeeves up --only deploy",
        )];
    };
    let status = MongodbStatus::of(cr, pods);
    let want = settings.mongodb.members;
    let mut out = vec![if status.ready(want, &settings.mongodb.version) {
        Finding::ok(
            check,
            format!(
                "phase Running, {want} member(s), MongoDB {}",
                status.version
            ),
        )
    } else if status.phase == "Failed" {
        Finding::fail(
            check,
            status.summary(),
            format!(
                "fix what the message names, then jeeves up --only deploy; the operator's log: kubectl logs -n {} deployment/mongodb-kubernetes-operator",
                settings.mongodb.operator_namespace
            ),
        )
    } else {
        Finding::fail(check, status.summary(), status.repair())
    }];
    for m in &status.members {
        let check = format!("mongodb/{}", m.pod);
        out.push(if m.ready {
            Finding::ok(check, "member ready")
        } else {
            Finding::fail(
                check,
                format!("member not ready: {}", m.why),
                format!(
                    "kubectl describe pod -n {ns} {} names the cause (image pull, volume, scheduling); once fixed the operator rejoins it",
                    m.pod
                ),
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CheckStatus;
    use serde_json::json;

    fn settings() -> Settings {
        Settings::load(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs([("JEEVES_HELM_MONGODB", "operator")]),
        )
        .unwrap()
    }

    fn pod(name: &str, waiting: Option<&str>) -> Value {
        let state = waiting.map_or(
            json!({"running": {}}),
            |r| json!({"waiting": {"reason": r}}),
        );
        json!({"metadata": {"name": name}, "status": {"phase": "Running",
            "containerStatuses": [{"ready": waiting.is_none(), "state": state}]}})
    }

    #[test]
    fn phase_and_members_with_their_repairs() {
        let s = settings();
        let running = json!({"status": {"phase": "Running", "currentMongoDBMembers": 3, "version": "8.0.12"}});
        let pods = json!({"items": [pod("rocketchat-db-0", None), pod("rocketchat-db-1", None), pod("rocketchat-db-2", None)]});
        let f = findings(&s, Some(&running), &pods);
        assert_eq!(f.len(), 4);
        assert!(f.iter().all(|f| f.status == CheckStatus::Ok), "{f:?}");

        let pending = json!({"status": {"phase": "Pending", "message": "ReplicaSet is not yet ready, retrying in 10 seconds"}});
        let pods = json!({"items": [pod("rocketchat-db-0", None), pod("rocketchat-db-1", Some("CrashLoopBackOff"))]});
        let f = findings(&s, Some(&pending), &pods);
        assert_eq!(f[0].status, CheckStatus::Fail);
        assert!(
            f[0].message.contains("phase Pending") && f[0].message.contains("retrying"),
            "{f:?}"
        );
        assert!(
            f[0].repair
                .as_deref()
                .unwrap()
                .contains("rocketchat-db-1 (CrashLoopBackOff)")
        );
        assert_eq!(f[2].check, "mongodb/rocketchat-db-1");
        assert_eq!(f[2].status, CheckStatus::Fail);
        assert!(
            f[2].repair
                .as_deref()
                .unwrap()
                .contains("kubectl describe pod -n psautoinfra rocketchat-db-1")
        );

        let failed = json!({"status": {"phase": "Failed", "message": "Error ensuring User config: user password secret: psautoinfra/rocketchat-db-passwords and scram secret: psautoinfra/rocketchat-db-admin-scram-credentials not found"}});
        let f = findings(&s, Some(&failed), &json!({"items": []}));
        assert!(f[0].message.contains("Error ensuring User config"), "{f:?}");
        assert!(
            f[0].repair
                .as_deref()
                .unwrap()
                .contains("jeeves up --only deploy")
        );

        let f = findings(&s, None, &json!({"items": []}));
        assert_eq!(f[0].status, CheckStatus::Fail);
        assert!(
            f[0].message
                .contains("no MongoDBCommunity psautoinfra/rocketchat-db")
        );
    }
}
