//! Look-ahead probes. The stages whose probe reads only the inventory and their own corner of
//! the world (tls: the controller's certificate and HAProxy; dns: the Route 53 record) probe on
//! a task of their own while the stages before them run. When the run reaches such a stage and
//! nothing before it changed anything, that answer is the one a probe would give now and is
//! used, with what the probe said shown then; otherwise it is dropped and the stage probes
//! again. Probes change nothing, so a dropped one loses nothing.
//!
//! A look-ahead probe borrows the fleet patiently (`Fleet::patient`): it takes a host's session
//! once the stage that opened it lets go, and connects on its own only when the run has reached
//! its stage, so the run still makes one SSH handshake per host.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Runner;
use crate::fleet::Patience;
use crate::report::{Change, Held};
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::stages;
use crate::state::State;

/// The stages that may probe ahead.
pub const STAGES: [StageName; 2] = [StageName::Tls, StageName::Dns];

/// A stage probed ahead: the stage (holding its plan), what it would change, what it said.
pub struct Probed {
    pub stage: Box<dyn Stage>,
    pub changes: Vec<Change>,
    pub said: Held,
}

type Answer = (Box<dyn Stage>, Result<Vec<Change>>, Held);

#[derive(Default)]
pub struct LookAhead {
    patience: Arc<Patience>,
    pending: BTreeMap<StageName, (oneshot::Receiver<Answer>, JoinHandle<()>)>,
}

impl LookAhead {
    /// Starts the probes of `names` on the inventory in `state` as it is now.
    pub fn start(
        runner: &Runner<'_>,
        names: &[StageName],
        state: &State,
        force: &[StageName],
    ) -> Self {
        let mut ahead = LookAhead::default();
        for &name in names {
            let (tx, rx) = oneshot::channel();
            let settings = runner.settings.clone();
            let state_dir = runner.state_dir.clone();
            let (reporter, said) = runner.reporter.held();
            let fleet = runner.fleet.patient(ahead.patience.clone());
            let mut state = state.clone();
            let (force, allow_replace) = (force.contains(&name), runner.allow_replace);
            let allow_downgrade = runner.allow_downgrade;
            let task = tokio::spawn(async move {
                let mut stage = stages::build(name);
                let mut cx = StageContext {
                    settings: &settings,
                    state_dir: &state_dir,
                    state: &mut state,
                    reporter: &reporter,
                    stage: name,
                    force,
                    fleet: &fleet,
                    allow_replace,
                    // Terraform never probes ahead.
                    saved_tfplan: None,
                    allow_downgrade,
                };
                let changes = stage.probe(&mut cx).await;
                // The run may have gone on without it.
                let _ = tx.send((stage, changes, said));
            });
            ahead.pending.insert(name, (rx, task));
        }
        ahead
    }

    /// The look-ahead probe of `name`, waiting for it to finish; `None` when there was none or
    /// it failed (the stage then probes itself, and an error is its own to report).
    pub async fn take(&mut self, name: StageName) -> Option<Probed> {
        let (answer, _task) = self.pending.remove(&name)?;
        // Nothing runs beside it any more: no session to wait for.
        self.patience.connect.store(true, Ordering::Relaxed);
        match answer.await {
            Ok((stage, Ok(changes), said)) => Some(Probed {
                stage,
                changes,
                said,
            }),
            _ => None,
        }
    }

    /// Calls off the probes not taken (a stage before them changed something, or the run is
    /// over): a wait for a session ends, and each task is dropped at its next await.
    pub fn cancel(&mut self) {
        self.patience.give_up.store(true, Ordering::Relaxed);
        for (_, (_, task)) in std::mem::take(&mut self.pending) {
            task.abort();
        }
    }
}

impl Drop for LookAhead {
    fn drop(&mut self) {
        self.cancel();
    }
}
