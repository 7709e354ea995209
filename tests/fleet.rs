//! The hosts layer on the lab: one SSH handshake per host in a converged run; the workers
//! reached only through a jump host (ssh.jump_host), logging in with ssh-agent alone.
//! One test function: the lab is one per machine.

mod common;

use common::{Lab, Test};

#[test]
fn one_handshake_per_host_and_workers_behind_a_jump_host_with_an_agent() {
    let lab = Lab::up(2);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.run(&["up", "--only", "bootstrap"]).expect(0);

    // Converged: the probe reads every host once; nothing else logs in.
    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    assert_eq!(run.stage_result("bootstrap"), "unchanged");
    assert_eq!(run.handshakes(), 3, "controller + 2 workers");

    // The workers unreachable from here; no key file, the key in an agent.
    let _routes = common::Prohibit::routes(&["10.77.0.11", "10.77.0.12"]);
    t.env("JEEVES_SSH_CONNECT_TIMEOUT", "3s");
    let direct = t.run(&["--output", "json", "up", "--only", "bootstrap"]);
    assert_eq!(direct.code, 1, "unreachable directly\n{}", direct.stdout);
    let agent = common::Agent::with_key(lab.path("agent.sock"), &lab.path("id_ed25519"));
    let no_key = t.path("no-key-file");
    t.env("SSH_AUTH_SOCK", agent.socket.to_str().unwrap())
        .env("SSH_KEY_PATH", no_key.to_str().unwrap())
        .env("JEEVES_SSH_JUMP_HOST", "root@10.77.0.10");
    let run = t
        .run(&["-v", "--output", "json", "up", "--only", "bootstrap"])
        .expect(0);
    assert_eq!(run.stage_result("bootstrap"), "unchanged");
    assert_eq!(
        run.handshakes(),
        6,
        "each host through the jump host: 2 each"
    );
}
