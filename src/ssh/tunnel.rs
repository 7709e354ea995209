//! A local port forwarded to a port on the remote host's loopback over SSH direct-tcpip, in
//! process: no `ssh -L` child that could outlive Jeeves. One dedicated, non-blocking session;
//! one thread multiplexes every connection in a `poll(2)` loop.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ssh2::Channel;

use super::session::{SshSession, would_block};

const BUF: usize = 256 * 1024;
/// How long a closed channel may wait for the server's close before it is let go.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// An open tunnel; closed (listener, channels, session, thread) when dropped.
pub struct Tunnel {
    pub local: SocketAddr,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Tunnel {
    /// Listens on 127.0.0.1:`local_port` and forwards each connection to 127.0.0.1:`remote_port`
    /// on the session's host. A busy port is a clear error naming it.
    pub fn open(session: SshSession, local_port: u16, remote_port: u16) -> Result<Tunnel> {
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
        let open = Arc::new(AtomicUsize::new(0));
        let (s, o) = (stop.clone(), open.clone());
        let thread = std::thread::Builder::new()
            .name("jeeves-tunnel".into())
            .spawn(move || {
                Forwarder {
                    session,
                    listener,
                    remote_port,
                    conns: Vec::new(),
                    closing: Vec::new(),
                    stop: s,
                    open: o,
                }
                .run()
            })
            .context("cannot start the tunnel thread")?;
        Ok(Tunnel {
            local,
            stop,
            open,
            thread: Some(thread),
        })
    }

    /// Connections currently forwarded.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Conn {
    local: TcpStream,
    channel: Channel,
    to_remote: Vec<u8>,
    to_local: Vec<u8>,
    local_eof: bool,
    sent_eof: bool,
    remote_eof: bool,
    local_shut: bool,
}

struct Forwarder {
    session: SshSession,
    listener: TcpListener,
    remote_port: u16,
    conns: Vec<Conn>,
    /// Channels we closed that wait for the server's close; dropped once it arrives (freeing
    /// a channel before that leaks it inside libssh2).
    closing: Vec<(Channel, Instant)>,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
}

impl Forwarder {
    fn run(mut self) {
        let mut buf = vec![0u8; BUF];
        while !self.stop.load(Ordering::Relaxed) {
            let mut progressed = self.accept();
            let mut i = 0;
            while i < self.conns.len() {
                match pump(&mut self.conns[i], &mut buf) {
                    Ok((p, done)) => {
                        progressed |= p;
                        if done {
                            let c = self.conns.swap_remove(i);
                            self.retire(c.channel);
                            continue;
                        }
                    }
                    Err(_) => {
                        let c = self.conns.swap_remove(i);
                        let _ = c.local.shutdown(Shutdown::Both);
                        self.retire(c.channel);
                        continue;
                    }
                }
                i += 1;
            }
            self.closing.retain_mut(|(channel, since)| {
                close_pending(channel.close()) && since.elapsed() < CLOSE_WAIT
            });
            if !progressed {
                // Idle tunnels (`jeeves tunnel`) must not be dropped by NAT or firewalls; libssh2
                // sends only once the keepalive interval has passed.
                let _ = self.session.raw().keepalive_send();
                self.wait();
            }
        }
        for mut c in self.conns.drain(..) {
            let _ = c.local.shutdown(Shutdown::Both);
            let _ = c.channel.close();
        }
        self.open.store(0, Ordering::Relaxed);
    }

    /// Sends the channel's close; the channel is kept until the server answers with its own.
    fn retire(&mut self, mut channel: Channel) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if close_pending(channel.close()) {
            self.closing.push((channel, Instant::now()));
        }
    }

    fn accept(&mut self) -> bool {
        let mut progressed = false;
        loop {
            match self.listener.accept() {
                Ok((local, _)) => {
                    progressed = true;
                    let _ = local.set_nonblocking(true);
                    let _ = local.set_nodelay(true);
                    match self.open_channel() {
                        Ok(channel) => {
                            self.open.fetch_add(1, Ordering::Relaxed);
                            self.conns.push(Conn {
                                local,
                                channel,
                                to_remote: Vec::new(),
                                to_local: Vec::new(),
                                local_eof: false,
                                sent_eof: false,
                                remote_eof: false,
                                local_shut: false,
                            });
                        }
                        Err(_) => {
                            let _ = local.shutdown(Shutdown::Both);
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return progressed,
                Err(_) => return progressed,
            }
        }
    }

    fn open_channel(&self) -> Result<Channel> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self
                .session
                .raw()
                .channel_direct_tcpip("127.0.0.1", self.remote_port, None)
            {
                Ok(c) => return Ok(c),
                Err(e) if would_block(&e) => self.session.wait_socket(deadline)?,
                Err(e) => bail!(
                    "cannot open a channel to 127.0.0.1:{}: {e}",
                    self.remote_port
                ),
            }
        }
    }

    /// Sleeps until any socket is ready, bounded: libssh2 may already hold data it read for
    /// another channel, which no socket event announces.
    fn wait(&self) {
        let mut fds = vec![libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // Outbound too when libssh2 is blocked writing (socket buffer full): waiting for input
        // only would stall a bulk upload until the timeout.
        let session_events = match self.session.raw().block_directions() {
            ssh2::BlockDirections::Outbound => libc::POLLIN | libc::POLLOUT,
            ssh2::BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
            _ => libc::POLLIN,
        };
        fds.push(libc::pollfd {
            fd: self.session.raw_fd(),
            events: session_events,
            revents: 0,
        });
        for c in &self.conns {
            let mut events = 0;
            if !c.local_eof && c.to_remote.len() < BUF {
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
        let timeout = if self.conns.is_empty() { 200 } else { 5 };
        // SAFETY: a valid array of pollfd for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
    }
}

/// A close that waits for the server's answer.
fn close_pending(r: Result<(), ssh2::Error>) -> bool {
    matches!(r, Err(e) if would_block(&e))
}

/// Moves bytes both ways for one connection. Returns (progress made, connection finished).
fn pump(c: &mut Conn, buf: &mut [u8]) -> std::io::Result<(bool, bool)> {
    let mut progressed = false;
    // local → remote
    if !c.local_eof && c.to_remote.len() < BUF {
        match c.local.read(&mut buf[..BUF - c.to_remote.len()]) {
            Ok(0) => {
                c.local_eof = true;
                progressed = true;
            }
            Ok(n) => {
                c.to_remote.extend_from_slice(&buf[..n]);
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    while !c.to_remote.is_empty() {
        match c.channel.write(&c.to_remote) {
            Ok(0) => break,
            Ok(n) => {
                c.to_remote.drain(..n);
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    if c.local_eof && c.to_remote.is_empty() && !c.sent_eof {
        match c.channel.send_eof() {
            Ok(()) => {
                c.sent_eof = true;
                progressed = true;
            }
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
    // remote → local
    if !c.remote_eof && c.to_local.len() < BUF {
        match c.channel.read(&mut buf[..BUF - c.to_local.len()]) {
            Ok(0) => {
                if c.channel.eof() {
                    c.remote_eof = true;
                    progressed = true;
                }
            }
            Ok(n) => {
                c.to_local.extend_from_slice(&buf[..n]);
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    while !c.to_local.is_empty() {
        match c.local.write(&c.to_local) {
            Ok(0) => break,
            Ok(n) => {
                c.to_local.drain(..n);
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    if c.remote_eof && c.to_local.is_empty() && !c.local_shut {
        let _ = c.local.shutdown(Shutdown::Write);
        c.local_shut = true;
        progressed = true;
    }
    let done = c.local_shut && c.sent_eof;
    Ok((progressed, done))
}
