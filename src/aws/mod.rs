//! AWS through the SDK. Configuration from the standard chain: environment, shared config and
//! credentials files (profiles, SSO, credential_process), instance roles; `AWS_ENDPOINT_URL`
//! and the service-specific endpoint variables are honoured, which is how the lab points Jeeves
//! at moto. Knows nothing of stages.

pub mod ec2;
pub mod power;
pub mod route53;

use std::time::Duration;

use anyhow::{Context, Result};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_route53::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Throttling (`Throttling`, `PriorRequestNotComplete`, …) and transient errors are retried by
/// the SDK's standard strategy: exponential backoff with full jitter.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(20))
}

/// Every AWS call is bounded: 20 s for one attempt (connect included), 2 minutes for the call
/// with its retries. Waits longer than one call (Route 53 INSYNC, console output) have their own
/// bounds in the code that polls.
pub fn timeout_config() -> aws_config::timeout::TimeoutConfig {
    bounded(Duration::from_secs(20), Duration::from_secs(120))
}

fn bounded(attempt: Duration, call: Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(10)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(call)
        .build()
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// An SDK error as the user should see it: the AWS error code and message for service errors
/// (`AccessDenied: User … is not authorized …`), the whole cause chain for anything else
/// (no credentials, endpoint unreachable, timeouts).
pub fn describe<E, R>(e: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e.code() {
        Some(code) => anyhow::anyhow!("{code}: {}", e.message().unwrap_or("(no message)")),
        None => anyhow::anyhow!("{}", DisplayErrorContext(&e)),
    }
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
        .map_err(describe)
        .context("GetCallerIdentity failed (check AWS_PROFILE / credentials)")?;
    Ok(Identity {
        arn: reply.arn().unwrap_or_default().to_string(),
        account: reply.account().unwrap_or_default().to_string(),
        region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endpoint that accepts connections and never answers (a wedged proxy, a black-holed
    /// VPC endpoint): the call fails when its bound passes, through the same retry strategy
    /// as every call, instead of hanging the run.
    #[tokio::test]
    async fn a_call_to_an_endpoint_that_never_answers_is_bounded() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let held = std::thread::spawn(move || {
            let mut open = Vec::new();
            for conn in listener.incoming().take(8) {
                open.push(conn);
            }
        });
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(format!("http://{addr}"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_route53::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .retry_config(retry_config())
            .timeout_config(bounded(Duration::from_millis(500), Duration::from_secs(2)))
            .load()
            .await;
        let started = std::time::Instant::now();
        let err = aws_sdk_route53::Client::new(&config)
            .list_hosted_zones()
            .send()
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(4),
            "{took:?}"
        );
        assert!(
            format!("{}", describe(err)).contains("timeout"),
            "names the timeout"
        );
        drop(held);
        // The settings every call uses.
        let t = timeout_config();
        assert_eq!(
            (t.operation_attempt_timeout(), t.operation_timeout()),
            (
                Some(Duration::from_secs(20)),
                Some(Duration::from_secs(120))
            )
        );
    }
}
