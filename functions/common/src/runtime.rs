//! The Lambda side: JSON logs, clients built once per container, one span per invocation
//! (step, run_id, use_case, request id), fault injection, and error mapping.

use std::future::Future;

use lambda_runtime::{service_fn, LambdaEvent};
use marquee_aws::sfn::SfnExecutionStatus;
use marquee_aws::AwsStores;
use marquee_pipeline::steps::Stores;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::error::HandlerError;
use crate::handlers::Traced;

pub use lambda_runtime::Error;

/// S3 + DynamoDB clients, created on the first invocation and reused by the container.
static STORES: OnceCell<AwsStores> = OnceCell::const_new();
/// Step Functions' view of executions (Normalize's dataset hold), created once per container.
static EXECUTIONS: OnceCell<SfnExecutionStatus> = OnceCell::const_new();

/// Whether an execution still runs, from Step Functions (DescribeExecution).
pub async fn execution_status() -> &'static SfnExecutionStatus {
    EXECUTIONS
        .get_or_init(|| async { SfnExecutionStatus::new(marquee_aws::config::sfn_client(&marquee_aws::config::load(None).await)) })
        .await
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into());
    // CloudWatch stamps every line, so the JSON carries the fields, not the time.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs `handler` as the Lambda function `step` until the runtime stops the container.
pub fn serve<Req, Resp, F, Fut>(step: &'static str, handler: F) -> Result<(), Error>
where
    Req: DeserializeOwned + Traced + Send,
    Resp: Serialize,
    F: Fn(Stores<'static>, Req) -> Fut + Copy + Send + Sync,
    Fut: Future<Output = Result<Resp, HandlerError>> + Send,
{
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| invoke(step, handler, event))))
}

async fn invoke<Req, Resp, F, Fut>(
    step: &'static str,
    handler: F,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError>
where
    Req: DeserializeOwned + Traced,
    Resp: Serialize,
    F: Fn(Stores<'static>, Req) -> Fut,
    Fut: Future<Output = Result<Resp, HandlerError>>,
{
    let req: Req = serde_json::from_value(event.payload)
        .map_err(|e| HandlerError::bad_request(step, format!("cannot read the event: {e}")))?;
    let span = tracing::info_span!("invocation", step, run_id = req.run_id(), use_case = req.use_case().map(|u| u.as_str()), request_id = %event.context.request_id);
    async move {
        let started = std::time::Instant::now();
        let result = async {
            crate::fault::check(step).await?;
            let stores = STORES
                .get_or_try_init(AwsStores::from_env)
                .await
                .map_err(|e| HandlerError::bad_request(step, e.to_string()))?;
            let out = handler(stores.stores(), req).await?;
            serde_json::to_value(out).map_err(|e| HandlerError::Output { step, message: e.to_string() })
        }
        .await;
        // Peak RSS of the container so far: what the function's MemorySize must cover.
        let (elapsed_ms, peak_rss_mib) = (started.elapsed().as_millis() as u64, peak_rss_mib());
        match &result {
            Ok(_) => tracing::info!(elapsed_ms, peak_rss_mib, "step done"),
            Err(e) => tracing::error!(elapsed_ms, peak_rss_mib, error_type = e.error_type(), error = %e, "step failed"),
        }
        result
    }
    .instrument(span)
    .await
}

/// The function's configured memory, in MB, from the Lambda runtime's environment (absent when
/// a handler runs outside Lambda, e.g. in tests).
pub fn function_memory_mb() -> Option<u64> {
    std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok().and_then(|v| v.trim().parse().ok())
}

/// The process's peak resident set (VmHWM), in MiB; 0 where /proc is not there.
pub fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kib| kib.parse::<u64>().ok()))
        .map_or(0, |kib| kib.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_rss_is_read_from_proc() {
        let before = super::peak_rss_mib();
        // Other tests of this process may have freed memory since the peak, so the resident set
        // can be far below it: a block as large as the peak plus 64 MiB raises it whatever it is.
        let block = vec![1u8; ((before + 64) << 20) as usize];
        std::hint::black_box(&block);
        let after = super::peak_rss_mib();
        assert!(before > 0, "VmHWM read");
        assert!(after >= before + 60, "a block of the peak + 64 MiB raises the peak: {before} -> {after}");
    }
}
