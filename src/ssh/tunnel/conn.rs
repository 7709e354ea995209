//! One forwarded connection (`Conn`): the local socket, its SSH channel and the bytes in flight
//! each way; `pump` moves what it can without blocking and passes EOF on in both directions.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};

use ssh2::Channel;

use crate::ssh::socket::would_block;

/// Bytes buffered per direction per connection, and the size of the loop's read buffer.
pub(super) const BUF: usize = 256 * 1024;

pub(super) struct Conn {
    pub(super) local: TcpStream,
    pub(super) channel: Channel,
    pub(super) to_remote: Vec<u8>,
    pub(super) to_local: Vec<u8>,
    pub(super) local_eof: bool,
    pub(super) sent_eof: bool,
    pub(super) remote_eof: bool,
    pub(super) local_shut: bool,
}

/// Moves bytes both ways for one connection. Returns (progress made, connection finished).
pub(super) fn pump(c: &mut Conn, buf: &mut [u8]) -> std::io::Result<(bool, bool)> {
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
