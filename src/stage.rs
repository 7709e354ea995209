//! The shape every stage has: probe the real world, say what would change, then change it.

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;

use crate::config::Settings;
use crate::fleet::Fleet;
use crate::report::{Change, Event, Level, Reporter};
use crate::stage_name::StageName;
use crate::state::{State, StateDir};

/// What a stage gets to work with.
pub struct StageContext<'a> {
    /// Shared, not copied: a stage that needs the settings on another thread clones the `Arc`.
    pub settings: &'a Arc<Settings>,
    pub state_dir: &'a StateDir,
    /// The inventory and stage records; saved by the runner after each stage of `up`,
    /// discarded by `plan`.
    pub state: &'a mut State,
    pub reporter: &'a Reporter,
    pub stage: StageName,
    /// `up --force STAGE`: apply even when the probe found nothing to change.
    pub force: bool,
    /// The run's hosts layer: SSH sessions (one connection per host), pinned host keys, and
    /// the tunnel to the cluster API opened by the tunnel stage for the stages after it.
    pub fleet: &'a Fleet,
    /// `up --allow-replace`: destructive terraform plans are applied without asking.
    pub allow_replace: bool,
    /// `up --plan FILE`: the terraform plan file it holds, applied as is (already approved).
    pub saved_tfplan: Option<&'a std::path::Path>,
    /// `up/plan --allow-downgrade`: the release may move to an older Rocket.Chat.
    pub allow_downgrade: bool,
}

impl StageContext<'_> {
    /// What the stage says goes through this.
    pub fn log(&self) -> StageLog<'_> {
        StageLog {
            reporter: self.reporter,
            stage: self.stage,
        }
    }

    pub fn info(&self, message: impl Into<String>) {
        self.log().info(message);
    }

    pub fn warn(&self, message: impl Into<String>) {
        self.log().warn(message);
    }

    /// Pins the keys of `hosts` new to this run (once per run; `Fleet::pin`), reporting each.
    pub async fn pin(&self, hosts: &[crate::state::Host]) -> Result<()> {
        let say = |host: &str, message: String| self.host(host, message);
        self.fleet.pin(hosts, &say).await
    }

    pub fn tool_said(&self, said: crate::process::Said<'_>, stdout: bool) {
        self.log().tool_said(said, stdout);
    }

    pub fn host(&self, host: impl Into<String>, message: impl Into<String>) {
        self.log().host(host, message);
    }
}

/// kubectl and helm (`crate::kube`) report what they print through the stage's log.
impl crate::kube::ToolLog for StageContext<'_> {
    fn tool_said(&self, said: crate::process::Said<'_>, stdout: bool) {
        self.log().tool_said(said, stdout);
    }
}

/// A stage's voice in the run's report: for the stages, and for a command that does a stage's
/// work outside the runner (`down`).
#[derive(Clone, Copy)]
pub struct StageLog<'a> {
    pub reporter: &'a Reporter,
    pub stage: StageName,
}

impl StageLog<'_> {
    pub fn info(&self, message: impl Into<String>) {
        self.reporter.log(Some(self.stage), Level::Info, message);
    }

    pub fn warn(&self, message: impl Into<String>) {
        self.reporter.log(Some(self.stage), Level::Warn, message);
    }

    /// Reports what a local tool said: its lines as output (stdout only when `stdout`; some
    /// tools print whole documents there), Jeeves' notices about it as warnings.
    pub fn tool_said(&self, said: crate::process::Said<'_>, stdout: bool) {
        use crate::process::Said;
        match said {
            Said::Stdout(l) if stdout => self.reporter.log(Some(self.stage), Level::Output, l),
            Said::Stdout(_) => {}
            Said::Stderr(l) => self.reporter.log(Some(self.stage), Level::Output, l),
            Said::Notice(n) => self.reporter.log(Some(self.stage), Level::Warn, n),
        }
    }

    pub fn host(&self, host: impl Into<String>, message: impl Into<String>) {
        self.reporter.emit(Event::HostProgress {
            stage: self.stage,
            host: host.into(),
            message: message.into(),
        });
    }
}

#[async_trait]
pub trait Stage: Send {
    fn name(&self) -> StageName;

    /// Looks at the real world and returns what `apply` would change (empty: unchanged).
    /// Changes nothing remote.
    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>>;

    /// Makes the changes the probe found. Called only after a probe, and only when it found
    /// changes or the stage is forced.
    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()>;
}
