//! Stopping and starting the stack's instances (StopInstances, StartInstances) and reading their
//! power state (DescribeInstances), by instance id.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::error::DisplayErrorContext;

use super::describe;
use super::ec2::Ec2;

/// An instance's power state as EC2 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Power {
    pub id: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down` or `terminated`.
    pub state: String,
    /// None while stopped: an instance without an Elastic IP loses its public address.
    pub public_ip: Option<String>,
}

impl Ec2 {
    /// The power state of each of `ids`, in the order given. An id EC2 does not know fails the
    /// call, naming it (`InvalidInstanceID.NotFound`).
    pub async fn power(&self, ids: &[String]) -> Result<Vec<Power>> {
        let reply = self
            .client
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(describe)
            .with_context(|| format!("EC2 DescribeInstances for {} failed", ids.join(", ")))?;
        let mut found: Vec<Power> = reply
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| Power {
                id: i.instance_id().unwrap_or_default().to_string(),
                state: i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_else(|| "unknown".into()),
                public_ip: i.public_ip_address().map(str::to_string),
            })
            .collect();
        found.sort_by_key(|p| ids.iter().position(|id| *id == p.id));
        Ok(found)
    }

    pub async fn stop(&self, ids: &[String]) -> Result<()> {
        self.client
            .stop_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(describe)
            .with_context(|| format!("EC2 StopInstances for {} failed", ids.join(", ")))?;
        Ok(())
    }

    pub async fn start(&self, ids: &[String]) -> Result<()> {
        self.client
            .start_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(describe)
            .with_context(|| format!("EC2 StartInstances for {} failed", ids.join(", ")))?;
        Ok(())
    }

    /// Waits (the SDK's `instance_stopped` waiter, polling DescribeInstances) until every one of
    /// `ids` is stopped, for at most `within`.
    pub async fn wait_stopped(&self, ids: &[String], within: Duration) -> Result<()> {
        self.client
            .wait_until_instance_stopped()
            .set_instance_ids(Some(ids.to_vec()))
            .wait(within)
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
            .with_context(|| {
                format!(
                    "{} did not reach `stopped` within {}s",
                    ids.join(", "),
                    within.as_secs()
                )
            })?;
        Ok(())
    }

    /// Waits (the SDK's `instance_running` waiter) until every one of `ids` runs, for at most
    /// `within`; an instance that goes to `stopping` or `terminated` instead fails it at once.
    pub async fn wait_running(&self, ids: &[String], within: Duration) -> Result<()> {
        self.client
            .wait_until_instance_running()
            .set_instance_ids(Some(ids.to_vec()))
            .wait(within)
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))
            .with_context(|| {
                format!(
                    "{} did not reach `running` within {}s",
                    ids.join(", "),
                    within.as_secs()
                )
            })?;
        Ok(())
    }
}
