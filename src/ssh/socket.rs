//! libssh2 on a non-blocking socket: which error means "call again once the socket is ready"
//! (`would_block`), and a send callback that never leaves a packet half-sent
//! (`send_whole_packets`).

use std::time::{Duration, Instant};

use ssh2::Session;

/// libssh2's EAGAIN: the call must be repeated once the socket is ready.
pub(super) fn would_block(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(-37)
}

// libssh2-sys does not declare it.
unsafe extern "C" {
    fn libssh2_session_callback_set2(
        session: *mut libc::c_void,
        cbtype: libc::c_int,
        callback: *const libc::c_void,
    ) -> *const libc::c_void;
}

const LIBSSH2_CALLBACK_SEND: libc::c_int = 5;

/// How long one packet may wait for room in the socket before the peer counts as gone.
const SEND_STALL: Duration = Duration::from_secs(120);

/// Makes every libssh2 socket send finish its packet (or fail) instead of returning EAGAIN
/// half-way. In non-blocking mode libssh2 keeps a half-sent packet and lets only the very
/// call that started it finish it (libssh2 PR #169, issues #1397/#1672): with many channels on
/// one session, a window adjustment, EOF or close left half-sent by one channel while
/// another is served stalls every channel of the session. Reads stay non-blocking.
pub(super) fn send_whole_packets(session: &Session) {
    let mut raw = session.raw();
    let ptr: *mut _ = &mut *raw;
    // SAFETY: a live session; the callback has the documented LIBSSH2_SEND_FUNC signature.
    unsafe {
        libssh2_session_callback_set2(
            ptr.cast(),
            LIBSSH2_CALLBACK_SEND,
            send_all as *const libc::c_void,
        );
    }
}

/// LIBSSH2_SEND_FUNC: sends all of `buffer`, waiting for room in the socket between partial
/// sends. Returns the byte count, or a negated errno as libssh2's own send does.
unsafe extern "C" fn send_all(
    socket: libc::c_int,
    buffer: *const libc::c_void,
    length: libc::size_t,
    flags: libc::c_int,
    _abstract: *mut *mut libc::c_void,
) -> libc::ssize_t {
    let deadline = Instant::now() + SEND_STALL;
    let mut sent = 0usize;
    while sent < length {
        // SAFETY: libssh2 passes a buffer of `length` bytes.
        let rc = unsafe {
            libc::send(
                socket,
                buffer.cast::<u8>().add(sent).cast(),
                length - sent,
                flags | libc::MSG_NOSIGNAL,
            )
        };
        if rc >= 0 {
            sent += rc as usize;
            continue;
        }
        let err = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        if err != libc::EAGAIN && err != libc::EWOULDBLOCK && err != libc::EINTR {
            return if sent > 0 {
                sent as libc::ssize_t
            } else {
                -(err as libc::ssize_t)
            };
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return if sent > 0 {
                sent as libc::ssize_t
            } else {
                -(libc::EAGAIN as libc::ssize_t)
            };
        }
        let mut fd = libc::pollfd {
            fd: socket,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut fd, 1, left.as_millis().min(1000) as i32) };
    }
    sent as libc::ssize_t
}
