//! One SSH session to one host (`SshSession`): connect (retried until `ssh.connect_timeout`,
//! through the jump host if there is one), verify the host key and log in; then run commands
//! with streamed output and a timeout, and upload files atomically.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use ssh2::{BlockDirections, Channel, Session};

use super::auth::authenticate;
use super::host_keys;
use super::options::{SshOptions, Target};
use super::output::{Collector, ExecOutput, Stream};
use super::remote_command::{KILL_AFTER, RemoteCommand};
use super::socket::{send_whole_packets, would_block};

/// One SSH session to one host, reused for every command on the host in a run (the hosts
/// layer lends it to each stage in turn).
///
/// libssh2 holds one lock per session, so a blocking read on one channel would stall every
/// other channel of the session. The session is therefore non-blocking: every operation that
/// would block waits in `poll(2)` on the socket for the direction libssh2 asks for.
pub struct SshSession {
    session: Session,
    stream: TcpStream,
    pub target: Target,
    opts: SshOptions,
    /// Through a jump host: the forwarding that carries this session (dropped after it).
    _via: Option<Box<super::Tunnel>>,
}

impl SshSession {
    /// Connects, verifies the host key and logs in. Fresh machines take minutes to accept SSH,
    /// so refused or unanswered connections are retried with backoff until `connect_timeout`;
    /// a host-key or authentication problem is final at once.
    pub fn connect(target: &Target, opts: &SshOptions) -> Result<SshSession> {
        let deadline = Instant::now() + opts.connect_timeout;
        // Through a jump host: one session to it, forwarding a local port to the host's sshd.
        // What the jump host said when it could not forward (refused, unreachable) goes into
        // the error: the local side only sees its connection closed.
        let said: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
        let via = match &opts.jump {
            None => None,
            Some(jump) => {
                let hop = SshOptions {
                    user: jump.user.clone(),
                    jump: None,
                    ..opts.clone()
                };
                let session = SshSession::connect(&jump.target, &hop).with_context(|| {
                    format!("through the jump host {} (ssh.jump_host)", jump.target.name)
                })?;
                let said = said.clone();
                Some(Box::new(super::Tunnel::open_to(
                    session,
                    0,
                    &target.address,
                    target.port,
                    Box::new(move |line| *said.lock().expect("not poisoned") = Some(line.into())),
                )?))
            }
        };
        let dial = via.as_ref().map(|t| t.local);
        let mut delay = Duration::from_millis(250);
        loop {
            match Self::try_connect(target, dial, opts, deadline) {
                Ok(mut s) => {
                    s._via = via;
                    return Ok(s);
                }
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Retry(e)) => {
                    let e = match said.lock().expect("not poisoned").take() {
                        Some(line) => e.context(format!("through the jump host: {line}")),
                        None => e,
                    };
                    if Instant::now() + delay >= deadline {
                        return Err(e.context(format!(
                            "cannot reach {} ({}:{}) within {}s (ssh.connect_timeout)",
                            target.name,
                            target.address,
                            target.port,
                            opts.connect_timeout.as_secs()
                        )));
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// One attempt; `dial` is where to connect when not the target itself (a jump host's
    /// forwarding). The host key is checked against the target either way.
    fn try_connect(
        target: &Target,
        dial: Option<std::net::SocketAddr>,
        opts: &SshOptions,
        deadline: Instant,
    ) -> Result<SshSession, Attempt> {
        let addr = match dial {
            Some(addr) => addr,
            None => (target.address.as_str(), target.port)
                .to_socket_addrs()
                .map_err(|e| Attempt::Final(anyhow!("cannot resolve {}: {e}", target.address)))?
                .next()
                .ok_or_else(|| Attempt::Final(anyhow!("no address for {}", target.address)))?,
        };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        let stream = TcpStream::connect_timeout(&addr, left.min(Duration::from_secs(10)))
            .map_err(|e| Attempt::Retry(anyhow!("connect to {addr}: {e}")))?;
        stream.set_nodelay(true).ok();
        let mut session = Session::new().map_err(|e| Attempt::Final(e.into()))?;
        send_whole_packets(&session);
        session.set_tcp_stream(stream.try_clone().map_err(|e| Attempt::Final(e.into()))?);
        // `connect_timeout` bounds waiting for the host to answer, as OpenSSH's ConnectTimeout
        // does; a host that has answered gets at least HANDSHAKE for the key exchange and
        // sshd's own LoginGraceTime for the login (a loaded host's sshd can take seconds to
        // fork and check a key: a short connect timeout must not fail a host that is there).
        session.set_timeout(millis(left.max(HANDSHAKE)));
        session
            .handshake()
            .map_err(|e| Attempt::Retry(anyhow!("SSH handshake with {addr}: {e}")))?;
        host_keys::verify(
            &session,
            &target.address,
            target.port,
            &opts.known_hosts,
            opts.host_keys,
        )
        .map_err(Attempt::Final)?;
        session.set_timeout(millis(LOGIN_GRACE));
        authenticate(&session, opts).map_err(|e| {
            Attempt::Final(e.context(format!("logging in to {} as {}", target.name, opts.user)))
        })?;
        session.set_keepalive(true, opts.keepalive.as_secs().max(1) as u32);
        session.set_timeout(0);
        session.set_blocking(false);
        Ok(SshSession {
            session,
            stream,
            target: target.clone(),
            opts: opts.clone(),
            _via: None,
        })
    }

    pub fn options(&self) -> &SshOptions {
        &self.opts
    }

    /// Runs a command, calling `on_line` for every line of output as it arrives, and returns
    /// the whole output and the exit status. Fails when the command cannot be run, runs past
    /// `ssh.command_timeout` or dies of a signal; a non-zero status is for the caller to judge.
    pub fn exec(
        &self,
        cmd: &RemoteCommand,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<ExecOutput> {
        // The host stops the command at `command_timeout` (see `to_shell_within`); the local
        // deadline, later by the kill grace and a margin, only catches a host that stopped
        // answering.
        let limit = self.opts.command_timeout;
        let line = cmd.to_shell_within(limit)?;
        let started = Instant::now();
        let deadline = started + limit + KILL_AFTER + Duration::from_secs(5);
        let what = || format!("`{}` on {}", cmd.describe(), self.target.name);
        let timed_out = || {
            format!(
                "{} ran longer than {}s (ssh.command_timeout) and was stopped on the host",
                what(),
                limit.as_secs()
            )
        };
        let mut ch: Channel = self
            .retry(deadline, || self.session.channel_session())
            .with_context(what)?;
        self.retry(deadline, || ch.exec(&line)).with_context(what)?;
        if let Some(mut input) = cmd.input() {
            while !input.is_empty() {
                match ch.write(input) {
                    Ok(n) => input = &input[n..],
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        self.wait(deadline).with_context(what)?
                    }
                    Err(e) => return Err(e).with_context(what),
                }
            }
            self.retry(deadline, || ch.send_eof()).with_context(what)?;
        }
        let mut out = Collector::default();
        let mut err = Collector::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let mut progressed = false;
            for (stream, collector) in [(Stream::Stdout, &mut out), (Stream::Stderr, &mut err)] {
                let read = match stream {
                    Stream::Stdout => ch.read(&mut buf),
                    Stream::Stderr => ch.stderr().read(&mut buf),
                };
                match read {
                    Ok(0) => {}
                    Ok(n) => {
                        progressed = true;
                        collector.push(&buf[..n], |l| on_line(stream, l));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e).with_context(what),
                }
            }
            if ch.eof() && !progressed {
                break;
            }
            if !progressed {
                self.wait(deadline).with_context(|| {
                    format!(
                        "{} ran longer than {}s (ssh.command_timeout) and the host did not stop \
                         it: it may still be running there",
                        what(),
                        limit.as_secs()
                    )
                })?;
            }
        }
        out.finish(|l| on_line(Stream::Stdout, l));
        err.finish(|l| on_line(Stream::Stderr, l));
        self.retry(deadline, || ch.wait_close())
            .with_context(what)?;
        // libssh2 reports status 0 when the command sent none, as one killed by a signal does
        // (sshd sends `exit-signal` instead): that must never read as success.
        let signal = ch.exit_signal().with_context(what)?.exit_signal;
        let status = ch.exit_status().with_context(what)?;
        // `timeout` exits 124 after SIGTERM, or dies of SIGKILL when the command ignored it; a
        // command can exit 124 or be killed on its own, so only past the limit is it a timeout.
        let stopped = signal.as_deref() == Some("KILL") || (signal.is_none() && status == 124);
        if stopped && started.elapsed() >= limit {
            bail!("{}:\n{}", timed_out(), cmd.said(&out.text, &err.text, 10));
        }
        if let Some(signal) = signal {
            bail!(
                "{} was killed by signal SIG{signal} (no exit status):\n{}",
                what(),
                cmd.said(&out.text, &err.text, 10)
            );
        }
        Ok(ExecOutput {
            status,
            stdout: out.text,
            stderr: err.text,
        })
    }

    /// `exec` that fails on a non-zero exit status with the command's own message.
    pub fn run(&self, cmd: &RemoteCommand) -> Result<ExecOutput> {
        let out = self.exec(cmd, &mut |_, _| {})?;
        if out.status != 0 {
            bail!(
                "`{}` on {} exited with status {}:\n{}",
                cmd.describe(),
                self.target.name,
                out.status,
                cmd.said(&out.stdout, &out.stderr, 20)
            );
        }
        Ok(out)
    }

    /// Writes `contents` to `path` with `mode`, atomically: a temporary file beside it, then a
    /// rename, so readers see the old file or the new one, never a partial one.
    pub fn upload(&self, path: &str, contents: &[u8], mode: u32) -> Result<()> {
        let tmp = format!("{path}.jeeves-tmp");
        let cmd = RemoteCommand::new("sh")
            .arg("-c")
            .arg(include_str!("scripts/upload.sh"))
            .args(["sh", tmp.as_str(), &format!("{mode:o}"), path])
            .sudo(self.opts.needs_sudo())
            .stdin(contents.to_vec());
        self.run(&cmd)
            .with_context(|| format!("uploading {path} to {}", self.target.name))?;
        Ok(())
    }

    /// The cipher and MAC negotiated each way, as "client->server: CIPHER MAC;
    /// server->client: CIPHER MAC" (the benchmark reports it beside OpenSSH's).
    pub fn negotiated(&self) -> String {
        use ssh2::MethodType::{CryptCs, CryptSc, MacCs, MacSc};
        let m = |t| self.session.methods(t).unwrap_or("?");
        format!(
            "client->server: {} {}; server->client: {} {}",
            m(CryptCs),
            m(MacCs),
            m(CryptSc),
            m(MacSc)
        )
    }

    /// The underlying libssh2 session (the tunnel opens channels on it).
    pub(super) fn raw(&self) -> &Session {
        &self.session
    }

    pub(super) fn raw_fd(&self) -> i32 {
        self.stream.as_raw_fd()
    }

    /// Retries a libssh2 call that would block, waiting on the socket in between.
    fn retry<T>(
        &self,
        deadline: Instant,
        mut f: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T> {
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if would_block(&e) => self.wait(deadline)?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on.
    fn wait(&self, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out");
        }
        let events = match self.session.block_directions() {
            BlockDirections::Inbound => libc::POLLIN,
            BlockDirections::Outbound => libc::POLLOUT,
            BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
            BlockDirections::None => libc::POLLIN,
        };
        let mut fd = libc::pollfd {
            fd: self.stream.as_raw_fd(),
            events,
            revents: 0,
        };
        // Bounded so keepalives go out on long, silent commands.
        let ms = left
            .min(self.opts.keepalive.max(Duration::from_secs(1)))
            .as_millis() as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut fd, 1, ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                return Err(e).context("poll on the SSH socket");
            }
        }
        if rc == 0 {
            let _ = self.session.keepalive_send();
        }
        Ok(())
    }
}

enum Attempt {
    Retry(anyhow::Error),
    Final(anyhow::Error),
}

/// The least time a host that accepted the connection gets for the SSH key exchange.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// The time a login may take: sshd's own default LoginGraceTime, after which it drops us anyway.
const LOGIN_GRACE: Duration = Duration::from_secs(120);

/// A libssh2 timeout (milliseconds, u32).
fn millis(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u128) as u32
}
