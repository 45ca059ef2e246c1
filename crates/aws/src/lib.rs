//! marquee-aws: the AWS side of marquee, and the only crate that touches the AWS SDK.
//!
//! - [`s3::S3ObjectStore`] and [`dynamo::DynamoScoreStore`] implement the pipeline's store traits.
//! - [`sfn::Executions`] starts and follows Step Functions executions.
//! - [`execution`] starts a pipeline execution and follows it (`marquee aws run`).
//! - [`config`] builds SDK clients from aws-config's default chain; endpoints, credentials and
//!   region come from the environment (`AWS_ENDPOINT_URL[_<SERVICE>]` for LocalStack / moto).

pub mod attr;
pub mod config;
pub mod dynamo;
pub mod error;
pub mod execution;
pub mod s3;
pub mod sfn;

pub use dynamo::DynamoScoreStore;
pub use s3::S3ObjectStore;
pub use sfn::Executions;

/// Both stores of a deployment, built once (per Lambda container, per CLI call).
#[derive(Clone, Debug)]
pub struct AwsStores {
    pub objects: S3ObjectStore,
    pub scores: DynamoScoreStore,
}

impl AwsStores {
    /// Clients from the default chain; bucket and table from `MARQUEE_BUCKET` / `MARQUEE_TABLE`.
    pub async fn from_env() -> Result<Self, config::ConfigError> {
        let bucket = config::required_env(config::BUCKET_ENV)?;
        let table = config::required_env(config::TABLE_ENV)?;
        let sdk = config::load(None).await;
        Ok(Self::new(&sdk, bucket, table))
    }

    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            objects: S3ObjectStore::new(config::s3_client(sdk), bucket),
            scores: DynamoScoreStore::new(config::dynamodb_client(sdk), table),
        }
    }

    pub fn stores(&self) -> marquee_pipeline::steps::Stores<'_> {
        marquee_pipeline::steps::Stores { objects: &self.objects, scores: &self.scores }
    }
}
