//! The dns stage and `down`'s record removal, through the AWS SDK against a moto server.

use crate::common;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use common::{Moto, Test, block_on};

const DOMAIN: &str = "chat.sub.example.com";

struct Aws {
    r53: aws_sdk_route53::Client,
    ec2: aws_sdk_ec2::Client,
}

impl Aws {
    fn new(moto: &Moto) -> Aws {
        let sdk = moto.sdk();
        Aws {
            r53: aws_sdk_route53::Client::new(&sdk),
            ec2: aws_sdk_ec2::Client::new(&sdk),
        }
    }

    fn zone(&self, name: &str) -> String {
        let reply = block_on(
            self.r53
                .create_hosted_zone()
                .name(name)
                .caller_reference(name)
                .send(),
        )
        .unwrap();
        reply
            .hosted_zone()
            .unwrap()
            .id()
            .trim_start_matches("/hostedzone/")
            .to_string()
    }

    /// Every A record of a zone: (name without the dot, values, ttl).
    fn a_records(&self, zone: &str) -> Vec<(String, Vec<String>, i64)> {
        let reply = block_on(
            self.r53
                .list_resource_record_sets()
                .hosted_zone_id(zone)
                .send(),
        )
        .unwrap();
        reply
            .resource_record_sets()
            .iter()
            .filter(|s| *s.r#type() == RrType::A)
            .map(|s| {
                (
                    s.name().trim_end_matches('.').to_string(),
                    s.resource_records()
                        .iter()
                        .map(|r| r.value().to_string())
                        .collect(),
                    s.ttl().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn put_a(&self, zone: &str, name: &str, ip: &str) {
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .ttl(300)
            .resource_records(ResourceRecord::builder().value(ip).build().unwrap())
            .build()
            .unwrap();
        let batch = ChangeBatch::builder()
            .changes(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(set)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        block_on(
            self.r53
                .change_resource_record_sets()
                .hosted_zone_id(zone)
                .change_batch(batch)
                .send(),
        )
        .unwrap();
    }

    /// Runs an instance tagged like terraform/aws tags its instances; returns (id, public IP).
    fn instance(&self, project: &str, role: &str) -> (String, String) {
        use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key("Project").value(project).build())
            .tags(Tag::builder().key("Role").value(role).build())
            .tags(
                Tag::builder()
                    .key("Name")
                    .value(format!("{project}-{role}"))
                    .build(),
            )
            .build();
        let reply = block_on(
            self.ec2
                .run_instances()
                .image_id("ami-12345678")
                .min_count(1)
                .max_count(1)
                .tag_specifications(tags)
                .send(),
        )
        .unwrap();
        let i = &reply.instances()[0];
        (
            i.instance_id().unwrap().to_string(),
            i.public_ip_address().unwrap().to_string(),
        )
    }

    fn terminate(&self, id: &str) {
        block_on(self.ec2.terminate_instances().instance_ids(id).send()).unwrap();
    }
}

fn setup() -> (Moto, Aws, Test) {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    let mut t = Test::new();
    moto.env_for(&mut t);
    t.env("DOMAIN", DOMAIN);
    (moto, aws, t)
}

fn dns_result(run: &common::Run) -> (String, usize) {
    let events = run.events();
    let result = run.stage_result("dns");
    let changes = events
        .iter()
        .find(|e| e["event"] == "stage_planned" && e["stage"] == "dns")
        .map(|e| e["changes"].as_array().unwrap().len())
        .unwrap_or(0);
    (result, changes)
}

#[test]
fn creates_in_the_longest_suffix_zone_then_is_unchanged_then_follows_the_ip() {
    let (_moto, aws, t) = setup();
    let parent = aws.zone("example.com");
    let sub = aws.zone("sub.example.com");
    t.run(&["up", "--only", "terraform"]).expect(0);

    let first = t
        .run(&["--output", "json", "up", "--only", "dns"])
        .expect(0);
    assert_eq!(dns_result(&first), ("changed".into(), 1));
    assert!(
        first.stdout.contains("zone sub.example.com"),
        "{}",
        first.stdout
    );
    assert!(
        aws.a_records(&sub)
            .contains(&(DOMAIN.into(), vec!["10.77.0.10".into()], 60))
    );
    assert!(
        aws.a_records(&parent).iter().all(|r| r.0 != DOMAIN),
        "nothing in the parent zone"
    );

    let second = t
        .run(&["--output", "json", "up", "--only", "dns"])
        .expect(0);
    assert_eq!(dns_result(&second), ("unchanged".into(), 0));

    // The controller moves: terraform learns the new address, dns follows it.
    let text = std::fs::read_to_string(t.path("pipelines/lab.toml")).unwrap();
    t.write(
        "pipelines/lab.toml",
        &text.replace("public_ip = \"10.77.0.10\"", "public_ip = \"10.77.0.20\""),
    );
    let third = t
        .run(&[
            "--output",
            "json",
            "up",
            "--only",
            "terraform",
            "--only",
            "dns",
        ])
        .expect(0);
    assert_eq!(dns_result(&third), ("changed".into(), 1));
    assert!(third.stdout.contains("was 10.77.0.10"), "{}", third.stdout);
    let records: Vec<_> = aws
        .a_records(&sub)
        .into_iter()
        .filter(|r| r.0 == DOMAIN)
        .collect();
    assert_eq!(
        records,
        vec![(DOMAIN.to_string(), vec!["10.77.0.20".to_string()], 60)]
    );

    // A TTL change alone is a change too.
    let mut t = t;
    t.env("JEEVES_DNS_TTL", "300");
    let fourth = t
        .run(&["--output", "json", "up", "--only", "dns"])
        .expect(0);
    assert_eq!(dns_result(&fourth), ("changed".into(), 1));
    assert!(
        aws.a_records(&sub)
            .contains(&(DOMAIN.into(), vec!["10.77.0.20".into()], 300))
    );
}

#[test]
fn zone_id_overrides_the_choice_and_must_contain_the_domain() {
    let (_moto, aws, mut t) = setup();
    let parent = aws.zone("example.com");
    aws.zone("sub.example.com");
    let other = aws.zone("example.org");
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.env("JEEVES_DNS_ZONE_ID", &other);
    let run = t.run(&["up", "--only", "dns"]).expect(1);
    assert!(
        run.stderr.contains("does not contain chat.sub.example.com"),
        "{}",
        run.stderr
    );
    let mut t2 = Test::new();
    _moto.env_for(&mut t2);
    t2.env("DOMAIN", DOMAIN).env("JEEVES_DNS_ZONE_ID", &parent);
    t2.run(&["up", "--only", "terraform"]).expect(0);
    t2.run(&["up", "--only", "dns"]).expect(0);
    assert!(aws.a_records(&parent).iter().any(|r| r.0 == DOMAIN));
}

#[test]
fn a_missing_zone_is_a_clear_error() {
    let (_moto, aws, t) = setup();
    aws.zone("example.org");
    t.run(&["up", "--only", "terraform"]).expect(0);
    let run = t.run(&["up", "--only", "dns"]).expect(1);
    assert!(
        run.stderr
            .contains("no Route 53 hosted zone contains chat.sub.example.com"),
        "{}",
        run.stderr
    );
}

#[test]
fn without_state_the_controller_is_found_by_its_tags() {
    let (_moto, aws, t) = setup();
    let sub = aws.zone("sub.example.com");
    aws.instance("jeeves-lab", "worker");
    aws.instance("another-project", "controller");

    let none = t.run(&["up", "--only", "dns"]).expect(1);
    assert!(
        none.stderr
            .contains("no EC2 instance matches Project=jeeves-lab, Role=controller"),
        "{}",
        none.stderr
    );

    let (a, _) = aws.instance("jeeves-lab", "controller");
    let (b, ip_b) = aws.instance("jeeves-lab", "controller");
    let two = t.run(&["up", "--only", "dns"]).expect(1);
    assert!(
        two.stderr.contains(&a) && two.stderr.contains(&b),
        "both ids listed: {}",
        two.stderr
    );

    aws.terminate(&a);
    t.run(&["up", "--only", "dns"]).expect(0);
    assert!(
        aws.a_records(&sub)
            .contains(&(DOMAIN.into(), vec![ip_b.clone()], 60))
    );
    assert_eq!(
        t.state()["inventory"]["controller"]["id"],
        b.as_str(),
        "the inventory is repaired"
    );
}

#[test]
fn down_removes_only_our_record_then_destroys() {
    let (_moto, aws, t) = setup();
    let sub = aws.zone("sub.example.com");
    aws.put_a(&sub, "www.sub.example.com", "192.0.2.1");
    t.run(&["up", "--only", "terraform", "--only", "dns"])
        .expect(0);
    assert!(aws.a_records(&sub).iter().any(|r| r.0 == DOMAIN));

    t.run(&["down", "--yes"]).expect(0);
    let left = aws.a_records(&sub);
    assert!(
        left.iter().all(|r| r.0 != DOMAIN),
        "our record is gone: {left:?}"
    );
    assert!(
        left.contains(&("www.sub.example.com".into(), vec!["192.0.2.1".into()], 300)),
        "{left:?}"
    );
    assert_eq!(
        t.state()["inventory"]["controller"],
        serde_json::Value::Null
    );
}

#[test]
fn down_leaves_a_record_that_points_elsewhere() {
    let (_moto, aws, t) = setup();
    let sub = aws.zone("sub.example.com");
    t.run(&["up", "--only", "terraform", "--only", "dns"])
        .expect(0);
    aws.put_a(&sub, DOMAIN, "192.0.2.99"); // someone moved the name to another stack
    let run = t.run(&["down", "--yes"]).expect(0);
    assert!(
        run.stdout.contains("left in place") && run.stdout.contains("192.0.2.99"),
        "{}",
        run.stdout
    );
    assert!(
        aws.a_records(&sub)
            .contains(&(DOMAIN.into(), vec!["192.0.2.99".into()], 300))
    );
    assert_eq!(
        t.state()["inventory"]["controller"],
        serde_json::Value::Null,
        "terraform destroy still ran"
    );
}

#[test]
fn down_with_keep_dns_destroys_without_touching_route53() {
    // No AWS environment at all: --keep-dns must not need it.
    let t = Test::new();
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.run(&["down", "--yes", "--keep-dns"]).expect(0);
    assert_eq!(
        t.state()["inventory"]["controller"],
        serde_json::Value::Null
    );
    let tfstate = std::fs::read_to_string(t.path("terraform/lab/terraform.tfstate")).unwrap();
    assert!(
        !tfstate.contains("terraform_data"),
        "resources remain:\n{tfstate}"
    );
    t.run(&["up", "--only", "terraform"]).expect(0);
    assert_eq!(
        t.state()["inventory"]["workers"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn every_page_of_zones_is_read() {
    let moto = Moto::start();
    let aws = Aws::new(&moto);
    for i in 0..5 {
        aws.zone(&format!("z{i}.example.net"));
    }
    let r53 = jeeves::aws::route53::Route53::from_client(aws.r53.clone());
    let zones = block_on(r53.zones(2)).unwrap();
    assert_eq!(zones.len(), 5, "{zones:?}");
    let z4 = block_on(r53.find_zone("chat.z4.example.net", None)).unwrap();
    assert_eq!(z4.name, "z4.example.net");
}

#[test]
fn doctor_shows_the_aws_identity_and_region() {
    let moto = Moto::start();
    let mut t = Test::new();
    moto.env_for(&mut t);
    // The lab's SSH key does not exist here, so doctor fails overall (exit 1) but still checks AWS.
    let run = t.run(&["doctor"]).expect(1);
    let aws = run
        .stdout
        .lines()
        .find(|l| l.contains(" aws "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        aws.starts_with('✓')
            && aws.contains("account 123456789012")
            && aws.contains("region us-east-1"),
        "{aws}"
    );
    assert!(run.stdout.contains("✓ terraform"), "{}", run.stdout);
    assert!(run.stdout.contains("✓ diff"), "{}", run.stdout);
    assert!(run.stdout.contains("✗ ssh key"), "{}", run.stdout);
    // An external diff program that is not there is named.
    t.env("KUBECTL_EXTERNAL_DIFF", "no-such-differ -u");
    let run = t.run(&["doctor"]).expect(1);
    assert!(
        run.stdout.contains("✗ diff") && run.stdout.contains("`no-such-differ` not found"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("✓ config"), "{}", run.stdout);

    // The AWS module's floor (use_lockfile needs terraform 1.11): an older binary is a failed
    // check naming both versions; the real one on PATH meets it.
    t.env(
        "JEEVES_TERRAFORM_DIR",
        common::repo().join("terraform/aws").to_str().unwrap(),
    );
    let run = t.run(&["doctor"]).expect(1);
    assert!(
        run.stdout.contains("✓ terraform ≥") && run.stdout.contains("meets >= 1.11"),
        "{}",
        run.stdout
    );
    let bin = t.path("old-terraform");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("terraform"),
        "#!/bin/sh\necho 'Terraform v1.9.8'\necho 'on linux_amd64'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        bin.join("terraform"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    t.env(
        "PATH",
        &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    let run = t.run(&["doctor"]).expect(1);
    assert!(
        run.stdout.contains("✗ terraform ≥")
            && run.stdout.contains("terraform 1.9.8 is older than 1.11")
            && run.stdout.contains("terraform/aws/versions.tf"),
        "{}",
        run.stdout
    );
}
