//! The command line: help, usage and configuration errors (exit 2, nothing touched).

use crate::common;

use common::Test;

#[test]
fn help_lists_every_command() {
    let t = Test::new();
    let run = t.run(&["--help"]).expect(0);
    for cmd in [
        "up",
        "plan",
        "status",
        "down",
        "render",
        "tunnel",
        "doctor",
        "init",
        "version",
        "completion",
        "kubeconfig",
        "ssh",
        "logs",
        "unlock",
        "check",
    ] {
        assert!(
            run.stdout.contains(&format!("  {cmd} ")),
            "{cmd} missing:\n{}",
            run.stdout
        );
    }
    let up = t.run(&["up", "--help"]).expect(0);
    for flag in ["--only", "--from", "--skip", "--force"] {
        assert!(up.stdout.contains(flag), "{flag}:\n{}", up.stdout);
    }
}

#[test]
fn a_bad_domain_exits_2_naming_the_field_and_touches_nothing() {
    let mut t = Test::new();
    t.env("DOMAIN", "chat..example.com");
    let run = t.run(&["up"]).expect(2);
    assert!(run.stderr.contains("tls.domain"), "{}", run.stderr);
    assert!(
        run.stderr.contains("DOMAIN"),
        "the source is named: {}",
        run.stderr
    );
    assert!(
        !t.path(".jeeves/lab").exists(),
        "no state directory for a rejected run"
    );
    assert!(
        !t.path("terraform/lab/terraform.tfstate").exists(),
        "terraform never ran"
    );
}

#[test]
fn a_bad_pipeline_file_value_names_key_and_file() {
    let t = Test::new();
    let text = std::fs::read_to_string(t.path("pipelines/lab.toml")).unwrap();
    t.write("pipelines/lab.toml", &text.replace("ttl = 60", "ttl = 0"));
    let run = t.run(&["plan"]).expect(2);
    assert!(
        run.stderr.contains("pipelines/lab.toml") && run.stderr.contains("dns.ttl"),
        "{}",
        run.stderr
    );
    // `up`'s wait for the site needs a bound.
    t.write(
        "pipelines/lab.toml",
        &format!("{text}\n[haproxy]\nready_timeout = \"0s\"\n"),
    );
    let run = t.run(&["up"]).expect(2);
    assert!(
        run.stderr.contains("pipelines/lab.toml") && run.stderr.contains("haproxy.ready_timeout"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_thresholds_are_validated_before_anything_is_looked_at() {
    let mut t = Test::new();
    t.with_key();
    t.env("JEEVES_CHECK_MAX_DISK_USE", "0");
    let run = t.run(&["check"]).expect(2);
    assert!(
        run.stderr.contains("check.max_disk_use")
            && run.stderr.contains("JEEVES_CHECK_MAX_DISK_USE"),
        "{}",
        run.stderr
    );
    assert!(!t.path(".jeeves/lab").exists(), "no state directory");
}

#[test]
fn unknown_stage_names_and_empty_selections_are_usage_errors() {
    let t = Test::new();
    let run = t.run(&["up", "--only", "nginx"]).expect(2);
    assert!(run.stderr.contains("nginx"), "{}", run.stderr);
    let run = t.run(&["up", "--only", "dns", "--skip", "dns"]).expect(2);
    assert!(
        run.stderr
            .contains("--only, --from and --skip leave no stage to run"),
        "{}",
        run.stderr
    );
    let run = t
        .run(&["up", "--only", "terraform", "--force", "dns"])
        .expect(2);
    assert!(run.stderr.contains("--force dns"), "{}", run.stderr);
}

#[test]
fn stages_that_log_in_need_a_private_key_before_anything_runs() {
    let t = Test::new();
    let run = t.run(&["up", "--only", "bootstrap"]).expect(2);
    assert!(run.stderr.contains("ssh.key_path"), "{}", run.stderr);
    t.with_key();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        t.path(".jeeves/lab-hosts/id_ed25519"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let run = t.run(&["up", "--only", "bootstrap"]).expect(2);
    assert!(run.stderr.contains("0644"), "{}", run.stderr);
}

#[test]
fn down_refuses_without_yes_when_stdin_is_not_a_terminal() {
    let t = Test::new();
    let run = t.run(&["down"]).expect(2);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
}

#[test]
fn the_tunnel_command_needs_a_private_key_first() {
    let t = Test::new();
    let run = t.run(&["tunnel"]).expect(2);
    assert!(run.stderr.contains("ssh.key_path"), "{}", run.stderr);
}

#[test]
fn state_backend_errors_name_the_key_and_unlock_needs_the_s3_backend() {
    let mut t = Test::new();
    let run = t.run(&["unlock", "0f0e"]).expect(2);
    assert!(
        run.stderr.contains("the state backend is local"),
        "{}",
        run.stderr
    );
    t.env("JEEVES_STATE_BACKEND", "s3")
        .env("JEEVES_STATE_BUCKET", "Team_State");
    let run = t.run(&["status"]).expect(2);
    assert!(
        run.stderr.contains(
            "environment variable JEEVES_STATE_BUCKET: `state.bucket`: `Team_State` is not an S3 bucket name"
        ),
        "{}",
        run.stderr
    );
}

/// The doctor's line for one check (`✓ aws …`).
fn doctor_line(stdout: &str, check: &str) -> String {
    stdout
        .lines()
        .find(|l| l.get(4..).is_some_and(|rest| rest.starts_with(check)))
        .unwrap_or_else(|| panic!("no `{check}` line:\n{stdout}"))
        .to_string()
}

/// `.env.example` copied as it is has `AWS_PROFILE=`: the SDK read it as a profile named "" and
/// every AWS call failed, though the default profile had credentials.
#[test]
fn an_empty_aws_variable_counts_as_unset() {
    let moto = common::Moto::start();
    let mut t = Test::new();
    t.write(
        "home/.aws/credentials",
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    );
    t.write(".env", "AWS_PROFILE=\nAWS_REGION=us-east-1\n");
    let home = t.path("home").display().to_string();
    t.env("HOME", &home)
        .env("AWS_ENDPOINT_URL", &moto.endpoint());
    let run = t.run(&["doctor"]);
    let aws = doctor_line(&run.stdout, "aws");
    assert!(
        aws.starts_with('✓') && aws.contains("123456789012"),
        "{aws}"
    );
    let env = doctor_line(&run.stdout, "env file");
    assert!(env.contains("empty AWS_PROFILE treated as unset"), "{env}");
}

/// Another tool's `JEEVES_*` variable used to fail every command; a misspelt key of a known
/// section is still refused (it was meant as an override).
#[test]
fn an_unrelated_jeeves_variable_only_warns() {
    let mut t = Test::new();
    t.env("JEEVES_BUILD_ID", "1234");
    let run = t.run(&["status"]).expect(0);
    assert!(
        run.stderr
            .contains("warning: environment variable JEEVES_BUILD_ID is not a Jeeves setting"),
        "{}",
        run.stderr
    );
    t.env("JEEVES_SSH_PROT", "2222");
    let run = t.run(&["status"]).expect(2);
    assert!(
        run.stderr.contains("ssh.prot") && run.stderr.contains("JEEVES_SSH_PROT"),
        "{}",
        run.stderr
    );
}

/// A missing default `.env` is fine but said (doctor, `-v`); a file named with `--env-file`
/// must exist, as with docker compose.
#[test]
fn whether_an_env_file_was_loaded_is_said() {
    let t = Test::new();
    let run = t.run(&["-v", "status"]).expect(0);
    assert!(run.stderr.contains("info: no .env found"), "{}", run.stderr);
    let run = t.run(&["doctor"]);
    let env = doctor_line(&run.stdout, "env file");
    assert!(env.starts_with('✓') && env.contains("no .env"), "{env}");
    t.write(".env", "DOMAIN=chat.jeeves.test\n");
    let run = t.run(&["doctor"]);
    let env = doctor_line(&run.stdout, "env file");
    assert!(env.contains("loaded .env (1 variable"), "{env}");
    let run = t.run(&["--env-file", "prod.env", "status"]).expect(2);
    assert!(run.stderr.contains("prod.env"), "{}", run.stderr);

    // A quote left open: the error names the file, the line and the variable, and shows no
    // value (dotenvy's own message quotes the rest of the file, the secrets after it included).
    t.write(
        ".env",
        "DOMAIN=chat.jeeves.test\nAWS_SECRET_ACCESS_KEY=\"wJalrXUtnFEMI/K7MDENG\nMONGO_URI=mongodb://rc:hunter2@db/rc\n",
    );
    let run = t.run(&["status"]).expect(2);
    assert!(
        run.stderr.contains(".env")
            && run.stderr.contains("at line 2")
            && run.stderr.contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("wJalr") && !run.stderr.contains("hunter2"),
        "{}",
        run.stderr
    );
}

/// Without credentials, doctor says so in one line, not the SDK's debug structure.
#[test]
fn doctor_without_aws_credentials_says_so_in_one_line() {
    let mut t = Test::new();
    let home = t.path("empty-home").display().to_string();
    std::fs::create_dir_all(&home).unwrap();
    // Instance metadata off: the chain's end then fails at once on any machine.
    t.env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let run = t.run(&["doctor"]).expect(1);
    let aws = doctor_line(&run.stdout, "aws");
    assert!(
        aws.starts_with('✗')
            && aws.contains("no AWS credentials")
            && aws.contains("profile `default`")
            && aws.contains("aws sso login"),
        "{aws}"
    );
    assert!(!aws.contains("DispatchFailure") && aws.len() < 500, "{aws}");
}

/// `status` on a fresh checkout (no DOMAIN, no CERT_EMAIL) works; `up` still needs both.
#[test]
fn status_needs_no_domain_or_email() {
    let t = Test::new();
    let text = std::fs::read_to_string(t.path("pipelines/lab.toml")).unwrap();
    t.write(
        "pipelines/lab.toml",
        &text
            .replace("domain = \"chat.jeeves.test\"", "domain = \"\"")
            .replace("email = \"ops@jeeves.test\"", "email = \"\""),
    );
    let run = t.run(&["status"]).expect(0);
    assert!(run.stdout.contains("never run"), "{}", run.stdout);
    let run = t.run(&["up"]).expect(2);
    assert!(
        run.stderr.contains("tls.domain") && run.stderr.contains("tls.email"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_restart_window_and_the_replaced_max_restarts_are_checked_before_anything_is_looked_at() {
    let mut t = Test::new();
    t.with_key();
    t.env("JEEVES_CHECK_RESTART_WINDOW", "1m");
    let run = t.run(&["check"]).expect(2);
    assert!(
        run.stderr.contains("check.restart_window")
            && run.stderr.contains("JEEVES_CHECK_RESTART_WINDOW")
            && run.stderr.contains("shorter than 5m"),
        "{}",
        run.stderr
    );
    // A pipeline file from before: its `max_restarts` is named, with what replaced it.
    let t = Test::new();
    t.with_key();
    let text = std::fs::read_to_string(t.path("pipelines/lab.toml")).unwrap();
    t.write(
        "pipelines/lab.toml",
        &format!("{text}\n[check]\nmax_restarts = 5\n"),
    );
    let run = t.run(&["check"]).expect(2);
    assert!(
        run.stderr.contains("pipelines/lab.toml")
            && run.stderr.contains("check.max_restarts")
            && run.stderr.contains("replaced by check.restart_window"),
        "{}",
        run.stderr
    );
    assert!(!t.path(".jeeves/lab").exists(), "no state directory");
}
