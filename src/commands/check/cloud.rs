//! The AWS side: every instance of the stack running (EC2 DescribeInstances by the tags
//! terraform sets), and the domain's A record naming the controller's public address.

use super::Finding;
use crate::aws::ec2::Ec2;
use crate::aws::route53::Route53;
use crate::config::Settings;
use crate::state::Inventory;

pub(super) async fn check(settings: &Settings, inv: &Inventory) -> Vec<Finding> {
    let config = crate::aws::sdk_config().await;
    let mut out = instances(settings, inv, &Ec2::new(&config)).await;
    out.push(record(settings, inv, &Route53::new(&config)).await);
    out
}

async fn instances(settings: &Settings, inv: &Inventory, ec2: &Ec2) -> Vec<Finding> {
    let project = &settings.project.name;
    let found = match ec2.stack_instances(project).await {
        Ok(found) => found,
        Err(e) => {
            return vec![Finding::fail(
                "ec2/instances",
                format!("{e:#}"),
                "check the AWS credentials and region (jeeves doctor)",
            )];
        }
    };
    let mut out: Vec<Finding> = found
        .iter()
        .map(|i| {
            let check = format!("ec2/{}", if i.name.is_empty() { &i.id } else { &i.name });
            if i.state == "running" {
                Finding::ok(check, format!("{} {} running", i.role, i.id))
            } else {
                Finding::fail(
                    check,
                    format!("{} {} is {}", i.role, i.id, i.state),
                    format!(
                        "aws ec2 start-instances --instance-ids {} (or jeeves up --only terraform), then jeeves up",
                        i.id
                    ),
                )
            }
        })
        .collect();
    let running = |role: &str| {
        found
            .iter()
            .filter(|i| i.role == role && i.state == "running")
            .count()
    };
    let want_workers = inv.workers.len();
    let want_controllers = inv.controllers().len().max(1);
    if running("controller") != want_controllers || running("worker") < want_workers {
        out.push(Finding::fail(
            "ec2/instances",
            format!(
                "{} controller(s) and {} worker(s) running with Project={project}; the inventory has {want_controllers} and {want_workers}",
                running("controller"),
                running("worker")
            ),
            "jeeves up --only terraform",
        ));
    }
    out
}

async fn record(settings: &Settings, inv: &Inventory, route53: &Route53) -> Finding {
    let check = "dns/record";
    let repair = "jeeves up --only dns";
    let Some(ip) = inv.controller.as_ref().map(|c| c.public_ip.clone()) else {
        return Finding::fail(check, "the inventory has no controller", "jeeves up");
    };
    if !settings.cluster.single() {
        let controllers: Vec<_> = inv.controllers().into_iter().cloned().collect();
        return match crate::stages::dns::multivalue_drift(settings, &controllers).await {
            Err(e) => Finding::fail(check, format!("{e:#}"), repair),
            Ok(drift) if drift.is_empty() => Finding::ok(
                check,
                format!(
                    "A {} → {} (multivalue answer, one health-checked record per controller)",
                    settings.domain,
                    controllers
                        .iter()
                        .map(|c| c.public_ip.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Ok(drift) => Finding::fail(check, drift.join("; "), repair),
        };
    }
    let found = async {
        let zone = route53
            .find_zone(&settings.domain, settings.dns.zone_id.as_deref())
            .await?;
        let record = route53.a_record(&zone, &settings.domain).await?;
        anyhow::Ok((zone, record))
    }
    .await;
    match found {
        Err(e) => Finding::fail(check, format!("{e:#}"), repair),
        Ok((zone, None)) => Finding::fail(
            check,
            format!("zone {} has no A record for {}", zone.name, settings.domain),
            repair,
        ),
        Ok((_, Some(r))) if !r.alias && r.values == [ip.as_str()] => Finding::ok(
            check,
            format!("A {} → {ip} (the controller)", settings.domain),
        ),
        Ok((_, Some(r))) => Finding::fail(
            check,
            format!(
                "A {} → {}, but the controller's public IP is {ip}",
                settings.domain,
                if r.alias {
                    "an alias".to_string()
                } else {
                    r.values.join(", ")
                }
            ),
            repair,
        ),
    }
}
