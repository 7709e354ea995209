//! `terraform/aws` through Jeeves on the real `hashicorp/aws` provider (5.100.0, from the
//! filesystem mirror in `MIRROR`), AWS on moto (`tests/moto`): the S3 backend with
//! `use_lockfile`, EC2 and Route 53. One scenario, each step building on the one before (a
//! terraform apply on moto takes 10 s or more: instances are waited for), each step a function
//! named after what it proves.
//!
//! moto's account here is Canonical's (`MOTO_ACCOUNT_ID`), so that an image the test creates is
//! one the module's lookup (`owners = ["099720109477"]`) finds: that is how a newer Canonical
//! image gets published mid-test. Its only image at the start (`MOTO_AMIS_PATH`) is a Canonical
//! jammy one: there is none for noble, the release the module looks up.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use aws_sdk_ec2::types::Filter;
use common::{Moto, Run, Test, block_on};

/// Where the provider must be: a filesystem mirror in the unpacked layout.
const MIRROR: &str = "/opt/tf-plugins";
const PROVIDER: &str = "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64";
const CANONICAL: &str = "099720109477";
/// The image the stack is first built from (`ami_id`): Canonical's, but jammy.
const BASE_AMI: &str = "ami-0123456789abcdef0";
const BUCKET: &str = "jeeves-tfstate";
const STATE_KEY: &str = "jeeves/aws.tfstate";
const PROJECT: &str = "jeeves-aws";

/// What the module tags every resource it makes with (`Project`).
fn tagged() -> Filter {
    Filter::builder()
        .name("tag:Project")
        .values(PROJECT)
        .build()
}
const DOMAIN: &str = "chat.jeeves.test";
/// `<project>-backup-<account id>` (terraform/aws/backup.tf).
const BACKUP_BUCKET: &str = "jeeves-aws-backup-099720109477";
/// Not a secret: the public half of a throwaway key (EC2 ImportKeyPair parses it).
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAsm/l4ciHtvAWHh2qtFAaYEx2W5ksrrlhQiRIoF0rQG jeeves-test";

/// The module's variables a step changes.
struct Vars {
    ami_id: String,
    worker_count: u32,
    create_vpc: bool,
}

/// An EC2 instance of the stack, as moto describes it.
#[derive(Debug, Clone, PartialEq)]
struct Instance {
    id: String,
    name: String,
    image: String,
    state: String,
    public_ip: Option<String>,
}

struct Stack {
    moto: Moto,
    t: Test,
    ec2: aws_sdk_ec2::Client,
    s3: aws_sdk_s3::Client,
    r53: aws_sdk_route53::Client,
}

impl Stack {
    fn new() -> Stack {
        let provider = Path::new(MIRROR).join(PROVIDER);
        assert!(
            provider
                .join("terraform-provider-aws_v5.100.0_x5")
                .is_file(),
            "the hashicorp/aws 5.100.0 provider must be in the filesystem mirror {MIRROR}: \
             {}/terraform-provider-aws_v5.100.0_x5 is missing (unzip the provider's \
             linux_amd64 release there)",
            provider.display()
        );
        let amis = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(amis.path(), base_amis()).unwrap();
        let moto = Moto::start_with(&[
            ("MOTO_AMIS_PATH", amis.path().to_str().unwrap()),
            ("MOTO_ACCOUNT_ID", CANONICAL),
        ]);
        let sdk = moto.sdk();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        block_on(s3.create_bucket().bucket(BUCKET).send()).unwrap();
        let mut t = Test::new();
        common::copy_dir(
            &common::repo().join("terraform/aws"),
            &t.path("terraform/aws"),
        );
        t.with_key();
        moto.env_for(&mut t);
        // A CLI configuration of the test's own: the provider from the mirror, nothing from the
        // network. terraform links the mirror's unpacked provider into `.terraform` (no copy).
        t.write(
            "terraform.tfrc",
            &format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path = \"{MIRROR}\"\n  }}\n}}\ndisable_checkpoint = true\n"
            ),
        );
        // Every SSH login goes to a closed loopback port: moto's public IPs are real addresses.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        t.write(
            "ssh_config",
            &format!("Host *\n  HostName 127.0.0.1\n  Port {closed}\n"),
        );
        let tfrc = t.path("terraform.tfrc").display().to_string();
        t.env("TF_CLI_CONFIG_FILE", &tfrc).pipeline("aws");
        let stack = Stack {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            r53: aws_sdk_route53::Client::new(&sdk),
            moto,
            t,
            s3,
        };
        stack.vars(&Vars {
            ami_id: BASE_AMI.into(),
            worker_count: 2,
            create_vpc: false,
        });
        stack
    }

    /// Writes `pipelines/aws.toml` with these variables.
    fn vars(&self, v: &Vars) {
        let endpoint = self.moto.endpoint();
        self.t.write(
            "pipelines/aws.toml",
            &format!(
                r#"[project]
name = "{PROJECT}"
region = "us-east-1"
templates = "../templates"
tags = {{ Owner = "tests" }}

[terraform]
dir = "../terraform/aws"
timeout = "2m"
[terraform.vars]
ami_id = "{ami}"
worker_count = {workers}
create_vpc = {vpc}
admin_cidr = "203.0.113.0/24"
ssh_public_key = "{PUBLIC_KEY}"
[terraform.backend_config]
bucket = "{BUCKET}"
key = "{STATE_KEY}"
use_lockfile = "true"
use_path_style = "true"
endpoints = '{{ s3 = "{endpoint}" }}'

[ssh]
user = "ubuntu"
key_path = "../.jeeves/lab-hosts/id_ed25519"
connect_timeout = "2s"
pin_from_console = false
ssh_config = "../ssh_config"

[tls]
domain = "{DOMAIN}"
email = "ops@jeeves.test"

[traefik]
crds = "../tests/fixtures/traefik/traefik-v3.3.4-kubernetes-crd-definition-v1.yml"

[helm]
chart = "../tests/fixtures/charts/rocketchat-7.0.2.tgz"
version = "7.0.2"
mongodb = "bundled"
"#,
                ami = v.ami_id,
                workers = v.worker_count,
                vpc = v.create_vpc,
            ),
        );
    }

    fn run(&self, args: &[&str]) -> Run {
        self.t.run(args)
    }

    /// The stack's instances that are not terminated, by Name.
    fn instances(&self) -> Vec<Instance> {
        let reply = block_on(self.ec2.describe_instances().filters(tagged()).send()).unwrap();
        let mut found: Vec<_> = reply
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| {
                let state = i.state()?.name()?.as_str().to_string();
                let name = i.tags().iter().find(|t| t.key() == Some("Name"))?.value()?;
                (state != "terminated").then(|| Instance {
                    id: i.instance_id().unwrap().to_string(),
                    name: name.to_string(),
                    image: i.image_id().unwrap_or_default().to_string(),
                    state,
                    public_ip: i.public_ip_address().map(str::to_string),
                })
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found
    }

    fn ids(&self) -> BTreeSet<String> {
        self.instances().into_iter().map(|i| i.id).collect()
    }

    /// The terraform state object in the bucket.
    fn tfstate(&self) -> serde_json::Value {
        let body = block_on(async {
            let out = self
                .s3
                .get_object()
                .bucket(BUCKET)
                .key(STATE_KEY)
                .send()
                .await
                .unwrap();
            out.body.collect().await.unwrap().into_bytes()
        });
        serde_json::from_slice(&body).unwrap()
    }

    /// The Elastic IPs: (public IP, instance id).
    fn addresses(&self) -> Vec<(String, String)> {
        let reply = block_on(self.ec2.describe_addresses().send()).unwrap();
        reply
            .addresses()
            .iter()
            .map(|a| {
                (
                    a.public_ip().unwrap_or_default().to_string(),
                    a.instance_id().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// `jeeves check`'s findings: check → (status, message).
    fn check(&self) -> std::collections::BTreeMap<String, (String, String)> {
        let run = self.run(&["--output", "json", "check"]);
        assert!(
            run.code == 0 || run.code == 1,
            "check: exit {}\n{}",
            run.code,
            run.stderr
        );
        run.events()
            .into_iter()
            .filter(|e| e["event"] == "check_finished")
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (s("check"), (s("status"), s("message")))
            })
            .collect()
    }
}

/// `MOTO_AMIS_PATH`: moto's images at start (moto/ec2/models/amis.py reads the file at import,
/// in place of its own list): one Canonical image, jammy's, none for noble.
fn base_amis() -> String {
    serde_json::json!([{
        "ami_id": BASE_AMI,
        "name": "ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20250110",
        "description": "Canonical, Ubuntu, 22.04, amd64 jammy image",
        "owner_id": CANONICAL,
        "public": true,
        "state": "available",
        "virtualization_type": "hvm",
        "architecture": "x86_64",
        "hypervisor": "xen",
        "image_type": "machine",
        "root_device_type": "ebs",
        "root_device_name": "/dev/sda1",
        // No creation_date: moto 5.2.1 parses it in place in the list its EC2 backends share,
        // and a backend loaded after the first fails on the parsed value (tests/moto/README.md).
        // Without one the image is dated when moto loads it, before the one the test publishes.
    }])
    .to_string()
}

/// A step of the scenario: its name in messages, and what it runs.
type Step = (&'static str, fn(&Stack));

/// The whole life of a stack, one step after another (each step's function says what it proves;
/// a failing step names itself in its message).
#[test]
fn terraform_aws_on_the_real_provider_through_jeeves() {
    // The suite's critical path (docs/tests.md, "Where the time goes"): about 200 s alone, of
    // which 130 CPU-seconds, beside tests that have time to spare on two busy cores. It starts
    // first (.config/nextest.toml) and runs ahead of them: jeeves, terraform and the provider
    // inherit this thread's priority. Only root may raise it (CI runs as root).
    let raised = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -10) };
    assert!(
        raised == 0 || unsafe { libc::geteuid() } != 0,
        "setpriority: {}",
        std::io::Error::last_os_error()
    );
    let s = Stack::new();
    let steps: [Step; 9] = [
        (
            "ami_id set: no image lookup",
            up_with_ami_id_set_builds_the_stack_without_an_image_lookup,
        ),
        ("inventory", the_inventory_holds_ids_hostnames_and_the_eip),
        (
            "backup bucket",
            the_backup_bucket_is_private_and_the_nodes_may_use_only_their_prefix,
        ),
        ("re-run unchanged", a_rerun_is_unchanged),
        (
            "newer image; plan answers 0",
            a_newer_canonical_image_changes_nothing_and_plan_answers_0,
        ),
        (
            "replace refused",
            a_change_that_replaces_instances_is_refused_without_allow_replace,
        ),
        (
            "worker_count 2 → 3",
            worker_count_2_to_3_adds_one_instance_and_touches_no_other,
        ),
        (
            "stop/start/check",
            stop_start_and_check_follow_the_instances,
        ),
        ("down", down_leaves_no_resource_and_no_record),
    ];
    for (name, step) in steps {
        let started = std::time::Instant::now();
        step(&s);
        // What each step costs (docs/tests.md, "Tests"); shown with --no-capture.
        eprintln!("[{name}] {:.1}s", started.elapsed().as_secs_f64());
    }
}

/// There is no noble image in moto: with `ami_id` set the module must not look one up.
fn up_with_ami_id_set_builds_the_stack_without_an_image_lookup(s: &Stack) {
    let up = s.run(&["--output", "json", "up", "--only", "terraform"]);
    assert_eq!(
        up.code, 0,
        "[ami_id set: no image lookup] `up --only terraform` failed (a lookup of Canonical's noble image fails the plan):\n{}",
        up.stderr
    );
    assert_eq!(up.stage_result("terraform"), "changed");
    let planned = up.planned("terraform");
    // 12 for the cluster, 8 for the backups (backup.tf: the bucket and its 4 settings, the
    // nodes' role, its policy and instance profile).
    assert_eq!(planned.len(), 20, "[builds the stack] {planned:#?}");
    assert!(
        planned.iter().all(|c| c.starts_with("create ")),
        "[builds the stack] {planned:#?}"
    );
    let instances = s.instances();
    let names: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "jeeves-aws-controller",
            "jeeves-aws-worker-1",
            "jeeves-aws-worker-2"
        ],
        "[builds the stack] instances in EC2"
    );
    assert!(
        instances
            .iter()
            .all(|i| i.image == BASE_AMI && i.state == "running"),
        "[ami_id set] every instance runs ami_id's image: {instances:?}"
    );
}

fn the_inventory_holds_ids_hostnames_and_the_eip(s: &Stack) {
    let inv = s.t.state()["inventory"].clone();
    let ids: BTreeSet<String> = std::iter::once(&inv["controller"])
        .chain(inv["workers"].as_array().unwrap())
        .map(|h| {
            let hostname = h["hostname"].as_str().unwrap();
            // The node name MicroK8s uses: the private DNS name's first label.
            let ip = h["private_ip"].as_str().unwrap().replace('.', "-");
            assert_eq!(hostname, format!("ip-{ip}"), "[inventory] hostname of {h}");
            assert!(
                h["public_ip"].as_str().is_some_and(|ip| !ip.is_empty()),
                "[inventory] public_ip of {h}"
            );
            h["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        ids,
        s.ids(),
        "[inventory] the instance ids are EC2's: {inv}"
    );
    assert_eq!(inv["workers"].as_array().unwrap().len(), 2, "{inv}");
    let eip = s.addresses();
    assert_eq!(
        eip,
        [(
            inv["controller"]["public_ip"].as_str().unwrap().to_string(),
            inv["controller"]["id"].as_str().unwrap().to_string()
        )],
        "[inventory] the controller's public_ip is its Elastic IP: {inv}"
    );
    let status = s.run(&["--output", "json", "status"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["inventory"], inv, "[inventory] status --output json");
}

fn a_rerun_is_unchanged(s: &Stack) {
    let tfstate = s.tfstate();
    let again = s.run(&["--output", "json", "up", "--only", "terraform"]);
    assert_eq!(
        again.code,
        0,
        "[re-run unchanged] the second `up` failed (planned {:?}):\n{}",
        again.planned("terraform"),
        again.stderr
    );
    assert_eq!(
        again.stage_result("terraform"),
        "unchanged",
        "[re-run unchanged] planned: {:?}",
        again.planned("terraform")
    );
    assert!(
        !again.events().iter().any(|e| e["event"] == "host_progress"),
        "[re-run unchanged] nothing was applied"
    );
    assert_eq!(
        s.tfstate()["serial"],
        tfstate["serial"],
        "[re-run unchanged]"
    );
}

/// Canonical publishes a newer noble image (here: CreateImage in Canonical's account) and the
/// module looks it up (`ami_id` empty): the instances keep theirs (`ignore_changes = [ami]`), so
/// `plan --detailed-exitcode` answers 0 (no change pending; one terraform run for both claims).
fn a_newer_canonical_image_changes_nothing_and_plan_answers_0(s: &Stack) {
    let controller = s.instances()[0].id.clone();
    let image = block_on(
        s.ec2
            .create_image()
            .instance_id(&controller)
            .name("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260101")
            .send(),
    )
    .unwrap();
    let newer = image.image_id().unwrap().to_string();
    s.vars(&Vars {
        ami_id: String::new(),
        worker_count: 2,
        create_vpc: false,
    });
    let plan = s.run(&[
        "--output",
        "json",
        "plan",
        "--detailed-exitcode",
        "--only",
        "terraform",
    ]);
    assert_eq!(
        plan.code,
        0,
        "[newer image; plan --detailed-exitcode answers 0] a newer Canonical image ({newer}) changes nothing: {:?}\n{}",
        plan.planned("terraform"),
        plan.stderr
    );
    // The lookup does see it: worker_count_2_to_3 checks that a new worker gets it.
    NEWER.set(newer).unwrap();
}

static NEWER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn a_change_that_replaces_instances_is_refused_without_allow_replace(s: &Stack) {
    let before = (s.instances(), s.tfstate(), vpcs(s));
    s.vars(&Vars {
        ami_id: String::new(),
        worker_count: 2,
        create_vpc: true,
    });
    let refused = s.run(&["up", "--only", "terraform"]);
    assert_eq!(
        refused.code, 2,
        "[replace refused] exit 2 without --allow-replace:\n{}\n{}",
        refused.stdout, refused.stderr
    );
    for address in [
        "replace aws_instance.controller",
        "replace aws_instance.worker[0]",
        "replace aws_instance.worker[1]",
    ] {
        assert!(
            refused.stderr.contains(address),
            "[replace refused] names {address}:\n{}",
            refused.stderr
        );
    }
    assert!(
        refused.stderr.contains("Nothing was applied"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        (s.instances(), s.tfstate(), vpcs(s)),
        before,
        "[replace refused] nothing applied: instances, terraform state and VPCs as before"
    );
    s.vars(&Vars {
        ami_id: String::new(),
        worker_count: 2,
        create_vpc: false,
    });
}

fn vpcs(s: &Stack) -> usize {
    block_on(s.ec2.describe_vpcs().send()).unwrap().vpcs().len()
}

fn worker_count_2_to_3_adds_one_instance_and_touches_no_other(s: &Stack) {
    let before = s.instances();
    s.vars(&Vars {
        ami_id: String::new(),
        worker_count: 3,
        create_vpc: false,
    });
    let saved = s.t.path("approved.plan");
    let saved = saved.to_str().unwrap();
    let plan = s.run(&[
        "--output",
        "json",
        "plan",
        "--detailed-exitcode",
        "--only",
        "terraform",
        "--out",
        saved,
    ]);
    assert_eq!(plan.code, 2, "[plan --detailed-exitcode] 2 after a change");
    assert_eq!(
        plan.planned("terraform"),
        ["create aws_instance.worker[2]"],
        "[worker_count 2 → 3] the plan"
    );
    // Canonical publishes yet another image after the plan was saved: the new worker would be
    // made from it, not from the image approved. `up --plan` refuses, naming it.
    let newest = block_on(
        s.ec2
            .create_image()
            .instance_id(&before[0].id)
            .name("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260201")
            .send(),
    )
    .unwrap()
    .image_id()
    .unwrap()
    .to_string();
    let refused = s.run(&["up", "--plan", saved]);
    assert_eq!(
        refused.code, 2,
        "[saved plan, newer image] refused:\n{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(
            "terraform: ~ aws_instance.worker[2] (the fresh plan would make it differently)"
        ),
        "[saved plan, newer image] names the instance:\n{}",
        refused.stderr
    );
    assert_eq!(
        s.instances(),
        before,
        "[saved plan, newer image] nothing applied"
    );
    // Planned and approved again, it is applied as saved.
    s.run(&["plan", "--only", "terraform", "--out", saved])
        .expect(0);
    let up = s
        .run(&["--output", "json", "up", "--plan", saved])
        .expect(0);
    assert_eq!(
        up.planned("terraform"),
        ["create aws_instance.worker[2]"],
        "[worker_count 2 → 3] applied"
    );
    let after = s.instances();
    assert_eq!(after.len(), 4, "[worker_count 2 → 3] {after:?}");
    assert_eq!(
        after[..3],
        before[..],
        "[worker_count 2 → 3] the other instances are untouched"
    );
    assert_ne!(&newest, NEWER.get().unwrap());
    assert_eq!(
        (after[3].name.as_str(), &after[3].image),
        ("jeeves-aws-worker-3", &newest),
        "[newer image] a new worker gets the newest Canonical image: the lookup saw it"
    );
    let workers = s.t.state()["inventory"]["workers"].clone();
    assert_eq!(workers[2]["id"], after[3].id, "{workers}");
}

/// `jeeves check`'s `ec2/*` on the instances running, then stopped, then started again; `stop`
/// and `start` through EC2. Hosts, cluster and web checks fail here (SSH goes to a closed port).
fn stop_start_and_check_follow_the_instances(s: &Stack) {
    let zone = block_on(
        s.r53
            .create_hosted_zone()
            .name("jeeves.test")
            .caller_reference("jeeves.test")
            .send(),
    )
    .unwrap();
    assert!(zone.hosted_zone().is_some());
    s.run(&["up", "--only", "dns"]).expect(0);
    let found = ec2_checks(s, true);
    assert_eq!(
        found["dns/record"].0, "ok",
        "[check] dns/record: {:?}",
        found["dns/record"]
    );

    let inv = s.t.state()["inventory"].clone();
    s.run(&["stop", "--yes"]).expect(0);
    let now = s.instances();
    assert!(now.iter().all(|i| i.state == "stopped"), "[stop] {now:?}");
    ec2_checks(s, false);

    // start: running again, then the repair re-reads the inventory and stops at SSH.
    let started = s.run(&["--output", "json", "start"]);
    assert_eq!(started.code, 1, "[start] stops at SSH:\n{}", started.stderr);
    assert!(
        started.stderr.contains("SSH does not answer on 4 host(s)"),
        "[start] {}",
        started.stderr
    );
    let now = s.instances();
    assert!(now.iter().all(|i| i.state == "running"), "[start] {now:?}");
    let after = s.t.state()["inventory"].clone();
    assert_eq!(
        after["controller"], inv["controller"],
        "[start] the controller keeps its id and Elastic IP"
    );
    // A worker's auto-assigned public IP is a new one after a start (moto, as AWS).
    for (i, worker) in now[1..].iter().enumerate() {
        assert_eq!(
            after["workers"][i]["public_ip"].as_str(),
            worker.public_ip.as_deref(),
            "[start] the inventory follows EC2: {after}"
        );
        assert_ne!(
            after["workers"][i]["public_ip"], inv["workers"][i]["public_ip"],
            "[start] {} has a new public IP",
            worker.name
        );
    }
    ec2_checks(s, true);
}

/// Runs `jeeves check` and asserts its `ec2/*` findings: each instance ok while `running`, each
/// failing as stopped otherwise (and `ec2/instances` then failing too). Every finding, by check.
fn ec2_checks(s: &Stack, running: bool) -> std::collections::BTreeMap<String, (String, String)> {
    let found = s.check();
    let ec2: Vec<_> = found
        .iter()
        .filter(|(k, _)| k.starts_with("ec2/"))
        .collect();
    let mut names: Vec<&str> = vec![
        "ec2/jeeves-aws-controller",
        "ec2/jeeves-aws-worker-1",
        "ec2/jeeves-aws-worker-2",
        "ec2/jeeves-aws-worker-3",
    ];
    if !running {
        names.push("ec2/instances");
    }
    names.sort();
    let got: Vec<&str> = ec2.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(got, names, "[check] the ec2/* checks: {ec2:?}");
    for (name, (status, message)) in &ec2 {
        let as_expected = match (running, name.as_str()) {
            (true, _) => status == "ok" && message.ends_with(" running"),
            (false, "ec2/instances") => status == "fail" && message.starts_with("0 controller(s)"),
            (false, _) => status == "fail" && message.ends_with(" is stopped"),
        };
        assert!(
            as_expected,
            "[check] {name} with the instances {}: {status} {message}",
            if running { "running" } else { "stopped" }
        );
    }
    found
}

fn down_leaves_no_resource_and_no_record(s: &Stack) {
    // An archive, as the backup Job leaves one: it must outlive the stack.
    block_on(
        s.s3.put_object()
            .bucket(BACKUP_BUCKET)
            .key(format!("{PROJECT}/rocketchat-20260101T000000Z.archive.gz"))
            .body(b"archive".to_vec().into())
            .send(),
    )
    .unwrap();
    s.run(&["down", "--yes"]).expect(0);
    let kept = block_on(
        s.s3.list_objects_v2()
            .bucket(BACKUP_BUCKET)
            .prefix(format!("{PROJECT}/"))
            .send(),
    )
    .unwrap();
    assert_eq!(
        kept.contents().len(),
        1,
        "[down] the archive outlives the stack"
    );
    assert_eq!(
        versioning(s),
        Some("Enabled".into()),
        "[down] the kept bucket keeps its settings"
    );
    // The bucket stays in the terraform state: the next `up` finds it there, nothing to make.
    let plan = s.run(&["--output", "json", "plan", "--only", "terraform"]);
    let planned = plan.planned("terraform");
    assert!(
        !planned.is_empty() && !planned.iter().any(|c| c.contains("module.backup_bucket")),
        "[down] a plan after down makes the cluster again and nothing of the kept bucket: {planned:#?}\n{}",
        plan.stderr
    );
    assert_eq!(s.instances(), [], "[down] no instance left");
    assert_eq!(s.addresses(), [], "[down] no Elastic IP left");
    let groups = block_on(s.ec2.describe_security_groups().filters(tagged()).send()).unwrap();
    assert!(
        groups.security_groups().is_empty(),
        "[down] security groups left: {:?}",
        groups.security_groups()
    );
    let keys = block_on(s.ec2.describe_key_pairs().send()).unwrap();
    assert!(keys.key_pairs().is_empty(), "[down] key pairs left");
    let left: Vec<String> = s.tfstate()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mode"] == "managed")
        .map(|r| {
            format!(
                "{}.{}.{}",
                r["module"].as_str().unwrap_or("-"),
                r["type"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        !left.is_empty() && left.iter().all(|r| r.starts_with("module.backup_bucket.")),
        "[down] the terraform state holds the backup bucket's resources only: {left:?}"
    );
    let zones = block_on(s.r53.list_hosted_zones().send()).unwrap();
    let zone = zones.hosted_zones()[0].id().to_string();
    let sets = block_on(
        s.r53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .send(),
    )
    .unwrap();
    assert!(
        !sets
            .resource_record_sets()
            .iter()
            .any(|r| r.name().trim_end_matches('.') == DOMAIN),
        "[down] the A record is gone"
    );
    let state = s.t.state();
    assert_eq!(
        (
            &state["inventory"]["controller"],
            &state["inventory"]["workers"]
        ),
        (&serde_json::Value::Null, &serde_json::json!([])),
        "[down] no record of the stack in the state: {state}"
    );
}

/// terraform/aws/backup.tf: the bucket versioned, encrypted, closed to the public; the nodes'
/// instance profile on every instance, allowed only `<bucket>/<project>/*` (listing too), and
/// reachable from pods (IMDSv2, hop limit 2).
fn the_backup_bucket_is_private_and_the_nodes_may_use_only_their_prefix(s: &Stack) {
    let b = BACKUP_BUCKET;
    // The bucket's settings as the provider read them back from moto (`terraform apply`
    // refreshes each after writing it); versioning through S3 itself below and after `down`.
    let state = s.tfstate();
    let attrs = |kind: &str| -> serde_json::Value {
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["module"] == "module.backup_bucket" && r["type"] == kind)
            .map(|r| r["instances"][0]["attributes"].clone())
            .unwrap_or_else(|| panic!("[backup bucket] {kind} in the state"))
    };
    assert_eq!(
        attrs("aws_s3_bucket")["bucket"],
        b,
        "[backup bucket] its name"
    );
    assert_eq!(
        attrs("aws_s3_bucket_versioning")["versioning_configuration"][0]["status"],
        "Enabled",
        "[backup bucket] versioning"
    );
    assert_eq!(
        attrs("aws_s3_bucket_server_side_encryption_configuration")["rule"][0]["apply_server_side_encryption_by_default"]
            [0]["sse_algorithm"],
        "AES256",
        "[backup bucket] SSE-S3 without backup_kms_key_arn"
    );
    let pab = attrs("aws_s3_bucket_public_access_block");
    for key in [
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ] {
        assert_eq!(pab[key], true, "[backup bucket] {key}");
    }
    assert_eq!(
        versioning(s),
        Some("Enabled".into()),
        "[backup bucket] S3's answer"
    );
    assert_eq!(
        s.tfstate()["outputs"]["backup_bucket"]["value"],
        b,
        "[backup bucket] the output the backup reads"
    );
    // Read into the inventory, where `[backup]` without a bucket finds it.
    let inv = s.t.state()["inventory"].clone();
    assert!(
        inv["backup_bucket"] == b
            && inv["backup_prefix"] == state["outputs"]["backup_prefix"]["value"]
            && inv["backup_prefix"].is_string(),
        "[backup bucket] the inventory: {inv}"
    );
    let reply = block_on(s.ec2.describe_instances().filters(tagged()).send()).unwrap();
    for i in reply.reservations().iter().flat_map(|r| r.instances()) {
        if i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("terminated") {
            continue;
        }
        let profile = i
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .unwrap_or_default();
        assert!(
            profile.ends_with(&format!("instance-profile/{PROJECT}-node")),
            "[backup bucket] {:?} has the nodes' instance profile: {profile:?}",
            i.instance_id()
        );
        let md = i.metadata_options().unwrap();
        assert_eq!(
            (
                md.http_tokens().map(|t| t.as_str()),
                md.http_put_response_hop_limit()
            ),
            (Some("required"), Some(2)),
            "[backup bucket] IMDSv2 with hop limit 2 on {:?}",
            i.instance_id()
        );
    }
    // The role's policy as terraform read it back from IAM.
    let policy = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "aws_iam_role_policy")
        .map(|r| {
            r["instances"][0]["attributes"]["policy"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .expect("[backup bucket] the role policy in the state");
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let arn = format!("arn:aws:s3:::{b}");
    let statements = policy["Statement"].as_array().unwrap();
    for st in statements {
        let resource = st["Resource"].as_str().unwrap_or_default();
        match st["Sid"].as_str() {
            Some("ListThePrefix") => {
                assert_eq!(resource, arn, "[backup bucket] {st}");
                let prefixes = &st["Condition"]["StringLike"]["s3:prefix"];
                assert_eq!(
                    prefixes,
                    &serde_json::json!([format!("{PROJECT}/"), format!("{PROJECT}/*")]),
                    "[backup bucket] listing only under the prefix: {st}"
                );
            }
            Some("ObjectsUnderThePrefix") => {
                assert_eq!(
                    resource,
                    format!("{arn}/{PROJECT}/*"),
                    "[backup bucket] {st}"
                )
            }
            other => panic!("[backup bucket] an unexpected statement {other:?}: {st}"),
        }
    }
    assert_eq!(statements.len(), 2, "[backup bucket] {policy}");
}

/// The backup bucket's versioning status, as S3 answers GetBucketVersioning.
fn versioning(s: &Stack) -> Option<String> {
    let out = block_on(s.s3.get_bucket_versioning().bucket(BACKUP_BUCKET).send())
        .expect("GetBucketVersioning");
    out.status().map(|v| v.as_str().to_string())
}
