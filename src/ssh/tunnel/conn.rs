//! One forwarded connection (`Conn`): the local socket, its SSH channel and the bytes in flight
//! each way (`Pending`); `pump` moves what it can without blocking and passes EOF on in both
//! directions.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};

use ssh2::Channel;

use crate::ssh::socket::would_block;

/// Bytes buffered per direction per connection.
pub(super) const BUF: usize = 256 * 1024;

/// Bytes read from one side and not yet written to the other: read straight into the free
/// tail, written from the head. Emptied, it starts again at the front; a full tail with a
/// written head moves the rest to the front (rare: the write side usually drains all). Before,
/// every partial write moved the whole rest (`Vec::drain`) and every read was copied once more
/// from the loop's read buffer.
pub(super) struct Pending {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            buf: vec![0u8; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(super) fn is_full(&self) -> bool {
        self.end - self.start == BUF
    }

    /// Room to read into; empty only when full.
    fn tail(&mut self) -> &mut [u8] {
        if self.end == BUF && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    fn filled(&mut self, n: usize) {
        self.end += n;
    }

    fn head(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consumed(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

pub(super) struct Conn {
    pub(super) local: TcpStream,
    pub(super) channel: Channel,
    /// The socket of the channel's session (the tunnel's `wait` watches it for this channel).
    pub(super) session_fd: i32,
    pub(super) to_remote: Pending,
    pub(super) to_local: Pending,
    pub(super) local_eof: bool,
    pub(super) sent_eof: bool,
    pub(super) remote_eof: bool,
    pub(super) local_shut: bool,
}

impl Conn {
    pub(super) fn new(local: TcpStream, channel: Channel, session_fd: i32) -> Conn {
        Conn {
            local,
            channel,
            session_fd,
            to_remote: Pending::new(),
            to_local: Pending::new(),
            local_eof: false,
            sent_eof: false,
            remote_eof: false,
            local_shut: false,
        }
    }
}

impl Conn {
    /// Whether this connection needs its session's input: data it has room for, or the
    /// window adjustment its pending upload may wait for (a channel write reads the session
    /// first, so that input does not stay unread).
    pub(super) fn wants_input(&self) -> bool {
        (!self.remote_eof && !self.to_local.is_full()) || !self.to_remote.is_empty()
    }
}

/// Moves bytes both ways for one connection. Returns (progress made, connection finished).
pub(super) fn pump(c: &mut Conn) -> std::io::Result<(bool, bool)> {
    let mut progressed = false;
    // local → remote
    if !c.local_eof && !c.to_remote.is_full() {
        match c.local.read(c.to_remote.tail()) {
            Ok(0) => {
                c.local_eof = true;
                progressed = true;
            }
            Ok(n) => {
                c.to_remote.filled(n);
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    while !c.to_remote.is_empty() {
        match c.channel.write(c.to_remote.head()) {
            Ok(0) => break,
            Ok(n) => {
                c.to_remote.consumed(n);
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
    if !c.remote_eof && !c.to_local.is_full() {
        match c.channel.read(c.to_local.tail()) {
            Ok(0) => {
                if c.channel.eof() {
                    c.remote_eof = true;
                    progressed = true;
                }
            }
            Ok(n) => {
                c.to_local.filled(n);
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    while !c.to_local.is_empty() {
        match c.local.write(c.to_local.head()) {
            Ok(0) => break,
            Ok(n) => {
                c.to_local.consumed(n);
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
