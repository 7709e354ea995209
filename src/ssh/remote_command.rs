use std::time::Duration;

use anyhow::{Result, bail};

/// How long a command stopped by `timeout` (SIGTERM) has before SIGKILL.
pub const KILL_AFTER: Duration = Duration::from_secs(5);

/// A remote command as a list of arguments, each quoted for the remote shell. Nothing is ever
/// pasted into a command line unquoted: a value such as `$(touch /tmp/pwned)` reaches the
/// program as those literal characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    args: Vec<String>,
    sudo: bool,
    stdin: Option<Vec<u8>>,
    /// Its standard output is a secret (a key, a PEM): no error message quotes it.
    secret_stdout: bool,
}

impl RemoteCommand {
    pub fn new(program: impl Into<String>) -> RemoteCommand {
        RemoteCommand {
            args: vec![program.into()],
            sudo: false,
            stdin: None,
            secret_stdout: false,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> RemoteCommand {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> RemoteCommand
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs through `sudo -n` (no password prompt: a missing sudo rule fails at once).
    pub fn sudo(mut self, sudo: bool) -> RemoteCommand {
        self.sudo = sudo;
        self
    }

    /// Bytes written to the command's standard input (then EOF).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> RemoteCommand {
        self.stdin = Some(data.into());
        self
    }

    /// Its standard output is a secret: a failure reports stderr alone, never a line of stdout
    /// (which may hold part of what was read).
    pub fn secret_stdout(mut self) -> RemoteCommand {
        self.secret_stdout = true;
        self
    }

    /// What a failure of this command may quote: the tail of stderr, or of stdout when stderr
    /// is empty and stdout is no secret.
    pub fn said(&self, stdout: &str, stderr: &str, lines: usize) -> String {
        let stdout = if self.secret_stdout { "" } else { stdout };
        crate::process::tail(stdout, stderr, lines)
    }

    pub fn input(&self) -> Option<&[u8]> {
        self.stdin.as_deref()
    }

    /// The command line for the remote shell. Fails on a NUL byte, which no shell can carry.
    pub fn to_shell(&self) -> Result<String> {
        self.line(None)
    }

    /// The command line, run under coreutils' `timeout`: past `limit` the host itself stops the
    /// command (SIGTERM to its process group, SIGKILL `KILL_AFTER` later), so a command outlives
    /// neither its deadline nor a runner that died or lost the connection. Inside `sudo`, so
    /// that `timeout` may signal what runs as root.
    pub fn to_shell_within(&self, limit: Duration) -> Result<String> {
        self.line(Some(limit))
    }

    fn line(&self, limit: Option<Duration>) -> Result<String> {
        let mut words: Vec<String> = Vec::new();
        if self.sudo {
            words.extend(["sudo", "-n", "--"].map(String::from));
        }
        if let Some(limit) = limit {
            words.extend([
                "timeout".to_string(),
                format!("--kill-after={}s", KILL_AFTER.as_secs()),
                format!("{}s", limit.as_secs().max(1)),
            ]);
        }
        for a in &self.args {
            match shlex::try_quote(a) {
                Ok(q) => words.push(q.into_owned()),
                Err(_) => bail!(
                    "argument {a:?} contains a NUL byte and cannot be passed to a remote command"
                ),
            }
        }
        Ok(words.join(" "))
    }

    /// The command for messages: the program and its first argument only (arguments may be
    /// secrets; the full line never reaches logs unredacted).
    pub fn describe(&self) -> String {
        self.args
            .iter()
            .take(2)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_argument_is_quoted() {
        let cmd = RemoteCommand::new("printf")
            .arg("%s")
            .arg("$(touch /tmp/pwned); `id` 'q' \"d\"\nnext");
        let line = cmd.to_shell().unwrap();
        // Whatever quoting style the library picks, a real POSIX shell must hand the program
        // the argument byte for byte, and nothing in it may run.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "$(touch /tmp/pwned); `id` 'q' \"d\"\nnext",
            "{line}"
        );
        assert!(out.stderr.is_empty(), "{line}");
        let sudo = RemoteCommand::new("systemctl")
            .args(["reload", "haproxy"])
            .sudo(true);
        assert_eq!(
            sudo.to_shell().unwrap(),
            "sudo -n -- systemctl reload haproxy"
        );
        assert!(RemoteCommand::new("echo").arg("a\0b").to_shell().is_err());
        assert_eq!(
            sudo.to_shell_within(Duration::from_secs(600)).unwrap(),
            "sudo -n -- timeout --kill-after=5s 600s systemctl reload haproxy"
        );
    }
}
