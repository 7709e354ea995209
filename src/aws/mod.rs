//! AWS through the SDK. Configuration from the standard chain: environment, shared config and
//! credentials files (profiles, SSO, credential_process), instance roles; `AWS_ENDPOINT_URL`
//! and the service-specific endpoint variables are honoured, which is how the lab points Jeeves
//! at moto. Knows nothing of stages.

pub mod dns_record;
pub mod ec2;
pub mod multivalue;
pub mod power;
pub mod route53;
pub mod s3;

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};

/// The stack's region (`project.region`), for every AWS call this process makes. Set once, after
/// the settings are loaded; unset, the SDK's chain decides (AWS_REGION, the profile's region).
static REGION: OnceLock<String> = OnceLock::new();

pub fn use_region(region: &str) {
    REGION.get_or_init(|| region.to_string());
}

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
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    if let Some(region) = REGION.get() {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    loader.load().await
}

/// An SDK error as the user should see it: the AWS error code and message for service errors
/// (`AccessDenied: User … is not authorized …`), the cause chain's messages for anything else
/// (no credentials, endpoint unreachable, timeouts) — never the SDK's debug structure, which
/// `DisplayErrorContext` appends and which runs to 1,500 characters.
pub fn describe<E, R>(e: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e.code() {
        Some(code) => anyhow::anyhow!("{code}: {}", e.message().unwrap_or("(no message)")),
        None => anyhow::anyhow!("{}", causes(&e)),
    }
}

/// The messages of an error and its sources on one line, each once (the SDK's wrappers often
/// repeat their source's message).
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The one line `jeeves doctor` prints when the credentials chain finds nothing usable: what was
/// tried and what to do, with the last provider's own words (the chain's end is instance
/// metadata, whose failure says little on a laptop).
fn no_credentials(e: &CredentialsError, profile: Option<&str>) -> String {
    match (profile, e) {
        (
            Some(profile),
            CredentialsError::ProviderError(_) | CredentialsError::InvalidConfiguration(_),
        ) => format!(
            "AWS profile `{profile}` gives no usable credentials: {}; check ~/.aws/config, or run `aws sso login --profile {profile}`",
            causes(e)
        ),
        _ => format!(
            "no AWS credentials: tried the environment (AWS_ACCESS_KEY_ID), profile `{}` (~/.aws/config and credentials, SSO, credential_process), web identity, ECS and instance metadata ({}); set AWS_PROFILE or run `aws sso login`",
            profile.unwrap_or("default"),
            causes(e)
        ),
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
    // The chain first, on its own: its failure is one line, not a dispatch failure.
    let provider = config
        .credentials_provider()
        .context("the AWS SDK configuration has no credentials chain")?;
    match tokio::time::timeout(timeout, provider.provide_credentials()).await {
        Err(_) => bail!("no answer while looking for AWS credentials (SSO or instance metadata?)"),
        Ok(Err(e)) => bail!(no_credentials(
            &e,
            std::env::var("AWS_PROFILE").ok().as_deref()
        )),
        Ok(Ok(_)) => {}
    }
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
