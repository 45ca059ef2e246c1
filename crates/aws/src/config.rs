//! SDK configuration: aws-config's default chain (BehaviorVersion::latest()), so credentials,
//! region and endpoints come from the environment. `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SFN` point it at LocalStack or moto without
//! code changes. Resource names come from the variables the SAM template sets.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Bucket of the object store (set by the template on every function).
pub const BUCKET_ENV: &str = "MARQUEE_BUCKET";
/// DynamoDB table of the score store.
pub const TABLE_ENV: &str = "MARQUEE_TABLE";
/// ARN of the pipeline state machine (for the CLI).
pub const STATE_MACHINE_ENV: &str = "MARQUEE_STATE_MACHINE_ARN";
/// Most calls per request (first try included) before an error is returned. Default 5.
pub const MAX_ATTEMPTS_ENV: &str = "MARQUEE_AWS_MAX_ATTEMPTS";
/// Seconds one attempt may take before it is abandoned and retried. Default 60.
pub const ATTEMPT_TIMEOUT_ENV: &str = "MARQUEE_AWS_ATTEMPT_TIMEOUT_SECS";
/// `true`/`false`: force S3 path-style addressing. Unset: on when an endpoint override is present.
pub const PATH_STYLE_ENV: &str = "MARQUEE_S3_PATH_STYLE";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "environment variable {0} is not set (the SAM template sets it on every function; export it to run elsewhere)"
    )]
    Missing(&'static str),
}

/// A required, non-empty environment variable.
pub fn required_env(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name))
}

/// The default chain. `endpoint` overrides every service's endpoint (tests against moto).
///
/// Every call retries transient failures (5xx, throttling, timeouts, dropped connections) with
/// the SDK's standard mode: exponential backoff with full jitter, at most [`retry_config`]'s
/// attempts, and a client-wide retry token bucket so a failing service is not hammered. An
/// attempt that hangs is cut off by [`timeout_config`]'s attempt timeout and retried.
pub async fn load(endpoint: Option<&str>) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config()).timeout_config(timeout_config());
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

fn env_number(name: &str) -> Option<f64> {
    std::env::var(name).ok()?.trim().parse().ok().filter(|v: &f64| v.is_finite() && *v > 0.0)
}

/// Standard retry mode with [`MAX_ATTEMPTS_ENV`] attempts (default 5: about 0.1 + 0.2 + 0.4 +
/// 0.8 s of backoff at most, before jitter, on top of the attempts themselves).
pub fn retry_config() -> RetryConfig {
    let attempts = env_number(MAX_ATTEMPTS_ENV).map_or(5, |v| (v as u32).clamp(1, 20));
    RetryConfig::standard().with_max_attempts(attempts)
}

/// A per-attempt timeout ([`ATTEMPT_TIMEOUT_ENV`], default 60 s: a multipart part of 8 MiB on a
/// slow link fits) and a 5 s connect timeout. No overall operation timeout: the Lambda timeout
/// bounds that.
pub fn timeout_config() -> TimeoutConfig {
    let attempt = env_number(ATTEMPT_TIMEOUT_ENV).unwrap_or(60.0);
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs_f64(attempt))
        .build()
}

fn env_flag(name: &str) -> Option<bool> {
    match std::env::var(name).ok()?.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Path-style S3 addressing: needed by LocalStack and moto (no virtual-host DNS), never by AWS.
pub fn s3_path_style(config: &SdkConfig) -> bool {
    env_flag(PATH_STYLE_ENV).unwrap_or_else(|| {
        config.endpoint_url().is_some()
            || ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"].iter().any(|v| std::env::var_os(v).is_some())
    })
}

pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(s3_path_style(config)).build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn sfn_client(config: &SdkConfig) -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(config)
}
