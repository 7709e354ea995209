//! Local tools (terraform, helm, kubectl) as child processes whose output streams into the
//! event stream line by line. Knows nothing of stages.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::report::{Level, Reporter};
use crate::stage_name::StageName;

/// Finds a tool with `which`: a bare name on PATH, or a path as given.
pub fn find_tool(setting: &str, key: &str) -> Result<PathBuf> {
    which::which(setting).with_context(|| {
        format!("`{setting}` was not found on PATH; install it or set `{key}` in the pipeline file to its path")
    })
}

#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The last lines of stderr (or stdout), for an error message a person can act on.
    pub fn tail(&self, lines: usize) -> String {
        tail(&self.stdout, &self.stderr, lines)
    }
}

/// The last non-empty lines of `stderr`, or of `stdout` when stderr is empty: what a failed
/// command said, for an error message (local tools and remote commands alike).
pub fn tail(stdout: &str, stderr: &str, lines: usize) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The next line of a child's output, bytes that are not UTF-8 replaced rather than fatal
/// (a tool's odd byte must not abort the run while the tool is mid-apply).
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if r.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// How long a tool may run, and the setting that says so (for the error).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub within: std::time::Duration,
    pub setting: &'static str,
}

/// After a deadline (or an interrupt) a tool gets SIGINT and this long to stop before SIGKILL.
const GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `cmd`, streaming each stdout line to `on_stdout` and each stderr line to the log, and
/// returns the whole output. Past `deadline` the child is asked to stop (SIGINT), killed after
/// a grace period, and the run fails naming the setting: every wait is bounded. The child runs in a process group of its own, so a Ctrl-C on the
/// terminal reaches Jeeves alone: on the first interrupt (`interrupt`) Jeeves sends the child one
/// SIGINT and waits for it to stop cleanly (terraform finishes its operations and unlocks its
/// state). It is killed only if the future is dropped.
pub async fn run(
    cmd: &mut Command,
    stage: StageName,
    reporter: &Reporter,
    deadline: Deadline,
    mut on_stdout: impl FnMut(&str),
) -> Result<Output> {
    let program = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut err = BufReader::new(child.stderr.take().expect("piped"));
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let (mut out_open, mut err_open) = (true, true);
    let mut forwarded = false;
    let limit = tokio::time::Instant::now() + deadline.within;
    let mut timed_out = false;
    let mut kill_at = None;
    while out_open || err_open {
        tokio::select! {
            line = next_line(&mut out), if out_open => match line? {
                Some(l) => { on_stdout(&l); stdout.push_str(&l); stdout.push('\n'); }
                None => out_open = false,
            },
            line = next_line(&mut err), if err_open => match line? {
                Some(l) => {
                    reporter.log(Some(stage), Level::Output, l.clone());
                    stderr.push_str(&l); stderr.push('\n');
                }
                None => err_open = false,
            },
            _ = crate::interrupt::wait(), if !forwarded => {
                forwarded = true;
                if let Some(pid) = child.id() {
                    reporter.log(
                        Some(stage),
                        Level::Warn,
                        format!("interrupted: asking {program} to stop (SIGINT) and waiting for it"),
                    );
                    // SAFETY: kill(2) on the child's pid; it is ours and not yet reaped.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
                }
                kill_at = Some(tokio::time::Instant::now() + GRACE);
            },
            _ = tokio::time::sleep_until(limit), if !timed_out => {
                timed_out = true;
                reporter.log(
                    Some(stage),
                    Level::Warn,
                    format!(
                        "{program} ran longer than {}s ({}): asking it to stop",
                        deadline.within.as_secs(),
                        deadline.setting
                    ),
                );
                if let Some(pid) = child.id() {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
                }
                kill_at.get_or_insert(tokio::time::Instant::now() + GRACE);
            },
            _ = async { tokio::time::sleep_until(kill_at.expect("guarded")).await }, if kill_at.is_some() => {
                kill_at = None;
                child.start_kill().ok();
            },
        }
    }
    let status = child
        .wait()
        .await
        .with_context(|| format!("waiting for {program}"))?;
    if timed_out {
        bail!(
            "{program} ran longer than {}s ({}) and was stopped:\n{}",
            deadline.within.as_secs(),
            deadline.setting,
            tail(&stdout, &stderr, 10)
        );
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Like `run`, with stdout lines logged; fails unless the exit status is one of `ok`.
pub async fn run_checked(
    cmd: &mut Command,
    stage: StageName,
    reporter: &Reporter,
    deadline: Deadline,
    ok: &[i32],
) -> Result<Output> {
    let program = describe(cmd);
    let output = run(cmd, stage, reporter, deadline, |l| {
        reporter.log(Some(stage), Level::Output, l.to_string())
    })
    .await?;
    match output.status.code() {
        Some(code) if ok.contains(&code) => Ok(output),
        Some(code) => bail!("{program} exited with status {code}:\n{}", output.tail(20)),
        None => bail!("{program} was killed by a signal"),
    }
}

/// `terraform plan` — the program's file name and the first argument, for messages.
pub fn describe(cmd: &Command) -> String {
    let std = cmd.as_std();
    let prog = Path::new(std.get_program())
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let first = std
        .get_args()
        .map(|a| a.to_string_lossy())
        .find(|a| !a.starts_with('-'))
        .map(|a| format!(" {a}"))
        .unwrap_or_default();
    format!("`{prog}{first}`")
}
