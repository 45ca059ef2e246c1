//! SDK configuration: aws-config's default chain (BehaviorVersion::latest()), so credentials,
//! region and endpoints come from the environment. `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SFN` point it at LocalStack or moto without
//! code changes. Resource names come from the variables the SAM template sets.

use aws_config::{BehaviorVersion, SdkConfig};

/// Bucket of the object store (set by the template on every function).
pub const BUCKET_ENV: &str = "MARQUEE_BUCKET";
/// DynamoDB table of the score store.
pub const TABLE_ENV: &str = "MARQUEE_TABLE";
/// ARN of the pipeline state machine (for the CLI).
pub const STATE_MACHINE_ENV: &str = "MARQUEE_STATE_MACHINE_ARN";
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
pub async fn load(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
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
