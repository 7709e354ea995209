//! Local tools (terraform, helm, kubectl) as child processes whose output is handed to the
//! caller line by line as it arrives (`Said`), each bounded by a deadline. Knows nothing of
//! stages or of how output is reported.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use anyhow::{Context, Result, bail};
use tokio::process::Command;

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

/// What a running tool said, line by line, or what was done to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said<'a> {
    Stdout(&'a str),
    Stderr(&'a str),
    /// Jeeves' own word about the tool (asked to stop: interrupted, past its deadline).
    Notice(&'a str),
}

/// How long a tool may run, and the setting that says so (for the error).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub within: std::time::Duration,
    pub setting: &'static str,
}

/// After a deadline (or an interrupt) a tool gets SIGINT and this long to stop before SIGKILL.
const GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `cmd`, handing each stdout and stderr line to `on` as it arrives (`Said::Stdout`,
/// `Said::Stderr`), and returns the whole output. Past `deadline` the child is asked to stop
/// (SIGINT), killed after a grace period, and the run fails naming the setting: every wait is
/// bounded.
///
/// The child runs in a process group of its own, so a Ctrl-C on the terminal reaches Jeeves
/// alone: on the first interrupt (`interrupt`) Jeeves sends the child one SIGINT and gives it
/// `GRACE` (30 s) to stop cleanly (terraform finishes its operations and unlocks its state)
/// before SIGKILL. Its output goes to unlinked files that Jeeves reads as they grow, not to
/// pipes: if Jeeves itself is killed
/// (SIGKILL), a pipe would kill terraform or helm at its next line of output (SIGPIPE; Go tools
/// die of it even when it is ignored), mid-apply, leaving resources missing from the state and
/// a remote state lock held. With files the tool finishes what it started and the next run
/// waits for its lock. Dropping the future kills it at once (SIGKILL, reaped later); to stop
/// a tool and wait for it, `run_until`.
pub async fn run(
    cmd: &mut Command,
    deadline: Deadline,
    on: impl FnMut(Said<'_>),
) -> Result<Output> {
    run_until(cmd, deadline, on, std::future::pending()).await
}

/// SIGINT to the child, and SIGKILL `GRACE` later unless it is already due sooner.
fn ask_to_stop(child: &tokio::process::Child, kill_at: &mut Option<tokio::time::Instant>) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on the child's pid; it is ours and not yet reaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    }
    kill_at.get_or_insert(tokio::time::Instant::now() + GRACE);
}

/// `run`, and once `stop` completes the tool is asked to stop as on an interrupt (SIGINT, then
/// SIGKILL after `GRACE`) and waited for: its output, whatever its status, once it is gone.
/// For two waits at once of which the first to end stops the other (`jeeves backup`).
pub async fn run_until(
    cmd: &mut Command,
    deadline: Deadline,
    mut on: impl FnMut(Said<'_>),
    stop: impl std::future::Future<Output = ()>,
) -> Result<Output> {
    let program = describe(cmd);
    tokio::pin!(stop);
    let mut stopped = false;
    let (out_file, mut out) = OutputFile::new().context("cannot create a file for tool output")?;
    let (err_file, mut err) = OutputFile::new().context("cannot create a file for tool output")?;
    cmd.stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    // Spawning consumed the child's ends; ours read at their own offsets.
    let mut forwarded = false;
    let limit = tokio::time::Instant::now() + deadline.within;
    let mut timed_out = false;
    let mut kill_at = None;
    let mut poll = tokio::time::interval(OUTPUT_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let status = loop {
        out.read_lines(&mut |l| on(Said::Stdout(l)))?;
        err.read_lines(&mut |l| on(Said::Stderr(l)))?;
        tokio::select! {
            status = child.wait() => {
                break status.with_context(|| format!("waiting for {program}"))?;
            }
            _ = poll.tick() => {}
            _ = crate::interrupt::wait(), if !forwarded => {
                forwarded = true;
                if child.id().is_some() {
                    on(Said::Notice(&format!(
                        "interrupted: asking {program} to stop (SIGINT) and waiting for it"
                    )));
                }
                ask_to_stop(&child, &mut kill_at);
            },
            () = &mut stop, if !stopped => {
                stopped = true;
                ask_to_stop(&child, &mut kill_at);
            },
            _ = tokio::time::sleep_until(limit), if !timed_out => {
                timed_out = true;
                on(Said::Notice(&format!(
                    "{program} ran longer than {}s ({}): asking it to stop",
                    deadline.within.as_secs(),
                    deadline.setting
                )));
                ask_to_stop(&child, &mut kill_at);
            },
            _ = async { tokio::time::sleep_until(kill_at.expect("guarded")).await }, if kill_at.is_some() => {
                kill_at = None;
                child.start_kill().ok();
            },
        }
    };
    let stdout = out.finish(&mut |l| on(Said::Stdout(l)))?;
    let stderr = err.finish(&mut |l| on(Said::Stderr(l)))?;
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

/// How often a running tool's output files are read for new lines.
const OUTPUT_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// One output stream of a tool: an unlinked temporary file (nothing of it stays on disk once
/// both sides have closed it), written by the child through its own descriptor and read here
/// through another, at an offset of its own.
struct OutputFile {
    file: std::fs::File,
    pending: Vec<u8>,
    text: String,
}

impl OutputFile {
    /// The child's end and ours.
    fn new() -> std::io::Result<(std::fs::File, OutputFile)> {
        let named = tempfile::NamedTempFile::new()?;
        let ours = named.reopen()?;
        let theirs = named.into_file();
        Ok((
            theirs,
            OutputFile {
                file: ours,
                pending: Vec::new(),
                text: String::new(),
            },
        ))
    }

    /// Reads what was written since the last call and hands on each complete line, bytes that
    /// are not UTF-8 replaced rather than fatal (a tool's odd byte must not abort the run while
    /// the tool is mid-apply).
    fn read_lines(&mut self, on_line: &mut impl FnMut(&str)) -> Result<()> {
        use std::io::Read;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = self
                .file
                .read(&mut buf)
                .context("cannot read a tool's output")?;
            if n == 0 {
                break;
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.line(&line[..line.len() - 1], on_line);
        }
        Ok(())
    }

    fn line(&mut self, bytes: &[u8], on_line: &mut impl FnMut(&str)) {
        let line = String::from_utf8_lossy(bytes);
        on_line(&line);
        self.text.push_str(&line);
        self.text.push('\n');
    }

    /// The rest, once the child has exited, and the whole text.
    fn finish(mut self, on_line: &mut impl FnMut(&str)) -> Result<String> {
        self.read_lines(on_line)?;
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.line(&rest, on_line);
        }
        Ok(self.text)
    }
}

/// Like `run`; fails unless the exit status is one of `ok`.
pub async fn run_checked(
    cmd: &mut Command,
    deadline: Deadline,
    ok: &[i32],
    on: impl FnMut(Said<'_>),
) -> Result<Output> {
    let program = describe(cmd);
    let output = run(cmd, deadline, on).await?;
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
