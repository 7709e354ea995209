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
