//! Summary: the run's outcome per use case, written to `runs/<run>/summary.json`.

use serde::{Deserialize, Serialize};

use super::io::put_json;
use super::{DeployOutput, EvaluateOutput, IngestOutput, PromoteOutput, Stores, Verdict};
use crate::error::Result;
use crate::keys;
use crate::spec::UseCase;

/// One use case's line of the run summary. A use case whose step failed has the verdict `failed`,
/// its [`UseCaseFailure`], and nothing else (the state machine's catch writes only those fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseCaseResult {
    pub use_case: UseCase,
    pub verdict: Verdict,
    #[serde(default)]
    pub metric: String,
    #[serde(default)]
    pub value: f64,
    #[serde(default)]
    pub champion_version: Option<String>,
    /// The champion's value of the same metric, on the same test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion_value: Option<f64>,
    #[serde(default)]
    pub deployed_version: Option<String>,
    #[serde(default)]
    pub scores_written: usize,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<UseCaseFailure>,
    /// Drift past the spec's thresholds against the champion, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
}

/// Where and how a use case failed: the step, the error type (e.g. `Marquee.StepFailed`,
/// `States.Timeout`, `Sandbox.Timedout`) and its message. Also read in the shape the state
/// machine's Catch gives it (`Error`, `Cause`, which some errors leave out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseCaseFailure {
    pub step: String,
    #[serde(alias = "Error")]
    pub error: String,
    #[serde(alias = "Cause", default)]
    pub cause: String,
}

impl UseCaseFailure {
    fn reason(&self) -> String {
        format!("{} failed: {}: {}", self.step, self.error, self.cause)
    }
}

impl UseCaseResult {
    /// The line of a use case whose `step` failed; its siblings go on.
    pub fn failed(use_case: UseCase, step: &str, error: &str, cause: &str) -> Self {
        Self {
            use_case,
            verdict: Verdict::Failed,
            metric: String::new(),
            value: 0.0,
            champion_version: None,
            champion_value: None,
            deployed_version: None,
            scores_written: 0,
            reasons: Vec::new(),
            failure: Some(UseCaseFailure { step: step.into(), error: error.into(), cause: cause.into() }),
            drift: Vec::new(),
        }
        .with_reason()
    }

    /// A failed use case's reason is its failure (the state machine's catch records no reasons).
    fn with_reason(mut self) -> Self {
        if let (Some(f), true) = (&self.failure, self.reasons.is_empty()) {
            self.reasons.push(f.reason());
        }
        self
    }

    /// The line of a use case not retrained: its data and spec section are its champion's.
    pub fn unchanged(champion: &super::Champion) -> Self {
        Self {
            use_case: champion.use_case,
            verdict: Verdict::Unchanged,
            metric: champion.metric.clone(),
            value: champion.value,
            champion_version: Some(champion.version.clone()),
            champion_value: Some(champion.value),
            deployed_version: None,
            scores_written: 0,
            reasons: vec![format!(
                "unchanged: same data and parameters as champion {}; not retrained",
                champion.version
            )],
            failure: None,
            drift: Vec::new(),
        }
    }

    pub fn from_outputs(eval: &EvaluateOutput, deployed: Option<&DeployOutput>) -> Self {
        Self {
            use_case: eval.use_case,
            verdict: eval.verdict,
            metric: eval.metric.clone(),
            value: eval.value,
            champion_version: eval.champion_version.clone(),
            champion_value: eval.champion_value,
            deployed_version: deployed.map(|d| d.version.clone()),
            scores_written: deployed.map_or(0, |d| d.scores_written),
            reasons: eval.reasons.clone(),
            failure: None,
            drift: eval.drift.clone(),
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
    /// Set when a use case failed: which, in which step, and why. The run is then failed (the
    /// state machine ends in `UseCaseFailed`, `marquee run` exits non-zero) after every other use
    /// case has finished and deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    /// The segment x content promotion after the use cases (absent in summaries of runs without
    /// the Promote step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<PromoteLine>,
}

/// The run summary's promotion line: what Promote did, or how it failed (after its retries; the
/// state machine's Catch gives `Error` and `Cause`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PromoteLine {
    Done(PromoteOutput),
    Failed {
        #[serde(alias = "Error")]
        error: String,
        #[serde(alias = "Cause", default)]
        cause: String,
    },
}

impl RunSummary {
    /// The failed use cases.
    pub fn failed(&self) -> impl Iterator<Item = &UseCaseResult> {
        self.results.iter().filter(|r| r.verdict == Verdict::Failed)
    }
}

/// "run R: churn failed in train (Marquee.StepFailed: ...); ..." when a use case (or the
/// promotion) failed.
fn failure_message(run_id: &str, results: &[UseCaseResult], promote: Option<&PromoteLine>) -> Option<String> {
    let mut failed: Vec<String> = results
        .iter()
        .filter_map(|r| {
            let f = r.failure.as_ref()?;
            Some(format!("{} failed in {} ({}: {})", r.use_case, f.step, f.error, f.cause))
        })
        .collect();
    let use_cases_failed = failed.len();
    if let Some(PromoteLine::Failed { error, cause }) = promote {
        failed.push(format!("the segment promotion failed ({error}: {cause})"));
    }
    (!failed.is_empty()).then(|| {
        let others = results.len() - use_cases_failed;
        format!(
            "run {run_id}: {}; the other {others} use case(s) finished (summary: {})",
            failed.join("; "),
            keys::summary(run_id)
        )
    })
}

pub async fn summarize(
    stores: Stores<'_>,
    run_id: &str,
    ingest: &IngestOutput,
    results: Vec<UseCaseResult>,
    promote: Option<PromoteLine>,
) -> Result<RunSummary> {
    // The use cases ingest found unchanged never reached the Map: their lines come from ingest.
    let mut results: Vec<UseCaseResult> =
        ingest.unchanged.iter().cloned().chain(results).map(UseCaseResult::with_reason).collect();
    results.sort_by_key(|r| r.use_case);
    let summary = RunSummary {
        run_id: run_id.into(),
        failure_message: failure_message(run_id, &results, promote.as_ref()),
        results,
        rows_ok: ingest.rows_ok,
        rows_quarantined: ingest.rows_quarantined,
        summary_key: keys::summary(run_id),
        promote,
    };
    put_json(stores, &summary.summary_key, &summary).await.map_err(|e| e.in_step(run_id, "summary", None))?;
    Ok(summary)
}
