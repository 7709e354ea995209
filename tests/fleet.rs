//! The hosts layer on the lab: at most one SSH handshake per host in a run, none to a worker the
//! cluster vouches for in a converged run; the workers reached only through a jump host
//! (ssh.jump_host), logging in with ssh-agent alone. One test function: the lab is one per
//! machine.

use crate::common;

use common::{Lab, Test};

#[test]
fn at_most_one_handshake_per_host_and_workers_behind_a_jump_host_with_an_agent() {
    let lab = Lab::up(2);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.run(&["up", "--only", "bootstrap"]).expect(0);
    let known_hosts = lab.path("known_hosts");
    // A worker's snap moved by hand, behind Jeeves' back.
    let refresh = |ip: &str, channel: &str| {
        let cmd = format!("snap refresh microk8s --channel={channel}");
        let (code, out) = lab.ssh(ip, &known_hosts, &cmd);
        assert_eq!(code, 0, "{ip}: {cmd}: {out}");
    };
    let converged = |t: &Test, args: &[&str], handshakes: usize, why: &str| {
        let mut all = vec!["-v", "--output", "json", "up", "--only", "bootstrap"];
        all.extend(args);
        let run = t.run(&all).expect(0);
        assert_eq!(
            run.planned("bootstrap"),
            Vec::<String>::new(),
            "{why}\n{}",
            run.stdout
        );
        assert_eq!(run.handshakes(), handshakes, "{why}");
        run
    };

    // Converged: the run before installed the workers on the channel and recorded it, and the
    // cluster vouches for them (Ready nodes on the controller's kubelet version): only the
    // controller is logged in to. Forced, the probe reads every host once; nothing else logs in.
    let run = converged(&t, &["--force", "bootstrap"], 3, "controller + 2 workers");
    assert_eq!(run.stage_result("bootstrap"), "changed", "forced");
    let run = converged(&t, &[], 1, "the controller alone");
    assert_eq!(run.stage_result("bootstrap"), "unchanged");
    assert!(
        run.stdout
            .contains("2 worker(s) not logged in to, the cluster vouching for them"),
        "{}",
        run.stdout
    );
    // A worker on another version than the controller's is logged in to: refreshed to a newer
    // track behind Jeeves' back, it is found, and refused as a downgrade (exit 2).
    refresh("10.77.0.11", "1.33/stable");
    let run = t
        .run(&["--output", "json", "up", "--only", "bootstrap"])
        .expect(2);
    assert!(
        run.stderr.contains("the 1.33/stable that worker-1 runs"),
        "{}",
        run.stderr
    );
    refresh("10.77.0.11", "1.32/stable");
    converged(&t, &[], 2, "worker-1 probed again, its channel recorded");
    converged(&t, &[], 1, "vouched for again");
    // What the cluster cannot show (another risk, the same version) a plain run misses and
    // `--force bootstrap`, logging in to every worker, repairs.
    refresh("10.77.0.12", "1.32/candidate");
    converged(&t, &[], 1, "same version: vouched for");
    let run = t
        .run(&[
            "--output",
            "json",
            "up",
            "--only",
            "bootstrap",
            "--force",
            "bootstrap",
        ])
        .expect(0);
    assert_eq!(
        run.planned("bootstrap"),
        [
            "refresh worker-2: microk8s 1.32/candidate → 1.32/stable (cordon, drain, refresh, uncordon; one worker at a time)"
        ]
    );
    let (_, out) = lab.ssh("10.77.0.12", &known_hosts, "snap list microk8s");
    assert!(out.contains("1.32/stable"), "{out}");

    // The workers unreachable from here; no key file, the key in an agent. Forced, the run
    // logs in to every worker.
    let _routes = common::Prohibit::routes(&["10.77.0.11", "10.77.0.12"]);
    t.env("JEEVES_SSH_CONNECT_TIMEOUT", "3s");
    let force = ["--force", "bootstrap"];
    let direct = t.run(&[
        "--output",
        "json",
        "up",
        "--only",
        "bootstrap",
        force[0],
        force[1],
    ]);
    assert_eq!(direct.code, 1, "unreachable directly\n{}", direct.stdout);
    let agent = common::Agent::with_key(lab.path("agent.sock"), &lab.path("id_ed25519"));
    let no_key = t.path("no-key-file");
    t.env("SSH_AUTH_SOCK", agent.socket.to_str().unwrap())
        .env("SSH_KEY_PATH", no_key.to_str().unwrap())
        .env("JEEVES_SSH_JUMP_HOST", "root@10.77.0.10");
    converged(&t, &force, 6, "each host through the jump host: 2 each");
}
