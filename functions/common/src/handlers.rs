//! One handler per Lambda: `async fn(stores, request) -> Result<response>`. They hold no AWS
//! code, so tests call them in-process over embedded stores with the files in events/.

use marquee_pipeline::guard::{self, ExecutionStatus};
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::{
    self, DeployOutput, DeployPlan, EvaluateOutput, IngestOutput, PrepareOutput, PromoteLine, PromoteOutput,
    PromoteRequest, RunRequest, RunSummary, ScorePartOutput, ScorePartRequest, Stores, TrainOutput, UseCaseResult,
    UseCaseTask,
};
use marquee_pipeline::Error as StepError;
use serde::{Deserialize, Serialize};

use crate::error::HandlerError;
pub use crate::normalize::NormalizeRequest;

pub type Result<T> = std::result::Result<T, HandlerError>;

/// Input of Prepare: the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareRequest {
    pub run_id: String,
}

/// Output of Deploy: what was deployed, and the use case's line of the run summary
/// (the Map iteration's output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployResponse {
    pub deployed: DeployOutput,
    pub result: UseCaseResult,
}

/// Output of Reject: the use case's line of the run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectResponse {
    pub result: UseCaseResult,
}

/// Input of Summarize: the run, Ingest's output and the Map's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummarizeRequest {
    pub run_id: String,
    pub ingest: IngestOutput,
    pub results: Vec<UseCaseResult>,
    /// The Promote state's output, or its caught error.
    #[serde(default)]
    pub promote: Option<PromoteLine>,
}

/// What the log lines of an invocation are tagged with.
pub trait Traced {
    fn run_id(&self) -> &str;
    fn use_case(&self) -> Option<UseCase> {
        None
    }
}

impl Traced for NormalizeRequest {
    fn run_id(&self) -> &str {
        ""
    }
}
impl Traced for RunRequest {
    fn run_id(&self) -> &str {
        &self.run_id
    }
}
impl Traced for PrepareRequest {
    fn run_id(&self) -> &str {
        &self.run_id
    }
}
impl Traced for UseCaseTask {
    fn run_id(&self) -> &str {
        &self.run_id
    }
    fn use_case(&self) -> Option<UseCase> {
        Some(self.use_case)
    }
}
impl Traced for EvaluateOutput {
    fn run_id(&self) -> &str {
        &self.run_id
    }
    fn use_case(&self) -> Option<UseCase> {
        Some(self.use_case)
    }
}
impl Traced for SummarizeRequest {
    fn run_id(&self) -> &str {
        &self.run_id
    }
}

/// Output of Normalize: the run and its dataset; for a duplicate delivery, the run the trigger
/// already started (the state machine then ends as `DuplicateTrigger`); while another run of the
/// dataset executes, who that is (the state machine waits and asks again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizeOutput {
    #[serde(flatten)]
    pub run: RunRequest,
    pub dataset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

/// Inside an execution, the run claims its trigger (a duplicate delivery ends as a duplicate)
/// and holds its dataset (while another run of the dataset executes, it waits). Invoked outside
/// an execution (`sam local invoke`), neither.
pub async fn normalize(
    stores: Stores<'_>,
    executions: &dyn ExecutionStatus,
    req: NormalizeRequest,
) -> Result<NormalizeOutput> {
    let run = crate::normalize::normalize(&req)?;
    let dataset = crate::normalize::dataset_of(&run.spec_key).to_string();
    tracing::info!(run_id = %run.run_id, spec_key = %run.spec_key, trigger = ?run.trigger, "run requested");
    let mut out = NormalizeOutput { run, dataset, duplicate_of: None, waiting_for: None };
    let Some(execution) = req.execution_id.as_deref() else { return Ok(out) };
    let me = guard::Holder::new(&out.run.run_id, execution);
    let in_step = |e: StepError| e.in_step(&out.run.run_id, "normalize", None);
    if let Some(trigger) = crate::normalize::trigger_of(&req) {
        if let guard::Claim::Duplicate(first) =
            guard::claim_trigger(stores.scores, &trigger, &me).await.map_err(in_step)?
        {
            tracing::warn!(trigger, first_run = %first.run_id, first_execution = %first.execution, "duplicate trigger: not run again");
            out.duplicate_of = Some(first.run_id);
            return Ok(out);
        }
    }
    if let Some(holder) = guard::hold_dataset(stores.scores, executions, &out.dataset, &me).await.map_err(in_step)? {
        let waiting_for = format!("run {} (execution {}, since {})", holder.run_id, holder.execution, holder.since);
        tracing::info!(dataset = %out.dataset, holder = %waiting_for, "dataset busy: waiting");
        out.waiting_for = Some(waiting_for);
    }
    Ok(out)
}

/// A failed quality gate is a normal result (`quality_passed: false`); the state machine's
/// QualityGate fails the execution with `quality_message` as the cause, so the message names
/// the reports to read. Without an input budget in the spec or the environment, inputs above a
/// share of the function's memory are refused before they are read.
pub async fn ingest(stores: Stores<'_>, req: RunRequest) -> Result<IngestOutput> {
    let mut out = steps::ingest_with_memory(stores, &req, crate::function_memory_mb()).await?;
    if !out.quality_passed {
        let problem = out.quality_message.take().unwrap_or_else(|| "quality gate failed".into());
        out.quality_message = Some(format!(
            "quality gate failed for run {}: {problem} (report: {}, quarantined rows: {})",
            req.run_id,
            stores.objects.uri(&out.quality_key),
            stores.objects.uri(&out.quarantine_key)
        ));
    }
    Ok(out)
}

pub async fn prepare(stores: Stores<'_>, req: PrepareRequest) -> Result<PrepareOutput> {
    Ok(steps::prepare(stores, &req.run_id).await?)
}

pub async fn train(stores: Stores<'_>, task: UseCaseTask) -> Result<TrainOutput> {
    Ok(steps::train(stores, &task).await?)
}

pub async fn evaluate(stores: Stores<'_>, task: UseCaseTask) -> Result<EvaluateOutput> {
    Ok(steps::evaluate(stores, &task).await?)
}

pub async fn deploy(stores: Stores<'_>, eval: EvaluateOutput) -> Result<DeployResponse> {
    let deployed = steps::deploy(stores, &eval).await?;
    let result = UseCaseResult::from_outputs(&eval, Some(&deployed));
    Ok(DeployResponse { deployed, result })
}

/// Input of the Deploy function, by its one key: a deployment in three states of the Map
/// (`{"plan": evaluation}`, then `{"score": part}` in every child of the ScoreParts Distributed
/// Map, then `{"finish": plan}`), `{"promote": {"run_id": ...}}` (the Promote state after the
/// Map), or a bare evaluation: the whole deployment in one invocation (`sam local invoke -e
/// events/deploy.json`). The segment promotions read and write what a deployment does, so they
/// share its function and permissions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DeployRequest {
    Promote { promote: PromoteRequest },
    Plan { plan: EvaluateOutput },
    Score { score: ScorePartRequest },
    Finish { finish: DeployPlan },
    Deploy(EvaluateOutput),
}

impl<'de> Deserialize<'de> for DeployRequest {
    /// By the key, so a malformed request is reported as such (not as "no variant").
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        fn take<T: serde::de::DeserializeOwned, E: serde::de::Error>(
            v: serde_json::Value,
        ) -> std::result::Result<T, E> {
            serde_json::from_value(v).map_err(E::custom)
        }
        let mut value = serde_json::Value::deserialize(d)?;
        for key in ["promote", "plan", "score", "finish"] {
            if let Some(inner) = value.get_mut(key).map(serde_json::Value::take) {
                return match key {
                    "promote" => Ok(Self::Promote { promote: take(inner)? }),
                    "plan" => Ok(Self::Plan { plan: take(inner)? }),
                    "score" => Ok(Self::Score { score: take(inner)? }),
                    _ => Ok(Self::Finish { finish: take(inner)? }),
                };
            }
        }
        Ok(Self::Deploy(serde_json::from_value(value).map_err(D::Error::custom)?))
    }
}

impl Traced for DeployRequest {
    fn run_id(&self) -> &str {
        match self {
            Self::Promote { promote } => &promote.run_id,
            Self::Plan { plan: eval } | Self::Deploy(eval) => &eval.run_id,
            Self::Score { score } => &score.run_id,
            Self::Finish { finish } => &finish.run_id,
        }
    }
    fn use_case(&self) -> Option<UseCase> {
        match self {
            Self::Promote { .. } => None,
            Self::Plan { plan: eval } | Self::Deploy(eval) => Some(eval.use_case),
            Self::Score { score } => Some(score.use_case),
            Self::Finish { finish } => Some(finish.use_case),
        }
    }
}

/// Output of the Deploy function, by its request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DeployReply {
    Deployed(DeployResponse),
    Planned(DeployPlan),
    Scored(ScorePartOutput),
    Promoted(PromoteOutput),
}

/// The Deploy function: a deployment (whole or one of its three parts) or [`promote`] by its input.
pub async fn deploy_function(stores: Stores<'_>, req: DeployRequest) -> Result<DeployReply> {
    match req {
        DeployRequest::Promote { promote: p } => Ok(DeployReply::Promoted(promote(stores, p).await?)),
        DeployRequest::Plan { plan } => {
            Ok(DeployReply::Planned(steps::plan_deploy(stores, &plan, steps::score_part_rows()).await?))
        }
        DeployRequest::Score { score } => Ok(DeployReply::Scored(steps::score_part(stores, &score).await?)),
        DeployRequest::Finish { finish } => {
            let deployed = steps::finish_deploy(stores, &finish).await?;
            let result = UseCaseResult::from_outputs(&finish.evaluation, Some(&deployed));
            Ok(DeployReply::Deployed(DeployResponse { deployed, result }))
        }
        DeployRequest::Deploy(eval) => Ok(DeployReply::Deployed(deploy(stores, eval).await?)),
    }
}

/// Per audience segment, the titles to promote, from the current champions.
pub async fn promote(stores: Stores<'_>, req: PromoteRequest) -> Result<PromoteOutput> {
    Ok(steps::promote_to_segments(stores, &req.run_id).await?)
}

pub async fn reject(stores: Stores<'_>, eval: EvaluateOutput) -> Result<RejectResponse> {
    let eval = steps::reject(stores, &eval).await?;
    Ok(RejectResponse { result: UseCaseResult::from_outputs(&eval, None) })
}

pub async fn summarize(stores: Stores<'_>, req: SummarizeRequest) -> Result<RunSummary> {
    Ok(steps::summarize(stores, &req.run_id, &req.ingest, req.results, req.promote).await?)
}
