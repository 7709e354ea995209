//! Finding the stack's instances by the tags terraform/aws sets on them, and reading a host's
//! SSH keys from its console output (`console_host_keys`).

use anyhow::{Context, Result, bail};

use super::describe;

/// Tag keys and the controller's role value, exactly as terraform/aws sets them (a test reads
/// the terraform files to keep the two in step).
pub const TAG_PROJECT: &str = "Project";
pub const TAG_ROLE: &str = "Role";
pub const ROLE_CONTROLLER: &str = "controller";

/// An instance as EC2 describes it (the facts Jeeves reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// The first label of the private DNS name (`ip-10-0-1-10`): the machine's hostname.
    pub hostname: String,
    pub public_ip: String,
    pub private_ip: String,
}

pub struct Ec2 {
    pub(super) client: aws_sdk_ec2::Client,
}

impl Ec2 {
    pub fn new(config: &aws_config::SdkConfig) -> Ec2 {
        Ec2 {
            client: aws_sdk_ec2::Client::new(config),
        }
    }

    /// Every instance DescribeInstances finds with `filters` (NAME, VALUE), all pages.
    async fn describe_instances(
        &self,
        filters: &[(&str, &str)],
    ) -> Result<Vec<aws_sdk_ec2::types::Instance>> {
        use aws_sdk_ec2::types::Filter;
        let mut request = self.client.describe_instances();
        for (name, value) in filters {
            request = request.filters(Filter::builder().name(*name).values(*value).build());
        }
        let mut pages = request.into_paginator().send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(describe)
                .context("EC2 DescribeInstances failed")?;
            for reservation in page.reservations() {
                found.extend(reservation.instances().iter().cloned());
            }
        }
        Ok(found)
    }

    /// The one running instance tagged `Project=<project>` and `Role=controller`.
    pub async fn find_controller(&self, project: &str) -> Result<Instance> {
        let found = self
            .describe_instances(&[
                (&format!("tag:{TAG_PROJECT}"), project),
                (&format!("tag:{TAG_ROLE}"), ROLE_CONTROLLER),
                ("instance-state-name", "running"),
            ])
            .await?;
        let selector =
            format!("{TAG_PROJECT}={project}, {TAG_ROLE}={ROLE_CONTROLLER}, state running");
        // With `[cluster] controllers` 3 or 5 several match: the first is the one whose Name
        // the terraform configuration gives the first controller.
        let first = format!("{project}-controller");
        let named: Vec<_> = found
            .iter()
            .filter(|i| {
                i.tags()
                    .iter()
                    .any(|t| t.key() == Some("Name") && t.value() == Some(first.as_str()))
            })
            .cloned()
            .collect();
        let found = if found.len() > 1 && named.len() == 1 {
            named
        } else {
            found
        };
        match found.as_slice() {
            [] => bail!(
                "no EC2 instance matches {selector}; run `jeeves up --only terraform` to create (or find) the controller"
            ),
            [one] => instance(one),
            many => {
                let ids: Vec<&str> = many.iter().filter_map(|i| i.instance_id()).collect();
                bail!(
                    "{} EC2 instances match {selector}: {}; there must be exactly one (terminate the stray ones, or fix their tags)",
                    ids.len(),
                    ids.join(", ")
                )
            }
        }
    }
}

impl Ec2 {
    /// Every running instance tagged `Project=<project>` and `Role=controller` (with
    /// `[cluster] controllers` 3 or 5, all of them), the first controller first.
    pub async fn find_controllers(&self, project: &str) -> Result<Vec<Instance>> {
        let found = self
            .describe_instances(&[
                (&format!("tag:{TAG_PROJECT}"), project),
                (&format!("tag:{TAG_ROLE}"), ROLE_CONTROLLER),
                ("instance-state-name", "running"),
            ])
            .await?;
        let first = format!("{project}-controller");
        let mut named: Vec<(bool, Instance)> = found
            .iter()
            .map(|i| {
                let is_first = i
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some("Name") && t.value() == Some(first.as_str()));
                Ok((!is_first, instance(i)?))
            })
            .collect::<Result<_>>()?;
        named.sort_by_key(|(later, _)| *later);
        Ok(named.into_iter().map(|(_, i)| i).collect())
    }
}

/// The facts Jeeves reads of a controller instance.
fn instance(one: &aws_sdk_ec2::types::Instance) -> Result<Instance> {
    let id = one.instance_id().unwrap_or_default().to_string();
    let public_ip = one
        .public_ip_address()
        .with_context(|| format!("the controller {id} has no public IP address"))?
        .to_string();
    let private_dns = one.private_dns_name().unwrap_or_default();
    Ok(Instance {
        hostname: private_dns
            .split('.')
            .next()
            .unwrap_or_default()
            .to_string(),
        private_ip: one.private_ip_address().unwrap_or_default().to_string(),
        public_ip,
        id,
    })
}

/// An instance of the stack and its state, as DescribeInstances reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    pub id: String,
    /// The `Name` tag (empty when untagged).
    pub name: String,
    /// The `Role` tag: `controller` or `worker`.
    pub role: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: String,
}

impl Ec2 {
    /// Every instance tagged `Project=<project>` that is not terminated, in any other state.
    pub async fn stack_instances(&self, project: &str) -> Result<Vec<InstanceState>> {
        let instances = self
            .describe_instances(&[(&format!("tag:{TAG_PROJECT}"), project)])
            .await?;
        let mut found = Vec::new();
        for i in &instances {
            let tag = |key: &str| {
                i.tags()
                    .iter()
                    .find(|t| t.key() == Some(key))
                    .and_then(|t| t.value())
                    .unwrap_or_default()
                    .to_string()
            };
            let state = i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            if state == "terminated" {
                continue;
            }
            found.push(InstanceState {
                id: i.instance_id().unwrap_or_default().to_string(),
                name: tag("Name"),
                role: tag(TAG_ROLE),
                state,
            });
        }
        found.sort_by(|a, b| (&a.role, &a.name).cmp(&(&b.role, &b.name)));
        Ok(found)
    }
}

impl Ec2 {
    /// The SSH host keys cloud-init printed on the instance's console (GetConsoleOutput),
    /// polled until the block appears or `timeout` passes. The console output comes through the
    /// authenticated AWS API, so it can pin a key before the first connection.
    pub async fn console_host_keys(
        &self,
        instance_id: &str,
        timeout: std::time::Duration,
    ) -> Result<Vec<(String, String)>> {
        use base64::Engine;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = std::time::Duration::from_secs(2);
        loop {
            let reply = self
                .client
                .get_console_output()
                .instance_id(instance_id)
                .send()
                .await
                .map_err(describe)
                .with_context(|| format!("EC2 GetConsoleOutput for {instance_id} failed"))?;
            let text = reply
                .output()
                .map(|b64| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            let keys = crate::ssh::host_keys::parse_console_keys(&text);
            if !keys.is_empty() {
                return Ok(keys);
            }
            if tokio::time::Instant::now() + delay > deadline {
                bail!(
                    "the console output of {instance_id} shows no SSH host keys after {}s (cloud-init prints them \
                     between -----BEGIN SSH HOST KEY KEYS----- and -----END SSH HOST KEY KEYS----- once it has run); \
                     wait and re-run, or pin the key yourself, or pass --accept-new-host-keys",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(15));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original tool looked for a tag its own provisioning never set: keep the lookup and the
    /// terraform configuration in step.
    #[test]
    fn tag_names_match_the_terraform_configuration() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/terraform/aws");
        let versions = std::fs::read_to_string(format!("{dir}/versions.tf")).unwrap();
        let instances = std::fs::read_to_string(format!("{dir}/instances.tf")).unwrap();
        let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            squash(&versions).contains(&format!("{TAG_PROJECT} = var.project")),
            "terraform/aws must tag every resource {TAG_PROJECT} = var.project"
        );
        let controller = instances
            .split("resource \"aws_instance\" \"controller\"")
            .nth(1)
            .and_then(|rest| rest.split("\nresource ").next())
            .expect("aws_instance.controller");
        assert!(
            squash(controller).contains(&format!("{TAG_ROLE} = \"{ROLE_CONTROLLER}\"")),
            "aws_instance.controller must be tagged {TAG_ROLE} = \"{ROLE_CONTROLLER}\""
        );
    }
}
