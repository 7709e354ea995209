//! `jeeves init` in an empty directory (then doctor against moto and render there), and the
//! everyday commands: version, completion, kubeconfig, ssh, logs.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Run, Test};

/// The real binary in `dir`, with exactly this environment (plus PATH).
fn jeeves(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jeeves"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run jeeves");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn init_writes_a_directory_that_passes_doctor_and_render() {
    let moto = common::Moto::start();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let key = home.join(".ssh/id_ed25519");
    let (code, out) = common::tool(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let home_s = home.display().to_string();
    let base = [("HOME", home_s.as_str())];

    // Nothing but flags: no terminal, so a missing value without a default is a usage error.
    let run = jeeves(
        work.path(),
        &["init", "site", "--region", "ap-south-1", "--yes"],
        &base,
    );
    let run = run.expect(2);
    assert!(run.stderr.contains("--domain"), "{}", run.stderr);
    assert!(!work.path().join("site").exists(), "nothing written");

    let args = [
        "init",
        "site",
        "--domain",
        "chat.example.com",
        "--region",
        "ap-south-1",
        "--admin-cidr",
        "198.51.100.7/32",
        "--yes",
    ];
    jeeves(work.path(), &args, &base).expect(0);
    let site = work.path().join("site");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(site.join(".env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, ".env is private");
    let pipeline = std::fs::read_to_string(site.join("pipelines/rocketchat.toml")).unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    assert!(
        pipeline.contains(public.trim()),
        "the public key is the node key"
    );
    assert_eq!(
        pipeline.matches("ap-south-1").count(),
        1,
        "the region is written once:\n{pipeline}"
    );

    // Doctor there, AWS against moto: the region it reports is the pipeline's, not AWS_REGION's.
    let endpoint = moto.endpoint();
    let aws = [
        ("HOME", home_s.as_str()),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    let run = jeeves(&site, &["doctor"], &aws).expect(0);
    assert!(
        run.stdout.contains("region ap-south-1") && run.stdout.contains("loaded .env"),
        "{}",
        run.stdout
    );
    let run = jeeves(&site, &["render"], &base).expect(0);
    // Backups to the bucket terraform will make: nothing to name before it has.
    assert!(
        run.stderr.contains("backup objects not rendered")
            && run.stderr.contains("backup.bucket")
            && run.stderr.contains("no output `backup_bucket`")
            && !run.stdout.contains("mongodb-backup.yaml"),
        "{}",
        run.stderr
    );
    for file in [
        "haproxy.cfg",
        "rocketchat-values.yaml",
        "traefik/40-deployment.yaml",
    ] {
        assert!(run.stdout.contains(file), "{file}:\n{}", run.stdout);
    }
    let haproxy =
        std::fs::read_to_string(site.join(".jeeves/rocketchat/rendered/haproxy.cfg")).unwrap();
    assert!(haproxy.contains("chat.example.com"), "{haproxy}");

    // Again: nothing is overwritten.
    std::fs::write(site.join(".env"), "DOMAIN=mine.example.com\n").unwrap();
    let run = jeeves(work.path(), &args, &base).expect(2);
    assert!(run.stderr.contains("already exist"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(site.join(".env")).unwrap(),
        "DOMAIN=mine.example.com\n"
    );
}

/// On a terminal (`script` gives it one), init asks: a bad domain again, empty answers take the
/// defaults.
#[test]
fn init_asks_on_a_terminal() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("key");
    let (code, out) = common::tool(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let answers = format!(
        "chat..example.org\nchat.example.org\n\n\n{}\n192.0.2.1/32\n\n",
        key.display()
    );
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{} init site", env!("CARGO_BIN_EXE_jeeves")),
            "/dev/null",
        ])
        .current_dir(work.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs a command on a pseudo-terminal");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("--domain: "),
        "the bad domain is named: {text}"
    );
    assert!(text.contains("AWS region [eu-west-1]"), "{text}");
    let env = std::fs::read_to_string(work.path().join("site/.env")).unwrap();
    for line in [
        "DOMAIN=chat.example.org",
        "CERT_EMAIL=admin@chat.example.org",
    ] {
        assert!(env.lines().any(|l| l == line), "{line}:\n{env}");
    }
    let pipeline =
        std::fs::read_to_string(work.path().join("site/pipelines/rocketchat.toml")).unwrap();
    for line in [
        "region = \"eu-west-1\"",
        "admin_cidr = \"192.0.2.1/32\"",
        "bucket = \"chat-example-org-jeeves-state\"",
    ] {
        assert!(pipeline.lines().any(|l| l.starts_with(line)), "{line}");
    }
}

#[test]
fn version_in_text_and_json() {
    let t = Test::new();
    let run = t.run(&["version"]).expect(0);
    assert!(
        run.stdout
            .starts_with(&format!("jeeves {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        run.stdout
    );
    let run = t.run(&["--output", "json", "version"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc.get("commit").is_some(), "{doc}");
}

/// Each script is checked by its own shell's parser.
#[test]
fn completions_for_bash_zsh_and_fish() {
    let t = Test::new();
    for (shell, check) in [
        ("bash", &["bash", "-n"][..]),
        ("zsh", &["zsh", "-n"][..]),
        ("fish", &["fish", "--no-execute"][..]),
    ] {
        let run = t.run(&["completion", shell]).expect(0);
        for word in ["kubeconfig", "only", "init"] {
            assert!(run.stdout.contains(word), "{shell}: {word}");
        }
        let file = t.path(&format!("jeeves.{shell}"));
        std::fs::write(&file, &run.stdout).unwrap();
        let (code, out) = common::tool(check[0], &[check[1], file.to_str().unwrap()]);
        assert_eq!(code, 0, "{shell} rejects its completion script: {out}");
    }
}

/// `microk8s config` as the tunnel stage saves it (server rewritten to the tunnel's end): the
/// shape of microk8s-resources/client-x509.config.template (tests/lab/standins/README.md).
const SAVED: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:16443
  name: microk8s-cluster
contexts:
- context:
    cluster: microk8s-cluster
    user: admin
  name: microk8s
current-context: microk8s
kind: Config
preferences: {}
users:
- name: admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";

const EXISTING: &str = "apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://prod.example.com:6443
users:
- name: prod-admin
  user:
    token: not-a-real-token
contexts:
- name: prod
  context:
    cluster: prod
    user: prod-admin
current-context: prod
";

#[test]
fn kubeconfig_merge_keeps_the_other_contexts() {
    let mut t = Test::new();
    let run = t.run(&["kubeconfig"]).expect(1);
    assert!(run.stderr.contains("jeeves tunnel"), "{}", run.stderr);

    t.write(".jeeves/lab/kubeconfig", SAVED);
    let run = t.run(&["kubeconfig"]).expect(0);
    assert!(
        run.stdout.trim().ends_with(".jeeves/lab/kubeconfig"),
        "{}",
        run.stdout
    );

    t.write("kube/config", EXISTING);
    let target = t.path("kube/config").display().to_string();
    t.env("KUBECONFIG", &format!("{target}:/nonexistent/other"));
    t.run(&["kubeconfig", "--merge"]).expect(0);
    // Twice: the second replaces its own entries, nothing else.
    t.run(&["kubeconfig", "--merge"]).expect(0);

    // The real kubectl reads the result.
    let kubectl = |args: &[&str]| {
        let mut all = vec!["config", "--kubeconfig", target.as_str()];
        all.extend_from_slice(args);
        let (code, out) = common::tool("kubectl", &all);
        assert_eq!(code, 0, "{out}");
        out
    };
    let contexts = kubectl(&["get-contexts", "-o", "name"]);
    let mut names: Vec<&str> = contexts.lines().collect();
    names.sort();
    assert_eq!(names, ["jeeves-lab", "prod"]);
    assert_eq!(kubectl(&["current-context"]).trim(), "prod");
    let server = kubectl(&[
        "view",
        "-o",
        "jsonpath={.clusters[?(@.name==\"jeeves-lab\")].cluster.server}",
    ]);
    assert_eq!(server, "https://127.0.0.1:16443");
    let user = kubectl(&[
        "view",
        "--raw",
        "-o",
        "jsonpath={.contexts[?(@.name==\"jeeves-lab\")].context.user}",
    ]);
    assert_eq!(user, "jeeves-lab");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "it holds credentials");
}

/// `jeeves ssh` execs the system ssh; here a wrapper adds `-G`, so the real OpenSSH client
/// parses every option Jeeves passes and prints the configuration it would connect with.
#[test]
fn ssh_runs_openssh_with_the_pinned_known_hosts() {
    let mut t = Test::new();
    t.with_key();
    t.write(
        ".jeeves/lab/state.json",
        r#"{"version": 1, "inventory": {
            "controller": {"id": "lab-controller", "hostname": "controller", "public_ip": "10.77.0.10", "private_ip": "10.77.0.10"},
            "workers": [
                {"id": "lab-worker-1", "hostname": "worker-1", "public_ip": "10.77.0.11", "private_ip": "10.77.0.11"},
                {"id": "lab-worker-2", "hostname": "worker-2", "public_ip": "10.77.0.12", "private_ip": "10.77.0.12"}]}}"#,
    );
    let ssh = which_ssh();
    t.write("bin/ssh", &format!("#!/bin/sh\nexec {ssh} -G \"$@\"\n"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.path("bin/ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        t.path("bin").display(),
        std::env::var("PATH").unwrap()
    );
    t.env("PATH", &path);

    t.write(".jeeves/lab-hosts/known_hosts", "");
    let run = t.run(&["ssh", "worker-2"]).expect(0);
    for line in [
        "hostname 10.77.0.12",
        "user root",
        "port 22",
        "stricthostkeychecking true",
        "globalknownhostsfile /dev/null",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "{line}:\n{}",
            run.stdout
        );
    }
    // The pinned files, by absolute path (ssh prints them as given).
    for (option, file) in [
        ("userknownhostsfile ", ".jeeves/lab-hosts/known_hosts"),
        ("identityfile ", ".jeeves/lab-hosts/id_ed25519"),
    ] {
        let given = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(option))
            .unwrap_or_else(|| panic!("{option}:\n{}", run.stdout));
        assert!(given.starts_with('/'), "{given}");
        assert_eq!(
            Path::new(given).canonicalize().unwrap(),
            t.path(file).canonicalize().unwrap()
        );
    }
    let run = t.run(&["ssh", "controller"]).expect(0);
    assert!(run.stdout.contains("hostname 10.77.0.10"), "{}", run.stdout);

    // Through a bastion: the jump is checked against the same pinned file (a `-J` jump would
    // not get the `-o` options).
    t.env("JEEVES_SSH_JUMP_HOST", "ops@bastion.example.com:2200");
    let run = t.run(&["ssh", "worker-1"]).expect(0);
    let proxy = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("proxycommand "))
        .unwrap_or_else(|| panic!("no proxycommand:\n{}", run.stdout));
    assert!(
        proxy.contains("'StrictHostKeyChecking=yes'")
            && proxy.contains("known_hosts")
            && proxy.contains("-p 2200 -l ops -W %h:%p bastion.example.com"),
        "{proxy}"
    );

    let run = t.run(&["ssh", "worker-3"]).expect(2);
    assert!(
        run.stderr.contains("worker-2 (worker-2)") && run.stderr.contains("controller"),
        "the hosts are listed: {}",
        run.stderr
    );
}

fn which_ssh() -> String {
    let (code, out) = common::tool("sh", &["-c", "command -v ssh"]);
    assert_eq!(code, 0, "the OpenSSH client is needed: {out}");
    out.trim().to_string()
}

/// Two runs write two logs; `logs` prints the newest, `logs plan` the plan's.
#[test]
fn logs_prints_the_last_run_or_the_one_named() {
    let t = Test::new();
    let run = t.run(&["logs"]).expect(1);
    assert!(run.stderr.contains("no run logs"), "{}", run.stderr);
    t.run(&["plan", "--only", "terraform"]).expect(0);
    t.run(&["up", "--only", "terraform"]).expect(0);
    let list = t.run(&["logs", "--list"]).expect(0);
    assert_eq!(list.stdout.lines().count(), 2, "{}", list.stdout);
    let last = t.run(&["logs"]).expect(0);
    let newest = t.path(list.stdout.lines().last().unwrap());
    assert!(newest.to_string_lossy().ends_with("-up.log"), "{newest:?}");
    assert_eq!(last.stdout, std::fs::read_to_string(newest).unwrap());
    assert!(last.stdout.contains("terraform"), "{}", last.stdout);
    let plan = t.run(&["logs", "plan"]).expect(0);
    let first = t.path(list.stdout.lines().next().unwrap());
    assert_eq!(plan.stdout, std::fs::read_to_string(first).unwrap());
    let run = t.run(&["logs", "2001-"]).expect(2);
    assert!(run.stderr.contains("logs --list"), "{}", run.stderr);
    let run = t.run(&["logs", ".log"]).expect(2);
    assert!(run.stderr.contains("matches 2 logs"), "{}", run.stderr);
}
