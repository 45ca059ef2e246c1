//! Step Functions: start a pipeline execution and follow it to its end, reporting state
//! transitions from the execution history as they happen.

use std::time::Duration;

use aws_sdk_sfn::error::DisplayErrorContext;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use aws_sdk_sfn::Client;
use serde_json::Value;

/// One line of progress: a state entered or left, a failure, a retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Seconds since the execution started.
    pub seconds: f64,
    pub kind: ProgressKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProgressKind {
    Entered {
        state: String,
    },
    Exited {
        state: String,
    },
    /// A task or Lambda invocation failed (it may still be retried or caught).
    TaskFailed {
        error: String,
        cause: String,
    },
    /// The execution itself ended.
    Ended {
        status: String,
    },
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>8.1}s  ", self.seconds)?;
        match &self.kind {
            ProgressKind::Entered { state } => write!(f, "-> {state}"),
            ProgressKind::Exited { state } => write!(f, "<- {state}"),
            ProgressKind::TaskFailed { error, cause } => write!(f, "!! {error}: {cause}"),
            ProgressKind::Ended { status } => write!(f, "== execution {status}"),
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionOutcome {
    pub execution_arn: String,
    /// SUCCEEDED, FAILED, TIMED_OUT, ABORTED.
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl ExecutionOutcome {
    pub fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Succeeded.as_str()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{op} {target}: {message}")]
pub struct SfnError {
    pub op: &'static str,
    pub target: String,
    pub message: String,
}

fn sfn_err<E: std::error::Error + 'static>(op: &'static str, target: &str, e: E) -> SfnError {
    SfnError { op, target: target.to_string(), message: DisplayErrorContext(e).to_string() }
}

#[derive(Clone, Debug)]
pub struct Executions {
    client: Client,
}

impl Executions {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Starts an execution; returns its ARN. `name` must be unique per state machine for 90 days.
    pub async fn start(&self, state_machine_arn: &str, name: Option<&str>, input: &Value) -> Result<String, SfnError> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .set_name(name.map(str::to_string))
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| sfn_err("start execution of", state_machine_arn, e))?;
        Ok(out.execution_arn().to_string())
    }

    /// Polls the execution until it ends, calling `on_progress` for every new history event
    /// worth showing, in order.
    pub async fn follow(
        &self,
        execution_arn: &str,
        poll: Duration,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<ExecutionOutcome, SfnError> {
        let mut last_seen = 0i64;
        let mut started: Option<f64> = None;
        loop {
            let described = self
                .client
                .describe_execution()
                .execution_arn(execution_arn)
                .send()
                .await
                .map_err(|e| sfn_err("describe execution", execution_arn, e))?;
            let mut pages = self.client.get_execution_history().execution_arn(execution_arn).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| sfn_err("get execution history", execution_arn, e))?;
                for event in page.events() {
                    if event.id() <= last_seen {
                        continue;
                    }
                    last_seen = event.id();
                    let at = event.timestamp().as_secs_f64();
                    let t0 = *started.get_or_insert(at);
                    if let Some(kind) = progress_kind(event) {
                        on_progress(&Progress { seconds: at - t0, kind });
                    }
                }
            }
            if *described.status() != ExecutionStatus::Running {
                return Ok(ExecutionOutcome {
                    execution_arn: execution_arn.to_string(),
                    status: described.status().as_str().to_string(),
                    output: described.output().and_then(|o| serde_json::from_str(o).ok()),
                    error: described.error().map(str::to_string),
                    cause: described.cause().map(str::to_string),
                });
            }
            tokio::time::sleep(poll).await;
        }
    }
}

fn progress_kind(event: &HistoryEvent) -> Option<ProgressKind> {
    use HistoryEventType as T;
    let failed = |error: Option<&str>, cause: Option<&str>| ProgressKind::TaskFailed {
        error: error.unwrap_or("error").to_string(),
        cause: cause.unwrap_or("").to_string(),
    };
    Some(match event.r#type() {
        T::ExecutionSucceeded => ProgressKind::Ended { status: "SUCCEEDED".into() },
        T::ExecutionFailed => ProgressKind::Ended { status: "FAILED".into() },
        T::ExecutionTimedOut => ProgressKind::Ended { status: "TIMED_OUT".into() },
        T::ExecutionAborted => ProgressKind::Ended { status: "ABORTED".into() },
        T::TaskFailed => {
            let d = event.task_failed_event_details()?;
            failed(d.error(), d.cause())
        }
        T::LambdaFunctionFailed => {
            let d = event.lambda_function_failed_event_details()?;
            failed(d.error(), d.cause())
        }
        _ => {
            if let Some(d) = event.state_entered_event_details() {
                ProgressKind::Entered { state: d.name().to_string() }
            } else if let Some(d) = event.state_exited_event_details() {
                ProgressKind::Exited { state: d.name().to_string() }
            } else {
                return None;
            }
        }
    })
}

/// [`marquee_pipeline::guard::ExecutionStatus`] over DescribeExecution: a dataset's hold passes
/// on once its holder's execution has ended.
#[derive(Clone, Debug)]
pub struct SfnExecutionStatus {
    client: Client,
}

impl SfnExecutionStatus {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait::async_trait]
impl marquee_pipeline::guard::ExecutionStatus for SfnExecutionStatus {
    async fn is_running(&self, execution: &str) -> marquee_pipeline::store::StoreResult<bool> {
        match self.client.describe_execution().execution_arn(execution).send().await {
            Ok(d) => Ok(*d.status() == ExecutionStatus::Running),
            // Its history expired (90 days) or it never existed: nothing runs under that name.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_does_not_exist()) => Ok(false),
            Err(e) => Err(crate::error::store_error(
                "describe execution",
                execution,
                "states:DescribeExecution",
                || execution.to_string(),
                e,
            )),
        }
    }
}
