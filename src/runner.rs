//! Runs stages in the fixed order and records their results. Uses no SSH or AWS type: it
//! reaches hosts only through the hosts layer (`fleet`).
//! Stages whose probe needs nothing an earlier stage makes probe ahead (`lookahead`).

mod lookahead;

use std::time::Instant;

use anyhow::Result;

use crate::cli::SelectArgs;
use crate::config::Settings;
use crate::exit_code::UsageError;
use crate::fleet::Fleet;
use crate::report::{Event, Reporter};
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::stages;
use crate::state::{StageRecord, StageResult, State, StateDir, now_rfc3339};
use lookahead::{LookAhead, Probed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Probe, then apply what changed.
    Up,
    /// Probe only; nothing is changed and state is not written.
    Plan,
}

/// Which stages a run covers, from `--only`, `--from` and `--skip`.
pub fn select(args: &SelectArgs) -> Result<Vec<StageName>> {
    let mut stages: Vec<StageName> = if args.only.is_empty() {
        StageName::ALL.to_vec()
    } else {
        StageName::ALL
            .iter()
            .copied()
            .filter(|s| args.only.contains(s))
            .collect()
    };
    if let Some(from) = args.from {
        stages.retain(|s| *s >= from);
    }
    stages.retain(|s| !args.skip.contains(s));
    if stages.is_empty() {
        return Err(UsageError("--only, --from and --skip leave no stage to run".into()).into());
    }
    Ok(stages)
}

/// The outcome of a run: each stage's result, in order.
#[derive(Debug, Default)]
pub struct RunReport {
    pub results: Vec<(StageName, StageResult)>,
    /// Each probed stage's planned changes (what `plan --out` saves).
    pub planned: Vec<(StageName, Vec<crate::report::Change>)>,
    pub failed: Option<(StageName, anyhow::Error)>,
}

pub struct Runner<'a> {
    pub settings: &'a std::sync::Arc<Settings>,
    pub state_dir: &'a StateDir,
    pub reporter: &'a Reporter,
    /// The run's hosts layer; the command drops it (closing every connection) after the run.
    pub fleet: &'a Fleet,
    /// `up --allow-replace`: a terraform plan may replace or destroy without asking.
    pub allow_replace: bool,
    /// `up --plan FILE`: the approved terraform plan file, applied instead of a new plan.
    pub saved_tfplan: Option<&'a std::path::Path>,
    /// `up/plan --allow-downgrade`: the release may move to an older Rocket.Chat.
    pub allow_downgrade: bool,
}

impl Runner<'_> {
    pub async fn run(
        &self,
        mode: Mode,
        selected: &[StageName],
        force: &[StageName],
        state: &mut State,
    ) -> RunReport {
        let mut report = RunReport::default();
        self.run_part(mode, &StageName::ALL, selected, force, state, &mut report)
            .await;
        report
    }

    /// Runs the stages of `part` (in order) into `report`: how a command that does something
    /// between two stages (`start` waits for SSH after terraform) runs the pipeline in parts.
    /// Once a stage has failed, the rest are reported as skipped.
    pub async fn run_part(
        &self,
        mode: Mode,
        part: &[StageName],
        selected: &[StageName],
        force: &[StageName],
        state: &mut State,
        report: &mut RunReport,
    ) {
        let mut ahead = LookAhead::default();
        let mut ahead_started = false;
        // A stage of this run changed something before the look-ahead could start: it does
        // not. Once started, a stage that applies calls it off itself (`run_stage`).
        let mut changed = false;
        for &name in part {
            if !selected.contains(&name) || report.failed.is_some() {
                self.reporter.emit(Event::StageFinished {
                    stage: name,
                    result: StageResult::Skipped,
                    duration_ms: 0,
                    error: None,
                });
                report.results.push((name, StageResult::Skipped));
                continue;
            }
            // From the first stage after terraform (whose outputs are the inventory), unless
            // something changed already or a host's key is not pinned yet (pinning is the
            // stages' own, one at a time).
            if !ahead_started && name > StageName::Terraform {
                ahead_started = true;
                let names: Vec<StageName> = lookahead::STAGES
                    .into_iter()
                    .filter(|s| *s > name && selected.contains(s) && part.contains(s))
                    .collect();
                let pinned = state
                    .inventory
                    .controller
                    .as_ref()
                    .is_some_and(|c| self.fleet.has_host_key(c));
                if !changed && pinned && !names.is_empty() {
                    ahead = LookAhead::start(self, &names, state, force);
                }
            }
            let started = Instant::now();
            self.reporter.emit(Event::StageStarted { stage: name });
            let (mut stage, probed) = match ahead.take(name).await {
                Some(Probed {
                    stage,
                    changes,
                    said,
                }) => {
                    said.replay(self.reporter);
                    (stage, Some(changes))
                }
                None => (stages::build(name), None),
            };
            let forced = force.contains(&name);
            // In a plan, the earlier stages that would change something.
            let pending: Vec<StageName> = report
                .results
                .iter()
                .filter(|(_, r)| mode == Mode::Plan && *r == StageResult::Changed)
                .map(|(s, _)| *s)
                .collect();
            let outcome = self
                .run_stage(
                    stage.as_mut(),
                    Run {
                        mode,
                        force: forced,
                        pending: &pending,
                    },
                    state,
                    probed,
                    &mut ahead,
                    &mut report.planned,
                )
                .await;
            let duration_ms = started.elapsed().as_millis() as u64;
            // Interrupted (Ctrl-C, a Jenkins abort): the stage stopped at its safe point; no
            // further stage starts, and the exit code says why (130/143).
            let outcome = match (outcome, crate::interrupt::received()) {
                (Err(e), Some(sig)) => Err(anyhow::Error::from(crate::interrupt::Interrupted(sig))
                    .context(format!("{e:#}"))),
                (outcome, _) => outcome,
            };
            let (result, error) = match &outcome {
                Ok(r) => (*r, None),
                Err(e) => (StageResult::Failed, Some(format!("{e:#}"))),
            };
            self.reporter.emit(Event::StageFinished {
                stage: name,
                result,
                duration_ms,
                error: error.clone(),
            });
            report.results.push((name, result));
            changed |= mode == Mode::Up && result != StageResult::Unchanged;
            if mode == Mode::Up {
                state.domain = Some(self.settings.domain.clone());
                state.stages.insert(
                    name,
                    StageRecord {
                        result,
                        finished_at: now_rfc3339(),
                        duration_ms,
                        inputs: stages::inputs_fingerprint(name, self.settings),
                        error: error.map(|e| self.reporter.redactor().redact(&e)),
                    },
                );
                // Saved after every stage, so a failure later in the run loses nothing.
                if let Err(e) = self.state_dir.save(state) {
                    report.failed = Some((name, e));
                    continue;
                }
            }
            if let Err(e) = outcome {
                report.failed = Some((name, e));
            } else if let Some(sig) = crate::interrupt::received() {
                report.failed = Some((name, crate::interrupt::Interrupted(sig).into()));
            }
        }
    }

    async fn run_stage(
        &self,
        stage: &mut dyn Stage,
        Run {
            mode,
            force,
            pending,
        }: Run<'_>,
        state: &mut State,
        probed: Option<Vec<crate::report::Change>>,
        ahead: &mut LookAhead,
        planned: &mut Vec<(StageName, Vec<crate::report::Change>)>,
    ) -> Result<StageResult> {
        let name = stage.name();
        // `plan` on a stack terraform has not created yet: the later stages have no hosts to
        // probe. They would all run; say so instead of failing.
        if mode == Mode::Plan
            && name != StageName::Terraform
            && state.inventory.controller.is_none()
        {
            let changes = vec![crate::report::Change::new(
                "run",
                "everything: no hosts in the inventory until terraform applies",
            )];
            planned.push((name, changes.clone()));
            self.reporter.emit(Event::StagePlanned {
                stage: name,
                changes,
            });
            return Ok(StageResult::Changed);
        }
        let mut cx = StageContext {
            settings: self.settings,
            state_dir: self.state_dir,
            state,
            reporter: self.reporter,
            stage: name,
            force,
            fleet: self.fleet,
            allow_replace: self.allow_replace,
            saved_tfplan: self.saved_tfplan,
            allow_downgrade: self.allow_downgrade,
        };
        let changes = match probed {
            Some(changes) => changes,
            None => match stage.probe(&mut cx).await {
                Ok(changes) => changes,
                // `plan` on a partly built stack: what this stage would probe is made by changes
                // an earlier stage only plans. It would run; say so, and why it could not look.
                Err(e) => match name.needs().iter().find(|s| pending.contains(s)) {
                    Some(before) if mode == Mode::Plan => {
                        // On one line: a remote command's error carries its output.
                        let why: Vec<String> = format!("{e:#}")
                            .split_whitespace()
                            .map(str::to_string)
                            .collect();
                        vec![crate::report::Change::new(
                            "run",
                            format!(
                                "everything once {before}'s changes are applied (nothing to \
                                 probe before: {})",
                                why.join(" ")
                            ),
                        )]
                    }
                    _ => return Err(e),
                },
            },
        };
        let unchanged = changes.is_empty();
        planned.push((name, changes.clone()));
        self.reporter.emit(Event::StagePlanned {
            stage: name,
            changes,
        });
        if mode == Mode::Plan {
            return Ok(if unchanged {
                StageResult::Unchanged
            } else {
                StageResult::Changed
            });
        }
        if unchanged && !force {
            return Ok(StageResult::Unchanged);
        }
        // What the later stages saw ahead may be about to change: they will probe again.
        ahead.cancel();
        stage.apply(&mut cx).await?;
        Ok(StageResult::Changed)
    }
}

/// How `run_stage` runs a stage.
struct Run<'a> {
    mode: Mode,
    /// `--force` names the stage.
    force: bool,
    /// In a plan: the earlier stages that would change something.
    pending: &'a [StageName],
}

impl RunReport {
    /// `Err` with the failed stage's error chain when a stage failed (exit 1).
    pub fn into_result(self) -> Result<()> {
        match self.failed {
            None => Ok(()),
            Some((stage, e)) => Err(e.context(format!("stage `{stage}` failed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(only: &[StageName], from: Option<StageName>, skip: &[StageName]) -> SelectArgs {
        SelectArgs {
            only: only.to_vec(),
            from,
            skip: skip.to_vec(),
        }
    }

    #[test]
    fn selection_keeps_the_fixed_order() {
        use StageName::*;
        assert_eq!(
            select(&args(&[], None, &[])).unwrap(),
            StageName::ALL.to_vec()
        );
        assert_eq!(
            select(&args(&[Dns, Terraform], None, &[])).unwrap(),
            vec![Terraform, Dns]
        );
        assert_eq!(
            select(&args(&[], Some(Tunnel), &[])).unwrap(),
            vec![Tunnel, Deploy, Dns]
        );
        assert_eq!(
            select(&args(&[], Some(Tls), &[Deploy])).unwrap(),
            vec![Tls, Tunnel, Dns]
        );
        assert!(select(&args(&[Terraform], None, &[Terraform])).is_err());
    }
}
