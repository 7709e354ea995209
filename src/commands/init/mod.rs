//! `jeeves init DIR`: a new deployment directory (pipeline file, `.env`, templates, the
//! terraform module) from the copies embedded in the binary, with the values that differ per
//! deployment asked for on a terminal or given as flags.

mod edit;
mod files;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::InitArgs;
use crate::config::validate;
use crate::exit_code::{self, UsageError};

/// The values `init` writes, checked.
#[derive(Debug)]
struct Answers {
    domain: String,
    region: String,
    email: String,
    ssh_key: PathBuf,
    ssh_public_key: String,
    admin_cidr: String,
    state_bucket: String,
}

pub fn run(args: &InitArgs) -> Result<u8> {
    let files = planned_files(&args.dir);
    let existing: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, _)| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        let more = match existing.len() {
            1..=3 => String::new(),
            n => format!(" and {} more", n - 3),
        };
        return Err(UsageError(format!(
            "{}{more} already exist: init never overwrites a file; choose a new directory",
            existing[..existing.len().min(3)].join(", ")
        ))
        .into());
    }
    let answers = answers(args)?;
    let pipeline = pipeline_text(&answers)?;
    let env = env_text(&answers);
    for (path, fixed) in &files {
        let text = match fixed {
            Some(text) => *text,
            None if path.ends_with(files::PIPELINE_PATH) => pipeline.as_str(),
            None if path.ends_with(".env") => env.as_str(),
            None => GITIGNORE,
        };
        let private = path.ends_with(".env");
        write_new(path, text, private)?;
    }
    println!("wrote {} files into {}", files.len(), args.dir.display());
    println!(
        "next: create the state bucket if it does not exist (aws s3 mb s3://{} --region {}), then\n  cd {} && jeeves doctor && jeeves render",
        answers.state_bucket,
        answers.region,
        args.dir.display()
    );
    Ok(exit_code::SUCCESS)
}

const GITIGNORE: &str = "# Secrets and Jeeves state: never commit them.\n.env\n.jeeves/\n.terraform/\n*.tfstate\n*.tfstate.*\n";

/// Every file `init` writes, with its fixed contents (`None`: the ones filled in).
fn planned_files(dir: &Path) -> Vec<(PathBuf, Option<&'static str>)> {
    let mut out: Vec<(PathBuf, Option<&'static str>)> = files::FILES
        .iter()
        .map(|(p, text)| (dir.join(p), Some(*text)))
        .collect();
    out.push((dir.join(files::PIPELINE_PATH), None));
    out.push((dir.join(".env"), None));
    out.push((dir.join(".gitignore"), None));
    out
}

fn write_new(path: &Path, text: &str, private: bool) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    }
    let mut file = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn pipeline_text(a: &Answers) -> Result<String> {
    use edit::{quoted, set_toml};
    // Backups on, to the S3 bucket terraform/aws makes (its output `backup_bucket`): a new
    // stack's backups outlive its cluster from the first night.
    let mut text = edit::uncomment_section(files::PIPELINE, "backup")?;
    for (section, key, value) in [
        ("project", "region", &a.region),
        ("terraform.vars", "admin_cidr", &a.admin_cidr),
        ("terraform.vars", "ssh_public_key", &a.ssh_public_key),
        ("terraform.backend_config", "bucket", &a.state_bucket),
    ] {
        text = set_toml(&text, section, key, &quoted(value))?;
    }
    Ok(text)
}

fn env_text(a: &Answers) -> String {
    let mut text = files::ENV_EXAMPLE.to_string();
    for (key, value) in [
        ("DOMAIN", a.domain.clone()),
        ("CERT_EMAIL", a.email.clone()),
        ("SSH_KEY_PATH", a.ssh_key.display().to_string()),
    ] {
        text = edit::set_env(&text, key, &value);
    }
    text.replacen(
        "# Copy to .env (never committed) and fill in.",
        "# Written by `jeeves init` (never commit it).",
        1,
    )
}

/// Flags first; on a terminal (without `--yes`) the missing ones are asked for, with defaults.
fn answers(args: &InitArgs) -> Result<Answers> {
    let interactive = !args.yes && std::io::stdin().is_terminal();
    let mut ask = Asker {
        interactive,
        input: std::io::stdin().lock(),
    };
    let domain = ask.checked(
        validate::domain,
        "--domain",
        "The chat's public name",
        args.domain.clone(),
        None,
    )?;
    let region = ask.checked(
        validate::aws_region,
        "--region",
        "AWS region",
        args.region.clone(),
        Some("eu-west-1"),
    )?;
    let email = ask.checked(
        validate::email,
        "--email",
        "ACME account e-mail",
        args.email.clone(),
        Some(&format!("admin@{domain}")),
    )?;
    let default_key = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".ssh/id_ed25519").display().to_string());
    let ssh_key = ask.value(
        "--ssh-key",
        "SSH private key for the nodes",
        args.ssh_key.as_ref().map(|p| p.display().to_string()),
        default_key.as_deref(),
    )?;
    let ssh_key = std::path::absolute(&ssh_key)?;
    let ssh_public_key = public_key(&ssh_key)?;
    let admin_cidr = ask.checked(
        validate::ipv4_cidr,
        "--admin-cidr",
        "Who may SSH to the nodes (your address/32)",
        args.admin_cidr.clone(),
        None,
    )?;
    let bucket_default = format!("{}-jeeves-state", domain.replace('.', "-"));
    let state_bucket = ask.value(
        "--state-bucket",
        "S3 bucket for terraform's state",
        args.state_bucket.clone(),
        Some(&bucket_default),
    )?;
    Ok(Answers {
        domain,
        region,
        email,
        ssh_key,
        ssh_public_key,
        admin_cidr,
        state_bucket,
    })
}

/// The key's `.pub` beside it (the line terraform installs on the nodes).
fn public_key(key: &Path) -> Result<String> {
    if !key.is_file() {
        return Err(UsageError(format!(
            "--ssh-key: no private key at {} (create one: ssh-keygen -t ed25519 -f {0})",
            key.display()
        ))
        .into());
    }
    let mut public = key.as_os_str().to_owned();
    public.push(".pub");
    let public = PathBuf::from(public);
    let text = std::fs::read_to_string(&public).map_err(|e| {
        UsageError(format!(
            "--ssh-key: cannot read the public key {} ({e}); write it with: ssh-keygen -y -f {} > {0}",
            public.display(),
            key.display()
        ))
    })?;
    Ok(text.trim().to_string())
}

struct Asker<R> {
    interactive: bool,
    input: R,
}

impl<R: BufRead> Asker<R> {
    /// As `value`, checked: a bad answer on a terminal is asked again, a bad flag (or default)
    /// is a usage error naming the flag.
    fn checked(
        &mut self,
        check: fn(&str) -> Result<String, String>,
        flag: &str,
        question: &str,
        mut given: Option<String>,
        default: Option<&str>,
    ) -> Result<String> {
        loop {
            let from_flag = given.is_some();
            let value = self.value(flag, question, given.take(), default)?;
            match check(&value) {
                Ok(v) => return Ok(v),
                Err(e) if self.interactive && !from_flag => eprintln!("{flag}: {e}"),
                Err(e) => return Err(UsageError(format!("{flag}: {e}")).into()),
            }
        }
    }

    /// The flag's value, else the answer (or the default on an empty line), else the default.
    fn value(
        &mut self,
        flag: &str,
        question: &str,
        given: Option<String>,
        default: Option<&str>,
    ) -> Result<String> {
        if let Some(v) = given {
            return Ok(v);
        }
        if !self.interactive {
            return default.map(str::to_string).ok_or_else(|| {
                UsageError(format!(
                    "{flag} is required (stdin is not a terminal, or --yes was given)"
                ))
                .into()
            });
        }
        loop {
            match default {
                Some(d) => eprint!("{question} [{d}]: "),
                None => eprint!("{question}: "),
            }
            let mut line = String::new();
            if self
                .input
                .read_line(&mut line)
                .context("cannot read the answer")?
                == 0
            {
                return Err(UsageError(format!("no answer for {flag} (end of input)")).into());
            }
            match (line.trim(), default) {
                ("", Some(d)) => return Ok(d.to_string()),
                ("", None) => eprintln!("{flag} has no default; please answer"),
                (answer, _) => return Ok(answer.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a terminal: an empty answer takes the default, a question without one is asked again,
    /// and the end of input is a usage error rather than an empty value.
    #[test]
    fn answers_defaults_and_the_end_of_input() {
        let mut ask = Asker {
            interactive: true,
            input: std::io::Cursor::new("\n\nchat.example.com\n"),
        };
        let region = ask.value("--region", "AWS region", None, Some("eu-west-1"));
        assert_eq!(region.unwrap(), "eu-west-1");
        let domain = ask.value("--domain", "Domain", None, None);
        assert_eq!(domain.unwrap(), "chat.example.com");
        let flag = ask.value("--email", "E-mail", Some("a@b.example".into()), None);
        assert_eq!(flag.unwrap(), "a@b.example");
        let err = ask.value("--admin-cidr", "CIDR", None, None).unwrap_err();
        assert!(err.to_string().contains("--admin-cidr"), "{err}");

        // A bad answer is asked again; a bad flag is an error naming it.
        let mut ask = Asker {
            interactive: true,
            input: std::io::Cursor::new("chat..example.com\nchat.example.com\n"),
        };
        let domain = ask.checked(validate::domain, "--domain", "Domain", None, None);
        assert_eq!(domain.unwrap(), "chat.example.com");
        let bad = Some("eu-west".to_string());
        let err = ask
            .checked(validate::aws_region, "--region", "Region", bad, None)
            .unwrap_err();
        assert!(err.to_string().starts_with("--region: "), "{err}");

        let mut scripted = Asker {
            interactive: false,
            input: std::io::Cursor::new(""),
        };
        let err = scripted
            .value("--domain", "Domain", None, None)
            .unwrap_err();
        assert!(err.to_string().contains("--domain is required"), "{err}");
    }

    #[test]
    fn the_pipeline_gets_every_answer() {
        let a = Answers {
            domain: "chat.example.com".into(),
            region: "sa-east-1".into(),
            email: "ops@example.com".into(),
            ssh_key: "/k/id".into(),
            ssh_public_key: "ssh-ed25519 AAAA test".into(),
            admin_cidr: "192.0.2.9/32".into(),
            state_bucket: "my-state".into(),
        };
        let text = pipeline_text(&a).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        assert_eq!(doc["project"]["region"].as_str(), Some("sa-east-1"));
        let tf = &doc["terraform"];
        assert_eq!(tf["vars"]["admin_cidr"].as_str(), Some("192.0.2.9/32"));
        assert_eq!(
            tf["vars"]["ssh_public_key"].as_str(),
            Some("ssh-ed25519 AAAA test")
        );
        assert_eq!(tf["backend_config"]["bucket"].as_str(), Some("my-state"));
        // A new pipeline runs its own replica set (a pipeline without the key stays external).
        assert_eq!(doc["helm"]["mongodb"].as_str(), Some("operator"));
        // Backed up to the bucket terraform makes: S3, no bucket of its own.
        let backup = &doc["backup"];
        assert_eq!(backup["destination"].as_str(), Some("s3"));
        assert_eq!(backup["bucket"].as_str(), Some(""));
        assert_eq!(backup["prefix"].as_str(), Some(""));
        let env = env_text(&a);
        for line in [
            "DOMAIN=chat.example.com",
            "CERT_EMAIL=ops@example.com",
            "SSH_KEY_PATH=/k/id",
        ] {
            assert!(env.lines().any(|l| l == line), "{line}:\n{env}");
        }
    }
}
