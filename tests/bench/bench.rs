//! Benchmarks of Jeeves' SSH engine and tunnel against OpenSSH, on the lab (tests/bench/run
//! brings the lab up and prints the figures). Not tests: they print numbers and never fail on
//! a figure.
//!
//!   bench fleet  LAB_DIR HOSTS...   the same 10 commands on every host: Jeeves (one session per
//!                                   host, in parallel) vs `ssh host cmd &` per host and command
//!   bench tunnel LAB_DIR MIB ROUNDS Jeeves' tunnel vs `ssh -N -L` side by side, to an echo
//!                                   server on the controller: MIB MiB each way on one
//!                                   connection, MIB MiB over 16 connections, 1,000 small round
//!                                   trips on one connection and 1,000 on a connection each

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jeeves::ssh::{HostKeyPolicy, RemoteCommand, SshOptions, SshSession, Target};

mod tunnel;

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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench fleet LAB_DIR HOST... | bench tunnel LAB_DIR MIB [ROUNDS]";
    let lab = PathBuf::from(args.get(1).expect(usage));
    match args.first().map(String::as_str) {
        Some("fleet") => fleet(&lab, &args[2..]),
        Some("tunnel") => tunnel::run(
            &lab,
            args.get(2).expect(usage).parse().expect(usage),
            args.get(3).map_or(3, |r| r.parse().expect(usage)),
        ),
        _ => panic!("{usage}"),
    }
}
