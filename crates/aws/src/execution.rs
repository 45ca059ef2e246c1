//! Starting a pipeline execution on the deployed state machine and following it to its end
//! (`marquee aws run`).

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::config::{self, required_env, STATE_MACHINE_ENV};
use crate::sfn::{ExecutionOutcome, Executions, Progress};

/// What to start.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The pipeline state machine; `None` reads `MARQUEE_STATE_MACHINE_ARN`.
    pub state_machine_arn: Option<String>,
    /// Object key of the pipeline spec, e.g. `raw/demo/pipeline.toml`.
    pub spec_key: String,
    /// Run id (also the execution name); `None` lets the Normalize step derive one.
    pub run_id: Option<String>,
    /// How often to poll the execution history.
    pub poll: Duration,
    /// Train use cases whose data and spec are unchanged too.
    pub retrain: bool,
}

impl StartOptions {
    pub fn new(spec_key: impl Into<String>) -> Self {
        Self { state_machine_arn: None, spec_key: spec_key.into(), run_id: None, poll: Duration::from_secs(2), retrain: false }
    }
}

/// The execution input the Normalize step accepts from the CLI (same shape as a schedule).
pub fn execution_input(spec_key: &str, run_id: Option<&str>, retrain: bool) -> serde_json::Value {
    let mut input = json!({ "spec_key": spec_key, "trigger": "cli" });
    if let Some(id) = run_id {
        input["run_id"] = json!(id);
    }
    if retrain {
        input["retrain"] = json!(true);
    }
    input
}

/// Starts the pipeline and follows it to its end, calling `on_progress` for each state
/// transition (print it: `Progress` implements Display). Returns how it ended; a failed
/// execution is an `Ok` outcome with `error`/`cause` (check [`ExecutionOutcome::succeeded`]).
pub async fn start_and_follow(
    opts: &StartOptions,
    on_progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<ExecutionOutcome> {
    let arn = match &opts.state_machine_arn {
        Some(arn) => arn.clone(),
        None => required_env(STATE_MACHINE_ENV)
            .context("which state machine? pass its ARN or set MARQUEE_STATE_MACHINE_ARN (a stack output)")?,
    };
    let sdk = config::load(None).await;
    let executions = Executions::new(config::sfn_client(&sdk));
    let input = execution_input(&opts.spec_key, opts.run_id.as_deref(), opts.retrain);
    let execution_arn = executions.start(&arn, opts.run_id.as_deref(), &input).await?;
    tracing::info!(execution_arn, "execution started");
    executions
        .follow(&execution_arn, opts.poll, on_progress)
        .await
        .with_context(|| format!("following execution {execution_arn}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_input_is_what_normalize_reads() {
        assert_eq!(
            execution_input("raw/demo/pipeline.toml", None, false),
            json!({"spec_key": "raw/demo/pipeline.toml", "trigger": "cli"})
        );
        assert_eq!(execution_input("k", Some("r1"), false)["run_id"], json!("r1"));
    }
}
