//! `jeeves logs [RUN]`: a run's log from the state directory's `logs/` (written by `up`, `plan`,
//! `down`, `stop`, `start` and `check`, already redacted; see `Session::open`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::cli::LogsArgs;
use crate::config::Settings;
use crate::exit_code::{self, UsageError};

pub fn run(settings: &Settings, args: &LogsArgs) -> Result<u8> {
    let dir = settings.state_dir.join("logs");
    let logs = list(&dir)?;
    if args.list {
        for log in &logs {
            println!("{}", log.display());
        }
        return Ok(exit_code::SUCCESS);
    }
    let chosen = match &args.run {
        None => logs.last().cloned().with_context(|| {
            format!(
                "no run logs in {} yet: `jeeves up`, `plan`, `down`, `stop`, `start` and `check` write one per run",
                dir.display()
            )
        })?,
        Some(wanted) => pick(&logs, wanted, &dir)?,
    };
    let text = std::fs::read(&chosen)
        .with_context(|| format!("cannot read the log {}", chosen.display()))?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&text)
        .context("cannot write the log to stdout")?;
    Ok(exit_code::SUCCESS)
}

/// The `*.log` files, oldest first (their names start with the run's UTC time).
fn list(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut logs = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "log") {
            logs.push(path);
        }
    }
    logs.sort();
    Ok(logs)
}

/// The log whose file name is `wanted`, or the only one containing it.
fn pick(logs: &[PathBuf], wanted: &str, dir: &std::path::Path) -> Result<PathBuf> {
    let name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if let Some(exact) = logs
        .iter()
        .find(|p| name(p) == wanted || name(p) == format!("{wanted}.log"))
    {
        return Ok(exact.clone());
    }
    let matching: Vec<&PathBuf> = logs.iter().filter(|p| name(p).contains(wanted)).collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!(UsageError(format!(
            "no run log in {} matches `{wanted}` (`jeeves logs --list` shows them)",
            dir.display()
        ))),
        many => bail!(UsageError(format!(
            "`{wanted}` matches {} logs in {}: {}; give more of the name",
            many.len(),
            dir.display(),
            many.iter().map(|p| name(p)).collect::<Vec<_>>().join(", ")
        ))),
    }
}
