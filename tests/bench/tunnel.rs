//! `bench tunnel`: Jeeves' tunnel and `ssh -N -L` side by side, in one run, to the same echo
//! server on the controller, on four measures: bulk throughput on one connection, aggregate
//! throughput over 16 connections, small round trips on one connection, and small requests on
//! a connection each (which includes the channel open). Each measure takes turns between the
//! two (a shared machine's load varies) and also reports the CPU the forwarder spent: the
//! tunnel's thread in this process, the `ssh` process for OpenSSH. Sides are a list, OpenSSH
//! last, so that a candidate forwarder can be measured beside both (issue 26 measured one on
//! russh this way: commit 3695066, docs/benchmarks.md "Tunnel").

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use jeeves::ssh::{RemoteCommand, SshSession, Tunnel};

use super::{openssh, opts, target};

const ECHO_PORT: u16 = 17100;
const ECHO: &str = r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 17100)); s.listen(256)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        d = c.recv(1 << 20)
        if not d: break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;
/// Parallel connections of the aggregate measure.
const PARALLEL: usize = 16;
/// Round trips (and requests) of the latency measures, per round.
const TRIPS: usize = 1000;
/// The size of one request and of its answer.
const SMALL: usize = 64;

/// One side of the comparison: where it listens, and how to read its forwarder's CPU time.
struct Side {
    name: &'static str,
    port: u16,
    /// /proc/…/stat of the forwarder (the tunnel's thread, or the ssh process).
    stat: String,
}

impl Side {
    /// CPU seconds (user + system) the forwarder has spent so far.
    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(&self.stat).unwrap();
        let f: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}

/// Seconds to push `bytes` through one connection to `port` and read them all back.
fn transfer(port: u16, bytes: usize) -> f64 {
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
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            conn.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        conn.shutdown(Shutdown::Write).unwrap();
        // A forwarder that loses bytes is a finding to print, not a reason to stop measuring
        // the others (issue 26's russh prototype did, on 16 connections at once).
        let got = r.join().unwrap();
        if got != bytes {
            println!("tunnel: LOST DATA through port {port}: {got} of {bytes} bytes came back");
        }
    });
    t.elapsed().as_secs_f64()
}

/// Seconds to push `bytes` in all through `PARALLEL` connections at once (each its share).
fn parallel(port: u16, bytes: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(move || transfer(port, bytes / PARALLEL));
        }
    });
    t.elapsed().as_secs_f64()
}

/// One small request and its whole answer on `conn`.
fn round_trip(conn: &mut TcpStream) {
    let req = [0x42u8; SMALL];
    let mut ans = [0u8; SMALL];
    conn.write_all(&req).unwrap();
    conn.read_exact(&mut ans).unwrap();
    assert_eq!(ans, req);
}

/// Seconds each of `TRIPS` small round trips took on one connection (after a warm-up).
fn trips(port: u16) -> Vec<f64> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_nodelay(true).unwrap();
    for _ in 0..20 {
        round_trip(&mut conn);
    }
    (0..TRIPS)
        .map(|_| {
            let t = Instant::now();
            round_trip(&mut conn);
            t.elapsed().as_secs_f64()
        })
        .collect()
}

/// Seconds each of `TRIPS` small requests took, each on its own connection: connect, request,
/// answer, close (the channel open is in it).
fn requests(port: u16) -> Vec<f64> {
    (0..TRIPS)
        .map(|_| {
            let t = Instant::now();
            let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
            conn.set_nodelay(true).unwrap();
            round_trip(&mut conn);
            conn.shutdown(Shutdown::Write).unwrap();
            assert_eq!(conn.read(&mut [0u8; 1]).unwrap(), 0);
            t.elapsed().as_secs_f64()
        })
        .collect()
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

/// The thread of this process named `name` (`Tunnel::open` names its thread "jeeves-tunnel").
fn thread_stat(name: &str) -> String {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        if std::fs::read_to_string(dir.join("comm")).unwrap().trim() == name {
            return dir.join("stat").display().to_string();
        }
    }
    panic!("no {name} thread");
}

/// What `ssh` negotiates with the controller (its `-v` lines "kex: …->… cipher: … MAC: …").
fn referencemethods(lab: &Path, host: &str) -> String {
    let out = openssh(lab)
        .args(["-v", &format!("root@{host}"), "true"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once("kex: ").map(|(_, m)| m.to_string()))
        .filter(|m| m.contains("cipher"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs `f` on each side in turn, `rounds` times; returns each side's results and CPU seconds.
fn turns<T>(sides: &[Side], rounds: usize, f: impl Fn(u16) -> T) -> Vec<(Vec<T>, f64)> {
    let mut out: Vec<(Vec<T>, f64)> = sides.iter().map(|_| (Vec::new(), 0.0)).collect();
    for _ in 0..rounds {
        for (side, (results, cpu)) in sides.iter().zip(out.iter_mut()) {
            let c0 = side.cpu();
            results.push(f(side.port));
            *cpu += side.cpu() - c0;
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run(lab: &Path, mib: usize, rounds: usize) {
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

    let session = SshSession::connect(&target(controller), &opts(lab)).unwrap();
    println!(
        "tunnel: jeeves negotiates {}; ssh -L negotiates {}",
        session.negotiated(),
        referencemethods(lab, controller)
    );
    let t = Tunnel::open(session, 0, ECHO_PORT).unwrap();
    wait_for(t.local.port());
    let sport = 27100;
    let mut ssh = openssh(lab)
        .args(["-N", "-L", &format!("{sport}:127.0.0.1:{ECHO_PORT}")])
        .arg(format!("root@{controller}"))
        .spawn()
        .unwrap();
    wait_for(sport);
    // OpenSSH last: every ratio is a side against it.
    let sides = [
        Side {
            name: "jeeves",
            port: t.local.port(),
            stat: thread_stat("jeeves-tunnel"),
        },
        Side {
            name: "ssh -L",
            port: sport,
            stat: format!("/proc/{}/stat", ssh.id()),
        },
    ];
    let reference = sides.len() - 1;
    for s in &sides {
        println!("tunnel: {} listens on {}", s.name, s.port);
    }

    let bytes = mib << 20;
    let throughput = |what: String, results: Vec<(Vec<f64>, f64)>| {
        // MiB/s each way, from the best round; CPU per MiB forwarded (both ways) over all rounds.
        let rates: Vec<(f64, f64)> = results
            .iter()
            .map(|(secs, cpu)| {
                let best = secs.iter().cloned().fold(f64::MAX, f64::min);
                (mib as f64 / best, 1000.0 * cpu / (2 * mib * rounds) as f64)
            })
            .collect();
        let each: Vec<String> = sides
            .iter()
            .zip(&rates)
            .map(|(s, (rate, cpu))| format!("{} {rate:.1} MiB/s ({cpu:.1} CPU-ms/MiB)", s.name))
            .collect();
        let ratios: Vec<String> = sides[..reference]
            .iter()
            .zip(&rates)
            .map(|(s, (rate, _))| format!("{}/openssh {:.2}", s.name, rate / rates[reference].0))
            .collect();
        println!(
            "tunnel, {what} (best of {rounds}): {}; {}",
            each.join(", "),
            ratios.join(", ")
        );
    };
    throughput(
        format!("{mib} MiB each way on one connection"),
        turns(&sides, rounds, |port| transfer(port, bytes)),
    );
    throughput(
        format!("{mib} MiB each way over {PARALLEL} connections at once"),
        turns(&sides, rounds, |port| parallel(port, bytes)),
    );

    let latency = |what: &str, results: Vec<(Vec<Vec<f64>>, f64)>| {
        // Percentiles over every round's samples; CPU per round trip.
        let stats: Vec<(f64, f64, f64)> = results
            .into_iter()
            .map(|(rounds_, cpu)| {
                let mut all: Vec<f64> = rounds_.into_iter().flatten().collect();
                all.sort_by(f64::total_cmp);
                let n = all.len() as f64;
                (
                    1000.0 * percentile(&all, 0.5),
                    1000.0 * percentile(&all, 0.99),
                    1e6 * cpu / n,
                )
            })
            .collect();
        let each: Vec<String> = sides
            .iter()
            .zip(&stats)
            .map(|(s, (p50, p99, cpu))| {
                format!(
                    "{} p50 {p50:.3} ms, p99 {p99:.3} ms ({cpu:.0} CPU-µs each)",
                    s.name
                )
            })
            .collect();
        let ratios: Vec<String> = sides[..reference]
            .iter()
            .zip(&stats)
            .map(|(s, (p50, p99, _))| {
                let o = stats[reference];
                format!(
                    "openssh/{} p50 {:.2}, p99 {:.2}",
                    s.name,
                    o.0 / p50,
                    o.1 / p99
                )
            })
            .collect();
        println!(
            "tunnel, {TRIPS} {what}, {SMALL} B each ({rounds} rounds): {}; {}",
            each.join(", "),
            ratios.join("; ")
        );
    };
    latency(
        "round trips on one connection",
        turns(&sides, rounds, trips),
    );
    latency(
        "requests on a connection each",
        turns(&sides, rounds, requests),
    );

    let _ = ssh.kill();
    let _ = ssh.wait();
    drop(t);
    let _ = setup.run(&RemoteCommand::new("pkill").args(["-f", "echo-server"]));
}
