//! `jeeves stop` and `jeeves start`: the stack's instances through the EC2 API, by the instance
//! ids of the inventory (the terraform stage's outputs). `start` then repairs: the pipeline as
//! `up` runs it (the terraform stage re-reads the inventory, whose public IPs change after a
//! stop on AWS unless they are Elastic IPs; DNS, the tunnel and the pods follow), then removes
//! the pods left over from before the stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Session;
use crate::aws::ec2::Ec2;
use crate::aws::power::Power;
use crate::cli::{GlobalArgs, StartArgs, StopArgs};
use crate::config::Settings;
use crate::exit_code::UsageError;
use crate::fleet::Fleet;
use crate::report::{Event, Level, Redactor, Reporter};
use crate::runner::{Mode, RunReport, Runner};
use crate::ssh::HostKeyPolicy;
use crate::stage::StageContext;
use crate::stage_name::StageName;
use crate::state::{Host, State};

/// How long EC2 may take to bring the instances to `stopped` or `running` (AWS: usually
/// under two minutes; a stop waits for the guest to shut down, at most ~10 minutes).
pub const POWER_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The inventory's hosts with their EC2 instance ids. A usage error (exit 2) naming the state
/// it read, and nothing stopped or started: a state written for another domain than the
/// configured one, an empty inventory, a host without an instance id.
pub fn instances(state: &State, state_file: &str, settings: &Settings) -> Result<Vec<Host>> {
    if let Some(domain) = state.domain.as_ref().filter(|d| **d != settings.domain) {
        return Err(UsageError(format!(
            "the state in {state_file} is the stack of `{domain}`, but this pipeline is configured for `{}`: refusing to act on another domain's stack. Point the pipeline at its own state ([state] key_prefix, JEEVES_STATE_*) or set the domain it was made for",
            settings.domain
        ))
        .into());
    }
    let hosts: Vec<Host> = state
        .inventory
        .controller
        .iter()
        .chain(&state.inventory.more_controllers)
        .chain(&state.inventory.workers)
        .cloned()
        .collect();
    if hosts.is_empty() {
        return Err(UsageError(format!(
            "the inventory in {state_file} is empty: there is no stack to stop or start (run `jeeves up` to create it, or check that the pipeline's [state] names the stack's state)"
        ))
        .into());
    }
    let bad: Vec<String> = hosts
        .iter()
        .filter(|h| !h.id.starts_with("i-"))
        .map(|h| format!("{} (id `{}`)", h.hostname, h.id))
        .collect();
    if !bad.is_empty() {
        return Err(UsageError(format!(
            "the inventory in {state_file} has hosts without an EC2 instance id: {}; stop/start works on EC2 instances only \
             (the terraform configuration's outputs must give each host's `id`; run `jeeves up --only terraform` to re-read them)",
            bad.join(", ")
        ))
        .into());
    }
    Ok(hosts)
}

/// An EC2 wait that Ctrl-C or a Jenkins abort ends (exit 130/143): the instances carry on with
/// their transition in EC2, and the next `stop` or `start` picks up from the state they reach.
async fn interruptible<T>(wait: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        done = wait => done,
        () = crate::interrupt::wait() => Err(crate::interrupt::check()
            .expect_err("a signal arrived")
            .into()),
    }
}

fn ids(hosts: &[Host]) -> Vec<String> {
    hosts.iter().map(|h| h.id.clone()).collect()
}

fn say(reporter: &Reporter, message: String) {
    reporter.log(None, Level::Info, message);
}

/// `host (id): state` for each instance.
fn describe(hosts: &[Host], power: &[Power]) -> String {
    hosts
        .iter()
        .map(|h| {
            let state = power
                .iter()
                .find(|p| p.id == h.id)
                .map_or("not found", |p| p.state.as_str());
            format!("{} ({}) {state}", h.hostname, h.id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn stop(
    g: &GlobalArgs,
    settings: &Arc<Settings>,
    redactor: Redactor,
    args: &StopArgs,
) -> Result<u8> {
    crate::interrupt::install()?;
    // The inventory as the lock holder sees it (with the S3 backend, pulled from the bucket):
    // a stack without instances is refused before anything is asked or any EC2 call is made.
    let session = Session::open(g, settings, redactor, "stop").await?;
    let hosts = instances(
        &session.state_dir.load()?,
        &session.state_dir.describe(),
        settings,
    )?;
    super::confirm_by_name(
        settings,
        args.yes,
        "jeeves stop",
        "stops every instance of the stack",
        "Stop every instance",
        "nothing was stopped",
    )?;
    let started = Instant::now();
    session.reporter.emit(Event::RunStarted {
        command: "stop".into(),
        pipeline: settings.name.clone(),
        stages: Vec::new(),
    });
    let result = stop_instances(&session.reporter, &hosts).await;
    super::finish_run(&session, started, result)
}

async fn stop_instances(reporter: &Reporter, hosts: &[Host]) -> Result<()> {
    let ec2 = Ec2::new(&crate::aws::sdk_config().await);
    let ids = ids(hosts);
    let before = ec2.power(&ids).await?;
    let to_stop: Vec<String> = before
        .iter()
        .filter(|p| matches!(p.state.as_str(), "pending" | "running"))
        .map(|p| p.id.clone())
        .collect();
    // EC2 refuses to stop an instance still starting (IncorrectInstanceState).
    let pending: Vec<String> = before
        .iter()
        .filter(|p| p.state == "pending")
        .map(|p| p.id.clone())
        .collect();
    if before.iter().all(|p| p.state == "stopped") {
        say(
            reporter,
            format!(
                "already stopped, nothing to do: {}",
                describe(hosts, &before)
            ),
        );
        return Ok(());
    }
    if !pending.is_empty() {
        say(
            reporter,
            format!("waiting for {} to finish starting", pending.join(", ")),
        );
        interruptible(ec2.wait_running(&pending, POWER_TIMEOUT)).await?;
    }
    if !to_stop.is_empty() {
        say(reporter, format!("stopping {}", to_stop.join(", ")));
        ec2.stop(&to_stop).await?;
    }
    interruptible(ec2.wait_stopped(&ids, POWER_TIMEOUT))
        .await
        .context("re-run `jeeves stop` to wait again")?;
    let after = ec2.power(&ids).await?;
    say(
        reporter,
        format!(
            "stopped: {} (`jeeves start` brings them back)",
            describe(hosts, &after)
        ),
    );
    Ok(())
}

pub async fn start(
    g: &GlobalArgs,
    settings: &Arc<Settings>,
    redactor: Redactor,
    args: &StartArgs,
) -> Result<u8> {
    super::check_ssh_key_for(settings, &StageName::ALL)?;
    crate::interrupt::install()?;
    // The inventory as the lock holder sees it (with the S3 backend, pulled from the bucket).
    let session = Session::open(g, settings, redactor, "start").await?;
    let hosts = instances(
        &session.state_dir.load()?,
        &session.state_dir.describe(),
        settings,
    )?;
    let started = Instant::now();
    let reporter = &session.reporter;
    let ec2 = Ec2::new(&crate::aws::sdk_config().await);
    let ids = ids(&hosts);
    let before = ec2.power(&ids).await;
    let run_started = |stages: Vec<StageName>| {
        reporter.emit(Event::RunStarted {
            command: "start".into(),
            pipeline: settings.name.clone(),
            stages,
        })
    };
    let before = match before {
        Ok(p) => p,
        Err(e) => {
            run_started(Vec::new());
            return super::finish_run(&session, started, Err(e));
        }
    };
    if before.iter().all(|p| p.state == "running") {
        run_started(Vec::new());
        say(
            reporter,
            format!(
                "already running, nothing to start: {} (`jeeves up` repairs a running stack)",
                describe(&hosts, &before)
            ),
        );
        return super::finish_run(&session, started, Ok(()));
    }
    run_started(StageName::ALL.to_vec());
    let policy = if args.accept_new_host_keys {
        HostKeyPolicy::AcceptNew
    } else {
        HostKeyPolicy::Strict
    };
    let fleet = Fleet::new(&settings.ssh, policy);
    let result = start_and_repair(settings, &session, &fleet, &ec2, &hosts, &before).await;
    tokio::task::spawn_blocking(move || drop(fleet)).await.ok();
    super::finish_run(&session, started, result)
}

async fn start_and_repair(
    settings: &Arc<Settings>,
    session: &Session,
    fleet: &Fleet,
    ec2: &Ec2,
    hosts: &[Host],
    before: &[Power],
) -> Result<()> {
    let reporter = &session.reporter;
    let ids = ids(hosts);
    // An instance still stopping cannot be started yet (IncorrectInstanceState).
    if before.iter().any(|p| p.state == "stopping") {
        say(reporter, "waiting for the instances still stopping".into());
        interruptible(ec2.wait_stopped(&ids, POWER_TIMEOUT)).await?;
    }
    let to_start: Vec<String> = before
        .iter()
        .filter(|p| matches!(p.state.as_str(), "stopped" | "stopping"))
        .map(|p| p.id.clone())
        .collect();
    if !to_start.is_empty() {
        say(reporter, format!("starting {}", to_start.join(", ")));
        ec2.start(&to_start).await?;
    }
    interruptible(ec2.wait_running(&ids, POWER_TIMEOUT))
        .await
        .context("re-run `jeeves start` to wait again")?;
    let after = ec2.power(&ids).await?;
    say(
        reporter,
        format!(
            "running: {}",
            after
                .iter()
                .map(|p| format!(
                    "{} public IP {}",
                    p.id,
                    p.public_ip.as_deref().unwrap_or("none")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    // The repair: terraform re-reads the inventory (the new public IPs), SSH must answer on
    // every host, then the rest of the pipeline as `up` runs it.
    let mut state = session.state_dir.load()?;
    let runner = Runner {
        settings,
        state_dir: &session.state_dir,
        reporter,
        fleet,
        allow_replace: false,
        saved_tfplan: None,
        allow_downgrade: false,
    };
    let mut report = RunReport::default();
    let all = StageName::ALL;
    // Forced: a plan without resource changes would leave the outputs as stored, and
    // `terraform output` would give the public IPs from before the stop; an apply refreshes
    // them (as `up --force terraform`).
    runner
        .run_part(
            Mode::Up,
            &all[..1],
            &all,
            &[StageName::Terraform],
            &mut state,
            &mut report,
        )
        .await;
    if report.failed.is_none()
        && let Err(e) = ssh_answers(settings, session, fleet, &mut state).await
    {
        // The stages after terraform are reported as skipped.
        runner
            .run_part(Mode::Up, &all[1..], &[], &[], &mut state, &mut report)
            .await;
        return Err(e);
    }
    runner
        .run_part(Mode::Up, &all[1..], &all, &[], &mut state, &mut report)
        .await;
    report.into_result()?;
    remove_leftover_pods(settings, session, fleet, &mut state).await
}

/// Waits until every host of the (re-read) inventory accepts an SSH login: the fleet's
/// connect retries until `ssh.connect_timeout`; the sessions stay in the pool for the stages.
async fn ssh_answers(
    settings: &Arc<Settings>,
    session: &Session,
    fleet: &Fleet,
    state: &mut State,
) -> Result<()> {
    let hosts: Vec<Host> = state
        .inventory
        .controller
        .iter()
        .chain(&state.inventory.more_controllers)
        .chain(&state.inventory.workers)
        .cloned()
        .collect();
    let cx = StageContext {
        settings,
        state_dir: &session.state_dir,
        state,
        reporter: &session.reporter,
        stage: StageName::Bootstrap,
        force: false,
        fleet,
        allow_replace: false,
        saved_tfplan: None,
        allow_downgrade: false,
    };
    cx.pin(&hosts).await?;
    let waited = Instant::now();
    let failures: Vec<String> = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let tasks: Vec<_> = hosts
                .iter()
                .map(|h| s.spawn(move || (h, fleet.lease(h).map(drop))))
                .collect();
            tasks
                .into_iter()
                .filter_map(|t| match t.join() {
                    Ok((_, Ok(()))) => None,
                    Ok((h, Err(e))) => Some(format!("{} ({}): {e:#}", h.hostname, h.public_ip)),
                    Err(_) => Some("an SSH connection thread panicked".into()),
                })
                .collect()
        })
    });
    if !failures.is_empty() {
        anyhow::bail!(
            "the instances run but SSH does not answer on {} host(s):\n  {}\nre-run `jeeves start` (or `jeeves up`) once they answer",
            failures.len(),
            failures.join("\n  ")
        );
    }
    say(
        &session.reporter,
        format!(
            "SSH answers on all {} host(s) ({:.1}s)",
            hosts.len(),
            waited.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

/// Pods left in Succeeded, Failed or Unknown from before the stop, removed through the tunnel
/// the deploy stage used.
async fn remove_leftover_pods(
    settings: &Arc<Settings>,
    session: &Session,
    fleet: &Fleet,
    state: &mut State,
) -> Result<()> {
    let mut cx = StageContext {
        settings,
        state_dir: &session.state_dir,
        state,
        reporter: &session.reporter,
        stage: StageName::Deploy,
        force: false,
        fleet,
        allow_replace: false,
        saved_tfplan: None,
        allow_downgrade: false,
    };
    crate::stages::deploy::after_start(&mut cx).await.context(
        "maintenance after start failed (the stack is up; re-run `jeeves start` to retry it)",
    )
}
