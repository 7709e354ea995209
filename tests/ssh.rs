//! The SSH engine against the lab's real OpenSSH servers: output and status, hostile arguments
//! passed literally, atomic uploads, timeouts, strict host keys, retries and auth failures.
//! One test function: the lab is one per machine.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Lab;
use jeeves::ssh::{HostKeyPolicy, RemoteCommand, SshOptions, SshSession, Stream, Target};

fn target(name: &str, ip: &str) -> Target {
    Target {
        name: name.into(),
        address: ip.into(),
        port: 22,
    }
}

fn options(lab: &Lab, known_hosts: &Path) -> SshOptions {
    SshOptions {
        user: "root".into(),
        key_path: lab.path("id_ed25519"),
        passphrase: None,
        known_hosts: known_hosts.to_path_buf(),
        host_keys: HostKeyPolicy::Strict,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(30),
        keepalive: Duration::from_secs(5),
        sudo: false,
        jump: None,
    }
}

#[test]
fn the_ssh_engine_on_real_openssh() {
    let lab = Lab::up(1);
    let known_hosts = lab.path("known_hosts");
    let opts = options(&lab, &known_hosts);
    let controller =
        SshSession::connect(&target("controller", "10.77.0.10"), &opts).expect("connect");

    // stdout, stderr and the status come back apart, and lines stream in order.
    let mut lines = Vec::new();
    let out = controller
        .exec(
            &RemoteCommand::new("sh")
                .arg("-c")
                .arg("echo one; echo warn >&2; echo two; exit 3"),
            &mut |s, l| lines.push((s, l.to_string())),
        )
        .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (3, "one\ntwo\n", "warn\n")
    );
    assert!(
        lines.contains(&(Stream::Stdout, "one".into()))
            && lines.contains(&(Stream::Stderr, "warn".into()))
    );
    let err = controller
        .run(
            &RemoteCommand::new("sh")
                .arg("-c")
                .arg("echo boom >&2; exit 4"),
        )
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("status 4") && format!("{err:#}").contains("boom"),
        "{err:#}"
    );

    // A command killed by a signal sends no exit status (libssh2 would say 0): it fails,
    // naming the signal, and what it printed first is kept.
    let err = controller
        .exec(
            &RemoteCommand::new("sh")
                .arg("-c")
                .arg("echo started; kill -KILL $$"),
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("killed by signal SIGKILL")
            && format!("{err:#}").contains("started"),
        "{err:#}"
    );

    // Hostile values reach the program literally and are never executed.
    let marker = "/tmp/jeeves-pwned";
    let _ = std::fs::remove_file(marker);
    for hostile in [
        format!("$(touch {marker})"),
        format!("`touch {marker}`"),
        format!("; touch {marker}"),
        format!("' ; touch {marker}; echo '"),
        format!("\" ; touch {marker}; echo \""),
        format!("line1\ntouch {marker}\nline3"),
        "$HOME * ~ && || | > <".to_string(),
    ] {
        let out = controller
            .run(&RemoteCommand::new("printf").arg("%s").arg(hostile.as_str()))
            .unwrap();
        assert_eq!(out.stdout, hostile, "passed literally");
    }
    let (code, _) = lab.ssh("10.77.0.10", &known_hosts, &format!("test ! -e {marker}"));
    assert_eq!(code, 0, "a hostile value was executed on the host");
    assert!(!Path::new(marker).exists());
    assert!(
        RemoteCommand::new("echo").arg("a\0b").to_shell().is_err(),
        "NUL bytes are rejected before sending"
    );

    // Uploads land whole, with their mode, and leave no temporary file.
    let body = "global\n  maxconn 10\n".repeat(5000);
    controller
        .upload("/etc/haproxy/uploaded.cfg", body.as_bytes(), 0o640)
        .unwrap();
    let out = controller
        .run(
            &RemoteCommand::new("sh")
                .arg("-c")
                .arg("stat -c %a /etc/haproxy/uploaded.cfg; ls /etc/haproxy"),
        )
        .unwrap();
    assert_eq!(out.stdout, "640\nuploaded.cfg\n");
    let back = controller
        .run(&RemoteCommand::new("cat").arg("/etc/haproxy/uploaded.cfg"))
        .unwrap();
    assert_eq!(back.stdout, body);
    // Standard input of any size goes through the non-blocking loop.
    let big = "x".repeat(3 * 1024 * 1024);
    let out = controller
        .run(
            &RemoteCommand::new("wc")
                .arg("-c")
                .stdin(big.as_bytes().to_vec()),
        )
        .unwrap();
    assert_eq!(out.stdout.trim(), big.len().to_string());

    // A command past its timeout is stopped with a clear error.
    let quick = SshOptions {
        command_timeout: Duration::from_secs(1),
        ..opts.clone()
    };
    let s = SshSession::connect(&target("controller", "10.77.0.10"), &quick).unwrap();
    let err = s
        .exec(&RemoteCommand::new("sleep").arg("30"), &mut |_, _| {})
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("ssh.command_timeout"),
        "{err:#}"
    );
    // The host stops it too, with its process group (certbot must not hold port 80 after the
    // run gave up), and SIGKILL follows for a command that ignores SIGTERM.
    let started = Instant::now();
    let err = s
        .exec(
            &RemoteCommand::new("sh")
                .arg("-c")
                .arg("trap '' TERM; sleep 61 & wait"),
            &mut |_, _| {},
        )
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("ssh.command_timeout) and was stopped on the host"),
        "{err:#}"
    );
    // SIGTERM was ignored, so the command ended only with SIGKILL, KILL_AFTER (5 s) later; the
    // check below shows nothing of it is left.
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(6), "{took:?}");
    let (code, out) = lab.ssh(
        "10.77.0.10",
        &known_hosts,
        // This host's processes only: the lab's hosts (every slot's) share one process table.
        "pgrep --ns $$ --nslist net -af 'sleep 6[01]' || echo gone",
    );
    assert_eq!((code, out.trim()), (0, "gone"), "left running on the host");

    // Many commands at once on one session's host, from parallel sessions.
    std::thread::scope(|scope| {
        for i in 0..8 {
            let opts = &opts;
            scope.spawn(move || {
                let s = SshSession::connect(&target("worker-1", "10.77.0.11"), opts).unwrap();
                for j in 0..5 {
                    let out = s
                        .run(&RemoteCommand::new("echo").arg(format!("{i}-{j}")))
                        .unwrap();
                    assert_eq!(out.stdout.trim(), format!("{i}-{j}"));
                }
            });
        }
    });

    // A host key that is not the pinned one aborts before anything runs, naming both keys.
    let wrong = lab.path("wrong_known_hosts");
    let other =
        std::fs::read_to_string(lab.path("hosts/worker-1/ssh_host_ed25519_key.pub")).unwrap();
    let f: Vec<&str> = other.split_whitespace().collect();
    std::fs::write(&wrong, format!("10.77.0.10 {} {}\n", f[0], f[1])).unwrap();
    let sshd_log = lab.path("hosts/controller/log/sshd.log");
    let logged_before = std::fs::read_to_string(&sshd_log).unwrap().len();
    let err = SshSession::connect(&target("controller", "10.77.0.10"), &options(&lab, &wrong))
        .err()
        .expect("mismatch refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("host key mismatch for 10.77.0.10:22"),
        "{text}"
    );
    assert_eq!(
        text.matches("SHA256:").count(),
        2,
        "expected and offered fingerprints: {text}"
    );
    // Not retried: sshd saw one connection from the runner end before authentication. Every
    // attempt comes from a port of its own; each one ended before `connect` returned.
    let refused_ports = || -> Vec<String> {
        let log = std::fs::read_to_string(&sshd_log).unwrap();
        let mut ports: Vec<String> = log[logged_before..]
            .lines()
            .filter(|l| l.ends_with("[preauth]"))
            .filter_map(|l| l.split(" port ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect();
        ports.dedup();
        ports
    };
    let give_up = Instant::now() + Duration::from_secs(30);
    while refused_ports().is_empty() {
        assert!(
            Instant::now() < give_up,
            "sshd never logged the refused connection"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A connection after it, so that sshd has logged any attempt made before.
    let (code, out) = lab.ssh("10.77.0.10", &known_hosts, "true");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        refused_ports().len(),
        1,
        "a mismatch is not retried: {:?}",
        refused_ports()
    );

    // An unknown host: refused by default, pinned with trust-on-first-use when asked.
    let empty = lab.path("tofu_known_hosts");
    let err = SshSession::connect(&target("controller", "10.77.0.10"), &options(&lab, &empty))
        .err()
        .expect("unknown refused");
    assert!(
        format!("{err:#}").contains("--accept-new-host-keys"),
        "{err:#}"
    );
    let tofu = SshOptions {
        host_keys: HostKeyPolicy::AcceptNew,
        ..options(&lab, &empty)
    };
    SshSession::connect(&target("controller", "10.77.0.10"), &tofu).unwrap();
    SshSession::connect(&target("controller", "10.77.0.10"), &options(&lab, &empty))
        .expect("pinned now");

    // Nobody listening: retried with backoff until the connect timeout, then a clear error.
    let short = SshOptions {
        connect_timeout: Duration::from_secs(2),
        ..opts.clone()
    };
    let started = Instant::now();
    let err = SshSession::connect(
        &Target {
            port: 2222,
            ..target("controller", "10.77.0.10")
        },
        &short,
    )
    .err()
    .expect("refused");
    assert!(
        format!("{err:#}").contains("ssh.connect_timeout"),
        "{err:#}"
    );
    // It kept trying for the whole timeout before it gave up.
    assert!(started.elapsed() >= Duration::from_secs(1));

    // A key the host does not accept fails at once, naming what was tried.
    let stranger = lab.path("stranger");
    let (code, out) = common::sh(std::process::Command::new("ssh-keygen").args([
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        stranger.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}");
    let bad = SshOptions {
        key_path: stranger.clone(),
        ..opts.clone()
    };
    let err = SshSession::connect(&target("controller", "10.77.0.10"), &bad)
        .err()
        .expect("auth refused");
    assert!(
        format!("{err:#}").contains("authentication failed"),
        "{err:#}"
    );

    // Through a jump host (ssh.jump_host): worker-1 unreachable from here (a prohibit route),
    // reached through the controller; its own host key is checked end to end.
    let route = common::Prohibit::routes(&["10.77.0.11"]);
    let short = SshOptions {
        connect_timeout: Duration::from_secs(2),
        ..opts.clone()
    };
    assert!(
        SshSession::connect(&target("worker-1", "10.77.0.11"), &short).is_err(),
        "worker-1 is not reachable directly"
    );
    let jumped = SshOptions {
        jump: Some(jeeves::ssh::Jump {
            target: target("controller", "10.77.0.10"),
            user: "root".into(),
        }),
        ..opts.clone()
    };
    let w = SshSession::connect(&target("worker-1", "10.77.0.11"), &jumped).expect("jumped");
    let out = w.run(&RemoteCommand::new("hostname")).unwrap();
    assert_eq!(out.stdout.trim(), "worker-1");
    // The worker's key is checked as 10.77.0.11's: the controller's key in its place fails.
    let swapped = lab.path("swapped_known_hosts");
    let mine = std::fs::read_to_string(&known_hosts).unwrap();
    let controller_key: Vec<&str> = mine
        .lines()
        .find(|l| l.starts_with("10.77.0.10 ") && l.contains("ed25519"))
        .expect("the controller's key")
        .split_whitespace()
        .collect();
    std::fs::write(
        &swapped,
        format!(
            "{mine}\n10.77.0.11 {} {}\n",
            controller_key[1], controller_key[2]
        )
        .lines()
        .filter(|l| !l.starts_with("10.77.0.11 ") || l.contains(controller_key[2]))
        .map(|l| format!("{l}\n"))
        .collect::<String>(),
    )
    .unwrap();
    let err = SshSession::connect(
        &target("worker-1", "10.77.0.11"),
        &SshOptions {
            known_hosts: swapped,
            ..jumped.clone()
        },
    )
    .err()
    .expect("the wrong key through the jump host");
    assert!(
        format!("{err:#}").contains("host key mismatch for 10.77.0.11:22"),
        "{err:#}"
    );
    // A host the jump host cannot reach: the jump host's reason, named with the timeout.
    let err = SshSession::connect(
        &Target {
            port: 2222,
            ..target("worker-1", "10.77.0.11")
        },
        &SshOptions {
            connect_timeout: Duration::from_secs(3),
            ..jumped.clone()
        },
    )
    .err()
    .expect("nothing on 2222");
    let text = format!("{err:#}");
    assert!(
        text.contains("through the jump host") && text.contains("ssh.connect_timeout"),
        "{text}"
    );
    drop(route);

    // ssh-agent alone: no key file, the key in an agent.
    let agent = common::Agent::with_key(lab.path("agent.sock"), &lab.path("id_ed25519"));
    // SAFETY: this test binary runs this one test function; nothing else reads the env now.
    unsafe { std::env::set_var("SSH_AUTH_SOCK", &agent.socket) };
    let agent_only = SshOptions {
        key_path: lab.path("no-such-key"),
        ..opts.clone()
    };
    let s = SshSession::connect(&target("controller", "10.77.0.10"), &agent_only)
        .expect("logged in with the agent's key");
    assert_eq!(
        s.run(&RemoteCommand::new("hostname"))
            .unwrap()
            .stdout
            .trim(),
        "controller"
    );
}
