//! Summary: the run's outcome per use case, written to `runs/<run>/summary.json`.

use serde::{Deserialize, Serialize};

use super::io::put_json;
use super::{DeployOutput, EvaluateOutput, IngestOutput, Stores, Verdict};
use crate::error::Result;
use crate::keys;
use crate::spec::UseCase;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseCaseResult {
    pub use_case: UseCase,
    pub verdict: Verdict,
    pub metric: String,
    pub value: f64,
    pub champion_version: Option<String>,
    pub deployed_version: Option<String>,
    pub scores_written: usize,
    pub reasons: Vec<String>,
}

impl UseCaseResult {
    pub fn from_outputs(eval: &EvaluateOutput, deployed: Option<&DeployOutput>) -> Self {
        Self {
            use_case: eval.use_case,
            verdict: eval.verdict,
            metric: eval.metric.clone(),
            value: eval.value,
            champion_version: eval.champion_version.clone(),
            deployed_version: deployed.map(|d| d.version.clone()),
            scores_written: deployed.map_or(0, |d| d.scores_written),
            reasons: eval.reasons.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub results: Vec<UseCaseResult>,
    pub rows_ok: usize,
    pub rows_quarantined: usize,
    pub summary_key: String,
}

pub async fn summarize(
    stores: Stores<'_>,
    run_id: &str,
    ingest: &IngestOutput,
    results: Vec<UseCaseResult>,
) -> Result<RunSummary> {
    let summary = RunSummary {
        run_id: run_id.into(),
        results,
        rows_ok: ingest.rows_ok,
        rows_quarantined: ingest.rows_quarantined,
        summary_key: keys::summary(run_id),
    };
    put_json(stores, &summary.summary_key, &summary).await.map_err(|e| e.in_step(run_id, "summary", None))?;
    Ok(summary)
}
