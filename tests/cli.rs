//! The command line: help, usage and configuration errors (exit 2, nothing touched).

mod common;

use common::Test;

#[test]
fn help_lists_every_command() {
    let t = Test::new();
    let run = t.run(&["--help"]).expect(0);
    for cmd in [
        "up", "plan", "status", "down", "render", "tunnel", "doctor", "unlock",
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
}

#[test]
fn unknown_stage_names_and_empty_selections_are_usage_errors() {
    let t = Test::new();
    let run = t.run(&["up", "--only", "nginx"]).expect(2);
    assert!(run.stderr.contains("nginx"), "{}", run.stderr);
    t.run(&["up", "--only", "dns", "--skip", "dns"]).expect(2);
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
