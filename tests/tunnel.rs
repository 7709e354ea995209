//! The in-process tunnel against the lab: many concurrent connections, a large transfer intact,
//! a clear error for a busy port, and nothing left listening after it closes.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use common::Lab;
use jeeves::ssh::{HostKeyPolicy, RemoteCommand, SshOptions, SshSession, Target, Tunnel};
use sha2::{Digest, Sha256};

const ECHO: &str = r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 17000)); s.listen(256)
def serve(c):
    while True:
        d = c.recv(262144)
        if not d: break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

fn session(lab: &Lab) -> SshSession {
    let opts = SshOptions {
        user: "root".into(),
        key_path: lab.path("id_ed25519"),
        passphrase: None,
        known_hosts: lab.path("known_hosts"),
        host_keys: HostKeyPolicy::Strict,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(60),
        keepalive: Duration::from_secs(5),
        sudo: false,
    };
    SshSession::connect(
        &Target {
            name: "controller".into(),
            address: "10.77.0.10".into(),
            port: 22,
        },
        &opts,
    )
    .unwrap()
}

/// Sends `data` through the tunnel and returns what came back (the server echoes).
fn round_trip(port: u16, data: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut reader = conn.try_clone().unwrap();
    std::thread::scope(|s| {
        let r = s.spawn(move || {
            let mut back = Vec::new();
            reader.read_to_end(&mut back).unwrap();
            back
        });
        conn.write_all(data).unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        r.join().unwrap()
    })
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn the_tunnel_carries_many_connections_and_large_transfers() {
    let lab = Lab::up(0);
    let setup = session(&lab);
    setup
        .run(
            &RemoteCommand::new("sh")
                .arg("-c")
                .arg(r#"nohup python3 -c "$1" >/dev/null 2>&1 &"#)
                .args(["echo-server", ECHO]),
        )
        .unwrap();
    let tunnel = Tunnel::open(session(&lab), 0, 17000).unwrap();
    let port = tunnel.local.port();
    // Wait until the echo server answers through the tunnel.
    for attempt in 0.. {
        if round_trip(port, b"ping") == b"ping" {
            break;
        }
        assert!(
            attempt < 100,
            "the echo server never answered through the tunnel"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // 32 concurrent connections, each with its own data.
    std::thread::scope(|s| {
        for i in 0..32u64 {
            s.spawn(move || {
                let data = pseudo_random(256 * 1024, i);
                assert_eq!(round_trip(port, &data), data, "connection {i}");
            });
        }
    });

    // 64 MiB through one connection, intact, while 96 short connections open, echo and close
    // beside it. The bulk transfer keeps the SSH socket's send buffer full, so the short
    // connections' window adjustments, EOFs and closes meet a socket that would block: the
    // case where libssh2 leaves a packet half-sent that only the same call can finish.
    let big = pseudo_random(64 * 1024 * 1024, 99);
    let started = std::time::Instant::now();
    let (back, secs) = std::thread::scope(|s| {
        for t in 0..4u64 {
            s.spawn(move || {
                for k in 0..24u64 {
                    let data =
                        pseudo_random(4096 + (k as usize * 7919) % 65536, 1000 + t * 100 + k);
                    assert_eq!(round_trip(port, &data), data, "short connection {t}/{k}");
                }
            });
        }
        let back = round_trip(port, &big);
        (back, started.elapsed().as_secs_f64())
    });
    assert_eq!(back.len(), big.len());
    assert_eq!(Sha256::digest(&back), Sha256::digest(&big));
    eprintln!(
        "64 MiB echoed through the tunnel in {secs:.2}s ({:.1} MiB/s each way) beside 96 short connections",
        64.0 / secs
    );
    let closing = std::time::Instant::now();
    while tunnel.open_connections() > 0 && closing.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tunnel.open_connections(), 0, "every connection closed");

    // A busy local port is a clear error naming it.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let err = Tunnel::open(session(&lab), busy_port, 17000)
        .err()
        .expect("busy port refused");
    let text = format!("{err:#}");
    assert!(
        text.contains(&busy_port.to_string()) && text.contains("tunnel.local_port"),
        "{text}"
    );

    // Closing leaves no listener and no thread behind.
    assert!(tunnel.is_running());
    drop(tunnel);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after close"
    );
}
