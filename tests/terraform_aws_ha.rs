//! `[cluster] controllers` in `terraform/aws`, plan only (no apply: `terraform_aws.rs` holds the
//! applying scenario), through Jeeves on the real `hashicorp/aws` provider (the filesystem mirror
//! `/opt/tf-plugins`) against moto: one controller plans no more than before; three add two
//! instances with their Elastic IPs, and with `create_vpc` a subnet for each in the next zones;
//! 2 is refused (exit 2) before terraform runs.

use crate::common;

use common::{Moto, Test, block_on};

const MIRROR: &str = "/opt/tf-plugins";
const BUCKET: &str = "jeeves-tfstate";
/// Not a secret: the public half of a throwaway key (EC2 ImportKeyPair parses it).
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAsm/l4ciHtvAWHh2qtFAaYEx2W5ksrrlhQiRIoF0rQG jeeves-test";

fn pipeline(t: &Test, moto: &Moto, create_vpc: bool) {
    let endpoint = moto.endpoint();
    t.write(
        "pipelines/aws.toml",
        &format!(
            r#"[project]
name = "jeeves-ha"
region = "us-east-1"
templates = "../templates"

[terraform]
dir = "../terraform/aws"
timeout = "2m"
[terraform.vars]
ami_id = "ami-0123456789abcdef0"
worker_count = 1
create_vpc = {create_vpc}
admin_cidr = "203.0.113.0/24"
ssh_public_key = "{PUBLIC_KEY}"
[terraform.backend_config]
bucket = "{BUCKET}"
key = "ha.tfstate"
use_lockfile = "true"
use_path_style = "true"
endpoints = '{{ s3 = "{endpoint}" }}'

[tls]
domain = "chat.jeeves.test"
email = "ops@jeeves.test"
"#
        ),
    );
}

/// `plan --only terraform`'s planned changes with `controllers` (None: the key unset).
fn planned(t: &mut Test, controllers: Option<&str>) -> Vec<String> {
    if let Some(n) = controllers {
        t.env("JEEVES_CLUSTER_CONTROLLERS", n);
    }
    let run = t
        .run(&["--output", "json", "plan", "--only", "terraform"])
        .expect(0);
    run.planned("terraform")
}

#[test]
fn three_controllers_plan_two_more_instances_spread_over_zones_and_one_plans_as_before() {
    assert!(
        std::path::Path::new(MIRROR).is_dir(),
        "the hashicorp/aws provider must be in the filesystem mirror {MIRROR}"
    );
    let moto = Moto::start();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk())
            .force_path_style(true)
            .build(),
    );
    block_on(s3.create_bucket().bucket(BUCKET).send()).unwrap();
    let mut t = Test::new();
    common::copy_dir(
        &common::repo().join("terraform/aws"),
        &t.path("terraform/aws"),
    );
    moto.env_for(&mut t);
    t.write(
        "terraform.tfrc",
        &format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{MIRROR}\"\n  }}\n}}\ndisable_checkpoint = true\n"
        ),
    );
    let tfrc = t.path("terraform.tfrc").display().to_string();
    t.env("TF_CLI_CONFIG_FILE", &tfrc).pipeline("aws");

    let ha = |l: &String| l.contains("controller_more") || l.contains("aws_subnet.controller");
    // The default VPC, one controller: nothing of the others (19 resources with one worker, as
    // before).
    pipeline(&t, &moto, false);
    let one = planned(&mut t, None);
    assert!(!one.iter().any(ha), "{one:?}");
    assert_eq!(one.len(), 19, "{one:?}");

    // Three: two instances and their addresses more (the default VPC's subnets are one per
    // zone; the instances take the next ones in order).
    let three = planned(&mut t, Some("3"));
    let more: Vec<&String> = three.iter().filter(|l| ha(l)).collect();
    assert_eq!(
        more,
        [
            "create aws_eip.controller_more[0]",
            "create aws_eip.controller_more[1]",
            "create aws_instance.controller_more[0]",
            "create aws_instance.controller_more[1]",
        ]
    );
    assert_eq!(three.len(), 23, "{three:?}");

    // A VPC of the module's own: a subnet in each next zone, routed as the first.
    pipeline(&t, &moto, true);
    let three = planned(&mut t, Some("3"));
    for change in [
        "create aws_subnet.controller[0]",
        "create aws_subnet.controller[1]",
        "create aws_route_table_association.controller[0]",
        "create aws_route_table_association.controller[1]",
    ] {
        assert!(three.iter().any(|l| l == change), "{change}: {three:?}");
    }

    // Any other count: the field and where it came from, exit 2, terraform not run.
    t.env("JEEVES_CLUSTER_CONTROLLERS", "2");
    let run = t.run(&["plan", "--only", "terraform"]).expect(2);
    assert!(
        run.stderr.contains("JEEVES_CLUSTER_CONTROLLERS")
            && run.stderr.contains("cluster.controllers")
            && run.stderr.contains("1, 3 or 5"),
        "{}",
        run.stderr
    );
}
