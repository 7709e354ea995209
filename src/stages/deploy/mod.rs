//! The deploy stage: Traefik (CRDs, then the resources from `templates/traefik/`, server-side
//! applied with field manager `jeeves`) and the Rocket.Chat Helm release, through the tunnel.
//!
//! Every kubectl and helm call gets the tunnel's kubeconfig (`--kubeconfig` and `KUBECONFIG`),
//! never the user's default context. Nothing is applied when nothing changed: the live Traefik
//! objects carry the SHA-256 of what was applied (annotation `jeeves.io/manifests-sha256`) and a
//! server-side `kubectl diff` finds changes made to them since; the release's description
//! carries the SHA-256 of its values, and the MongoDB secret is compared in memory. Mongo URIs
//! reach kubectl on standard input only, never an argument or a file.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::config::Settings;
use crate::process::{self, Output};
use crate::report::Change;
use crate::ssh::HostKeyPolicy;
use crate::stage::{Stage, StageContext};
use crate::stage_name::StageName;
use crate::state::write_private;
use crate::templates::{ROCKETCHAT_VALUES, TemplateContext, Templates};

mod release;
mod routes;
mod secret;

use release::Recovery;
use secret::MongoSecret;

pub const HASH_ANNOTATION: &str = "jeeves.io/manifests-sha256";
const FIELD_MANAGER: &str = "jeeves";
/// `kubectl apply` (or `diff`) server-side as Jeeves' field manager; the file (or `-`) follows.
fn server_side(verb: &str) -> [&str; 6] {
    [
        verb,
        "--server-side",
        "--field-manager",
        FIELD_MANAGER,
        "--force-conflicts",
        "-f",
    ]
}

/// The objects a `kubectl diff` reports, from its `diff -u -N LIVE/<object> MERGED/<object>`
/// headers (`apps.v1.Deployment.traefik.traefik`: group.version.Kind.namespace.name).
fn drifted(diff: &str) -> Vec<String> {
    diff.lines()
        .filter(|l| l.starts_with("diff "))
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .collect()
}

/// The files the stage hands to kubectl and helm (no secrets in any of them).
struct Rendered {
    manifests: PathBuf,
    /// Objects in the manifests.
    objects: usize,
    manifests_sha: String,
    values: PathBuf,
    extra_values: Option<PathBuf>,
    values_sha: String,
    crds: String,
    /// The manifests hold IngressRoutes, whose backends must exist once the release is up.
    routes: bool,
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn render(settings: &Settings) -> Result<Rendered> {
    let templates = Templates::load(&settings.templates_dir)?;
    let ctx = TemplateContext::new(settings);
    let mut manifests = String::new();
    for name in templates.traefik_names() {
        let text = templates.render(name, &ctx)?;
        manifests.push_str(&format!("---\n# {name}\n{}\n", text.trim_end()));
    }
    let objects = manifests
        .split("\n---")
        .filter(|doc| doc.lines().any(|l| l.starts_with("kind:")))
        .count();
    // Absolute already when local (settings resolve it against the pipeline file).
    let crds = settings.traefik.crds.clone();
    // A pinned URL names its content; a local file is hashed by content.
    let crds_id = if crds.starts_with("https://") {
        crds.clone()
    } else {
        sha256(&std::fs::read(&crds).with_context(|| format!("cannot read {crds} (traefik.crds)"))?)
    };
    let values = templates.render(ROCKETCHAT_VALUES, &ctx)?;
    let extra = crate::templates::extra_values(settings)?;

    let dir = settings.state_dir.join("deploy");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let manifests_path = dir.join("traefik.yaml");
    write_private(&manifests_path, manifests.as_bytes())?;
    let values_path = dir.join("rocketchat-values.yaml");
    write_private(&values_path, values.as_bytes())?;
    let extra_path = match &extra {
        Some(text) => {
            let p = dir.join(crate::templates::EXTRA_VALUES);
            write_private(&p, text.as_bytes())?;
            Some(p)
        }
        None => None,
    };
    let chart = format!(
        "{} {} {} {}",
        settings.helm.repo,
        settings.helm.chart,
        settings.helm.version,
        settings.helm.timeout.as_secs()
    );
    Ok(Rendered {
        manifests: manifests_path,
        objects,
        manifests_sha: sha256(format!("{crds_id}\n{manifests}").as_bytes()),
        values: values_path,
        extra_values: extra_path,
        values_sha: sha256(format!("{chart}\n{values}\n{}", extra.unwrap_or_default()).as_bytes()),
        crds,
        routes: manifests.contains("\nkind: IngressRoute"),
    })
}

/// One API request of kubectl's.
const REQUEST_TIMEOUT: &str = "60s";

/// kubectl and helm, always with the tunnel's kubeconfig.
struct Tools {
    kubectl: PathBuf,
    helm: PathBuf,
    kubeconfig: PathBuf,
    /// Any one call: `helm.timeout` (helm's own `--timeout` and kubectl's waits use it) and a
    /// margin for helm to roll back.
    deadline: process::Deadline,
}

impl Tools {
    fn new(settings: &Settings, kubeconfig: PathBuf) -> Result<Tools> {
        Ok(Tools {
            kubectl: process::find_tool(&settings.tools.kubectl, "tools.kubectl")?,
            helm: process::find_tool(&settings.tools.helm, "tools.helm")?,
            kubeconfig: std::path::absolute(kubeconfig)?,
            deadline: process::Deadline {
                within: settings.helm.timeout + std::time::Duration::from_secs(120),
                setting: "helm.timeout",
            },
        })
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("HELM_KUBECONTEXT")
            .env_remove("HELM_KUBETOKEN")
            .env_remove("HELM_KUBEAPISERVER");
        cmd
    }

    /// kubectl: one API request may take `REQUEST_TIMEOUT` (`--request-timeout`, except for
    /// the commands that wait with their own `--timeout`), the command `helm.timeout` at most.
    async fn kubectl(&self, cx: &StageContext<'_>, args: &[&str]) -> Result<Output> {
        let waits =
            matches!(args.first(), Some(&"wait")) || args.starts_with(&["rollout", "status"]);
        let mut cmd = self.command(&self.kubectl, args);
        if !waits {
            cmd.arg(format!("--request-timeout={REQUEST_TIMEOUT}"));
        }
        process::run(
            &mut cmd,
            StageName::Deploy,
            cx.reporter,
            self.deadline,
            |_| {},
        )
        .await
    }

    async fn helm(&self, cx: &StageContext<'_>, args: &[&str]) -> Result<Output> {
        process::run(
            &mut self.command(&self.helm, args),
            StageName::Deploy,
            cx.reporter,
            self.deadline,
            |l| {
                cx.reporter.log(
                    Some(StageName::Deploy),
                    crate::report::Level::Output,
                    l.to_string(),
                )
            },
        )
        .await
    }

    /// `kubectl apply --server-side` of a document given on standard input.
    async fn apply_stdin(&self, input: Vec<u8>) -> Result<Output> {
        let mut cmd = self.command(&self.kubectl, &[&server_side("apply")[..], &["-"]].concat());
        cmd.arg(format!("--request-timeout={REQUEST_TIMEOUT}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("cannot start kubectl")?;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(&input).await?;
        drop(stdin);
        // Bounded like every other call; the child is killed when the timeout drops it.
        let out = tokio::time::timeout(self.deadline.within, child.wait_with_output())
            .await
            .with_context(|| {
                format!(
                    "`kubectl apply` ran longer than {}s ({})",
                    self.deadline.within.as_secs(),
                    self.deadline.setting
                )
            })??;
        Ok(Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

fn check(out: Output, what: &str) -> Result<Output> {
    if out.status.success() {
        Ok(out)
    } else {
        bail!(
            "{what} failed (exit {}):\n{}",
            out.status.code().unwrap_or(-1),
            out.tail(20)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    Current,
    Install,
    Upgrade,
}

struct Plan {
    rendered: Rendered,
    traefik: bool,
    /// The MongoDB secret to apply (it differs from the live one, or is missing).
    secret: Option<MongoSecret>,
    /// The secret exists and changes: pods read it only when they start, so they must roll.
    secret_changes: bool,
    /// What an interrupted or failed helm left, to undo before the upgrade.
    recovery: Option<Recovery>,
    release: Release,
}

#[derive(Default)]
pub struct DeployStage {
    plan: Option<Plan>,
    tools: Option<Tools>,
}

/// The tunnel's kubeconfig, opening the tunnel when this run has not (`up --only deploy`).
async fn ensure_tunnel(cx: &mut StageContext<'_>) -> Result<PathBuf> {
    let path = super::tunnel::kubeconfig_path(cx.settings);
    if cx.tunnel.is_some() && path.exists() {
        return Ok(path);
    }
    if let Some(c) = &cx.state.inventory.controller {
        super::host_pinning::pin_new_hosts(cx, std::slice::from_ref(c)).await?;
    }
    let settings = cx.settings.clone();
    let inv = cx.state.inventory.clone();
    let policy: HostKeyPolicy = cx.host_keys;
    let scratch = cx.state_dir.file("kubeconfig.probe");
    let log = super::tunnel::report_to(cx.reporter);
    let opened = tokio::task::spawn_blocking(move || {
        super::tunnel::open(&settings, &inv, policy, &scratch, log)
    })
    .await
    .context("the tunnel thread panicked")??;
    write_private(&path, opened.kubeconfig.as_bytes())?;
    cx.info(format!(
        "tunnel {} → the MicroK8s API opened for this stage",
        opened.tunnel.local
    ));
    *cx.tunnel = Some(opened.tunnel);
    Ok(path)
}

#[async_trait]
impl Stage for DeployStage {
    fn name(&self) -> StageName {
        StageName::Deploy
    }

    async fn probe(&mut self, cx: &mut StageContext<'_>) -> Result<Vec<Change>> {
        let rendered = render(cx.settings)?;
        let kubeconfig = ensure_tunnel(cx).await?;
        let tools = Tools::new(cx.settings, kubeconfig)?;
        let s = cx.settings;
        let mut changes = Vec::new();

        // Traefik: every rendered object present and carrying this rendering's hash.
        let manifests = rendered.manifests.display().to_string();
        let jsonpath = format!(
            "jsonpath={{range .items[*]}}{{.metadata.annotations.{}}}{{\"\\n\"}}{{end}}",
            HASH_ANNOTATION.replace('.', "\\.")
        );
        let live = tools
            .kubectl(cx, &["get", "-f", &manifests, "-o", &jsonpath])
            .await?;
        let hashes: Vec<&str> = live.stdout.lines().collect();
        let mut traefik = !(live.status.success()
            && hashes.len() == rendered.objects
            && hashes.iter().all(|h| *h == rendered.manifests_sha));
        if !traefik {
            // The hash says this rendering was applied; a server-side diff says whether someone
            // changed the live objects since (`kubectl edit`, `set image`, a deleted field).
            // Exit 0: no differences, 1: differences, >1: kubectl or diff failed.
            let mut args = server_side("diff").to_vec();
            args.push(&manifests);
            let diff = tools.kubectl(cx, &args).await?;
            match diff.status.code() {
                Some(0) => {}
                Some(1) => {
                    traefik = true;
                    changes.push(Change::new(
                        "apply",
                        format!(
                            "Traefik: live objects changed outside Jeeves ({}); re-apply the rendered manifests",
                            drifted(&diff.stdout).join(", ")
                        ),
                    ));
                }
                _ => cx.warn(format!(
                    "cannot compare the live Traefik objects with the rendered manifests (kubectl diff exit {}): {}; trusting the {HASH_ANNOTATION} annotations",
                    diff.status.code().unwrap_or(-1),
                    diff.tail(5)
                )),
            }
        } else {
            changes.push(Change::new(
                "apply",
                format!(
                    "Traefik: CRDs from {}, {} object(s) from templates/traefik (server-side, field manager {FIELD_MANAGER}){}",
                    rendered.crds,
                    rendered.objects,
                    if live.status.success() {
                        ", the live ones differ"
                    } else {
                        ""
                    }
                ),
            ));
        }

        // The release: this chart version, these values, deployed.
        let history = tools
            .helm(
                cx,
                &[
                    "history",
                    &s.helm.release,
                    "-n",
                    &s.helm.namespace,
                    "--max",
                    "50",
                    "-o",
                    "json",
                ],
            )
            .await?;
        // helm names a chart `<Chart.yaml name>-<version>`, from a repository or a path alike.
        let chart = format!("{}-{}", crate::chart::CHART_NAME, s.helm.version);
        let revs = if history.status.success() {
            release::parse(&history.stdout)
                .with_context(|| format!("reading the history of release {}", s.helm.release))?
        } else if history.stderr.contains("not found") {
            Vec::new()
        } else {
            bail!(
                "`helm history {}` failed:\n{}",
                s.helm.release,
                history.tail(10)
            );
        };
        let recovery = release::recovery(&revs);
        let current = revs.last().is_some_and(|last| {
            last.status == "deployed"
                && last.chart == chart
                && last
                    .description
                    .contains(&format!("values-sha256={}", rendered.values_sha))
        });
        let release = match recovery {
            _ if revs.is_empty() => Release::Install,
            Some(Recovery::Uninstall) => Release::Install,
            _ if current => Release::Current,
            _ => Release::Upgrade,
        };
        if let (Some(r), Some(last)) = (recovery, revs.last()) {
            changes.push(Change::new(
                "recover",
                match r {
                    Recovery::Rollback(rev) => format!(
                        "helm release {}: revision {} is {} (a helm that was interrupted); roll back to revision {rev}, the last deployed",
                        s.helm.release, last.revision, last.status
                    ),
                    Recovery::Uninstall => format!(
                        "helm release {}: revision {} is {} and nothing was ever deployed; uninstall it, then install",
                        s.helm.release, last.revision, last.status
                    ),
                },
            ));
        }
        // The MongoDB secret, compared in memory.
        let out = tools
            .kubectl(
                cx,
                &[
                    "get",
                    "secret",
                    &s.helm.mongodb_secret,
                    "-n",
                    &s.helm.namespace,
                    "-o",
                    "json",
                ],
            )
            .await?;
        let live = if out.status.success() {
            let doc: serde_json::Value = serde_json::from_str(&out.stdout).with_context(|| {
                format!(
                    "`kubectl get secret {}` answered something that is not JSON",
                    s.helm.mongodb_secret
                )
            })?;
            secret::decode(&doc)
        } else if out.stderr.contains("NotFound") {
            Default::default()
        } else {
            bail!(
                "cannot read secret {}/{}:\n{}",
                s.helm.namespace,
                s.helm.mongodb_secret,
                out.tail(10)
            );
        };
        let mut secret = None;
        if let Some(wanted) = MongoSecret::desired(s, &live, release == Release::Install)?
            && !wanted.matches(&live)
        {
            changes.push(Change::new(
                if out.status.success() {
                    "update"
                } else {
                    "create"
                },
                format!(
                    "secret {}/{} ({}; {})",
                    s.helm.namespace,
                    s.helm.mongodb_secret,
                    wanted.keys(),
                    if s.helm.bundled_mongodb {
                        "credentials of the bundled MongoDB, generated once"
                    } else {
                        "from the environment"
                    }
                ),
            ));
            secret = Some(wanted);
        }
        let secret_changes = secret.is_some() && out.status.success();

        if !traefik
            && secret.is_none()
            && release == Release::Current
            && rendered.routes
            && !cx.force
        {
            // Nothing to apply: the routes must still lead somewhere. (`--force deploy` applies
            // first and checks after: that is how a deleted Service comes back.)
            check_routes(&tools, cx, &rendered).await?;
        }
        match release {
            Release::Current => {}
            Release::Install => changes.push(Change::new(
                "install",
                format!(
                    "helm release {} ({chart}) in {}",
                    s.helm.release, s.helm.namespace
                ),
            )),
            Release::Upgrade => changes.push(Change::new(
                "upgrade",
                format!(
                    "helm release {} to {chart} with the rendered values in {}",
                    s.helm.release, s.helm.namespace
                ),
            )),
        }
        self.tools = Some(tools);
        self.plan = Some(Plan {
            rendered,
            traefik,
            secret,
            secret_changes,
            recovery,
            release,
        });
        Ok(changes)
    }

    async fn apply(&mut self, cx: &mut StageContext<'_>) -> Result<()> {
        let plan = self.plan.take().context("apply without probe")?;
        let tools = self.tools.take().context("apply without probe")?;
        let s = cx.settings;
        let r = &plan.rendered;
        let manifests = r.manifests.display().to_string();
        let force = cx.force;

        if plan.traefik || force {
            check(
                tools
                    .kubectl(
                        cx,
                        &[&server_side("apply")[..], &[r.crds.as_str()]].concat(),
                    )
                    .await?,
                "applying the Traefik CRDs",
            )?;
            check(
                tools
                    .kubectl(
                        cx,
                        &[
                            "wait",
                            "--for",
                            "condition=established",
                            "--timeout",
                            "120s",
                            "-f",
                            &r.crds,
                        ],
                    )
                    .await?,
                "waiting for the Traefik CRDs to be Established",
            )?;
            cx.host("traefik", "CRDs established");
            check(
                tools
                    .kubectl(
                        cx,
                        &[&server_side("apply")[..], &[manifests.as_str()]].concat(),
                    )
                    .await?,
                &format!("applying the Traefik resources ({manifests})"),
            )?;
            let annotation = format!("{HASH_ANNOTATION}={}", r.manifests_sha);
            check(
                tools
                    .kubectl(
                        cx,
                        &["annotate", "--overwrite", "-f", &manifests, &annotation],
                    )
                    .await?,
                "recording the applied manifests' hash",
            )?;
            let timeout = format!("--timeout={}s", s.helm.timeout.as_secs());
            check(
                tools
                    .kubectl(
                        cx,
                        &[
                            "rollout",
                            "status",
                            "deployment/traefik",
                            "-n",
                            &s.traefik.namespace,
                            &timeout,
                        ],
                    )
                    .await?,
                "waiting for the Traefik deployment to roll out",
            )?;
            cx.host(
                "traefik",
                format!("{} object(s) applied, rolled out", r.objects),
            );
        }

        if let Some(secret) = &plan.secret {
            check(
                tools
                    .apply_stdin(serde_json::to_vec(&secret.document(s))?)
                    .await?,
                &format!(
                    "applying secret {}/{}",
                    s.helm.namespace, s.helm.mongodb_secret
                ),
            )?;
            cx.host(
                s.helm.mongodb_secret.clone(),
                format!("MongoDB secret applied ({})", secret.keys()),
            );
        }

        if let Some(recovery) = plan.recovery {
            let timeout = format!("{}s", s.helm.timeout.as_secs());
            let ns = s.helm.namespace.as_str();
            let rel = s.helm.release.as_str();
            let (args, what) = match recovery {
                Recovery::Rollback(rev) => {
                    let rev = rev.to_string();
                    let args: Vec<String> = [
                        "rollback",
                        rel,
                        &rev,
                        "-n",
                        ns,
                        "--wait",
                        "--timeout",
                        &timeout,
                    ]
                    .map(String::from)
                    .to_vec();
                    (args, format!("rolled back to revision {rev}"))
                }
                Recovery::Uninstall => (
                    ["uninstall", rel, "-n", ns, "--wait", "--timeout", &timeout]
                        .map(String::from)
                        .to_vec(),
                    "uninstalled (nothing had been deployed)".to_string(),
                ),
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            check(
                tools.helm(cx, &args).await?,
                &format!("recovering release {rel} ({})", args[0]),
            )?;
            cx.host(rel.to_string(), what);
        }
        if plan.release != Release::Current || force {
            let timeout = format!("{}s", s.helm.timeout.as_secs());
            let description = format!("jeeves values-sha256={}", r.values_sha);
            let values = r.values.display().to_string();
            let local = s.helm.local_chart.as_ref().map(|p| p.display().to_string());
            let mut args = vec!["upgrade", "--install", s.helm.release.as_str()];
            match &local {
                // A chart on disk is used as it is (config checks hold it to helm.version).
                Some(path) => args.push(path.as_str()),
                None => args.extend([
                    s.helm.chart.as_str(),
                    "--repo",
                    s.helm.repo.as_str(),
                    "--version",
                    s.helm.version.as_str(),
                ]),
            }
            args.extend([
                "-n",
                s.helm.namespace.as_str(),
                "--create-namespace",
                "-f",
                values.as_str(),
            ]);
            let extra = r.extra_values.as_ref().map(|p| p.display().to_string());
            if let Some(extra) = &extra {
                args.extend(["-f", extra.as_str()]);
            }
            args.extend([
                "--wait",
                "--atomic",
                "--timeout",
                timeout.as_str(),
                "--description",
                description.as_str(),
            ]);
            cx.host(
                s.helm.release.clone(),
                format!(
                    "helm upgrade --install {} {}-{} (waits up to {timeout})",
                    s.helm.release, s.helm.chart, s.helm.version
                ),
            );
            check(
                tools.helm(cx, &args).await?,
                &format!("helm upgrade --install of release {}", s.helm.release),
            )?;
            cx.host(s.helm.release.clone(), "release deployed");
        }
        if plan.secret_changes {
            // Rocket.Chat reads MONGO_URL from the secret when a pod starts: a changed database
            // URI reaches it only through new pods. Every Deployment of the release rolls.
            let selector = format!("app.kubernetes.io/instance={}", s.helm.release);
            check(
                tools
                    .kubectl(
                        cx,
                        &[
                            "rollout",
                            "restart",
                            "deployment",
                            "-l",
                            &selector,
                            "-n",
                            &s.helm.namespace,
                        ],
                    )
                    .await?,
                "restarting the release's Deployments after the MongoDB secret changed",
            )?;
            cx.host(
                s.helm.release.clone(),
                "Deployments restarted: their pods read the changed MongoDB secret",
            );
        }
        if plan.traefik || plan.release != Release::Current || force {
            check_routes(&tools, cx, r).await?;
            cx.host(
                "traefik",
                "every IngressRoute backend is a live Service with its port",
            );
        }
        Ok(())
    }
}

/// Every IngressRoute backend is a live Service with the port the route names (`routes.rs`).
async fn check_routes(tools: &Tools, cx: &StageContext<'_>, r: &Rendered) -> Result<()> {
    if !r.routes {
        return Ok(());
    }
    let manifests = r.manifests.display().to_string();
    let json = |out: Output, what: &str| -> Result<serde_json::Value> {
        let out = check(out, what)?;
        serde_json::from_str(&out.stdout).with_context(|| format!("{what}: the answer is not JSON"))
    };
    let applied = json(
        tools
            .kubectl(cx, &["get", "-f", &manifests, "-o", "json"])
            .await?,
        "reading the applied IngressRoutes",
    )?;
    let backends = routes::backends(&applied);
    let mut services = Vec::new();
    for ns in routes::namespaces(&backends) {
        services.push(json(
            tools
                .kubectl(cx, &["get", "services", "-n", ns, "-o", "json"])
                .await?,
            &format!("listing the Services in {ns}"),
        )?);
    }
    let broken = routes::unresolved(&backends, &services);
    if !broken.is_empty() {
        bail!(
            "Traefik would answer 404: {}. The IngressRoute template (templates/traefik/) and the chart disagree on the Service; `jeeves render` shows what Jeeves applies",
            broken.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One field manager applies the app's Namespace twice (with the Traefik resources and with
    /// the secret): the two must not differ, or each apply removes what the other set.
    #[test]
    fn the_secrets_namespace_is_the_templates_namespace() {
        let s = Settings::load(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/lab.toml")),
            &crate::config::Env::from_pairs([("MONGO_URI", "m"), ("MONGO_OPLOG_URI", "o")]),
        )
        .unwrap();
        let templates = Templates::load(&s.templates_dir).unwrap();
        let name = templates
            .traefik_names()
            .find(|n| n.contains("namespaces"))
            .unwrap()
            .to_string();
        let text = templates.render(&name, &TemplateContext::new(&s)).unwrap();
        let doc = text
            .split("---")
            .find(|d| d.contains(&format!("name: {}\n", s.helm.namespace)))
            .expect("the app's Namespace in the template");
        let labels: serde_json::Map<String, serde_json::Value> = doc
            .lines()
            .skip_while(|l| l.trim() != "labels:")
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .filter_map(|l| l.trim().split_once(": "))
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        assert!(!labels.is_empty(), "{doc}");
        let secret = MongoSecret::desired(&s, &Default::default(), true)
            .unwrap()
            .unwrap()
            .document(&s);
        assert_eq!(
            secret["items"][0]["metadata"],
            serde_json::json!({"name": s.helm.namespace, "labels": labels})
        );
    }

    #[test]
    fn drift_names_the_objects_kubectl_diff_reports() {
        let out = "diff -u -N /tmp/LIVE-1266/apps.v1.Deployment.traefik.traefik /tmp/MERGED-1266/apps.v1.Deployment.traefik.traefik
--- /tmp/LIVE-1266/apps.v1.Deployment.traefik.traefik\t2026-11-22 18:25:19
+++ /tmp/MERGED-1266/apps.v1.Deployment.traefik.traefik\t2026-11-22 18:25:19
@@ -1,3 +1,3 @@
-        image: traefik:tampered
+        image: docker.io/library/traefik:v3.3.4
diff -u -N /tmp/LIVE-1266/v1.Namespace..psautoinfra /tmp/MERGED-1266/v1.Namespace..psautoinfra
";
        assert_eq!(
            drifted(out),
            [
                "apps.v1.Deployment.traefik.traefik",
                "v1.Namespace..psautoinfra"
            ]
        );
        assert!(drifted("").is_empty());
    }
}
