//! The terraform stage with the real terraform binary on the local configuration, plus what
//! every run shares: state, lock, JSON events, JUnit, log file and redaction.

use crate::common;

use std::time::{Duration, Instant};

use common::Test;

fn event_names(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn applies_then_is_a_no_op_and_status_shows_the_inventory() {
    let t = Test::new();
    let first = t
        .run(&["--output", "json", "up", "--only", "terraform"])
        .expect(0);
    let events = first.events();
    assert_eq!(first.stage_result("terraform"), "changed");
    let planned = events
        .iter()
        .find(|e| e["event"] == "stage_planned")
        .unwrap();
    assert_eq!(planned["changes"].as_array().unwrap().len(), 3, "{planned}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "host_progress" && e["host"] == "terraform_data.controller")
    );
    for e in &events {
        assert!(e["ts"].is_string(), "{e}");
    }
    let names = event_names(&events);
    assert_eq!(names.first().unwrap(), "run_started");
    assert_eq!(names.last().unwrap(), "run_finished");
    for stage in ["bootstrap", "tls", "tunnel", "deploy", "dns"] {
        assert_eq!(first.stage_result(stage), "skipped");
    }

    let state = t.state();
    assert_eq!(state["inventory"]["controller"]["public_ip"], "10.77.0.10");
    assert_eq!(state["inventory"]["workers"].as_array().unwrap().len(), 2);
    let tfstate_before =
        std::fs::read_to_string(t.path("terraform/lab/terraform.tfstate")).unwrap();

    let second = t
        .run(&["--output", "json", "up", "--only", "terraform"])
        .expect(0);
    let events = second.events();
    assert_eq!(second.stage_result("terraform"), "unchanged");
    let planned = events
        .iter()
        .find(|e| e["event"] == "stage_planned")
        .unwrap();
    assert!(planned["changes"].as_array().unwrap().is_empty());
    assert!(
        !events.iter().any(|e| e["event"] == "host_progress"),
        "nothing was applied"
    );
    let tfstate_after = std::fs::read_to_string(t.path("terraform/lab/terraform.tfstate")).unwrap();
    assert_eq!(
        tfstate_before, tfstate_after,
        "the terraform state was not written again"
    );

    let status = t.run(&["status"]).expect(0);
    for needle in [
        "controller",
        "10.77.0.10",
        "worker-1",
        "10.77.0.12",
        "terraform  unchanged",
    ] {
        assert!(
            status.stdout.contains(needle),
            "{needle}:\n{}",
            status.stdout
        );
    }
    let json = t.run(&["--output", "json", "status"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["inventory"]["workers"][1]["hostname"], "worker-2");
    assert_eq!(doc["lock"], serde_json::Value::Null);
}

#[test]
fn a_changed_variable_is_planned_and_applied() {
    let t = Test::new();
    t.run(&["up", "--only", "terraform"]).expect(0);
    let text = std::fs::read_to_string(t.path("pipelines/lab.toml")).unwrap();
    t.write(
        "pipelines/lab.toml",
        &text.replace("10.77.0.12", "10.77.0.13"),
    );
    let plan = t
        .run(&["--output", "json", "plan", "--only", "terraform"])
        .expect(0);
    let planned = plan
        .events()
        .into_iter()
        .find(|e| e["event"] == "stage_planned")
        .unwrap();
    let changes = planned["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{planned}");
    assert_eq!(changes[0]["target"], "terraform_data.worker[1]");
    assert_eq!(
        t.state()["inventory"]["workers"][1]["public_ip"],
        "10.77.0.12",
        "plan changes nothing"
    );
    t.run(&["up", "--only", "terraform"]).expect(0);
    assert_eq!(
        t.state()["inventory"]["workers"][1]["public_ip"],
        "10.77.0.13"
    );
}

/// A plan that destroys (or replaces) resources is shown first and loudly, `plan
/// --detailed-exitcode` says changes are pending, and `up` without a terminal refuses it with
/// exit 2 naming the resources, until `--allow-replace`.
#[test]
fn a_destructive_plan_is_refused_unless_allowed() {
    let t = Test::new();
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.run(&["plan", "--detailed-exitcode", "--only", "terraform"])
        .expect(0);
    let text = std::fs::read_to_string(t.path("pipelines/lab.toml")).unwrap();
    let one_worker = text.replace(
        "  { hostname = \"worker-2\", public_ip = \"10.77.0.12\", private_ip = \"10.77.0.12\" },\n",
        "",
    );
    assert_ne!(one_worker, text);
    t.write("pipelines/lab.toml", &one_worker);
    let plan = t
        .run(&["plan", "--detailed-exitcode", "--only", "terraform"])
        .expect(2);
    assert!(
        plan.stdout.contains(
            "terraform would REPLACE or DESTROY 1 resource(s): destroy terraform_data.worker[1]"
        ),
        "{}",
        plan.stdout
    );
    let run = t.run(&["up", "--only", "terraform"]).expect(2);
    assert!(
        run.stderr
            .contains("would replace or destroy:\n  destroy terraform_data.worker[1]")
            && run.stderr.contains("--allow-replace"),
        "{}",
        run.stderr
    );
    assert_eq!(
        t.state()["inventory"]["workers"].as_array().unwrap().len(),
        2,
        "nothing was applied"
    );
    t.run(&["up", "--only", "terraform", "--allow-replace"])
        .expect(0);
    assert_eq!(
        t.state()["inventory"]["workers"].as_array().unwrap().len(),
        1
    );
    t.run(&["plan", "--detailed-exitcode", "--only", "terraform"])
        .expect(0);
}

#[test]
fn plain_output_has_no_terminal_codes_and_a_summary() {
    let t = Test::new();
    let run = t
        .run(&["--output", "auto", "up", "--only", "terraform"])
        .expect(0);
    assert!(!run.stdout.contains('\u{1b}'), "ANSI codes in plain output");
    assert!(run.stdout.contains("[terraform] changed"), "{}", run.stdout);
    assert!(
        run.stdout.contains("STAGE") && run.stdout.contains("RESULT"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failing_stage_is_recorded_and_the_rest_skipped() {
    let t = Test::new();
    t.with_key();
    // No terraform run yet: the deploy stage has no controller to reach.
    let run = t
        .run(&["--junit", "junit.xml", "up", "--from", "deploy"])
        .expect(1);
    assert!(
        run.stderr.contains("the inventory has no controller"),
        "{}",
        run.stderr
    );
    let state = t.state();
    assert_eq!(state["stages"]["deploy"]["result"], "failed");
    let junit = std::fs::read_to_string(t.path("junit.xml")).unwrap();
    // Only the selected stages (deploy, dns) are testcases: the ones before --from are not
    // reported as skipped in every step's file; dns, skipped after the failure, is.
    assert_eq!(junit.matches("<testcase").count(), 2, "{junit}");
    assert!(junit.contains("failures=\"1\""), "{junit}");
    assert!(
        junit.contains("<failure message=\"the inventory has no controller"),
        "{junit}"
    );
    assert!(junit.contains("skipped=\"1\""), "{junit}");
    assert!(junit.contains("name=\"dns\""), "{junit}");
    assert!(!junit.contains("name=\"terraform\""), "{junit}");
}

#[test]
fn a_failing_terraform_fails_the_stage_with_its_message() {
    let t = Test::new();
    let text = std::fs::read_to_string(t.path("pipelines/lab.toml")).unwrap();
    // A variable of the wrong shape: terraform itself rejects it.
    t.write(
        "pipelines/lab.toml",
        &text.replace(
            "controller = { hostname = \"controller\",",
            "controller = { name = \"controller\",",
        ),
    );
    let run = t.run(&["up", "--only", "terraform"]).expect(1);
    assert!(
        run.stderr.contains("stage `terraform` failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hostname"),
        "terraform's message is shown: {}",
        run.stderr
    );
    assert_eq!(t.state()["stages"]["terraform"]["result"], "failed");
}

#[test]
fn the_lock_refuses_a_second_run_then_waits_with_a_timeout() {
    let t = Test::new();
    // A terraform that takes a while: the real binary behind a wrapper that sleeps first.
    let real = which_terraform();
    let wrapper = t.path("slow-terraform");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\ntouch \"$SLOW_MARK\"\nsleep 3\nexec {real} \"$@\"\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mark = t.path("slow-started");
    let mut first = t.command(&["up", "--only", "terraform"]);
    first
        .env("JEEVES_TOOLS_TERRAFORM", &wrapper)
        .env("SLOW_MARK", &mark)
        .stdout(std::process::Stdio::null());
    let mut first = first.spawn().unwrap();
    let started = Instant::now();
    while !mark.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the first run never reached terraform"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let busy = t.run(&["up", "--only", "terraform"]).expect(3);
    assert!(
        busy.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        busy.stderr
    );
    let status = t.run(&["status"]).expect(0);
    assert!(
        status.stdout.contains("held by `jeeves up`"),
        "{}",
        status.stdout
    );
    let waited = t
        .run(&["--lock-timeout", "2m", "up", "--only", "terraform"])
        .expect(0);
    assert!(first.wait().unwrap().success());
    assert!(
        waited.stdout.contains("[terraform] unchanged"),
        "{}",
        waited.stdout
    );
}

#[test]
fn secrets_never_reach_output_logs_or_state() {
    let mut t = Test::new();
    let secret = "mongodb://rc:hunter2-s3cret@db.internal/rocketchat";
    let aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    t.env("MONGO_URI", secret)
        .env("AWS_SECRET_ACCESS_KEY", aws_secret);
    // Route both secrets into terraform's own output: its plan prints the tags of every host.
    let text = std::fs::read_to_string(t.path("pipelines/lab.toml")).unwrap();
    t.write(
        "pipelines/lab.toml",
        &text
            .replace("Owner = \"lab\"", &format!("Owner = \"{secret}\""))
            .replace(
                "ManagedBy = \"jeeves\"",
                &format!("ManagedBy = \"{aws_secret}\""),
            ),
    );
    let run = t.run(&["-v", "up", "--only", "terraform"]);
    let mut everything = format!("{}{}", run.stdout, run.stderr);
    for entry in std::fs::read_dir(t.path(".jeeves/lab/logs")).unwrap() {
        everything.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    everything.push_str(&std::fs::read_to_string(t.path(".jeeves/lab/state.json")).unwrap());
    assert!(
        everything.contains("[redacted]"),
        "the secret went through the output and was redacted:\n{everything}"
    );
    assert!(
        !everything.contains("hunter2"),
        "secret leaked:\n{everything}"
    );
    assert!(
        everything.contains("ManagedBy = \"[redacted]\""),
        "the AWS secret went through the output and was redacted:\n{everything}"
    );
    assert!(!everything.contains("wJalrXUtnFEMI"), "secret leaked");
}

#[test]
fn state_and_logs_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new();
    t.run(&["up", "--only", "terraform"]).expect(0);
    let mode = |rel: &str| std::fs::metadata(t.path(rel)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(".jeeves/lab"), 0o700);
    assert_eq!(mode(".jeeves/lab/state.json"), 0o600);
    assert_eq!(mode(".jeeves/lab/lock"), 0o600);
    assert_eq!(mode(".jeeves/lab/terraform.tfplan"), 0o600);
    assert_eq!(mode(".jeeves/lab/terraform.tfvars.json"), 0o600);
    for entry in std::fs::read_dir(t.path(".jeeves/lab/logs")).unwrap() {
        let m = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600);
    }
}

#[test]
fn a_corrupt_state_file_is_a_clear_error() {
    let t = Test::new();
    t.run(&["up", "--only", "terraform"]).expect(0);
    t.write(
        ".jeeves/lab/state.json",
        "{ \"version\": 1, \"inventory\": ",
    );
    let run = t.run(&["up", "--only", "terraform"]).expect(1);
    assert!(
        run.stderr.contains("corrupt") && run.stderr.contains("mv "),
        "{}",
        run.stderr
    );
    let run = t.run(&["status"]).expect(1);
    assert!(run.stderr.contains("corrupt"), "{}", run.stderr);
}

#[test]
fn separate_processes_share_state_stage_by_stage() {
    // Jenkins runs one stage per step: the inventory written by one process is read by the next.
    let mut t = Test::new();
    t.with_key();
    t.env("JEEVES_SSH_CONNECT_TIMEOUT", "1s");
    t.run(&["up", "--only", "terraform"]).expect(0);
    // No lab is up here: the stage fails reaching the controller the inventory names.
    let run = t
        .run(&["--output", "json", "up", "--only", "bootstrap"])
        .expect(1);
    assert_eq!(run.stage_result("bootstrap"), "failed");
    assert!(run.stderr.contains("10.77.0.10"), "{}", run.stderr);
    assert_eq!(
        t.state()["stages"]["terraform"]["result"],
        "changed",
        "earlier results are kept"
    );
    assert_eq!(
        t.state()["inventory"]["controller"]["hostname"],
        "controller"
    );
}

fn which_terraform() -> String {
    let (code, out) = common::tool("sh", &["-c", "command -v terraform"]);
    assert_eq!(code, 0, "terraform is not on PATH");
    out.trim().to_string()
}

#[test]
fn plan_on_a_stack_not_yet_created_says_every_later_stage_will_run() {
    let t = Test::new();
    t.with_key();
    let run = t.run(&["--output", "json", "plan"]).expect(0);
    let planned: Vec<(String, String)> = run
        .events()
        .iter()
        .filter(|e| e["event"] == "stage_planned")
        .map(|e| {
            (
                e["stage"].as_str().unwrap().to_string(),
                e["changes"].to_string(),
            )
        })
        .collect();
    assert_eq!(planned.len(), 6, "{planned:?}");
    assert!(planned[0].1.contains("create"), "{planned:?}");
    for (stage, changes) in &planned[1..] {
        assert!(
            changes.contains("no hosts in the inventory until terraform applies"),
            "{stage}: {changes}"
        );
    }
    assert!(
        !t.path(".jeeves/lab/state.json").exists()
            || t.state()["inventory"]["controller"].is_null(),
        "plan changes nothing"
    );
}

#[test]
fn deploy_inputs_missing_on_this_machine_are_config_errors() {
    let mut t = Test::new();
    t.with_key();
    t.env("JEEVES_TRAEFIK_CRDS", "no-such-crds.yaml")
        .env("JEEVES_HELM_MONGODB", "external");
    let run = t.run(&["up", "--only", "deploy"]).expect(2);
    assert!(
        run.stderr.contains("traefik.crds")
            && run
                .stderr
                .contains("no-such-crds.yaml is not a readable file")
            && run.stderr.contains("MONGO_URI"),
        "{}",
        run.stderr
    );
    assert!(
        !t.path(".jeeves/lab/deploy").exists(),
        "nothing rendered, nothing run"
    );
    // Other stages do not need them.
    t.run(&["up", "--only", "terraform"]).expect(0);
}

/// A fake terraform for the interrupt tests: the real one for everything but `apply` (Jeeves
/// runs `terraform -chdir=DIR apply …`), which
/// writes `started`, then runs for `seconds` (recording `int` if SIGINT reaches it and stopping
/// cleanly, unless `ignore_int`).
fn slow_apply(t: &Test, seconds: u32, ignore_int: bool) -> String {
    let script = t.path("slow-terraform");
    let on_int = if ignore_int {
        "trap 'echo ignored >> \"$MARK\"' INT".to_string()
    } else {
        "trap 'echo \"terraform: interrupt received, stopping\" >&2; echo int >> \"$MARK\"; exit 1' INT".to_string()
    };
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nMARK={mark}\nif [ \"$2\" = apply ]; then\n  {on_int}\n  echo started > {started}\n  i=0\n  while [ $i -lt {ticks} ]; do sleep 0.1; i=$((i + 1)); done\n  echo finished >> \"$MARK\"\n  exit 0\nfi\nexec {real} \"$@\"\n",
            mark = t.path("mark").display(),
            started = t.path("started").display(),
            ticks = seconds * 10,
            real = which_terraform(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

fn wait_for(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Ctrl-C during `terraform apply`: terraform gets one SIGINT of its own and stops cleanly (not
/// killed), no further stage starts, the stage is recorded as failed, the log is complete, the
/// lock is released, and Jeeves exits 130. The next run converges.
#[test]
fn an_interrupt_lets_terraform_stop_cleanly_and_exits_130() {
    let mut t = Test::new();
    let fake = slow_apply(&t, 30, false);
    t.env("JEEVES_TOOLS_TERRAFORM", &fake);
    let child = t
        .command(&[
            "--output",
            "plain",
            "up",
            "--only",
            "terraform",
            "--only",
            "dns",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&t.path("started"));
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(t.path("mark")).unwrap(),
        "int\n",
        "terraform got one SIGINT and stopped itself"
    );
    assert!(
        stderr.contains("interrupted by SIGINT (Ctrl-C)"),
        "{stderr}"
    );
    let state = t.state();
    assert_eq!(state["stages"]["terraform"]["result"], "failed");
    assert!(
        state["stages"]["terraform"]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{state}"
    );
    assert!(state["stages"]["dns"].is_null(), "no further stage ran");
    let log = std::fs::read_dir(t.path(".jeeves/lab/logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        log.contains("terraform: interrupt received, stopping")
            && log.contains("interrupted by SIGINT"),
        "the log's tail is there:\n{log}"
    );
    // The lock is free and the next run converges with the real terraform.
    t.env("JEEVES_TOOLS_TERRAFORM", &which_terraform());
    t.run(&["up", "--only", "terraform"]).expect(0);
}

/// A second signal exits at once, even while a tool ignores the first; SIGTERM exits 143.
#[test]
fn a_second_signal_exits_at_once() {
    let mut t = Test::new();
    let fake = slow_apply(&t, 6, true);
    t.env("JEEVES_TOOLS_TERRAFORM", &fake);
    let child = t
        .command(&["up", "--only", "terraform"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&t.path("started"));
    signal(&child, "-TERM");
    std::thread::sleep(std::time::Duration::from_millis(500));
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{out:?}");
    // At once: Jeeves is gone while the tool (6 s of work) has not finished.
    let mark = t.path("mark");
    assert!(
        !std::fs::read_to_string(&mark)
            .unwrap_or_default()
            .contains("finished"),
        "Jeeves waited for the tool after the second signal"
    );
    // The tool, in its own process group, was asked once and left to finish: not killed.
    wait_for(&mark);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_to_string(&mark).unwrap().contains("finished") {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap(),
        "ignored\nfinished\n"
    );
}

/// A terraform command that outlives `terraform.timeout` is asked to stop (SIGINT), and the
/// stage fails naming the setting: no wait is unbounded.
#[test]
fn a_tool_past_its_timeout_is_stopped_and_named() {
    let mut t = Test::new();
    let fake = slow_apply(&t, 60, false);
    t.env("JEEVES_TOOLS_TERRAFORM", &fake)
        .env("JEEVES_TERRAFORM_TIMEOUT", "8s");
    let run = t.run(&["up", "--only", "terraform"]).expect(1);
    assert!(
        run.stderr
            .contains("ran longer than 8s (terraform.timeout) and was stopped")
            && run
                .stderr
                .contains("terraform: interrupt received, stopping"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(t.path("mark")).unwrap(), "int\n");
}

/// A run SIGKILLed while terraform applies (a Jenkins kill after its abort timeout): terraform
/// is not killed with it (its output does not go to a pipe that breaks), finishes the apply it
/// started and records it; the next run waits for its state lock instead of failing on it or
/// creating the resource a second time, and converges.
#[test]
fn a_run_killed_mid_apply_leaves_no_lock_in_the_way_of_the_next() {
    use std::io::{BufRead, BufReader};
    let t = Test::new();
    // A resource that takes a few seconds to create (terraform's own local-exec).
    let created = t.path("created");
    t.write(
        "terraform/lab/slow.tf",
        &format!(
            "resource \"terraform_data\" \"slow\" {{\n  provisioner \"local-exec\" {{\n    command = \"sleep 5; echo once >> {}\"\n  }}\n}}\n",
            created.display()
        ),
    );
    let mut child = t
        .command(&["--output", "json", "up", "--only", "terraform"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let e: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if e["event"] == "host_progress"
            && e["host"] == "terraform_data.slow"
            && e["message"] == "create: started"
        {
            break;
        }
        assert_ne!(
            e["event"], "run_finished",
            "never saw the slow create start"
        );
    }
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().code(), None);
    let repair = t.run(&["up", "--only", "terraform"]);
    assert_eq!(repair.code, 0, "{}\n{}", repair.stdout, repair.stderr);
    assert_eq!(
        std::fs::read_to_string(&created).unwrap(),
        "once\n",
        "created once, by the killed run's terraform"
    );
    // Had the killed run's terraform not recorded it, the repair would have created it again.
    t.run(&["plan", "--detailed-exitcode", "--only", "terraform"])
        .expect(0);
}
