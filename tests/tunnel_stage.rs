//! The tunnel stage and `jeeves tunnel` on the lab: real OpenSSH, real kubectl, and the MicroK8s
//! API stand-in (tests/lab/standins/microk8s-daemon) behind the tunnel.
//! One test function: the lab is one per machine.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Lab, Test};

const PORT: &str = "26501";

fn listening() -> bool {
    TcpStream::connect_timeout(
        &format!("127.0.0.1:{PORT}").parse().unwrap(),
        Duration::from_millis(300),
    )
    .is_ok()
}

#[test]
fn the_tunnel_stage_writes_a_kubeconfig_and_jeeves_tunnel_serves_it() {
    let lab = Lab::up(1);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.env("JEEVES_TUNNEL_LOCAL_PORT", PORT);
    t.run(&["up", "--only", "terraform", "--only", "bootstrap"])
        .expect(0);

    // First run: the tunnel answers /readyz and the kubeconfig is written, private.
    let run = t
        .run(&["--output", "json", "up", "--only", "tunnel"])
        .expect(0);
    assert_eq!(run.stage_result("tunnel"), "changed", "{}", run.stderr);
    let kubeconfig = t.path(".jeeves/lab/kubeconfig");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        text.contains(&format!("server: https://127.0.0.1:{PORT}\n")),
        "{text}"
    );
    assert!(!text.contains("10.77.0.10"), "{text}");
    let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        !t.path(".jeeves/lab/kubeconfig.probe").exists(),
        "the probe's scratch kubeconfig is removed"
    );
    // The run's tunnel closed with the run.
    assert!(!listening(), "nothing listens on {PORT} after the run");
    // The admin credentials never reach the output.
    let cred = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .or_else(|| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix("client-key-data: "))
        })
        .expect("a credential in the kubeconfig");
    assert!(!run.stdout.contains(cred) && !run.stderr.contains(cred));

    // Re-run: nothing to write.
    let run = t
        .run(&["--output", "json", "up", "--only", "tunnel"])
        .expect(0);
    assert_eq!(run.stage_result("tunnel"), "unchanged", "{}", run.stderr);

    // A damaged kubeconfig is repaired, and only that.
    std::fs::write(&kubeconfig, "garbage\n").unwrap();
    let run = t
        .run(&["--output", "json", "up", "--only", "tunnel"])
        .expect(0);
    assert_eq!(run.stage_result("tunnel"), "changed", "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&kubeconfig).unwrap(), text);

    // `jeeves tunnel` holds it open for kubectl until SIGINT.
    let mut child = t
        .command(&["tunnel"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let export = loop {
        assert!(Instant::now() < deadline, "no KUBECONFIG line in time");
        let line = lines
            .next()
            .expect("jeeves tunnel ended before printing KUBECONFIG")
            .unwrap();
        if let Some(p) = line.strip_prefix("export KUBECONFIG=") {
            break p.to_string();
        }
    };
    assert_eq!(
        std::fs::canonicalize(&export).unwrap(),
        std::fs::canonicalize(&kubeconfig).unwrap()
    );
    let (code, out) = common::tool(
        "kubectl",
        &["--kubeconfig", &export, "get", "--raw", "/version"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("jeeves-lab-standin"), "{out}");

    // While it holds the port, a run that needs the port says so.
    let run = t.run(&["up", "--only", "tunnel"]).expect(1);
    assert!(run.stderr.contains("already in use"), "{}", run.stderr);

    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!listening(), "nothing listens on {PORT} after Ctrl-C");
}
