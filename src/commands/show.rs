//! `jeeves show FILE`: a saved plan for review, as `plan` prints it, replacements and
//! destructions first (across stages, then in each stage's list). `--output json`: the plan's
//! JSON without terraform's plan file.

use anyhow::Result;

use crate::cli::{OutputMode, ShowArgs};
use crate::saved_plan::{SavedChange, SavedPlan};

fn destructive(c: &SavedChange) -> bool {
    c.action == "replace" || c.action == "destroy"
}

pub fn run(output: OutputMode, args: &ShowArgs) -> Result<u8> {
    let mut plan = SavedPlan::load(&args.file)?;
    if output == OutputMode::Json {
        plan.terraform_plan = None;
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(crate::exit_code::SUCCESS);
    }
    println!(
        "Saved plan for pipeline `{}` ({}), made {} by jeeves {}; stages: {}",
        plan.pipeline,
        plan.domain,
        plan.created_at,
        plan.jeeves_version,
        plan.stages
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if plan.allow_downgrade {
        println!(
            "Planned with --allow-downgrade: it may roll Rocket.Chat back to an older version."
        );
    }
    let going: Vec<String> = plan
        .plans
        .iter()
        .flat_map(|p| {
            p.changes
                .iter()
                .filter(|c| destructive(c))
                .map(move |c| format!("[{}] {} {}", p.stage, c.action, c.target))
        })
        .collect();
    if !going.is_empty() {
        println!(
            "\nREPLACES OR DESTROYS {} resource(s); their data goes with them:\n  {}",
            going.len(),
            going.join("\n  ")
        );
    }
    println!();
    for stage in &plan.stages {
        let mut changes = plan.changes(*stage).to_vec();
        changes.sort_by_key(|c| !destructive(c));
        if changes.is_empty() {
            println!("[{stage}] plan: unchanged");
            continue;
        }
        println!(
            "[{stage}] plan: {} change{}",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        );
        for c in changes {
            println!("[{stage}]   {} {}", c.action, c.target);
        }
    }
    println!(
        "\nApply exactly this with `jeeves up --plan {}`.",
        args.file.display()
    );
    Ok(crate::exit_code::SUCCESS)
}
