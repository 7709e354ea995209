//! The tunnel's thread (`Forwarder`): one `poll(2)` loop that accepts local connections, opens
//! their channels on the tunnel's sessions (`Lane`s) without waiting for the server, connects
//! another session when opens queue behind a slow one, pumps every connection and closes what
//! is finished.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::Result;
use ssh2::Channel;

use super::conn::{Conn, pump};
use super::{Counters, TunnelLog};
use crate::ssh::options::{SshOptions, Target};
use crate::ssh::session::SshSession;
use crate::ssh::socket::would_block;

/// How long a closed channel may wait for the server's close before it is let go.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// SSH sessions one tunnel may hold: how many channel opens can wait on the server at once.
const MAX_SESSIONS: usize = 8;
/// How long an accepted connection may wait for a session with no open in flight before the
/// tunnel connects another session: longer than an open takes on a LAN, shorter than a SYN
/// retransmission.
const GROW_AFTER: Duration = Duration::from_millis(100);
/// After a failed attempt to add a session, how long before the next.
const GROW_BACKOFF: Duration = Duration::from_secs(10);
/// libssh2's LIBSSH2_ERROR_CHANNEL_FAILURE: the server refused this one open.
const CHANNEL_FAILURE: i32 = -21;

/// An accepted connection waiting for its channel.
struct Waiting {
    local: TcpStream,
    peer: SocketAddr,
    since: Instant,
}

/// One SSH session of the tunnel. Its channels need nothing from it (a channel holds its
/// session); it is where new channels are opened.
struct Lane {
    session: SshSession,
    /// The connection whose channel open is under way here, until the server answers.
    opening: Option<Waiting>,
}

impl Lane {
    fn new(session: SshSession) -> Lane {
        Lane {
            session,
            opening: None,
        }
    }
}

pub(super) struct Forwarder {
    target: Target,
    opts: SshOptions,
    lanes: Vec<Lane>,
    /// A session being connected in a helper thread (connecting blocks).
    connecting: Option<Receiver<Result<SshSession>>>,
    /// No new session before this (set after a failed attempt).
    grow_after: Instant,
    listener: TcpListener,
    remote_host: String,
    remote_port: u16,
    /// Accepted connections in order, waiting for a lane with no open in flight.
    waiting: VecDeque<Waiting>,
    conns: Vec<Conn>,
    /// Channels we closed that wait for the server's close; dropped once it arrives (freeing
    /// a channel before that leaks it inside libssh2).
    closing: Vec<(Channel, Instant, i32)>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    log: TunnelLog,
}

impl Forwarder {
    pub(super) fn new(
        session: SshSession,
        listener: TcpListener,
        remote_host: String,
        remote_port: u16,
        stop: Arc<AtomicBool>,
        counters: Arc<Counters>,
        log: TunnelLog,
    ) -> Forwarder {
        Forwarder {
            target: session.target.clone(),
            opts: session.options().clone(),
            lanes: vec![Lane::new(session)],
            connecting: None,
            grow_after: Instant::now(),
            listener,
            remote_host,
            remote_port,
            waiting: VecDeque::new(),
            conns: Vec::new(),
            closing: Vec::new(),
            stop,
            counters,
            log,
        }
    }

    /// Forwards until `stop`; `woken` turns readable (its peer closed) when the tunnel stops.
    pub(super) fn run(mut self, woken: std::os::unix::net::UnixStream) {
        // accept(2) only once poll(2) says a connection is there: on Linux 6 an accept that
        // finds none still makes and frees a socket file (issue 26's profile: a tenth of the
        // tunnel thread's CPU when it was tried on every turn).
        let mut pending = true;
        while !self.stop.load(Ordering::Relaxed) {
            let mut progressed = pending && self.accept();
            progressed |= self.add_session();
            progressed |= self.open_channels();
            self.grow();
            let mut i = 0;
            while i < self.conns.len() {
                match pump(&mut self.conns[i]) {
                    Ok((p, done)) => {
                        progressed |= p;
                        if done {
                            let c = self.conns.swap_remove(i);
                            self.retire(c.channel, c.session_fd);
                            continue;
                        }
                    }
                    Err(_) => {
                        let c = self.conns.swap_remove(i);
                        let _ = c.local.shutdown(Shutdown::Both);
                        self.retire(c.channel, c.session_fd);
                        continue;
                    }
                }
                i += 1;
            }
            self.closing.retain_mut(|(channel, since, _)| {
                close_pending(channel.close()) && since.elapsed() < CLOSE_WAIT
            });
            if !progressed {
                // Idle tunnels (`jeeves tunnel`) must not be dropped by NAT or firewalls; libssh2
                // sends only once the keepalive interval has passed.
                for lane in &self.lanes {
                    let _ = lane.session.raw().keepalive_send();
                }
            }
            // After progress only a look (there may be more to do at once), else a sleep.
            pending = self.wait(&woken, !progressed);
        }
        // Nothing here waits for the server: closes are sent, not awaited, and an open still
        // under way is abandoned with its session.
        let opening = self.lanes.iter_mut().filter_map(|l| l.opening.take());
        for w in self.waiting.drain(..).chain(opening) {
            let _ = w.local.shutdown(Shutdown::Both);
        }
        for mut c in self.conns.drain(..) {
            let _ = c.local.shutdown(Shutdown::Both);
            let _ = c.channel.close();
        }
        self.counters.open.store(0, Ordering::Relaxed);
    }

    /// Sends the channel's close; the channel is kept until the server answers with its own.
    fn retire(&mut self, mut channel: Channel, session_fd: i32) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
        if close_pending(channel.close()) {
            self.closing.push((channel, Instant::now(), session_fd));
        }
    }

    /// Takes every pending connection; `open_channels` opens their channels.
    fn accept(&mut self) -> bool {
        let mut progressed = false;
        loop {
            match self.listener.accept() {
                Ok((local, peer)) => {
                    progressed = true;
                    let _ = local.set_nonblocking(true);
                    let _ = local.set_nodelay(true);
                    self.waiting.push_back(Waiting {
                        local,
                        peer,
                        since: Instant::now(),
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return progressed,
                Err(_) => return progressed,
            }
        }
    }

    /// Advances every open under way and starts the next ones, without waiting: an open the
    /// server has not answered stays with its lane for the next turn of the loop. A refused open
    /// (sshd could not connect, forwarding not permitted…) closes that connection alone, with
    /// the reason in the log; any other failure also retires the session from further opens.
    fn open_channels(&mut self) -> bool {
        let mut progressed = false;
        let mut i = 0;
        while i < self.lanes.len() {
            let lane = &mut self.lanes[i];
            let mut broken = false;
            loop {
                if lane.opening.is_none() {
                    match self.waiting.pop_front() {
                        Some(w) => lane.opening = Some(w),
                        None => break,
                    }
                }
                let opened = lane.session.raw().channel_direct_tcpip(
                    &self.remote_host,
                    self.remote_port,
                    None,
                );
                match opened {
                    Err(e) if would_block(&e) => break,
                    Ok(channel) => {
                        let w = lane.opening.take().expect("an open under way");
                        self.counters.open.fetch_add(1, Ordering::Relaxed);
                        let fd = lane.session.raw_fd();
                        self.conns.push(Conn::new(w.local, channel, fd));
                    }
                    Err(e) => {
                        let w = lane.opening.take().expect("an open under way");
                        self.counters.refused.fetch_add(1, Ordering::Relaxed);
                        (self.log)(&format!(
                            "connection from {} closed after {:.1}s: {} could not open {}:{}: {}",
                            w.peer,
                            w.since.elapsed().as_secs_f64(),
                            self.target.name,
                            self.remote_host,
                            self.remote_port,
                            e.message()
                        ));
                        let _ = w.local.shutdown(Shutdown::Both);
                        if e.code() != ssh2::ErrorCode::Session(CHANNEL_FAILURE) {
                            broken = true;
                        }
                    }
                }
                progressed = true;
                if broken {
                    break;
                }
            }
            if broken {
                (self.log)(&format!(
                    "SSH session {} of {} to {} retired from new connections",
                    i + 1,
                    self.lanes.len(),
                    self.target.name
                ));
                self.lanes.swap_remove(i);
                self.counters
                    .sessions
                    .store(self.lanes.len(), Ordering::Relaxed);
                continue;
            }
            i += 1;
        }
        progressed
    }

    /// Connects another session when a connection has waited `GROW_AFTER` because every lane
    /// has an open in flight (or no lane is left), one at a time, up to `MAX_SESSIONS`.
    fn grow(&mut self) {
        let Some(first) = self.waiting.front() else {
            return;
        };
        if self.connecting.is_some()
            || self.lanes.len() >= MAX_SESSIONS
            || first.since.elapsed() < GROW_AFTER
            || Instant::now() < self.grow_after
        {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (target, opts) = (self.target.clone(), self.opts.clone());
        let spawned = std::thread::Builder::new()
            .name("jeeves-tunnel-connect".into())
            .spawn(move || {
                let _ = tx.send(SshSession::connect(&target, &opts));
            });
        match spawned {
            Ok(_) => self.connecting = Some(rx),
            Err(e) => self.grow_failed(anyhow::Error::new(e).context("cannot start a thread")),
        }
    }

    /// Takes the session `grow` connected, once it is there.
    fn add_session(&mut self) -> bool {
        let Some(rx) = &self.connecting else {
            return false;
        };
        let connected = match rx.try_recv() {
            Err(TryRecvError::Empty) => return false,
            Ok(r) => r,
            Err(TryRecvError::Disconnected) => Err(anyhow::anyhow!("the connecting thread died")),
        };
        self.connecting = None;
        match connected {
            Ok(session) => {
                self.lanes.push(Lane::new(session));
                self.counters
                    .sessions
                    .store(self.lanes.len(), Ordering::Relaxed);
            }
            Err(e) => self.grow_failed(e),
        }
        true
    }

    /// A session could not be added: logged; with no session left, the waiting connections
    /// cannot be forwarded and are closed.
    fn grow_failed(&mut self, e: anyhow::Error) {
        self.grow_after = Instant::now() + GROW_BACKOFF;
        (self.log)(&format!(
            "cannot open another SSH session to {}: {e:#}",
            self.target.name
        ));
        if self.lanes.is_empty() {
            for w in self.waiting.drain(..) {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                (self.log)(&format!(
                    "connection from {} closed: no SSH session to {}",
                    w.peer, self.target.name
                ));
                let _ = w.local.shutdown(Shutdown::Both);
            }
        }
    }

    /// Sleeps until any socket is ready (`sleep`), bounded: libssh2 may already hold data it
    /// read for another channel, or the answer to an open, which no socket event announces.
    /// Without `sleep`, only looks. Returns whether a connection waits to be accepted.
    fn wait(&self, woken: &std::os::unix::net::UnixStream, sleep: bool) -> bool {
        let mut fds = vec![
            libc::pollfd {
                fd: self.listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: woken.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // A session's socket is watched for input only when something reads it: an open under
        // way, a channel with room for data, a close awaiting the server's. Input nothing reads
        // (a keepalive's reply on a session without channels, data for a channel whose local
        // side is full) would wake poll(2) at once, for ever: the loop spun at 100% CPU on an
        // idle tunnel that had grown a session (issue 26's profile). It waits in the socket for
        // the next reader.
        let mut sessions: Vec<libc::pollfd> = Vec::new();
        let mut want =
            |fd: i32, events: libc::c_short| match sessions.iter_mut().find(|p| p.fd == fd) {
                Some(p) => p.events |= events,
                None => sessions.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                }),
            };
        for lane in &self.lanes {
            if lane.opening.is_some() {
                want(lane.session.raw_fd(), libc::POLLIN);
            }
            // Outbound too when libssh2 is blocked writing (socket buffer full): waiting for
            // input only would stall a bulk upload until the timeout.
            if matches!(
                lane.session.raw().block_directions(),
                ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
            ) {
                want(lane.session.raw_fd(), libc::POLLOUT);
            }
        }
        for c in self.conns.iter().filter(|c| c.wants_input()) {
            want(c.session_fd, libc::POLLIN);
        }
        for (_, _, fd) in &self.closing {
            want(*fd, libc::POLLIN);
        }
        fds.extend(sessions);
        for c in &self.conns {
            let mut events = 0;
            if !c.local_eof && !c.to_remote.is_full() {
                events |= libc::POLLIN;
            }
            if !c.to_local.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(libc::pollfd {
                fd: c.local.as_raw_fd(),
                events,
                revents: 0,
            });
        }
        let idle = self.conns.is_empty()
            && self.waiting.is_empty()
            && self.connecting.is_none()
            && self.lanes.iter().all(|l| l.opening.is_none());
        let timeout = match (sleep, idle) {
            (false, _) => 0,
            (true, true) => 200,
            (true, false) => 5,
        };
        // SAFETY: a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        // A failed poll (EINTR) says nothing: look for connections anyway.
        n < 0 || fds[0].revents != 0
    }
}

/// A close that waits for the server's answer.
fn close_pending(r: Result<(), ssh2::Error>) -> bool {
    matches!(r, Err(e) if would_block(&e))
}
