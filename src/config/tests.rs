//! Validation: every bad input names its key and where it came from.

use std::path::PathBuf;

use super::{ConfigErrors, Env, Settings};

/// A pipeline directory with templates/ and terraform/ beside it, like the repository's.
struct Fixture {
    dir: tempfile::TempDir,
}

const BASE: &str = r#"
[project]
name = "demo"
templates = "../templates"
[terraform]
dir = "../terraform"
[tls]
domain = "chat.example.com"
email = "ops@example.com"
"#;

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for d in ["pipelines", "templates", "terraform"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Fixture { dir }
    }

    fn write(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("pipelines/demo.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigErrors> {
        let path = self.write(text);
        Settings::load(&path, &Env::from_pairs(env.iter().copied()))
    }
}

/// `BASE` with `key = value` set in `[section]` (replacing any earlier value).
fn with(section: &str, line: &str) -> String {
    let mut doc: toml::Table = BASE.parse().unwrap();
    let (k, v) = line.split_once('=').unwrap();
    let value: toml::Value =
        format!("x = {}", v.trim()).parse::<toml::Table>().unwrap()["x"].clone();
    doc.entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(Default::default()))
        .as_table_mut()
        .unwrap()
        .insert(k.trim().to_string(), value);
    toml::to_string(&doc).unwrap()
}

#[track_caller]
fn assert_rejected(f: &Fixture, text: &str, env: &[(&str, &str)], key: &str) -> ConfigErrors {
    let err = f.load(text, env).expect_err("should be rejected");
    assert!(
        err.keys().contains(&key),
        "expected an error for `{key}`, got: {err}"
    );
    err
}

#[test]
fn the_base_pipeline_is_valid_with_defaults() {
    let f = Fixture::new();
    let s = f.load(BASE, &[]).unwrap();
    assert_eq!(s.name, "demo");
    assert_eq!(s.domain, "chat.example.com");
    assert_eq!(s.helm.namespace, "psautoinfra");
    assert_eq!(s.dns.ttl, 60);
    assert_eq!(
        s.haproxy.pem_path,
        "/etc/haproxy/certs/chat.example.com.pem"
    );
    assert_eq!(s.microk8s.addons, ["dns", "hostpath-storage", "rbac"]);
    assert_eq!(s.microk8s.concurrency, 16);
    assert_eq!(s.state_dir, PathBuf::from(".jeeves/demo"));
}

#[test]
fn bad_values_name_their_key_and_file() {
    let f = Fixture::new();
    let cases: &[(&str, &str, &str)] = &[
        ("tls", "domain = 'localhost'", "tls.domain"),
        ("tls", "domain = 'chat..example.com'", "tls.domain"),
        ("tls", "domain = 'chat.example.com; rm -rf /'", "tls.domain"),
        (
            "tls",
            "domain = '$(touch /tmp/pwned).example.com'",
            "tls.domain",
        ),
        ("tls", "domain = ''", "tls.domain"),
        ("tls", "email = 'not-an-email'", "tls.email"),
        ("tls", "email = 'ops@localhost'", "tls.email"),
        (
            "tls",
            "acme_server = 'http://acme.example.com/dir'",
            "tls.acme_server",
        ),
        ("tls", "renew_before = 'a month'", "tls.renew_before"),
        ("ssh", "port = 0", "ssh.port"),
        ("ssh", "port = 70000", "ssh.port"),
        ("ssh", "port = 'twenty-two'", "ssh.port"),
        ("ssh", "user = 'root; id'", "ssh.user"),
        ("ssh", "connect_timeout = '0s'", "ssh.connect_timeout"),
        ("ssh", "command_timeout = 'forever'", "ssh.command_timeout"),
        ("ssh", "sudo = 'yes'", "ssh.sudo"),
        ("microk8s", "concurrency = 0", "microk8s.concurrency"),
        ("microk8s", "concurrency = 100000", "microk8s.concurrency"),
        (
            "microk8s",
            "channel = '1.32/stable; reboot'",
            "microk8s.channel",
        ),
        (
            "microk8s",
            "addons = ['dns', 'rbac && reboot']",
            "microk8s.addons[1]",
        ),
        ("microk8s", "token_ttl = '-5m'", "microk8s.token_ttl"),
        ("haproxy", "pem_path = 'relative/x.pem'", "haproxy.pem_path"),
        (
            "haproxy",
            "pem_path = '/etc/letsencrypt/live/x/haproxy.pem'",
            "haproxy.pem_path",
        ),
        (
            "haproxy",
            "config_path = '/etc/haproxy/$(id).cfg'",
            "haproxy.config_path",
        ),
        (
            "haproxy",
            "backend_address = 'localhost'",
            "haproxy.backend_address",
        ),
        ("tunnel", "local_port = 0", "tunnel.local_port"),
        ("traefik", "web_nodeport = 80", "traefik.web_nodeport"),
        (
            "traefik",
            "websecure_nodeport = 30080",
            "traefik.websecure_nodeport",
        ),
        ("traefik", "image = 'traefik:latest'", "traefik.image"),
        ("traefik", "replicas = 0", "traefik.replicas"),
        ("traefik", "storage_size = 'big'", "traefik.storage_size"),
        ("helm", "version = 'latest'", "helm.version"),
        ("helm", "namespace = 'Bad_Namespace'", "helm.namespace"),
        ("helm", "release = ''", "helm.release"),
        ("helm", "mongodb = 'sqlite'", "helm.mongodb"),
        ("helm", "repo = 'ftp://charts'", "helm.repo"),
        ("helm", "timeout = 'soon'", "helm.timeout"),
        ("dns", "ttl = 0", "dns.ttl"),
        ("dns", "zone_id = 'Z 123'", "dns.zone_id"),
        ("dns", "wait_timeout = '0s'", "dns.wait_timeout"),
        ("haproxy", "ready_timeout = '0s'", "haproxy.ready_timeout"),
        ("haproxy", "ready_timeout = 'soon'", "haproxy.ready_timeout"),
        ("project", "name = 'Has Spaces'", "project.name"),
        ("project", "templates = 'no-such-dir'", "project.templates"),
        ("terraform", "dir = 'no-such-dir'", "terraform.dir"),
        (
            "terraform",
            "backend_config = { bucket = 'state', secret_key = 'wJalrXUtnFEMI' }",
            "terraform.backend_config.secret_key",
        ),
        (
            "terraform",
            "backend_config = { bucket = 'state', token = 'FwoGZXIvYXdzE' }",
            "terraform.backend_config.token",
        ),
        ("tools", "helm = ''", "tools.helm"),
    ];
    for (section, line, key) in cases {
        let err = assert_rejected(&f, &with(section, line), &[], key);
        let text = err.to_string();
        assert!(
            text.contains("demo.toml"),
            "{line}: the file is named: {text}"
        );
    }
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let f = Fixture::new();
    let err = assert_rejected(&f, &with("ssh", "prot = 22"), &[], "ssh.prot");
    assert!(err.to_string().contains("prot"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let f = Fixture::new();
    let text = with("ssh", "port = 0").replace("chat.example.com", "bad..domain");
    let err = f.load(&text, &[]).unwrap_err();
    assert!(
        err.keys().contains(&"ssh.port") && err.keys().contains(&"tls.domain"),
        "{err}"
    );
}

#[test]
fn syntax_errors_name_the_file() {
    let f = Fixture::new();
    let err = f.load("[project\nname = 'x'", &[]).unwrap_err();
    assert!(
        err.to_string().contains("demo.toml") && err.to_string().contains("TOML"),
        "{err}"
    );
    let missing = Settings::load(&f.dir.path().join("nope.toml"), &Env::default()).unwrap_err();
    assert!(missing.to_string().contains("nope.toml"), "{missing}");
}

#[test]
fn environment_overrides_and_their_errors_name_the_variable() {
    let f = Fixture::new();
    let s = f
        .load(
            BASE,
            &[
                ("DOMAIN", "Chat.Other.ORG"),
                ("JEEVES_SSH_PORT", "2222"),
                ("JEEVES_MICROK8S_ADDONS", "dns, rbac"),
                ("JEEVES_TLS_STAGING", "true"),
            ],
        )
        .unwrap();
    assert_eq!(s.domain, "chat.other.org");
    assert_eq!(s.ssh.port, 2222);
    assert_eq!(s.microk8s.addons, ["dns", "rbac"]);
    assert!(s.tls.staging);

    // JEEVES_* wins over the shorthand.
    let s = f
        .load(
            BASE,
            &[
                ("DOMAIN", "a.example.com"),
                ("JEEVES_TLS_DOMAIN", "b.example.com"),
            ],
        )
        .unwrap();
    assert_eq!(s.domain, "b.example.com");

    let err = assert_rejected(&f, BASE, &[("DOMAIN", "bad domain")], "tls.domain");
    assert!(
        err.to_string().contains("environment variable DOMAIN"),
        "{err}"
    );
    let err = assert_rejected(&f, BASE, &[("JEEVES_SSH_PORT", "ssh")], "ssh.port");
    assert!(err.to_string().contains("JEEVES_SSH_PORT"), "{err}");
    // A key its section does not have: meant as an override, so refused.
    let err = assert_rejected(&f, BASE, &[("JEEVES_SSH_PROT", "22")], "ssh.prot");
    assert!(err.to_string().contains("JEEVES_SSH_PROT"), "{err}");
    // No section at all: another tool's variable, only a warning.
    let s = f.load(BASE, &[("JEEVES_BUILD_ID", "42")]).unwrap();
    assert!(
        s.warnings.len() == 1 && s.warnings[0].contains("JEEVES_BUILD_ID"),
        "{:?}",
        s.warnings
    );
    // Reserved names are not overrides.
    f.load(
        BASE,
        &[
            ("JEEVES_STATE_DIR", "/tmp/x"),
            ("JEEVES_SSH_KEY_PASSPHRASE", "secret"),
        ],
    )
    .unwrap();
}

#[test]
fn ssh_key_must_exist_and_be_private() {
    let f = Fixture::new();
    let key = f.dir.path().join("id_test");
    let text = with("ssh", &format!("key_path = '{}'", key.display()));
    let s = f.load(&text, &[]).unwrap();
    let err = s.check_ssh_key().unwrap_err();
    assert_eq!(err.keys(), ["ssh.key_path"]);
    std::fs::write(&key, "key").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = s.check_ssh_key().unwrap_err();
        assert!(err.to_string().contains("0644"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    s.check_ssh_key().unwrap();
}

#[test]
fn secrets_come_from_the_environment_for_redaction() {
    let f = Fixture::new();
    let s = f
        .load(
            BASE,
            &[
                ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
                ("MONGO_URI", "mongodb://u:p@db/rc"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
    assert!(s.secrets.contains(&"wJalrXUtnFEMI".to_string()));
    assert!(s.secrets.contains(&"mongodb://u:p@db/rc".to_string()));
    assert!(!s.secrets.contains(&"/root".to_string()));
}

#[test]
fn secrets_written_into_helm_values_are_redacted_too() {
    let f = Fixture::new();
    let text = with(
        "helm",
        "values = { smtp = { password = 'hunter22', host = 'mail' }, existingMongodbSecret = 'rocketchat-mongodb' }",
    );
    let s = f.load(&text, &[]).unwrap();
    assert!(
        s.secrets.contains(&"hunter22".to_string()),
        "{:?}",
        s.secrets
    );
    assert!(
        !s.secrets
            .iter()
            .any(|x| x == "mail" || x == "rocketchat-mongodb")
    );
}

#[test]
fn extra_terraform_var_files_must_exist() {
    let f = Fixture::new();
    let vars = f.dir.path().join("hosts.tfvars.json");
    std::fs::write(&vars, "{}").unwrap();
    let s = f
        .load(
            BASE,
            &[("JEEVES_TERRAFORM_VAR_FILES", vars.to_str().unwrap())],
        )
        .unwrap();
    assert_eq!(s.terraform.var_files, std::slice::from_ref(&vars));
    let err = assert_rejected(
        &f,
        BASE,
        &[("JEEVES_TERRAFORM_VAR_FILES", "/nope.json")],
        "terraform.var_files[0]",
    );
    assert!(
        err.to_string()
            .contains("environment variable JEEVES_TERRAFORM_VAR_FILES"),
        "{err}"
    );
    assert_rejected(
        &f,
        &with("terraform", "var_files = ['missing.json']"),
        &[],
        "terraform.var_files[0]",
    );
}

#[test]
fn inspecting_needs_no_domain_or_email_but_checks_them_when_set() {
    use super::Purpose;
    let f = Fixture::new();
    let text = BASE
        .replace("domain = \"chat.example.com\"", "domain = \"\"")
        .replace("email = \"ops@example.com\"", "email = \"\"");
    let path = f.write(&text);
    let none = Env::from_pairs([]);
    let err = Settings::load(&path, &none).unwrap_err().to_string();
    assert!(
        err.contains("tls.domain") && err.contains("tls.email"),
        "{err}"
    );
    let s = Settings::load_for(&path, &none, Purpose::Inspect).unwrap();
    assert_eq!((s.domain.as_str(), s.tls.email.as_str()), ("", ""));
    let bad = Env::from_pairs([("DOMAIN", "chat..example.com")]);
    let err = Settings::load_for(&path, &bad, Purpose::Inspect).unwrap_err();
    assert!(err.to_string().contains("tls.domain"), "{err}");
}

#[test]
fn backup_is_optional_and_its_values_name_their_key_and_file() {
    let f = Fixture::new();
    assert!(f.load(BASE, &[]).unwrap().backup.is_none());
    let b = f
        .load(&with("backup", "keep = 3"), &[])
        .unwrap()
        .backup
        .expect("[backup] turns backups on");
    assert_eq!((b.keep, b.schedule.as_str()), (3, "0 3 * * *"));
    assert_eq!(b.name, "rocketchat-mongodb-backup");
    for (line, key) in [
        ("schedule = '0 3 * *'", "backup.schedule"),
        ("schedule = '0 25 * * *'", "backup.schedule"),
        ("keep = 0", "backup.keep"),
        ("image = 'mongo:latest'", "backup.image"),
        ("storage_size = '10 GB'", "backup.storage_size"),
        ("timeout = 'a while'", "backup.timeout"),
        ("retention = 7", "backup.retention"),
    ] {
        let err = assert_rejected(&f, &with("backup", line), &[], key);
        assert!(format!("{err}").contains("demo.toml"), "{err}");
    }
}
