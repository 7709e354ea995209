//! Ctrl-C and SIGTERM (a Jenkins abort) during a run. The first signal asks the run to stop at the
//! next safe point: the stage under way finishes what it cannot leave half done (haproxy is started
//! again after certbot; a local tool gets one SIGINT of its own and up to 30 s to stop, so
//! terraform stops cleanly instead of being killed mid-apply), no further stage starts, the stage
//! is recorded as failed, the log is flushed and the lock released, and Jeeves exits 130 (SIGINT)
//! or 143 (SIGTERM). A second signal exits at once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

static RECEIVED: AtomicI32 = AtomicI32::new(0);

fn notify() -> &'static Notify {
    static NOTIFY: OnceLock<Notify> = OnceLock::new();
    NOTIFY.get_or_init(Notify::new)
}

/// The run was interrupted by a signal (exit 128 + the signal's number).
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}; the next run repairs what was left", name(*.0))]
pub struct Interrupted(pub i32);

fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT (Ctrl-C)",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Starts listening for SIGINT and SIGTERM (call inside the runtime, before the run).
pub fn install() -> Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            if RECEIVED.swap(sig, Ordering::SeqCst) != 0 {
                eprintln!("\n{}: exiting at once", name(sig));
                std::process::exit(128 + sig);
            }
            eprintln!(
                "\n{}: stopping after the step under way (again to exit at once)",
                name(sig)
            );
            notify().notify_waiters();
        }
    });
    Ok(())
}

/// The first signal received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Fails with `Interrupted` once a signal has arrived: for the safe points of long waits.
pub fn check() -> Result<(), Interrupted> {
    received().map_or(Ok(()), |sig| Err(Interrupted(sig)))
}

/// Resolves when the first signal arrives (at once if it already has).
pub async fn wait() {
    let notified = notify().notified();
    if received().is_some() {
        return;
    }
    notified.await;
}
