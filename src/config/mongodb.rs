//! `[mongodb]` checked: the replica set of `helm.mongodb = "operator"`, and whether its pods can
//! be scheduled at all.
//!
//! Scheduling is judged on requests, as the scheduler does: a pod's request is the larger of its
//! containers' sum and its largest init container (kubernetes/kubernetes `release-1.32`,
//! `pkg/api/v1/resource/helpers.go`, `PodRequests`). A member runs `mongod` and `mongodb-agent`
//! with two init containers (`mongod-posthook`, `mongodb-agent-readinessprobe`), each requesting
//! 0.5 CPU and 400M unless told otherwise (mongodb/mongodb-kubernetes 1.10.0,
//! `mongodb-community-operator/controllers/construct/mongodbstatefulset.go` and
//! `pkg/kube/resourcerequirements/resource_requirements.go`, `newDefaultRequirements`); the
//! operator requests 500m and 200Mi (`helm_chart/values.yaml`, `operator.resources`). Three
//! members and the operator: 3.5 CPU, more than two t3.large workers (2 × 2 CPU) have beside
//! Rocket.Chat. Jeeves sets all of them (the init containers get the agent's figures):
//!
//! ```text
//!                     CPU     memory
//! member  mongod      250m     768Mi
//!         agent        50m     192Mi
//!         = pod       300m     960Mi   (init containers 50m/192Mi each: below the sum)
//! 3 members           900m    2880Mi
//! operator            100m     192Mi
//! MongoDB in all     1000m    3072Mi   of 2 × t3.large: 4000m, 2 × 7.6Gi allocatable
//! ```
//!
//! which leaves the workers 3000m and ~12Gi for Rocket.Chat, its microservices, NATS and
//! Traefik. The rule `fits` applies: MongoDB may take at most half of the workers' allocatable
//! CPU and memory (the other half is Rocket.Chat's), each member must fit one node, and with
//! `anti_affinity = "required"` there must be a node per member.

use serde::Serialize;

pub use super::pipeline::MongodbResources as Resources;

/// How many members, how spread, how big.
#[derive(Debug, Clone, Serialize)]
pub struct MongodbSettings {
    pub operator_chart: String,
    pub operator_repo: String,
    /// `operator_chart` names a chart on disk, used as is (no `--repo`).
    pub operator_local_chart: Option<std::path::PathBuf>,
    pub operator_version: String,
    pub operator_release: String,
    pub operator_namespace: String,
    pub name: String,
    pub version: String,
    pub image_type: String,
    pub members: u32,
    pub anti_affinity: AntiAffinity,
    pub storage_class: String,
    pub storage_size: String,
    pub mongod: Resources,
    pub agent: Resources,
    pub operator: Resources,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AntiAffinity {
    None,
    Preferred,
    Required,
}

/// What one node offers pods: CPU in millicores, memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocatable {
    pub cpu: u64,
    pub memory: u64,
}

/// Allocatable of the EC2 instance types Jeeves' terraform offers workers, as MicroK8s leaves
/// them: no `kube-reserved`/`system-reserved` in its kubelet arguments, so CPU is the vCPUs and
/// memory the instance's less the kubelet's hard eviction threshold (`memory.available<100Mi`,
/// kubernetes/kubernetes `pkg/kubelet/eviction/defaults_linux.go`) and what the kernel keeps
/// (an m5/t3 with 8 GiB shows ~7.6 GiB of `MemTotal`).
pub fn instance_allocatable(instance_type: &str) -> Option<Allocatable> {
    const GI: u64 = 1 << 30;
    let (cpu, memory_gi) = match instance_type {
        "t3.medium" | "t3a.medium" => (2, 4),
        "t3.large" | "t3a.large" | "m5.large" | "m6i.large" | "m7i.large" => (2, 8),
        "t3.xlarge" | "t3a.xlarge" | "m5.xlarge" | "m6i.xlarge" | "m7i.xlarge" => (4, 16),
        "t3.2xlarge" | "t3a.2xlarge" | "m5.2xlarge" | "m6i.2xlarge" | "m7i.2xlarge" => (8, 32),
        _ => return None,
    };
    Some(Allocatable {
        cpu: cpu * 1000,
        memory: memory_gi * GI * 95 / 100 - 100 * (1 << 20),
    })
}

/// A CPU quantity in millicores (`250m`, `1`, `0.5`).
pub fn millicores(q: &str) -> Option<u64> {
    if let Some(m) = q.strip_suffix('m') {
        return m.parse().ok();
    }
    let v: f64 = q.parse().ok()?;
    (v >= 0.0).then(|| (v * 1000.0).round() as u64)
}

/// A memory quantity in bytes (`768Mi`, `1Gi`, `400M`, `1024`).
pub fn bytes(q: &str) -> Option<u64> {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let factor: u64 = match &q[digits.len()..] {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    let v: f64 = digits.parse().ok()?;
    (v >= 0.0).then(|| (v * factor as f64).round() as u64)
}

fn request(r: &Resources) -> Allocatable {
    Allocatable {
        cpu: millicores(&r.cpu).unwrap_or(0),
        memory: bytes(&r.memory).unwrap_or(0),
    }
}

impl MongodbSettings {
    /// One member's pod request: its two containers, or its largest init container (both init
    /// containers get the agent's resources).
    pub fn member_request(&self) -> Allocatable {
        let (m, a) = (request(&self.mongod), request(&self.agent));
        Allocatable {
            cpu: (m.cpu + a.cpu).max(a.cpu),
            memory: (m.memory + a.memory).max(a.memory),
        }
    }

    /// The operator's and every member's requests together.
    pub fn total_request(&self) -> Allocatable {
        let (m, o) = (self.member_request(), request(&self.operator));
        Allocatable {
            cpu: m.cpu * u64::from(self.members) + o.cpu,
            memory: m.memory * u64::from(self.members) + o.memory,
        }
    }

    /// Whether the replica set can be scheduled on these workers (`where_` says whose figures
    /// they are, for the message): `Err((key, why))` names the setting to change.
    pub fn fits(&self, nodes: &[Allocatable], where_: &str) -> Result<(), (&'static str, String)> {
        let gib = |b: u64| format!("{:.1}Gi", b as f64 / f64::from(1u32 << 30));
        let member = self.member_request();
        let total = self.total_request();
        let roomy = nodes
            .iter()
            .filter(|n| n.cpu >= member.cpu && n.memory >= member.memory)
            .count();
        if roomy == 0 {
            return Err((
                "mongodb.mongod",
                format!(
                    "one member requests {}m CPU and {} (mongod + agent), more than any node has ({where_}): lower mongodb.mongod/mongodb.agent or use larger workers",
                    member.cpu,
                    gib(member.memory)
                ),
            ));
        }
        if self.anti_affinity == AntiAffinity::Required && roomy < self.members as usize {
            return Err((
                "mongodb.members",
                format!(
                    "{} members with anti_affinity = \"required\" need {} nodes that can each hold one, and there are {roomy} ({where_}): lower mongodb.members, add workers, or use anti_affinity = \"preferred\"",
                    self.members, self.members
                ),
            ));
        }
        let (cpu, memory): (u64, u64) = (
            nodes.iter().map(|n| n.cpu).sum(),
            nodes.iter().map(|n| n.memory).sum(),
        );
        if total.cpu * 2 > cpu || total.memory * 2 > memory {
            return Err((
                "mongodb.members",
                format!(
                    "the operator and {} members request {}m CPU and {}, more than half of what the workers offer ({where_}: {}m, {}); the other half is Rocket.Chat's: lower mongodb.members or mongodb.mongod/agent/operator, or add workers",
                    self.members,
                    total.cpu,
                    gib(total.memory),
                    cpu,
                    gib(memory)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MongodbSettings {
        let raw = super::super::pipeline::Mongodb::default();
        MongodbSettings {
            operator_chart: raw.operator_chart,
            operator_repo: raw.operator_repo,
            operator_local_chart: None,
            operator_version: raw.operator_version,
            operator_release: raw.operator_release,
            operator_namespace: raw.operator_namespace,
            name: raw.name,
            version: raw.version,
            image_type: raw.image_type,
            members: raw.members,
            anti_affinity: AntiAffinity::None,
            storage_class: raw.storage_class,
            storage_size: raw.storage_size,
            mongod: raw.mongod,
            agent: raw.agent,
            operator: raw.operator,
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(millicores("250m"), Some(250));
        assert_eq!(millicores("1"), Some(1000));
        assert_eq!(millicores("0.5"), Some(500));
        assert_eq!(millicores("x"), None);
        assert_eq!(bytes("768Mi"), Some(768 << 20));
        assert_eq!(bytes("400M"), Some(400_000_000));
        assert_eq!(bytes("1Gi"), Some(1 << 30));
        assert_eq!(bytes("1Qi"), None);
    }

    /// The table in this module's comment.
    #[test]
    fn the_defaults_fit_two_t3_large_workers_with_room_for_rocket_chat() {
        let s = settings();
        assert_eq!(s.members, 3);
        assert_eq!(
            s.member_request(),
            Allocatable {
                cpu: 300,
                memory: 960 << 20
            }
        );
        assert_eq!(
            s.total_request(),
            Allocatable {
                cpu: 1000,
                memory: 3072 << 20
            }
        );
        let t3 = instance_allocatable("t3.large").unwrap();
        assert_eq!(s.fits(&[t3, t3], "2 × t3.large"), Ok(()));
        // One worker: 1000m is more than half of 2000m? No, exactly half: still fits; with
        // required anti-affinity it does not (three members, one node).
        assert_eq!(s.fits(&[t3], "1 × t3.large"), Ok(()));
        let spread = MongodbSettings {
            anti_affinity: AntiAffinity::Required,
            ..s.clone()
        };
        let err = spread.fits(&[t3, t3], "2 × t3.large").unwrap_err();
        assert_eq!(err.0, "mongodb.members");
        assert!(err.1.contains("need 3 nodes"), "{}", err.1);
    }

    /// The operator's own defaults (1.10.0: 500m per container and per operator) are refused on
    /// two t3.large: 3.5 CPU of 4.
    #[test]
    fn the_operators_defaults_do_not_fit() {
        let half = Resources {
            cpu: "500m".into(),
            memory: "400M".into(),
            cpu_limit: "1".into(),
            memory_limit: "500M".into(),
        };
        let s = MongodbSettings {
            mongod: half.clone(),
            agent: half,
            operator: Resources {
                cpu: "500m".into(),
                memory: "200Mi".into(),
                cpu_limit: "1100m".into(),
                memory_limit: "1Gi".into(),
            },
            ..settings()
        };
        assert_eq!(s.total_request().cpu, 3500);
        let t3 = instance_allocatable("t3.large").unwrap();
        let err = s.fits(&[t3, t3], "2 × t3.large").unwrap_err();
        assert_eq!(err.0, "mongodb.members");
        assert!(err.1.contains("3500m CPU"), "{}", err.1);
        // A member bigger than any node.
        let huge = MongodbSettings {
            mongod: Resources {
                cpu: "3".into(),
                ..settings().mongod
            },
            ..settings()
        };
        assert_eq!(huge.fits(&[t3, t3], "x").unwrap_err().0, "mongodb.mongod");
    }
}
