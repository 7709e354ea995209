//! `jeeves kubeconfig [--merge]`: the cluster's kubeconfig (saved by the tunnel stage, or
//! the deploy stage when it opens the tunnel itself, and by `jeeves tunnel` and `jeeves backup`;
//! its server the tunnel's local end), by path or merged into the user's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_norway::{Mapping, Value};

use crate::cli::KubeconfigArgs;
use crate::config::Settings;
use crate::exit_code;
use crate::fleet::api_tunnel::kubeconfig_path;
use crate::state::write_private;

pub fn run(settings: &Settings, args: &KubeconfigArgs) -> Result<u8> {
    let saved = std::path::absolute(kubeconfig_path(settings))?;
    let text = match std::fs::read_to_string(&saved) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no kubeconfig at {} yet: run `jeeves up` (its tunnel stage saves it) or `jeeves tunnel`",
            saved.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", saved.display())),
    };
    let server = format!("https://127.0.0.1:{}", settings.tunnel.local_port);
    if !args.merge {
        println!("{}", saved.display());
        eprintln!(
            "its server is {server}, the local end of `jeeves tunnel` (keep it running); use: export KUBECONFIG={}",
            saved.display()
        );
        return Ok(exit_code::SUCCESS);
    }
    let target = user_kubeconfig()?;
    let name = format!("jeeves-{}", settings.name);
    let existing = match std::fs::read_to_string(&target) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", target.display())),
    };
    let merged = merge(existing.as_deref(), &text, &name)
        .with_context(|| format!("cannot merge into {}", target.display()))?;
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_private(&target, merged.as_bytes())?;
    println!(
        "merged context {name} into {} (server {server}: keep `jeeves tunnel` running); use: kubectl --context {name} get nodes",
        target.display()
    );
    Ok(exit_code::SUCCESS)
}

/// The first file of `$KUBECONFIG` (where kubectl writes too), else `~/.kube/config`.
fn user_kubeconfig() -> Result<PathBuf> {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .as_deref()
        .and_then(|v| std::env::split_paths(v).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME").context("HOME is not set: set KUBECONFIG instead")?;
    Ok(Path::new(&home).join(".kube/config"))
}

/// `ours` (one cluster, user and context, as `microk8s config` prints them) renamed to `name`
/// and put into `existing`, replacing only entries of that name. The current context is kept;
/// an empty file gets ours.
fn merge(existing: Option<&str>, ours: &str, name: &str) -> Result<String> {
    let ours: Value = serde_norway::from_str(ours).context("the saved kubeconfig is not YAML")?;
    let mut doc: Mapping = match existing {
        Some(text) if !text.trim().is_empty() => {
            serde_norway::from_str(text).context("the kubeconfig is not a YAML mapping")?
        }
        _ => Mapping::new(),
    };
    doc.entry("apiVersion".into()).or_insert("v1".into());
    doc.entry("kind".into()).or_insert("Config".into());
    for (list, field) in [
        ("clusters", "cluster"),
        ("users", "user"),
        ("contexts", "context"),
    ] {
        let mut entry = ours
            .get(list)
            .and_then(Value::as_sequence)
            .and_then(|s| s.first())
            .and_then(|e| e.get(field))
            .cloned()
            .with_context(|| format!("the saved kubeconfig has no {list}"))?;
        if field == "context" {
            entry["cluster"] = name.into();
            entry["user"] = name.into();
        }
        let mut item = Mapping::new();
        item.insert("name".into(), name.into());
        item.insert(field.into(), entry);
        let seq = doc
            .entry(list.into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        if seq.is_null() {
            *seq = Value::Sequence(Vec::new());
        }
        let seq = seq
            .as_sequence_mut()
            .with_context(|| format!("`{list}` is not a list"))?;
        seq.retain(|e| e.get("name").and_then(Value::as_str) != Some(name));
        seq.push(Value::Mapping(item));
    }
    let current = doc.get("current-context").and_then(Value::as_str);
    if current.is_none_or(str::is_empty) {
        doc.insert("current-context".into(), name.into());
    }
    serde_norway::to_string(&doc).context("cannot write YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0E=\n    server: https://127.0.0.1:16443\n  name: microk8s-cluster\ncontexts:\n- context:\n    cluster: microk8s-cluster\n    user: admin\n  name: microk8s\ncurrent-context: microk8s\nkind: Config\npreferences: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n";

    #[test]
    fn an_empty_file_gets_our_context_as_current() {
        let merged: Value =
            serde_norway::from_str(&merge(None, OURS, "jeeves-x").unwrap()).unwrap();
        assert_eq!(merged["current-context"], "jeeves-x");
        assert_eq!(merged["contexts"][0]["context"]["cluster"], "jeeves-x");
        assert_eq!(merged["users"][0]["user"]["client-key-data"], "S0VZ");
        assert_eq!(
            merged["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:16443"
        );
    }
}
