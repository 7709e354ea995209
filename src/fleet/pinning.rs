//! Pinning new hosts' SSH keys from their EC2 console output before the first connection.

use anyhow::{Context, Result};

use crate::aws::ec2::Ec2;
use crate::config::SshSettings;
use crate::ssh::host_keys;
use crate::state::Host;

/// For every host that has an EC2 instance id and no entry in known_hosts yet, fetches the
/// keys cloud-init printed on its console (through the AWS API, polled up to the SSH connect
/// timeout) and adds them; `say(host, message)` reports each. Hosts without an instance id
/// (the lab) are left to strict checking. (The caller skips this with
/// `--accept-new-host-keys` or `ssh.pin_from_console = false`.)
pub(super) async fn pin_new_hosts(
    ssh: &SshSettings,
    hosts: &[Host],
    say: &(dyn Fn(&str, String) + Sync),
) -> Result<()> {
    // A rebuilt host behind the same address (an Elastic IP): its keys were pinned from
    // another instance's console. Those go; the new instance's console is the trusted source,
    // as for a new host. (The same instance with another key still stops the run.)
    for h in hosts.iter().filter(|h| h.id.starts_with("i-")) {
        let pinned = host_keys::pinned_instances(&ssh.known_hosts, &h.public_ip, ssh.port);
        if !pinned.is_empty() && !pinned.contains(&h.id) {
            host_keys::forget(&ssh.known_hosts, &h.public_ip, ssh.port)?;
            say(
                &h.hostname,
                format!(
                    "{} is now instance {} (its keys were pinned from {}): re-pinning from the new instance's console",
                    h.public_ip,
                    h.id,
                    pinned.join(", ")
                ),
            );
        }
    }
    let new: Vec<&Host> = hosts
        .iter()
        .filter(|h| h.id.starts_with("i-"))
        .filter(|h| !host_keys::has_entry(&ssh.known_hosts, &h.public_ip, ssh.port))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let config = crate::aws::sdk_config().await;
    let mut tasks = tokio::task::JoinSet::new();
    for h in &new {
        let ec2 = Ec2::new(&config);
        let id = h.id.clone();
        let timeout = ssh.connect_timeout;
        tasks.spawn(async move { (id.clone(), ec2.console_host_keys(&id, timeout).await) });
    }
    let mut found = std::collections::BTreeMap::new();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (id, keys) = joined.context("a console-output task panicked")?;
        match keys {
            Ok(keys) => {
                found.insert(id, keys);
            }
            Err(e) => errors.push(format!("{id}: {e:#}")),
        }
    }
    for h in &new {
        if let Some(keys) = found.get(&h.id) {
            let added = host_keys::pin(
                &ssh.known_hosts,
                &h.public_ip,
                ssh.port,
                keys,
                &format!("{} {} {}", h.hostname, h.id, host_keys::PINNED_BY),
            )?;
            say(
                &h.hostname,
                format!(
                    "pinned {added} host key(s) from the console output of {} into {}",
                    h.id,
                    ssh.known_hosts.display()
                ),
            );
        }
    }
    if !errors.is_empty() {
        anyhow::bail!(
            "cannot pin the SSH host keys of {} host(s); nothing was run:\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
    Ok(())
}
