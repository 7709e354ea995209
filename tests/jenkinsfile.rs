//! pipelines/Jenkinsfile as Jenkins reads it: compiled by Groovy 2.4 (the Groovy Jenkins'
//! pipeline runs; Debian's `groovy`, installed by tests/lab/install), then run by Groovy against
//! recording stand-ins for the pipeline DSL (tests/jenkins/dsl.groovy) for what the README
//! promises of it: every stage bounded by a timeout, the S3 state backend, an approval before a
//! destructive plan is applied, JUnit and logs of this build only; and its plan stage's own
//! scripts run on real `jeeves plan` output.

mod common;

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
    let pipeline = &text[..text.find("\n  post {").expect("a post section")];
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

/// The Jenkinsfile run by Groovy against the recording DSL; `mode`: `clean` or `destructive`
/// (whether the plan stage's grep finds replace/destroy changes).
fn dsl(mode: &str) -> Vec<Call> {
    let out = Command::new("groovy")
        .env("JAVA_HOME", java_home())
        .arg(common::repo().join("tests/jenkins/dsl.groovy"))
        .arg(common::repo().join("pipelines/Jenkinsfile"))
        .arg(mode)
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

fn args<'a>(calls: &'a [Call], stage: &str, step: &str) -> Vec<&'a str> {
    calls
        .iter()
        .filter(|c| c.stage == stage && c.step == step)
        .map(|c| c.arg.as_str())
        .collect()
}

/// The `up` commands the build runs, in order.
fn ups(calls: &[Call]) -> Vec<&str> {
    calls
        .iter()
        .filter(|c| c.step == "sh" && c.arg.contains(" up --only"))
        .map(|c| c.arg.as_str())
        .collect()
}

#[test]
fn every_stage_is_bounded_and_only_an_approved_destruction_gets_allow_replace() {
    let destructive = dsl("destructive");
    let stages = args(&destructive, "-", "stage");
    assert_eq!(
        stages,
        [
            "jeeves",
            "doctor",
            "plan",
            "approve",
            "terraform",
            "bootstrap",
            "tls",
            "deploy",
            "dns"
        ]
    );
    for stage in &stages {
        assert_eq!(
            args(&destructive, stage, "timeout").len(),
            1,
            "stage {stage} has no timeout of its own"
        );
    }
    assert_eq!(args(&destructive, "-", "timeout"), ["3"], "the whole build");
    // Replacements found: the approval first, then every step may replace.
    assert_eq!(args(&destructive, "approve", "input").len(), 1);
    let input = destructive.iter().position(|c| c.step == "input").unwrap();
    let first_up = destructive
        .iter()
        .position(|c| c.step == "sh" && c.arg.contains(" up --only"))
        .unwrap();
    assert!(input < first_up);
    let up = ups(&destructive);
    assert_eq!(up.len(), 5, "{up:?}");
    assert!(up.iter().all(|u| u.ends_with(" --allow-replace")), "{up:?}");

    // None found: no approval stage, no --allow-replace (up then refuses a plan that turned
    // destructive since).
    let clean = dsl("clean");
    assert_eq!(args(&clean, "approve", "skipped").len(), 1);
    assert!(clean.iter().all(|c| c.step != "input"));
    assert_eq!(
        ups(&clean),
        [
            "$JEEVES --output plain --junit \"$REPORTS/terraform.xml\" up --only terraform",
            "$JEEVES --output plain --junit \"$REPORTS/bootstrap.xml\" up --only bootstrap",
            "$JEEVES --output plain --junit \"$REPORTS/tls.xml\" up --only tls",
            "$JEEVES --output plain --junit \"$REPORTS/deploy.xml\" up --only tunnel --only deploy",
            "$JEEVES --output plain --junit \"$REPORTS/dns.xml\" up --only dns",
        ]
    );
}

#[test]
fn it_builds_jeeves_checks_the_tools_and_keeps_this_builds_state_and_reports_apart() {
    let calls = dsl("clean");
    let build = args(&calls, "jeeves", "sh").join(" ");
    assert!(build.contains("cargo build --release --locked"), "{build}");
    assert!(
        build.contains("curl -fsSL --retry 3 -o jeeves \"$JEEVES_URL\""),
        "{build}"
    );
    assert_eq!(
        args(&calls, "doctor", "sh"),
        ["$JEEVES --output plain doctor"]
    );
    let variables = args(&calls, "-", "variable");
    for v in [
        "JEEVES_STATE_BACKEND=s3",
        "JEEVES_STATE_DIR=.jeeves/build-7",
        "REPORTS=reports/build-7",
        "CI=true",
    ] {
        assert!(variables.contains(&v), "{v} not set: {variables:?}");
    }
    assert_eq!(args(&calls, "-", "junit"), ["reports/build-7/*.xml"]);
    assert_eq!(
        args(&calls, "-", "archiveArtifacts"),
        [".jeeves/build-7/logs/*.log, reports/build-7/plan.jsonl"]
    );
    assert_eq!(
        args(&calls, "-", "dir"),
        [".jeeves/build-7", "reports/build-7"]
    );
    assert_eq!(args(&calls, "-", "deleteDir").len(), 2);
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
    assert_eq!(scripts.len(), 3, "{scripts:?}");
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
