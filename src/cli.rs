//! Command-line definitions only: parsing produces plain data, nothing here does work.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::stage_name::StageName;

#[derive(Debug, Parser)]
#[command(
    name = "jeeves",
    version,
    about = "Stands up Rocket.Chat (microservices) on MicroK8s on AWS: terraform, bootstrap, tls, tunnel, deploy, dns.",
    after_help = "Exit codes: 0 success, 1 a stage failed, 2 usage or configuration error (nothing remote touched), 3 another run holds the lock."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Pipeline file (TOML).
    #[arg(
        short,
        long,
        global = true,
        default_value = "pipelines/rocketchat.toml",
        env = "JEEVES_PIPELINE"
    )]
    pub pipeline: PathBuf,
    /// Environment file loaded before reading the environment [default: .env, which may be
    /// missing; a file named here must exist].
    #[arg(long, global = true)]
    pub env_file: Option<PathBuf>,
    /// How progress is shown. auto: progress bars on a terminal, plain lines otherwise or when CI is set.
    #[arg(long, global = true, value_enum, default_value_t = OutputMode::Auto)]
    pub output: OutputMode,
    /// Also write a JUnit XML report (one testcase per stage) to this file.
    #[arg(long, global = true)]
    pub junit: Option<PathBuf>,
    /// Show remote and tool output as it arrives.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Wait this long for another run's lock (e.g. 30s, 5m) instead of exiting 3 at once.
    #[arg(long, global = true, value_parser = parse_duration, default_value = "0s")]
    pub lock_timeout: Duration,
}

pub use crate::report::OutputMode;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: probe each stage, plan, apply what changed.
    Up(UpArgs),
    /// Probe every stage and print what `up` would change; changes nothing. `--out FILE` saves
    /// the plan for `up --plan FILE`.
    Plan(PlanArgs),
    /// Print a plan saved by `plan --out`, replacements first.
    Show(ShowArgs),
    /// Inventory, per-stage last result and time, lock holder if any.
    Status,
    /// Read-only health report of the live stack (exit 0 healthy, 1 when a check fails).
    Check,
    /// Tear the stack down: the DNS record, then terraform destroy.
    Down(DownArgs),
    /// Stop every instance of the stack (EC2 StopInstances); the disks and the addresses of
    /// Elastic IPs are kept.
    Stop(StopArgs),
    /// Start the stack's instances, wait until they run and SSH answers, then repair: the whole
    /// pipeline as `up` runs it, and pods left over from before the stop are removed.
    Start(StartArgs),
    /// Render every template with the current configuration.
    Render(RenderArgs),
    /// Hold the tunnel to the MicroK8s API open in the foreground.
    Tunnel,
    /// Check tools, SSH key, AWS credentials and the configuration.
    Doctor,
    /// Write a pipeline file, .env and the terraform module into a new directory.
    Init(InitArgs),
    /// Print Jeeves' version (and the git commit it was built from, when known).
    Version,
    /// Print a shell completion script: `jeeves completion bash > /etc/bash_completion.d/jeeves`.
    Completion(CompletionArgs),
    /// Print the path of a kubeconfig for the cluster (reached through `jeeves tunnel`), or
    /// merge it into ~/.kube/config.
    Kubeconfig(KubeconfigArgs),
    /// An interactive shell on a host (controller, worker-N or a hostname), with its pinned key.
    Ssh(SshArgs),
    /// Print the last run's log, or the log of the run named.
    Logs(LogsArgs),
    /// Run a MongoDB backup now and wait for it (needs [backup]); `--list`: the archives kept.
    Backup(BackupArgs),
    /// Restore a MongoDB backup archive over the database (newest by default), Rocket.Chat
    /// stopped meanwhile (needs [backup]; asks for the pipeline name unless --yes).
    Restore(RestoreArgs),
    /// Break the S3 state lock left by a run that died (its id is in the lock error and in
    /// `status`). Refused when the id is not the current lock's.
    Unlock(UnlockArgs),
}

#[derive(Debug, Args, Default)]
pub struct InitArgs {
    /// The new directory (created; existing files in it are never overwritten).
    pub dir: PathBuf,
    /// The chat's public name (tls.domain), e.g. chat.example.com.
    #[arg(long)]
    pub domain: Option<String>,
    /// The AWS region of the stack (terraform variables and the state backend follow it).
    #[arg(long)]
    pub region: Option<String>,
    /// The ACME account e-mail (tls.email).
    #[arg(long)]
    pub email: Option<String>,
    /// The SSH private key for the nodes (ssh.key_path); its `.pub` beside it is read.
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// Who may SSH to the nodes (terraform admin_cidr), e.g. 203.0.113.7/32.
    #[arg(long)]
    pub admin_cidr: Option<String>,
    /// The S3 bucket of terraform's state (terraform.backend_config.bucket).
    #[arg(long)]
    pub state_bucket: Option<String>,
    /// Ask nothing: missing values take their defaults (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// Merge the cluster, user and context into $KUBECONFIG (its first file) or ~/.kube/config,
    /// keeping the other contexts.
    #[arg(long)]
    pub merge: bool,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// controller, worker-N (1-based, in inventory order) or a hostname from the inventory.
    pub host: String,
    /// A command to run instead of a shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A log's file name, or part of it (e.g. a date); default: the newest.
    pub run: Option<String>,
    /// List the logs instead of printing one.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The lock's id, as the lock error or `jeeves status` shows it.
    pub lock_id: String,
}

#[derive(Debug, Args, Default, Clone)]
pub struct SelectArgs {
    /// Run only these stages (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub only: Vec<StageName>,
    /// Start at this stage; the ones before it are skipped.
    #[arg(long, value_name = "STAGE")]
    pub from: Option<StageName>,
    /// Skip these stages (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub skip: Vec<StageName>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Apply these stages even when their probe finds nothing to change (repeatable). Forced,
    /// bootstrap also logs in to every worker, even those the cluster vouches for.
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<StageName>,
    /// Trust hosts whose keys are not in known_hosts yet, and pin them (trust on first use).
    /// A changed key is still refused.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Apply a terraform plan that replaces or destroys resources without asking (for Jenkins;
    /// on a terminal `up` asks instead, elsewhere it refuses with exit 2).
    #[arg(long)]
    pub allow_replace: bool,
    /// Roll the release to an older Rocket.Chat (chart appVersion) than the one running. Its
    /// database migrations ran forward and are not undone: restore a backup from before the
    /// upgrade instead where you can.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Apply a plan saved by `plan --out FILE`, exactly: its stages, terraform's saved plan
    /// file, and nothing else. Refused (exit 2, nothing applied) when a fresh plan differs from
    /// it or the settings moved; its replacements (and a downgrade planned with
    /// --allow-downgrade) were approved and need no --allow-replace.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["only", "from", "skip", "force", "allow_replace", "allow_downgrade"])]
    pub plan: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved by `jeeves plan --out FILE`.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Exit 0 when nothing would change, 2 when changes are pending, 1 on an error (as
    /// `terraform plan -detailed-exitcode`).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to FILE (mode 0600) for `jeeves up --plan FILE`: terraform's plan file and
    /// every stage's planned changes, with a digest of the settings they came from.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Plan a move to an older Rocket.Chat than the one running (as `up --allow-downgrade`).
    #[arg(long)]
    pub allow_downgrade: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Leave the DNS record in place (e.g. when the zone is managed elsewhere); with 3 or 5
    /// controllers, their records and Route 53 health checks too.
    #[arg(long)]
    pub keep_dns: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Trust hosts whose keys are not in known_hosts yet, and pin them (as `up`).
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Only list the archives on the backup volume (names, start times, sizes).
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive's name, as `jeeves backup --list` shows it (default: the newest).
    pub archive: Option<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Directory to write the rendered files to (default: the state directory's `rendered/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 30s or 5m: {e}"))
}
