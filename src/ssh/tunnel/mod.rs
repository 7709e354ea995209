//! A local port forwarded to a port on the remote host's loopback over SSH direct-tcpip, in
//! process: no `ssh -L` child that could outlive Jeeves. Dedicated, non-blocking sessions; one
//! thread multiplexes every connection in a `poll(2)` loop.
//!
//! Nothing in the loop waits for the server (issue 12). sshd confirms a direct-tcpip open only
//! once its own `connect(2)` to the target has completed: one round trip at best, a SYN
//! retransmission (1 s, then 3 s, 7 s…) when the target's accept queue is full. An open that
//! waited for that inside the loop stalled every connection's data, every later open and the
//! stop flag for as long. So an open is a step of the loop like a read, and because libssh2 has
//! at most one open in flight per session (its open state is the session's), opens that queue
//! behind a slow one get another session, up to `MAX_SESSIONS`, as `ssh -L` has many opens in
//! flight on its one connection.

mod conn;
mod forwarder;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::session::SshSession;
use forwarder::Forwarder;

/// Where the tunnel reports a connection it could not forward (one line, no newline).
pub type TunnelLog = Box<dyn Fn(&str) + Send>;

/// An open tunnel; closed (listener, channels, sessions, thread) when dropped.
pub struct Tunnel {
    pub local: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Closed on drop: wakes the thread from its `poll(2)` at once (an idle tunnel sleeps up to
    /// 200 ms there, which every run that opened one waited for before exiting).
    wake: Option<std::os::unix::net::UnixStream>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Counters {
    open: AtomicUsize,
    refused: AtomicUsize,
    sessions: AtomicUsize,
}

impl Tunnel {
    /// Listens on 127.0.0.1:`local_port` and forwards each connection to 127.0.0.1:`remote_port`
    /// on the session's host. A busy port is a clear error naming it. A connection whose channel
    /// cannot be opened is closed with its reason on stderr; the others carry on.
    pub fn open(session: SshSession, local_port: u16, remote_port: u16) -> Result<Tunnel> {
        Self::open_logging(
            session,
            local_port,
            remote_port,
            Box::new(|line| eprintln!("tunnel: {line}")),
        )
    }

    /// `open`, reporting the connections it could not forward to `log`.
    pub fn open_logging(
        session: SshSession,
        local_port: u16,
        remote_port: u16,
        log: TunnelLog,
    ) -> Result<Tunnel> {
        Self::open_to(session, local_port, "127.0.0.1", remote_port, log)
    }

    /// Forwards to `remote_host:remote_port` as the session's host reaches it (a jump host
    /// forwarding to another host's sshd). Port 0 listens on a free port (`local` says which).
    pub fn open_to(
        session: SshSession,
        local_port: u16,
        remote_host: &str,
        remote_port: u16,
        log: TunnelLog,
    ) -> Result<Tunnel> {
        let remote_host = remote_host.to_string();
        let listener = TcpListener::bind(("127.0.0.1", local_port)).map_err(|e| {
            if e.kind() == ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "local port {local_port} is already in use (another tunnel or kubectl proxy?); choose another with tunnel.local_port or JEEVES_TUNNEL_LOCAL_PORT"
                )
            } else {
                anyhow::anyhow!("cannot listen on 127.0.0.1:{local_port}: {e}")
            }
        })?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        counters.sessions.store(1, Ordering::Relaxed);
        let (s, c) = (stop.clone(), counters.clone());
        let (wake, woken) = std::os::unix::net::UnixStream::pair()
            .context("cannot make the tunnel's wake-up pair")?;
        let thread = std::thread::Builder::new()
            .name("jeeves-tunnel".into())
            .spawn(move || {
                Forwarder::new(session, listener, remote_host, remote_port, s, c, log).run(woken)
            })
            .context("cannot start the tunnel thread")?;
        Ok(Tunnel {
            local,
            stop,
            wake: Some(wake),
            counters,
            thread: Some(thread),
        })
    }

    /// Connections currently forwarded.
    pub fn open_connections(&self) -> usize {
        self.counters.open.load(Ordering::Relaxed)
    }

    /// Connections closed so far because their channel could not be opened.
    pub fn refused_connections(&self) -> usize {
        self.counters.refused.load(Ordering::Relaxed)
    }

    /// SSH sessions the tunnel holds to the host.
    pub fn sessions(&self) -> usize {
        self.counters.sessions.load(Ordering::Relaxed)
    }

    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
