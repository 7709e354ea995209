//! AWS SDK configuration from the standard chain: environment, shared config and credentials
//! files (profiles, SSO, credential_process), instance roles; `AWS_ENDPOINT_URL` and the
//! service-specific endpoint variables are honoured, which is how the lab points Jeeves at moto.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_config::BehaviorVersion;

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The caller's identity (ARN and account), as `jeeves doctor` shows it.
pub struct Identity {
    pub arn: String,
    pub account: String,
    pub region: Option<String>,
}

pub async fn identity(timeout: Duration) -> Result<Identity> {
    let config = sdk_config().await;
    let region = config.region().map(|r| r.to_string());
    let sts = aws_sdk_sts::Client::new(&config);
    let reply = tokio::time::timeout(timeout, sts.get_caller_identity().send())
        .await
        .context("no answer from AWS STS")?
        .map_err(|e| anyhow::anyhow!(aws_sdk_sts::error::DisplayErrorContext(e)))
        .context("GetCallerIdentity failed (check AWS_PROFILE / credentials)")?;
    Ok(Identity {
        arn: reply.arn().unwrap_or_default().to_string(),
        account: reply.account().unwrap_or_default().to_string(),
        region,
    })
}
