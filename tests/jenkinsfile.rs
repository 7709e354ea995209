//! pipelines/Jenkinsfile as Jenkins reads it: compiled by Groovy 2.4 (the Groovy Jenkins'
//! pipeline runs; Debian's `groovy`, installed by tests/lab/install), then run by Groovy against
//! recording stand-ins for the pipeline DSL (tests/jenkins/dsl.groovy) for what the README
//! promises of it: every stage bounded by a timeout that adds up, the S3 state named once for
//! every job (pipelines/jenkins.env), an approval by named submitters outside any agent of the
//! saved plan that is then applied, JUnit and logs of this build only; and its plan stage's own
//! scripts run on real `jeeves plan` output.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

fn jenkinsfile() -> String {
    std::fs::read_to_string(common::repo().join("pipelines/Jenkinsfile")).unwrap()
}

/// JAVA_HOME for groovyc: the one set, else the JDK of the `java` on PATH (Debian's
/// default-java link is missing when only a versioned JDK is installed).
fn java_home() -> PathBuf {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        return home.into();
    }
    let java = which::which("java").expect("java on PATH (groovy needs a JDK)");
    let java = std::fs::canonicalize(java).unwrap();
    java.parent()
        .and_then(|bin| bin.parent())
        .unwrap()
        .to_path_buf()
}

/// Compiles Groovy source; returns (exit code, compiler output).
fn groovyc(source: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Jenkinsfile.groovy");
    std::fs::write(&file, source).unwrap();
    let out = Command::new("groovyc")
        .env("JAVA_HOME", java_home())
        .arg("-d")
        .arg(dir.path().join("classes"))
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run groovyc (apt-get install groovy): {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_jenkinsfile_compiles_as_groovy_and_a_broken_one_does_not() {
    let (code, out) = groovyc(&jenkinsfile());
    assert_eq!(code, 0, "{out}");
    // The check can fail: the same file with its last brace gone is refused.
    let text = jenkinsfile();
    let broken = &text[..text.rfind('}').unwrap()];
    let (code, out) = groovyc(broken);
    assert_ne!(code, 0, "{out}");
}

/// The `stage('name') { … }` blocks of the pipeline, by name.
fn stages(text: &str) -> Vec<(String, String)> {
    // Up to the helper functions after the pipeline.
    let pipeline = &text[..text.find("\ndef ").expect("the helper functions")];
    pipeline
        .split("\n    stage('")
        .skip(1)
        .map(|block| {
            let name = block[..block.find('\'').unwrap()].to_string();
            (name, block.to_string())
        })
        .collect()
}

/// One DSL call of the Jenkinsfile as tests/jenkins/dsl.groovy records it.
#[derive(Debug)]
struct Call {
    stage: String,
    step: String,
    arg: String,
}

/// A Jenkinsfile run by Groovy against the recording DSL; `mode`: `clean` or `destructive`
/// (whether the plan stage's grep finds replace/destroy changes); `action`: the schedule job's
/// ACTION parameter.
fn dsl_of(file: &str, mode: &str, action: &str) -> Vec<Call> {
    let out = Command::new("groovy")
        .env("JAVA_HOME", java_home())
        .arg(common::repo().join("tests/jenkins/dsl.groovy"))
        .arg(common::repo().join(file))
        .arg(mode)
        .arg(action)
        .output()
        .unwrap_or_else(|e| panic!("cannot run groovy (apt-get install groovy): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let mut next = || f.next().unwrap_or_default().to_string();
            Call {
                stage: next(),
                step: next(),
                arg: next(),
            }
        })
        .collect()
}

fn dsl(mode: &str) -> Vec<Call> {
    dsl_of("pipelines/Jenkinsfile", mode, "by-time")
}

fn args<'a>(calls: &'a [Call], stage: &str, step: &str) -> Vec<&'a str> {
    calls
        .iter()
        .filter(|c| c.stage == stage && c.step == step)
        .map(|c| c.arg.as_str())
        .collect()
}

fn position(calls: &[Call], step: &str, needle: &str) -> usize {
    calls
        .iter()
        .position(|c| c.step == step && c.arg.contains(needle))
        .unwrap_or_else(|| panic!("no {step} with {needle}"))
}

/// The value the file gives `name` (the DSL prints `name=value`).
fn variable<'a>(calls: &'a [Call], name: &str) -> Option<&'a str> {
    args(calls, "-", "variable")
        .into_iter()
        .find_map(|v| v.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn every_stage_is_bounded_and_what_was_approved_is_the_saved_plan_applied() {
    let destructive = dsl("destructive");
    let stages = args(&destructive, "-", "stage");
    assert_eq!(stages, ["plan", "approve", "apply"]);
    let mut total = 0;
    for stage in &stages {
        let timeouts = args(&destructive, stage, "timeout");
        assert_eq!(timeouts.len(), 1, "stage {stage} has no timeout of its own");
        total += timeouts[0].parse::<u32>().unwrap();
    }
    assert_eq!(args(&destructive, "-", "timeout"), ["4"], "the whole build");
    assert!(
        total <= 4 * 60,
        "the stages' timeouts ({total} min) exceed the build's"
    );
    // No executor waits for the approval: no agent for the build, one for each working stage.
    assert_eq!(args(&destructive, "-", "agent"), ["none"]);
    assert_eq!(args(&destructive, "plan", "label"), ["jeeves"]);
    assert_eq!(args(&destructive, "apply", "label"), ["jeeves"]);
    assert!(args(&destructive, "approve", "agent").is_empty());

    // The plan is saved, shown, digested and carried to the apply stage.
    let plan = position(
        &destructive,
        "sh",
        " plan --detailed-exitcode --out \"$PLAN\"",
    );
    assert!(position(&destructive, "sh", "$JEEVES show \"$PLAN\"") > plan);
    assert_eq!(
        variable(&destructive, "PLAN"),
        Some("reports/build-7/approved.plan")
    );
    assert_eq!(
        args(&destructive, "plan", "stash"),
        ["{name=approved, includes=jeeves, reports/build-7/approved.plan}"]
    );
    // Only the named approvers may approve; a build parameter could name anyone.
    let input = args(&destructive, "approve", "input");
    assert_eq!(input.len(), 1);
    assert!(
        input[0].ends_with(" submitter=platform-leads"),
        "{}",
        input[0]
    );
    assert!(input[0].contains("sha256 f00d"), "the digest: {}", input[0]);
    assert_eq!(
        variable(&destructive, "JEEVES_APPROVERS"),
        Some("platform-leads")
    );
    let params = variable(&destructive, "params").unwrap();
    assert!(!params.contains("APPROVERS"), "{params}");
    // Then exactly that file is applied: unstashed, its digest checked, `up --plan`, and no
    // blanket --allow-replace.
    let approve = position(&destructive, "input", "");
    let unstash = position(&destructive, "unstash", "approved");
    let check = position(&destructive, "sh", "sha256sum -c -");
    let up = position(&destructive, "sh", " up --plan \"$PLAN\"");
    assert!(plan < approve && approve < unstash && unstash < check && check < up);
    assert!(
        destructive
            .iter()
            .all(|c| !c.arg.contains("--allow-replace")),
        "no step may replace without the approval of a saved plan"
    );

    // Nothing destroyed: no approval, the saved plan applied all the same.
    let clean = dsl("clean");
    assert_eq!(args(&clean, "approve", "skipped").len(), 1);
    assert!(clean.iter().all(|c| c.step != "input"));
    assert_eq!(
        args(&clean, "apply", "sh").last().unwrap(),
        &"$JEEVES --output plain --junit \"$REPORTS/up.xml\" up --plan \"$PLAN\""
    );
}

/// The `KEY=value` lines of pipelines/jenkins.env.
fn jenkins_env() -> Vec<(String, String)> {
    std::fs::read_to_string(common::repo().join("pipelines/jenkins.env"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn the_scheduled_job_acts_on_the_deployed_stack_through_the_same_state() {
    let deploy = dsl("clean");
    let stop = dsl_of("pipelines/Jenkinsfile.schedule", "clean", "stop");
    let shared = "-p pipelines/rocketchat.toml --env-file pipelines/jenkins.env";
    for calls in [&deploy, &stop] {
        let jeeves = variable(calls, "JEEVES").unwrap();
        assert!(jeeves.contains(shared), "{jeeves}");
        // The stack is named in the shared file only.
        for own in [
            "DOMAIN",
            "JEEVES_STATE_BACKEND",
            "JEEVES_STATE_BUCKET",
            "JEEVES_STATE_KEY_PREFIX",
        ] {
            assert_eq!(variable(calls, own), None, "{own} set in a Jenkinsfile");
        }
        assert_eq!(variable(calls, "JEEVES_STATE_DIR"), Some(".jeeves/build-7"));
    }
    let env = jenkins_env();
    for (k, v) in [
        ("JEEVES_STATE_BACKEND", "s3"),
        ("JEEVES_STATE_BUCKET", "my-jeeves-state"),
        ("JEEVES_STATE_KEY_PREFIX", "jeeves/rocketchat"),
        ("DOMAIN", "chat.example.com"),
    ] {
        assert!(
            env.contains(&(k.to_string(), v.to_string())),
            "{k}={v} not in pipelines/jenkins.env: {env:?}"
        );
    }
    assert_eq!(
        args(&stop, "power", "sh"),
        ["mkdir -p reports && $JEEVES --junit reports/stop.xml stop --yes"]
    );
    let start = dsl_of("pipelines/Jenkinsfile.schedule", "clean", "start");
    assert_eq!(
        args(&start, "power", "sh"),
        ["mkdir -p reports && $JEEVES --junit reports/start.xml start"]
    );
}

#[test]
fn it_builds_jeeves_checks_the_tools_and_keeps_this_builds_state_and_reports_apart() {
    let calls = dsl("clean");
    let build = args(&calls, "plan", "sh").join(" ");
    assert!(build.contains("cargo build --release --locked"), "{build}");
    assert!(
        build.contains("curl -fsSL --retry 3 -o jeeves \"$JEEVES_URL\""),
        "{build}"
    );
    assert!(build.contains("$JEEVES --output plain doctor"), "{build}");
    for (v, value) in [
        ("JEEVES_STATE_DIR", ".jeeves/build-7"),
        ("REPORTS", "reports/build-7"),
        ("CI", "true"),
    ] {
        assert_eq!(variable(&calls, v), Some(value), "{v}");
    }
    assert_eq!(args(&calls, "apply", "junit"), ["reports/build-7/*.xml"]);
    assert_eq!(
        args(&calls, "plan", "archiveArtifacts"),
        [
            ".jeeves/build-7/logs/*.log, reports/build-7/plan.jsonl, reports/build-7/plan.txt, reports/build-7/approved.plan"
        ]
    );
    assert_eq!(
        args(&calls, "apply", "archiveArtifacts"),
        [".jeeves/build-7/logs/*.log"]
    );
    for stage in ["plan", "apply"] {
        assert_eq!(
            args(&calls, stage, "dir"),
            [".jeeves/build-7", "reports/build-7"]
        );
        assert_eq!(args(&calls, stage, "deleteDir").len(), 2);
    }
}

/// The shell scripts of the `plan` stage (`script: '…'` with Groovy's `\'` escapes undone), in
/// order: the plan, the `run_finished` check, the destructive check.
fn plan_scripts(text: &str) -> Vec<String> {
    let (_, block) = stages(text)
        .into_iter()
        .find(|(name, _)| name == "plan")
        .unwrap();
    block
        .split("script: '")
        .skip(1)
        .map(|rest| {
            let mut out = String::new();
            let mut chars = rest.chars();
            while let Some(ch) = chars.next() {
                match ch {
                    '\\' => out.push(chars.next().unwrap()),
                    '\'' => break,
                    ch => out.push(ch),
                }
            }
            out
        })
        .collect()
}

/// Runs one of those scripts as the Jenkins `sh` step would, `$JEEVES` being this build's
/// binary on the lab pipeline; returns its exit code.
fn sh(t: &common::Test, script: &str) -> i32 {
    Command::new("sh")
        .args(["-c", script])
        .current_dir(t.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        )
        .env(
            "JEEVES",
            format!("{} -p pipelines/lab.toml", env!("CARGO_BIN_EXE_jeeves")),
        )
        .env("REPORTS", "reports")
        .env("PLAN", "reports/approved.plan")
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

/// The plan stage's decision, from its own scripts run on real `jeeves plan` output:
/// (plan exit code, a run finished, destructive changes).
/// `only_terraform`: the plan limited to the terraform stage (without the lab, the later
/// stages cannot reach the hosts terraform/lab describes).
fn decide(t: &common::Test, only_terraform: bool) -> (i32, bool, bool) {
    let scripts = plan_scripts(&jenkinsfile());
    assert_eq!(scripts.len(), 4, "{scripts:?}");
    assert!(
        scripts[0].contains(" plan --detailed-exitcode "),
        "{}",
        scripts[0]
    );
    std::fs::create_dir_all(t.path("reports")).unwrap();
    let plan = if only_terraform {
        scripts[0].replace(" plan ", " plan --only terraform ")
    } else {
        scripts[0].clone()
    };
    let rc = sh(t, &plan);
    (rc, sh(t, &scripts[1]) == 0, sh(t, &scripts[2]) == 0)
}

#[test]
fn the_plan_stage_tells_destruction_from_changes_and_from_errors() {
    let t = common::Test::new();
    t.with_key();
    // A stack not created yet: changes (creates), nothing destroyed: no approval.
    assert_eq!(decide(&t, false), (2, true, false));
    t.command(&["up", "--only", "terraform"]).status().unwrap();
    assert_eq!(decide(&t, true), (0, true, false));
    // Converged; with one worker fewer in the variables, terraform destroys one: approval needed.
    let text = std::fs::read_to_string(t.path("pipelines/lab.toml")).unwrap();
    let one_worker = text.replace(
        "  { hostname = \"worker-2\", public_ip = \"10.77.0.12\", private_ip = \"10.77.0.12\" },\n",
        "",
    );
    assert_ne!(one_worker, text);
    t.write("pipelines/lab.toml", &one_worker);
    assert_eq!(decide(&t, true), (2, true, true));
    // A configuration error exits 2 too, but no run finished: the stage fails.
    t.write(
        "pipelines/lab.toml",
        &one_worker.replace("[tls]", "[tls]\nbogus = 1"),
    );
    assert_eq!(decide(&t, false), (2, false, false));
}
