use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{GlobalArgs, OutputMode};
use crate::config::Settings;
use crate::exit_code;
use crate::stage_name::StageName;
use crate::stages::inputs_fingerprint;
use crate::state::{RunLock, State, StateDir, s3_lock_holder};

pub async fn run(g: &GlobalArgs, settings: &Settings) -> Result<u8> {
    let dir = StateDir::existing(&settings.state_dir);
    // With the S3 backend, the bucket's state and lock (read without taking the lock).
    let (state, holder, location) = match super::state_bucket(settings).await? {
        None => {
            let holder = RunLock::holder(&dir.file("lock")).map(|h| (json!(h), h.to_string()));
            (
                dir.load()?,
                holder,
                settings.state_dir.display().to_string(),
            )
        }
        Some(bucket) => {
            let state = match bucket.get("state.json").await? {
                None => State::default(),
                Some(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                    format!("the shared state {} is corrupt", bucket.url("state.json"))
                })?,
            };
            let holder = s3_lock_holder(&bucket)?.map(|l| {
                let text = format!(
                    "{} (lock id {id}; `jeeves unlock {id}` if that run is dead)",
                    l.holder,
                    id = l.id
                );
                (json!(l), text)
            });
            let location = format!("s3://{}/{}/", bucket.name, bucket.prefix);
            (state, holder, location)
        }
    };
    let power = power_states(&state.inventory).await;
    if g.output == OutputMode::Json {
        let stages: serde_json::Map<String, serde_json::Value> = state
            .stages
            .iter()
            .map(|(name, rec)| {
                let mut v = serde_json::to_value(rec).unwrap_or_default();
                v["inputs_changed"] = json!(rec.inputs != inputs_fingerprint(*name, settings));
                (name.to_string(), v)
            })
            .collect();
        let doc = json!({
            "pipeline": settings.name,
            "state_dir": settings.state_dir,
            "state": location,
            "lock": holder.as_ref().map(|(j, _)| j),
            "inventory": state.inventory,
            "power": match &power {
                Ok(p) => json!(p),
                Err(e) => json!({ "error": e }),
            },
            "stages": stages,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(exit_code::SUCCESS);
    }
    println!(
        "pipeline   {} ({})",
        settings.name,
        settings.pipeline_file.display()
    );
    println!("state      {location}");
    match holder {
        Some((_, h)) => println!("lock       held by {h}"),
        None => println!("lock       free"),
    }
    println!("\nINVENTORY");
    match &state.inventory.controller {
        None if state.inventory.workers.is_empty() => {
            println!("  (empty: run `jeeves up --only terraform`)")
        }
        controller => {
            println!(
                "  {:<11} {:<24} {:<16} {:<16} {:<21} POWER",
                "ROLE", "HOSTNAME", "PUBLIC IP", "PRIVATE IP", "ID"
            );
            let rows = controller
                .iter()
                .map(|h| ("controller", h))
                .chain(
                    state
                        .inventory
                        .more_controllers
                        .iter()
                        .map(|h| ("controller", h)),
                )
                .chain(state.inventory.workers.iter().map(|h| ("worker", h)));
            for (role, h) in rows {
                let state = match &power {
                    Ok(p) => p.get(&h.id).map_or("-", String::as_str),
                    Err(_) => "unknown",
                };
                println!(
                    "  {:<11} {:<24} {:<16} {:<16} {:<21} {}",
                    role, h.hostname, h.public_ip, h.private_ip, h.id, state
                );
            }
            if let Err(e) = &power {
                println!("  power state unknown: {e}");
            }
        }
    }
    println!("\nSTAGES");
    println!(
        "  {:<10} {:<10} {:<21} {:>8}  NOTE",
        "STAGE", "RESULT", "FINISHED", "TIME"
    );
    for name in StageName::ALL {
        match state.stages.get(&name) {
            None => println!("  {:<10} {:<10}", name.as_str(), "never run"),
            Some(rec) => {
                let mut note = String::new();
                if rec.inputs != inputs_fingerprint(name, settings) {
                    note.push_str("configuration changed since; ");
                }
                if let Some(e) = &rec.error {
                    note.push_str(e.lines().next().unwrap_or_default());
                }
                println!(
                    "  {:<10} {:<10} {:<21} {:>7.1}s  {}",
                    name.as_str(),
                    rec.result.as_str(),
                    rec.finished_at,
                    rec.duration_ms as f64 / 1000.0,
                    note.trim_end_matches("; ")
                );
            }
        }
    }
    Ok(exit_code::SUCCESS)
}

const STATUS_EC2_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Each EC2 instance's power state (`running`, `stopped`…) by instance id, from
/// DescribeInstances; hosts without an EC2 instance id (the lab's) have none. An error is
/// shown, not fatal: `status` works without AWS access.
async fn power_states(
    inventory: &crate::state::Inventory,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let ids: Vec<String> = inventory
        .controller
        .iter()
        .chain(&inventory.more_controllers)
        .chain(&inventory.workers)
        .map(|h| h.id.clone())
        .filter(|id| id.starts_with("i-"))
        .collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let ec2 = crate::aws::ec2::Ec2::new(&crate::aws::sdk_config().await);
    // `status` answers quickly: not the 2 minutes with retries another command's call may take.
    match tokio::time::timeout(STATUS_EC2_TIMEOUT, ec2.power(&ids)).await {
        Ok(Ok(found)) => Ok(found.into_iter().map(|p| (p.id, p.state)).collect()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!(
            "no answer from EC2 DescribeInstances within {}s",
            STATUS_EC2_TIMEOUT.as_secs()
        )),
    }
}
