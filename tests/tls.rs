//! The tls stage on the lab: real certbot against Pebble with a real HTTP-01 validation, real
//! HAProxy, Route 53 on moto for DNS first. Each test brings up its own lab; the lab is one per
//! machine, so they take turns through its machine lock.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Lab, Test};

const DOMAIN: &str = "chat.jeeves.test";
const CONTROLLER: &str = "10.77.0.10";
/// Where the controller's `sh` (dash, as the tls stage's probe) finds haproxy and certbot.
const WHICH_TOOLS: &str = "sh -c 'for t in haproxy certbot; do command -v $t; done; true'";

/// Host progress messages of the tls stage.
fn progress(run: &common::Run) -> Vec<String> {
    run.events()
        .iter()
        .filter(|e| e["event"] == "host_progress" && e["stage"] == "tls")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

/// ACME orders Pebble has taken so far.
fn orders(lab: &Lab) -> usize {
    std::fs::read_to_string(lab.path("pebble/pebble.log"))
        .unwrap()
        .matches("POST /order-plz")
        .count()
}

fn haproxy_pid(lab: &Lab) -> String {
    std::fs::read_to_string(lab.path("hosts/controller/run-haproxy/haproxy.pid"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn on_controller(lab: &Lab, cmd: &str) -> String {
    let (code, out) = lab.ssh(CONTROLLER, &lab.path("known_hosts"), cmd);
    assert_eq!(code, 0, "{cmd}:\n{out}");
    out
}

/// An HTTPS request to the domain on the controller, trusting only Pebble's root: the status
/// code (HAProxy answers 503 while Traefik is not deployed), after a verified handshake.
fn https_status(lab: &Lab) -> String {
    let root = lab.path("pebble/root.pem").display().to_string();
    let (code, out) = common::tool(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            "--cacert",
            &root,
            "--resolve",
            &format!("{DOMAIN}:443:{CONTROLLER}"),
            &format!("https://{DOMAIN}/"),
        ],
    );
    assert_eq!(
        code, 0,
        "curl (TLS verification against Pebble's root): {out}"
    );
    out
}

/// The serial of the certificate HAProxy serves.
fn served_serial() -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {CONTROLLER}:443 -servername {DOMAIN} </dev/null 2>/dev/null | openssl x509 -noout -serial"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn tls_issues_once_serves_restores_and_never_breaks_the_running_config() {
    let lab = Lab::up(0);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.run(&["up", "--only", "terraform"]).expect(0);
    // A fresh image has neither haproxy nor certbot.
    lab.must(&["uninstall", "controller", "haproxy", "certbot"]);
    assert_eq!(
        on_controller(&lab, WHICH_TOOLS).trim(),
        "",
        "haproxy and certbot absent"
    );

    // Fresh controller: the packages installed, DNS first, a real HTTP-01 validation, HAProxy
    // serving the certificate.
    let run = t.run(&["--output", "json", "up", "--only", "tls"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stage_result("tls"), "changed");
    let steps = progress(&run);
    assert!(
        steps
            .iter()
            .any(|m| m.starts_with("installing") && m.contains("haproxy") && m.contains("certbot")),
        "{steps:?}"
    );
    assert_eq!(
        on_controller(&lab, WHICH_TOOLS).lines().count(),
        2,
        "haproxy and certbot installed"
    );
    let dns = steps
        .iter()
        .position(|m| m.contains("A record → 10.77.0.10"))
        .expect("DNS step");
    let certbot = steps
        .iter()
        .position(|m| m.starts_with("certbot: requesting"))
        .expect("certbot step");
    assert!(dns < certbot, "DNS before ACME: {steps:?}");
    assert_eq!(orders(&lab), 1);
    assert_eq!(https_status(&lab), "503");
    let (code, redirect) = common::tool(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "--resolve",
            &format!("{DOMAIN}:80:{CONTROLLER}"),
            &format!("http://{DOMAIN}/home"),
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(redirect, format!("301 https://{DOMAIN}/home"));
    let pem = format!("/etc/haproxy/certs/{DOMAIN}.pem");
    assert_eq!(
        on_controller(&lab, &format!("stat -c %a {pem}")).trim(),
        "600"
    );
    assert!(
        !on_controller(&lab, &format!("cat {pem}")).is_empty()
            && on_controller(&lab, "ls /etc/letsencrypt/live").contains(DOMAIN)
    );
    let cache = t.path(&format!(".jeeves/lab/tls/{DOMAIN}.tar.gz"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // certbot's renewal window is tls.renew_before (the lab: 30 days), one definition of "due".
    let conf = on_controller(&lab, &format!("cat /etc/letsencrypt/renewal/{DOMAIN}.conf"));
    assert!(
        conf.lines().any(|l| l == "renew_before_expiry = 30 days"),
        "{conf}"
    );

    // Re-run: no certbot call, no reload.
    let pid = haproxy_pid(&lab);
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    assert_eq!(run.stage_result("tls"), "unchanged", "{}", run.stdout);
    assert_eq!(orders(&lab), 1, "no new ACME order");
    assert_eq!(haproxy_pid(&lab), pid, "no reload");

    // A run killed after writing the PEM but before the reload (or whose reload failed): the
    // files on disk are right, the running haproxy has not loaded them. Decided from the
    // running process, the re-run reloads; the run after it is unchanged.
    on_controller(
        &lab,
        "touch /etc/haproxy/certs/chat.jeeves.test.pem /etc/haproxy/haproxy.cfg",
    );
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    assert!(
        run.stdout.contains("the running process has not loaded"),
        "{}",
        run.stdout
    );
    assert_ne!(haproxy_pid(&lab), pid, "reloaded");
    assert_eq!(orders(&lab), 1, "no new ACME order");
    let pid = haproxy_pid(&lab);
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    assert_eq!(run.stage_result("tls"), "unchanged", "{}", run.stdout);
    assert_eq!(haproxy_pid(&lab), pid);

    // Renewal works without Jeeves: the hooks free port 80 and bring haproxy back.
    for hook in ["pre", "post", "deploy"] {
        on_controller(
            &lab,
            &format!("test -x /etc/letsencrypt/renewal-hooks/{hook}/jeeves-haproxy.sh"),
        );
    }
    assert_eq!(
        on_controller(&lab, "systemctl is-active haproxy").trim(),
        "active"
    );
    let out = on_controller(
        &lab,
        "certbot renew --no-random-sleep-on-renew --dry-run --server https://10.77.0.1:14000/dir 2>&1",
    );
    assert!(out.contains("all simulated renewals succeeded"), "{out}");
    assert_eq!(
        on_controller(&lab, "systemctl is-active haproxy").trim(),
        "active"
    );
    // A real (forced) renewal: the deploy hook rebuilds the PEM and HAProxy serves the new one
    // (stopped by the pre hook, started again by the post hook).
    let before = served_serial();
    let pid = haproxy_pid(&lab);
    on_controller(
        &lab,
        "certbot renew --no-random-sleep-on-renew --force-renewal --server https://10.77.0.1:14000/dir 2>&1",
    );
    let after = served_serial();
    assert!(!after.is_empty() && after != before, "{before} → {after}");
    assert_ne!(haproxy_pid(&lab), pid, "haproxy restarted by the hooks");
    assert_eq!(https_status(&lab), "503");
    let lineage_sha = || {
        on_controller(
            &lab,
            &format!(
                "cat /etc/letsencrypt/live/{DOMAIN}/privkey.pem /etc/letsencrypt/live/{DOMAIN}/fullchain.pem | sha256sum"
            ),
        )
    };
    assert_eq!(
        on_controller(&lab, &format!("sha256sum <{pem}")),
        lineage_sha()
    );

    // The deploy hook alone, as certbot runs it with haproxy running (a renewal that needed no
    // port 80): another lineage is not its business; ours gets the PEM rebuilt by the script a
    // run uses (here from a damaged one) and a reload.
    let hook = "/etc/letsencrypt/renewal-hooks/deploy/jeeves-haproxy.sh";
    let pid = haproxy_pid(&lab);
    on_controller(&lab, &format!("printf damaged >{pem}"));
    on_controller(
        &lab,
        &format!("RENEWED_LINEAGE=/etc/letsencrypt/live/other.jeeves.test {hook}"),
    );
    assert_eq!(on_controller(&lab, &format!("cat {pem}")), "damaged");
    assert_eq!(haproxy_pid(&lab), pid, "no reload for another lineage");
    on_controller(
        &lab,
        &format!("RENEWED_LINEAGE=/etc/letsencrypt/live/{DOMAIN} {hook}"),
    );
    assert_eq!(
        on_controller(&lab, &format!("sha256sum <{pem}")),
        lineage_sha()
    );
    assert_eq!(
        on_controller(&lab, &format!("stat -c %a {pem}")).trim(),
        "600"
    );
    assert_ne!(haproxy_pid(&lab), pid, "reloaded");
    assert_eq!(served_serial(), after);
    assert_eq!(https_status(&lab), "503");
    // Jeeves keeps the renewed lineage for the next rebuild, and changes nothing on the host.
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    assert!(
        run.stdout
            .contains("certificate lineage of chat.jeeves.test in the state dir"),
        "{}",
        run.stdout
    );
    let orders_now = orders(&lab);

    // A rebuilt controller (lineage and PEM gone) gets the cached certificate: no new order.
    on_controller(&lab, &format!("rm -rf /etc/letsencrypt/* {pem}"));
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    assert!(
        progress(&run)
            .iter()
            .any(|m| m.starts_with("certificate restored from the state dir")),
        "{:?}",
        progress(&run)
    );
    assert_eq!(orders(&lab), orders_now, "restored, not re-issued");
    assert_eq!(https_status(&lab), "503");
    assert_eq!(served_serial(), after, "the renewed certificate came back");

    // A template change: exactly one reload.
    let tpl = t.path("templates/haproxy.cfg.hbs");
    let original = std::fs::read_to_string(&tpl).unwrap();
    std::fs::write(
        &tpl,
        original.replace("maxconn 4096", "maxconn 4096\n    # changed by the test"),
    )
    .unwrap();
    let pid = haproxy_pid(&lab);
    let run = t
        .run(&["--output", "json", "up", "--only", "tls"])
        .expect(0);
    let reloads = progress(&run)
        .iter()
        .filter(|m| m.contains("reloaded"))
        .count();
    assert_eq!(reloads, 1, "{:?}", progress(&run));
    assert_ne!(haproxy_pid(&lab), pid);
    assert!(on_controller(&lab, "cat /etc/haproxy/haproxy.cfg").contains("changed by the test"));

    // A broken config: haproxy's own message, the running config untouched and still serving.
    let live = on_controller(&lab, "sha256sum /etc/haproxy/haproxy.cfg");
    std::fs::write(
        &tpl,
        original.replace("maxconn 4096", "maxconn 4096\n    no-such-keyword on"),
    )
    .unwrap();
    let run = t.run(&["up", "--only", "tls"]).expect(1);
    assert!(
        run.stderr.contains("fails `haproxy -c`") && run.stderr.contains("no-such-keyword"),
        "{}",
        run.stderr
    );
    assert_eq!(
        on_controller(&lab, "sha256sum /etc/haproxy/haproxy.cfg"),
        live
    );
    assert!(
        on_controller(&lab, "ls /etc/haproxy")
            .lines()
            .all(|l| !l.ends_with(".jeeves-new"))
    );
    assert_eq!(https_status(&lab), "503");

    // A domain in no Route 53 zone that does not resolve to the controller: stop before ACME.
    let orders_before = orders(&lab);
    let mut other = Test::new();
    lab.env_for(&mut other);
    other.env("DOMAIN", "chat.nozone.test");
    other.run(&["up", "--only", "terraform"]).expect(0);
    let run = other.run(&["up", "--only", "tls"]).expect(1);
    assert!(
        run.stderr
            .contains("chat.nozone.test is in no Route 53 zone")
            && run.stderr.contains("Nothing was requested"),
        "{}",
        run.stderr
    );
    assert_eq!(orders(&lab), orders_before, "no ACME order");
}

/// Issue 12: Ctrl-C (SIGINT) while haproxy is stopped for certbot. The stage finishes what it
/// cannot leave half done (certbot's order, the PEM from the new lineage, haproxy started again),
/// then stops: exit 130, tls recorded as failed, no further stage, haproxy serving the new
/// certificate. The next run completes the rest without a new ACME order; the one after finds
/// tls unchanged.
#[test]
fn an_interrupt_while_haproxy_is_stopped_for_certbot_leaves_it_serving() {
    let lab = Lab::up(0);
    let mut t = Test::new();
    lab.env_for(&mut t);
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.run(&["up", "--only", "tls"]).expect(0);
    assert_eq!(
        on_controller(&lab, "systemctl is-active haproxy").trim(),
        "active"
    );

    // certbot must run (as in faults.rs): no lineage, no PEM, no cache. haproxy still runs with
    // the old PEM loaded, so the stage stops it for certbot's port 80.
    on_controller(
        &lab,
        "rm -rf /etc/letsencrypt/live /etc/letsencrypt/archive /etc/letsencrypt/renewal /etc/haproxy/certs",
    );
    std::fs::remove_dir_all(t.path(".jeeves/lab/tls")).unwrap();
    let orders_before = orders(&lab);

    let stderr = t.path("interrupted.stderr");
    let mut child = t
        .command(&["--output", "json", "up", "--only", "tls", "--only", "dns"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut events: Vec<serde_json::Value> = Vec::new();
    let mut sent = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let event: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let certbot = event["event"] == "host_progress"
            && event["stage"] == "tls"
            && event["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("certbot: requesting a certificate"));
        events.push(event);
        if certbot && sent.is_none() {
            // SAFETY: kill(2) on the pid of a child this test spawned and has not waited for.
            assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
            sent = Some(events.len());
        }
    }
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&stderr).unwrap();
    let tls_messages: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "host_progress" && e["stage"] == "tls")
        .filter_map(|e| e["message"].as_str())
        .collect();
    let sent = sent.unwrap_or_else(|| panic!("certbot never ran: {tls_messages:?}\n{stderr}"));
    assert!(
        events[..sent].iter().any(|e| e["event"] == "host_progress"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("haproxy") && m.contains("for certbot"))),
        "SIGINT sent with haproxy stopped for certbot: {tls_messages:?}"
    );
    assert_eq!(status.code(), Some(130), "{events:?}\n{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    let finished = |stage: &str| {
        events
            .iter()
            .find(|e| e["event"] == "stage_finished" && e["stage"] == stage)
            .unwrap_or_else(|| panic!("no stage_finished for {stage}: {events:?}"))
            .clone()
    };
    let tls = finished("tls");
    assert_eq!(tls["result"], "failed", "{tls}");
    assert!(
        tls["error"]
            .as_str()
            .unwrap()
            .contains("interrupted by SIGINT"),
        "{tls}"
    );
    assert_eq!(finished("dns")["result"], "skipped", "no further stage");
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "stage_started" && e["stage"] == "dns"),
        "dns never started"
    );
    assert_eq!(t.state()["stages"]["tls"]["result"], "failed");
    // The step under way finished: certbot's order went through, and haproxy is back, serving
    // the new certificate (a handshake verified against Pebble's root).
    assert_eq!(orders(&lab), orders_before + 1, "{tls_messages:?}");
    assert_eq!(
        on_controller(&lab, "systemctl is-active haproxy").trim(),
        "active",
        "haproxy running after the interrupt: {tls_messages:?}\n{stderr}"
    );
    assert_eq!(https_status(&lab), "503");

    // The next run does what was left (certbot's window, the cache) with no new order; the run
    // after it finds nothing to do.
    let run = t.run(&["--output", "json", "up", "--only", "tls", "--only", "dns"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(orders(&lab), orders_before + 1, "no new ACME order");
    assert!(t.path(&format!(".jeeves/lab/tls/{DOMAIN}.tar.gz")).exists());
    let run = t
        .run(&["--output", "json", "up", "--only", "tls", "--only", "dns"])
        .expect(0);
    assert_eq!(run.stage_result("tls"), "unchanged", "{}", run.stdout);
    assert_eq!(run.stage_result("dns"), "unchanged", "{}", run.stdout);
    assert_eq!(https_status(&lab), "503");
}
