//! kubectl and helm as Jeeves runs them (the deploy stage, `check`, `backup`, `start`): always
//! with the tunnel's kubeconfig (`--kubeconfig` and `KUBECONFIG`, never the user's default
//! context), each call bounded by `helm.timeout` and a margin, and server-side applies under
//! Jeeves' own field manager.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::config::Settings;
use crate::process::{self, Output};

pub const FIELD_MANAGER: &str = "jeeves";

/// Where what kubectl and helm print as they run goes (a stage's log: `StageContext`
/// implements it). `stdout`: whether their standard output is worth reporting too.
pub trait ToolLog {
    fn tool_said(&self, said: process::Said<'_>, stdout: bool);
}

/// Whether a failed `kubectl get KIND NAME` says there is no such object: the API's NotFound,
/// or, for a custom kind whose CRD is not applied yet, kubectl's discovery lookup failing
/// (`error: the server doesn't have a resource type "KIND"`, k8s.io/cli-runtime `pkg/resource`).
pub fn absent(out: &Output) -> bool {
    out.stderr.contains("NotFound") || out.stderr.contains("doesn't have a resource type")
}

/// `kubectl apply` (or `diff`) server-side as Jeeves' field manager; the file (or `-`) follows.
pub fn server_side(verb: &str) -> [&str; 6] {
    [
        verb,
        "--server-side",
        "--field-manager",
        FIELD_MANAGER,
        "--force-conflicts",
        "-f",
    ]
}

/// One API request of kubectl's.
const REQUEST_TIMEOUT: &str = "60s";

/// kubectl and helm, always with the tunnel's kubeconfig.
pub struct Tools {
    kubectl: PathBuf,
    /// `None` for commands that run kubectl alone (`jeeves backup`).
    helm: Option<PathBuf>,
    kubeconfig: PathBuf,
    /// Any one call: `helm.timeout` (helm's own `--timeout` and kubectl's waits use it) and a
    /// margin for helm to roll back.
    deadline: process::Deadline,
}

impl Tools {
    pub fn new(settings: &Settings, kubeconfig: PathBuf) -> Result<Tools> {
        Ok(Tools {
            helm: Some(process::find_tool(&settings.tools.helm, "tools.helm")?),
            ..Tools::kubectl_only(settings, kubeconfig)?
        })
    }

    /// kubectl alone: helm need not be installed.
    pub fn kubectl_only(settings: &Settings, kubeconfig: PathBuf) -> Result<Tools> {
        Ok(Tools {
            kubectl: process::find_tool(&settings.tools.kubectl, "tools.kubectl")?,
            helm: None,
            kubeconfig: std::path::absolute(kubeconfig)?,
            deadline: process::Deadline {
                within: settings.helm.timeout + std::time::Duration::from_secs(120),
                setting: "helm.timeout",
            },
        })
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("HELM_KUBECONTEXT")
            .env_remove("HELM_KUBETOKEN")
            .env_remove("HELM_KUBEAPISERVER");
        cmd
    }

    /// kubectl: one API request may take `REQUEST_TIMEOUT` (`--request-timeout`, except for
    /// the commands that wait with their own `--timeout`), the command `helm.timeout` at most.
    pub async fn kubectl(&self, log: &impl ToolLog, args: &[&str]) -> Result<Output> {
        self.kubectl_within(args, self.deadline, |s| log.tool_said(s, false))
            .await
    }

    /// CustomResourceDefinitions from `file`, applied server-side, then waited on until the API
    /// serves them (`Established`, at most 120 s): objects of their kinds can be applied next.
    /// `what`: whose CRDs, for the errors (`the Traefik CRDs`).
    pub async fn apply_crds(&self, log: &impl ToolLog, file: &str, what: &str) -> Result<()> {
        succeeded(
            self.kubectl(log, &[&server_side("apply")[..], &[file]].concat())
                .await?,
            &format!("applying {what}"),
        )?;
        let wait = [
            "wait",
            "--for",
            "condition=established",
            "--timeout",
            "120s",
            "-f",
            file,
        ];
        succeeded(
            self.kubectl(log, &wait).await?,
            &format!("waiting for {what} to be Established"),
        )?;
        Ok(())
    }

    /// kubectl bounded by `deadline` (a command's own timeout setting), its output to `on`:
    /// for commands that run outside a stage (`jeeves backup`).
    pub async fn kubectl_within(
        &self,
        args: &[&str],
        deadline: process::Deadline,
        on: impl FnMut(process::Said<'_>),
    ) -> Result<Output> {
        self.kubectl_until(args, deadline, on, std::future::pending())
            .await
    }

    /// `kubectl_within`, asked to stop (and waited for) once `stop` completes
    /// (`process::run_until`).
    pub async fn kubectl_until(
        &self,
        args: &[&str],
        deadline: process::Deadline,
        on: impl FnMut(process::Said<'_>),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Output> {
        let waits =
            matches!(args.first(), Some(&"wait")) || args.starts_with(&["rollout", "status"]);
        let mut cmd = self.command(&self.kubectl, args);
        if !waits {
            cmd.arg(format!("--request-timeout={REQUEST_TIMEOUT}"));
        }
        process::run_until(&mut cmd, deadline, on, stop).await
    }

    /// `kubectl` outside a stage (`jeeves check`): `say` gets what it prints as it runs.
    pub async fn kubectl_saying(
        &self,
        args: &[&str],
        say: impl FnMut(process::Said<'_>),
    ) -> Result<Output> {
        self.kubectl_within(args, self.deadline, say).await
    }

    pub async fn helm(&self, log: &impl ToolLog, args: &[&str]) -> Result<Output> {
        self.helm_saying(args, |s| log.tool_said(s, true)).await
    }

    /// helm whose answer stays out of the log (its errors do not): `get values` prints every
    /// value of the release, which the plan shows with secrets masked.
    pub async fn helm_quiet(&self, log: &impl ToolLog, args: &[&str]) -> Result<Output> {
        self.helm_saying(args, |s| log.tool_said(s, false)).await
    }

    /// `helm` outside a stage (`jeeves check`): `say` gets what it prints as it runs.
    pub async fn helm_saying(
        &self,
        args: &[&str],
        say: impl FnMut(process::Said<'_>),
    ) -> Result<Output> {
        let helm = self
            .helm
            .as_ref()
            .context("helm was not looked up for this command")?;
        process::run(&mut self.command(helm, args), self.deadline, say).await
    }

    /// `kubectl apply --server-side` of a document given on standard input.
    pub async fn apply_stdin(&self, input: Vec<u8>) -> Result<Output> {
        let mut cmd = self.command(&self.kubectl, &[&server_side("apply")[..], &["-"]].concat());
        cmd.arg(format!("--request-timeout={REQUEST_TIMEOUT}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("cannot start kubectl")?;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(&input).await?;
        drop(stdin);
        // Bounded like every other call; the child is killed when the timeout drops it.
        let out = tokio::time::timeout(self.deadline.within, child.wait_with_output())
            .await
            .with_context(|| {
                format!(
                    "`kubectl apply` ran longer than {}s ({})",
                    self.deadline.within.as_secs(),
                    self.deadline.setting
                )
            })??;
        Ok(Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// The output of a call that must succeed; otherwise an error naming `what` with its tail.
pub fn succeeded(out: Output, what: &str) -> Result<Output> {
    if out.status.success() {
        Ok(out)
    } else {
        bail!(
            "{what} failed (exit {}):\n{}",
            out.status.code().unwrap_or(-1),
            out.tail(20)
        )
    }
}

/// Runs `futures` at once on this task and returns their outputs in order (a `join!` over a
/// list: the calls of one probe are round trips through the tunnel, not CPU work).
pub async fn all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future is ready"))
        .collect()
}
