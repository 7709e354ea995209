//! Benchmarks of Jeeves' SSH engine and tunnel against OpenSSH, on the lab (tests/bench/run
//! brings the lab up and prints the figures). Not tests: they print numbers and never fail on
//! a figure.
//!
//!   bench fleet  LAB_DIR HOSTS...   the same 10 commands on every host: Jeeves (one session per
//!                                   host, in parallel) vs `ssh host cmd &` per host and command
//!   bench tunnel LAB_DIR MIB        one transfer of MIB MiB each way through the Jeeves tunnel
//!                                   and through `ssh -N -L`, to an echo server on the controller

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jeeves::ssh::{HostKeyPolicy, RemoteCommand, SshOptions, SshSession, Target, Tunnel};

const COMMANDS: [&str; 10] = [
    "true",
    "uname -r",
    "hostname",
    "id -u",
    "cat /etc/hostname",
    "ls /etc",
    "test -d /var/snap",
    "echo ready",
    "df -P /",
    "date +%s",
];

fn opts(lab: &Path) -> SshOptions {
    SshOptions {
        user: "root".into(),
        key_path: lab.join("id_ed25519"),
        passphrase: None,
        known_hosts: lab.join("known_hosts"),
        host_keys: HostKeyPolicy::Strict,
        connect_timeout: Duration::from_secs(20),
        command_timeout: Duration::from_secs(60),
        keepalive: Duration::from_secs(10),
        sudo: false,
        jump: None,
    }
}

fn target(ip: &str) -> Target {
    Target {
        name: ip.into(),
        address: ip.into(),
        port: 22,
    }
}

fn openssh(lab: &Path) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-i")
        .arg(lab.join("id_ed25519"))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            lab.join("known_hosts").display()
        ))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
        ]);
    c
}

fn fleet(lab: &Path, hosts: &[String]) {
    let rounds = 3;
    let mut jeeves = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        std::thread::scope(|s| {
            for h in hosts {
                s.spawn(move || {
                    let session = SshSession::connect(&target(h), &opts(lab)).unwrap();
                    for c in COMMANDS {
                        let out = session
                            .run(&RemoteCommand::new("sh").arg("-c").arg(c))
                            .unwrap();
                        assert_eq!(out.status, 0, "{h}: {c}");
                    }
                });
            }
        });
        jeeves.push(t.elapsed());

        // Raw OpenSSH: for each command, `ssh host cmd &` on every host, then wait.
        let t = Instant::now();
        for c in COMMANDS {
            let children: Vec<_> = hosts
                .iter()
                .map(|h| {
                    openssh(lab)
                        .arg(format!("root@{h}"))
                        .arg(c)
                        .stdout(Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for mut ch in children {
                assert!(ch.wait().unwrap().success());
            }
        }
        raw.push(t.elapsed());
    }
    let best = |v: &[Duration]| v.iter().min().unwrap().as_secs_f64();
    let (j, r) = (best(&jeeves), best(&raw));
    println!(
        "fleet exec, {} commands x {} hosts (best of {rounds}): jeeves {:.2} s, openssh {:.2} s, jeeves/openssh {:.2}",
        COMMANDS.len(),
        hosts.len(),
        j,
        r,
        j / r
    );
}

const ECHO_PORT: u16 = 17100;
const ECHO: &str = r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 17100)); s.listen(64)
def serve(c):
    while True:
        d = c.recv(1 << 20)
        if not d: break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Seconds to push `mib` MiB through `port` and read them all back.
fn echo_transfer(port: u16, mib: usize) -> f64 {
    let chunk = vec![0x5au8; 1 << 20];
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut reader = conn.try_clone().unwrap();
    let t = Instant::now();
    std::thread::scope(|s| {
        let r = s.spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0usize;
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        });
        for _ in 0..mib {
            conn.write_all(&chunk).unwrap();
        }
        conn.shutdown(Shutdown::Write).unwrap();
        assert_eq!(r.join().unwrap(), mib << 20);
    });
    t.elapsed().as_secs_f64()
}

fn wait_for(port: u16) {
    for _ in 0..100 {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = c.write_all(b"x");
            let _ = c.shutdown(Shutdown::Write);
            let mut b = Vec::new();
            if c.read_to_end(&mut b).is_ok() && b == b"x" {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing echoes on {port}");
}

fn tunnel(lab: &Path, mib: usize) {
    let controller = "10.77.0.10";
    let setup = SshSession::connect(&target(controller), &opts(lab)).unwrap();
    setup
        .run(
            &RemoteCommand::new("sh")
                .arg("-c")
                .arg(r#"nohup python3 -c "$1" >/dev/null 2>&1 &"#)
                .args(["echo-server", ECHO]),
        )
        .unwrap();

    let t = Tunnel::open(
        SshSession::connect(&target(controller), &opts(lab)).unwrap(),
        0,
        ECHO_PORT,
    )
    .unwrap();
    let jport = t.local.port();
    wait_for(jport);

    let sport = 27100;
    let mut ssh = openssh(lab)
        .args(["-N", "-L", &format!("{sport}:127.0.0.1:{ECHO_PORT}")])
        .arg(format!("root@{controller}"))
        .spawn()
        .unwrap();
    wait_for(sport);

    let rounds = 3;
    let mut j = f64::MAX;
    let mut s = f64::MAX;
    for _ in 0..rounds {
        j = j.min(echo_transfer(jport, mib));
        s = s.min(echo_transfer(sport, mib));
    }
    let _ = ssh.kill();
    let _ = ssh.wait();
    drop(t);
    let rate = |secs: f64| mib as f64 / secs;
    println!(
        "tunnel, {mib} MiB each way through one connection (best of {rounds}): jeeves {:.1} MiB/s, ssh -L {:.1} MiB/s, jeeves/openssh {:.2}",
        rate(j),
        rate(s),
        rate(j) / rate(s)
    );
    let _ = setup.run(&RemoteCommand::new("pkill").args(["-f", "echo-server"]));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench fleet LAB_DIR HOST... | bench tunnel LAB_DIR MIB";
    let lab = PathBuf::from(args.get(1).expect(usage));
    match args.first().map(String::as_str) {
        Some("fleet") => fleet(&lab, &args[2..]),
        Some("tunnel") => tunnel(&lab, args.get(2).expect(usage).parse().expect(usage)),
        _ => panic!("{usage}"),
    }
}
