//! pipelines/Jenkinsfile as Jenkins reads it: compiled by Groovy 2.4 (the Groovy Jenkins'
//! pipeline runs; Debian's `groovy`, installed by tests/lab/install), and checked for what the
//! README promises of it: every stage bounded by a timeout, the S3 state backend, an approval
//! before a destructive plan is applied, JUnit and logs of this build only.

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

#[test]
fn every_stage_has_a_timeout_and_destruction_waits_for_approval() {
    let text = jenkinsfile();
    let stages = stages(&text);
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
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
    for (name, block) in &stages {
        assert!(
            block.contains("options { timeout(time: "),
            "stage {name} has no timeout"
        );
    }
    let block = |n: &str| &stages.iter().find(|(name, _)| name == n).unwrap().1;
    assert!(block("jeeves").contains("cargo build --release --locked"));
    assert!(block("doctor").contains("doctor"));
    assert!(block("plan").contains("plan --detailed-exitcode"));
    assert!(block("approve").contains("when { expression { env.JEEVES_DESTRUCTIVE == 'true' } }"));
    assert!(block("approve").contains("input message:"));
    // --allow-replace is passed only once the approval stage ran.
    assert!(text.contains("env.JEEVES_DESTRUCTIVE == 'true' ? ' --allow-replace' : ''"));
    assert_eq!(text.matches("' --allow-replace'").count(), 1, "{text}");
}

#[test]
fn it_uses_the_s3_backend_and_reports_this_build_only() {
    let text = jenkinsfile();
    assert!(text.contains("JEEVES_STATE_BACKEND = 's3'"));
    assert!(text.contains("JEEVES_STATE_DIR = \".jeeves/build-${BUILD_NUMBER}\""));
    assert!(text.contains("testResults: \"${REPORTS}/*.xml\""));
    assert!(text.contains("artifacts: \"${JEEVES_STATE_DIR}/logs/*.log"));
    assert!(text.contains("dir(\"${JEEVES_STATE_DIR}\") { deleteDir() }"));
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
