//! A small builder that runs the real `jeeves` binary in a throwaway copy of the repository's
//! pipelines, templates and lab terraform configuration, with a clean environment.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The pipeline file `pipelines/<name>.toml` the runs use (`lab` unless `pipeline` says).
    pipeline: String,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The `--output json` event lines, parsed.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
            })
            .collect()
    }

    /// The SSH handshakes the run logged with `-v` (`ssh: N handshake(s) in this run`).
    #[track_caller]
    pub fn handshakes(&self) -> usize {
        self.events()
            .iter()
            .filter_map(|e| e["message"].as_str())
            .find_map(|m| {
                m.strip_prefix("ssh: ")?
                    .strip_suffix(" handshake(s) in this run")?
                    .parse()
                    .ok()
            })
            .expect("the run logs its handshakes (with -v)")
    }

    /// A stage's plan, one `ACTION TARGET` line per change, from its `stage_planned` events.
    pub fn planned(&self, stage: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "stage_planned" && e["stage"] == stage)
            .flat_map(|e| e["changes"].as_array().cloned().unwrap_or_default())
            .map(|c| {
                format!(
                    "{} {}",
                    c["action"].as_str().unwrap(),
                    c["target"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// A stage's result (changed, unchanged, failed, skipped) from its `stage_finished` event.
    #[track_caller]
    pub fn stage_result(&self, stage: &str) -> String {
        self.events()
            .iter()
            .find(|e| e["event"] == "stage_finished" && e["stage"] == stage)
            .and_then(|e| e["result"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no stage_finished for {stage}:\n{}", self.stderr))
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        // Never copy terraform's working files from the checkout.
        if name == ".terraform" || name.to_string_lossy().contains("tfstate") {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl Test {
    /// A workspace with `pipelines/`, `templates/`, `terraform/lab/`, the Traefik CRD fixture and
    /// the vendored charts copied from the repo.
    pub fn new() -> Test {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("pipelines"), &dir.path().join("pipelines"));
        copy_dir(&repo().join("templates"), &dir.path().join("templates"));
        copy_dir(
            &repo().join("terraform/lab"),
            &dir.path().join("terraform/lab"),
        );
        // pipelines/lab.toml reads the Traefik CRDs and the chart from here (no network).
        for fixtures in ["tests/fixtures/traefik", "tests/fixtures/charts"] {
            copy_dir(&repo().join(fixtures), &dir.path().join(fixtures));
        }
        Test {
            dir,
            args: Vec::new(),
            env: Vec::new(),
            pipeline: "lab".into(),
        }
    }

    /// Runs use `pipelines/<name>.toml` (its state in `.jeeves/<name>/`).
    pub fn pipeline(&mut self, name: &str) -> &mut Test {
        self.pipeline = name.into();
        self
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: &str) -> &Test {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
        self
    }

    /// Creates a private (0600) SSH key file where the lab pipeline expects one.
    pub fn with_key(&self) -> &Test {
        let p = self.path(".jeeves/lab-hosts/id_ed25519");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            "not a real key; the stages that read it are not built\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        self
    }

    /// The runner-side kubectl/helm stand-ins (tests/standins) first on PATH, recording their
    /// calls in `standin-calls.jsonl` and the cluster in `standin-cluster.json` of the workspace.
    /// Under tests/run, their client (`LAB_STANDIN_BIN`), which has the stand-in server run
    /// them (tests/standins/README.md, "The server"); else the scripts themselves.
    pub fn with_standins(&mut self) -> &mut Test {
        let server = std::env::var("LAB_STANDIN_SERVER")
            .ok()
            .filter(|s| !s.is_empty());
        let dir = match (&server, std::env::var("LAB_STANDIN_BIN")) {
            (Some(_), Ok(bin)) => PathBuf::from(bin),
            _ => repo().join("tests/standins"),
        };
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
        let log = self.path("standin-calls.jsonl").display().to_string();
        let state = self.path("standin-cluster.json").display().to_string();
        if let Some(server) = server {
            self.env("LAB_STANDIN_SERVER", &server);
        }
        self.env("PATH", &path)
            .env("LAB_STANDIN_LOG", &log)
            .env("LAB_STANDIN_STATE", &state)
    }

    /// pipelines/lab.toml without its `[backup]` (the last section): for tests that configure
    /// backups themselves, through `JEEVES_BACKUP_*`.
    pub fn without_backup(&self) -> &Test {
        let lab = std::fs::read_to_string(self.path("pipelines/lab.toml")).unwrap();
        let at = lab
            .find("\n[backup]")
            .expect("pipelines/lab.toml has [backup]");
        let before = lab[..at].rfind("\n\n").unwrap_or(at);
        self.write("pipelines/lab.toml", &format!("{}\n", &lab[..before]))
    }

    pub fn env(&mut self, k: &str, v: &str) -> &mut Test {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jeeves"));
        cmd.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "HOME",
                std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
            )
            // Go's collector (terraform, its AWS provider, helm) runs a fourth as often: with the
            // AWS provider's schema, a plan is 4.2 CPU-seconds instead of 5.1 and a show 3.3
            // instead of 3.8, for a fifth more memory (docs/tests.md, "Where the time goes").
            // CPU is what the suite runs short of; memory it has. Behaviour is the same.
            .env("GOGC", "400")
            .arg("-p")
            .arg(format!("pipelines/{}.toml", self.pipeline))
            .args(&self.args)
            .args(args)
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run jeeves");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn state(&self) -> serde_json::Value {
        let path = format!(".jeeves/{}/state.json", self.pipeline);
        let text = std::fs::read_to_string(self.path(&path)).expect("state.json");
        serde_json::from_str(&text).unwrap()
    }
}

/// Runs a program and returns (status code, stdout + stderr); panics if it cannot start, so a
/// missing tool fails the test instead of skipping it.
/// The vendored packaged chart of that version (tests/fixtures/charts).
pub fn chart(version: &str) -> String {
    repo()
        .join(format!("tests/fixtures/charts/rocketchat-{version}.tgz"))
        .display()
        .to_string()
}

pub fn tool(program: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (install it: see .ci/run): {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A moto server (AWS emulator, PyPI `moto[server]`) on a free loopback port, killed on drop.
/// Started through `tests/moto/server.py`: moto_server with the fixes its README lists; under
/// `tests/run`, forked ready-imported by its zygote (`LAB_MOTO_ZYGOTE`, tests/moto/README.md).
pub struct Moto {
    server: MotoServer,
    pub port: u16,
}

enum MotoServer {
    Child(std::process::Child),
    /// Started by the zygote: not our child (the zygote reaps it), so known by its pid and its
    /// start time (a pid outlives its process: a run starts ~30,000 and pid_max is 32,768);
    /// its log in this file.
    Forked(u32, Option<String>, tempfile::NamedTempFile),
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// With moto's own settings in its environment (`MOTO_AMIS_PATH`, `MOTO_ACCOUNT_ID`…).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let args = ["-H", "127.0.0.1", "-p", &port.to_string()].map(String::from);
        // Its log (one line a request) goes to a file read only if it fails to start.
        // Empty is unset, as for tests/lab/lab and the stand-in client.
        let zygote = std::env::var_os("LAB_MOTO_ZYGOTE").filter(|z| !z.is_empty());
        let (mut server, log) = match zygote {
            Some(zygote) => {
                let log = tempfile::NamedTempFile::new().unwrap();
                let pid = zygote_spawn(Path::new(&zygote), &args, env, log.path());
                let file = log.reopen().unwrap();
                (MotoServer::Forked(pid, start_time(pid), log), file)
            }
            None => {
                let log = tempfile::tempfile().unwrap();
                let child = Command::new("python3")
                    .arg(repo().join("tests/moto/server.py"))
                    .args(&args)
                    .envs(env.iter().copied())
                    .stdout(Stdio::null())
                    .stderr(log.try_clone().unwrap())
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start python3 tests/moto/server.py: {e}"));
                (MotoServer::Child(child), log)
            }
        };
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.exited() {
                use std::io::{Read, Seek};
                let mut err = String::new();
                let mut log = log;
                log.rewind().unwrap();
                log.read_to_string(&mut err).unwrap();
                panic!("moto did not start ({status}; pip install 'moto[server]'):\n{err}");
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "moto_server did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Moto { server, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment Jeeves needs to use this server: endpoint and dummy credentials.
    pub fn env_for(&self, t: &mut Test) {
        t.env("AWS_ENDPOINT_URL", &self.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1");
    }

    /// An SDK configuration for setting up and inspecting the emulated account in tests.
    pub fn sdk(&self) -> aws_config::SdkConfig {
        let creds =
            aws_sdk_route53::config::Credentials::new("testing", "testing", None, None, "test");
        block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(self.endpoint())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(creds)
                .load(),
        )
    }
}

impl MotoServer {
    /// How it ended, once it has.
    fn exited(&mut self) -> Option<String> {
        match self {
            MotoServer::Child(child) => child.try_wait().unwrap().map(|s| s.to_string()),
            MotoServer::Forked(pid, started, _) => {
                (start_time(*pid) != *started || started.is_none()).then(|| "exited".to_string())
            }
        }
    }
}

/// A process's start time (field 22 of /proc/PID/stat), while it runs.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(19).map(String::from)
}

/// Asks the moto zygote (tests/moto/zygote.py) for a server in this thread's network namespace;
/// its pid. The request is one JSON line, the answer the pid or the zygote's error.
fn zygote_spawn(zygote: &Path, args: &[String], env: &[(&str, &str)], log: &Path) -> u32 {
    use std::io::{BufRead, Write};
    let env: std::collections::BTreeMap<_, _> = env.iter().copied().collect();
    let request = serde_json::json!({
        // This thread's id, not the process's: a test thread may have joined a lab slot's
        // network namespace (`Lab::join`), and /proc/TID/ns/net is the thread's own.
        "argv": args, "env": env, "log": log, "pid": unsafe { libc::gettid() },
    });
    let mut conn = std::os::unix::net::UnixStream::connect(zygote)
        .unwrap_or_else(|e| panic!("the moto zygote {} does not answer: {e}", zygote.display()));
    writeln!(conn, "{request}").unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(conn)
        .read_line(&mut answer)
        .unwrap();
    answer
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the moto zygote could not start moto: {answer:?}"))
}

impl Drop for Moto {
    fn drop(&mut self) {
        match &mut self.server {
            MotoServer::Child(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            MotoServer::Forked(pid, started, _) => {
                // The zygote reaps it: gone from /proc once it has exited.
                if started.is_none() || start_time(*pid) != *started {
                    return;
                }
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while start_time(*pid) == *started && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
}

/// Runs a future to completion on a small runtime (tests are synchronous).
/// A local EC2 endpoint (the query protocol: form-encoded POST bodies, XML answers) for what moto
/// cannot model; `answer` turns each request's body into the XML document sent back. Returns
/// its port (for `AWS_ENDPOINT_URL`).
pub fn ec2_responder(answer: impl Fn(&str) -> String + Send + 'static) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let xml = answer(&String::from_utf8(body).unwrap());
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
        }
    });
    port
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub fn sh(cmd: &mut Command) -> (i32, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Slots `lab up` picks from when a test does not pin one (tests/lab/lab, "Slots"); LAB_SLOTS
/// overrides it. Each slot is a whole lab in its own network namespace, so this many lab tests run
/// at once (under `cargo nextest`; `cargo test` runs one test binary at a time).
pub const LAB_SLOTS: u32 = 3;

/// A lab in its own directory, taken down when dropped (even when the test fails).
pub struct Lab {
    pub dir: tempfile::TempDir,
    /// The network namespace this thread was in before `join` (restored when dropped).
    left: std::cell::RefCell<Option<std::fs::File>>,
}

impl Lab {
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(repo().join("tests/lab/lab"));
        c.args(args).env("LAB_DIR", self.dir.path()).env(
            "LAB_SLOTS",
            std::env::var("LAB_SLOTS").unwrap_or_else(|_| LAB_SLOTS.to_string()),
        );
        c
    }

    /// A lab directory, not yet up (`lab.cmd(&["up", …])`).
    pub fn new() -> Lab {
        let (_, me) = sh(Command::new("id").arg("-u"));
        assert_eq!(
            me.trim(),
            "0",
            "the lab tests need root (CI runs as root): run tests/run as root"
        );
        Lab {
            dir: tempfile::tempdir().unwrap(),
            left: Default::default(),
        }
    }

    /// A lab up in the first free slot, its network joined by this thread (`join`).
    pub fn up(workers: u32) -> Lab {
        Lab::up_with(&["--workers", &workers.to_string()])
    }

    /// `up`, with `lab up`'s own options (`--controllers N --workers M`).
    pub fn up_with(args: &[&str]) -> Lab {
        let lab = Lab::new();
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        let (code, out) = sh(&mut lab.cmd(&all));
        assert_eq!(code, 0, "lab up failed:\n{out}");
        lab.join();
        lab
    }

    /// The slot `lab up` took (tests/lab/lab writes it to `$LAB_DIR/slot`).
    pub fn slot(&self) -> u32 {
        let text = std::fs::read_to_string(self.path("slot")).expect("the lab is not up");
        text.trim().parse().unwrap()
    }

    /// The network namespace of the lab's slot; none for slot 0, the machine's own network.
    pub fn netns(&self) -> Option<PathBuf> {
        match self.slot() {
            0 => None,
            n => Some(PathBuf::from(format!("/run/netns/jvslot-{n}"))),
        }
    }

    /// Moves this thread into the lab's network (a network namespace is per thread): every
    /// socket it opens and every process or thread it starts from now on (jeeves, ssh, curl,
    /// terraform) reaches the lab's 10.77.0.x and its moto on 127.0.0.1:5055. Undone when the
    /// lab is dropped.
    pub fn join(&self) {
        let Some(netns) = self.netns() else { return };
        let target = std::fs::File::open(&netns)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", netns.display()));
        let here = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        setns(&target).unwrap_or_else(|e| panic!("setns({}): {e}", netns.display()));
        let mut left = self.left.borrow_mut();
        if left.is_none() {
            *left = Some(here);
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `ssh` to the lab's host `ip`, in the lab's network whichever this thread is in.
    pub fn ssh(&self, ip: &str, known_hosts: &Path, command: &str) -> (i32, String) {
        let mut ssh = match self.netns() {
            Some(netns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", netns.display())).arg("ssh");
                c
            }
            None => Command::new("ssh"),
        };
        sh(ssh
            .args(["-i", self.path("id_ed25519").to_str().unwrap()])
            .args([
                "-o",
                &format!("UserKnownHostsFile={}", known_hosts.display()),
            ])
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
            ])
            .args(["-o", "ConnectTimeout=10"])
            .arg(format!("root@{ip}"))
            .arg(command))
    }

    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.path("pids"))
            .unwrap()
            .lines()
            .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
            .collect()
    }
}

/// Moves the calling thread into the network namespace open as `ns`.
fn setns(ns: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setns takes an open namespace file descriptor and changes only the calling thread.
    match unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Back to the network this thread came from first: `down` removes the slot's namespace.
        if let Some(left) = self.left.borrow_mut().take()
            && let Err(e) = setns(&left)
        {
            eprintln!("cannot return to the thread's own network namespace: {e}");
        }
        let _ = self.cmd(&["down"]).output();
    }
}

impl Lab {
    /// The lab's environment (`lab env`) on a Test: endpoint, credentials, key, known_hosts…
    pub fn env_for(&self, t: &mut Test) {
        let (code, out) = sh(&mut self.cmd(&["env"]));
        assert_eq!(code, 0, "{out}");
        for line in out.lines() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                t.env(k, v);
            }
        }
    }

    /// Runs a `lab` subcommand and asserts it succeeds.
    pub fn must(&self, args: &[&str]) {
        let (code, out) = sh(&mut self.cmd(args));
        assert_eq!(code, 0, "lab {args:?}:\n{out}");
    }

    /// Runs a `lab` subcommand in the slot `slot` (LAB_SLOT) and asserts it succeeds.
    pub fn must_in(&self, slot: &str, args: &[&str]) {
        let (code, out) = sh(self.cmd(args).env("LAB_SLOT", slot));
        assert_eq!(code, 0, "lab {args:?} in slot {slot}:\n{out}");
    }
}

/// Makes addresses unreachable from the runner's namespace (not from the lab's hosts) with
/// prohibit routes, removed when dropped.
pub struct Prohibit(Vec<String>);

impl Prohibit {
    pub fn routes(ips: &[&str]) -> Prohibit {
        for ip in ips {
            let (code, out) =
                sh(Command::new("ip").args(["route", "add", "prohibit", &format!("{ip}/32")]));
            assert_eq!(code, 0, "{out}");
        }
        Prohibit(ips.iter().map(|s| s.to_string()).collect())
    }
}

impl Drop for Prohibit {
    fn drop(&mut self) {
        for ip in &self.0 {
            let _ = Command::new("ip")
                .args(["route", "del", "prohibit", &format!("{ip}/32")])
                .status();
        }
    }
}

/// An ssh-agent listening on `socket`, holding `key`; stopped when dropped.
pub struct Agent {
    pub socket: PathBuf,
}

impl Agent {
    pub fn with_key(socket: PathBuf, key: &std::path::Path) -> Agent {
        let (code, out) = sh(Command::new("ssh-agent").arg("-a").arg(&socket));
        assert_eq!(code, 0, "{out}");
        let agent = Agent { socket };
        let (code, out) = sh(Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &agent.socket));
        assert_eq!(code, 0, "{out}");
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-f", &format!("ssh-agent -a {}", self.socket.display())])
            .status();
    }
}
