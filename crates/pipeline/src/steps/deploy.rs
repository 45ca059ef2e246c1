//! Deploy (CRISP-DM deployment), in two halves around the batch scoring: [`plan_deploy`] copies
//! the artifact to `models/<uc>/<version>/` and cuts the scoring into parts; every part is scored
//! ([`score_part`]: on AWS the children of a Distributed Map, embedded as many at once as the
//! machine has cores); then [`finish_deploy`] flips the champion (the score-store item by a
//! conditional write: two racing deployments cannot both win), records the version and writes the
//! pointer object.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::champion::{champion_item_version, flip_champion};
use super::io::{get, get_json, put, put_json};
use super::registry::{lineage, Lineage};
use super::scoring::{self, merge_score_keys, plan_scores, score_part_rows, ScorePlan};
use super::stale::retire_stale;
use super::{Champion, EvaluateOutput, EvaluationRecord, Stores, Verdict};
use crate::error::{Error, Result};
use crate::keys::{self, score};
use crate::spec::UseCase;
use crate::store::{Item, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployOutput {
    pub run_id: String,
    pub use_case: UseCase,
    pub version: String,
    pub scores_written: usize,
    pub champion_key: String,
    /// Score items of the previous champion deleted: its customers or titles absent from this
    /// version's data.
    #[serde(default)]
    pub stale_removed: usize,
}

/// The status of a version whose deployment lost the champion race to another deployment: its
/// artifact and scores were written, the winner's scores were put back, it never served.
const LOST_RACE: &str = "lost-race";

/// A deployment between its two halves: the artifact is in place and the batch scoring is cut into
/// `parts` ([`ScorePlan`] at `plan_key`); each part is scored by [`score_part`] (on AWS one child
/// of a Distributed Map, `{"score": ScorePartRequest}` each), then [`finish_deploy`] flips the
/// champion. Small: it travels between Step Functions states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployPlan {
    pub run_id: String,
    pub use_case: UseCase,
    pub version: String,
    pub plan_key: String,
    /// The part numbers `0..n`: the items of the Distributed Map.
    pub parts: Vec<usize>,
    /// The evaluation being deployed (the champion it was compared against, for the flip).
    pub evaluation: EvaluateOutput,
}

/// One part of a deployment's batch scoring: a Distributed Map child's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorePartRequest {
    pub run_id: String,
    pub use_case: UseCase,
    pub version: String,
    pub part: usize,
}

/// What a part wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorePartOutput {
    pub part: usize,
    pub scores_written: usize,
}

/// The whole deployment in one call (what the embedded run does): [`plan_deploy`], the parts
/// scored as many at once as the machine has cores (each part's scoring on a blocking thread),
/// then [`finish_deploy`]. The first part to fail stops it before the flip.
pub async fn deploy(stores: Stores<'_>, eval: &EvaluateOutput) -> Result<DeployOutput> {
    deploy_in_parts(stores, eval, score_part_rows()).await
}

/// [`deploy`] with parts of `part_rows` rows instead of `MARQUEE_SCORE_PART_ROWS`.
pub async fn deploy_in_parts(stores: Stores<'_>, eval: &EvaluateOutput, part_rows: usize) -> Result<DeployOutput> {
    let plan = plan_deploy(stores, eval, part_rows).await?;
    scoring::score_parts(stores, plan.use_case, &plan.version)
        .await
        .map_err(|e| e.in_step(&plan.run_id, "deploy", Some(plan.use_case.as_str())))?;
    finish_deploy(stores, &plan).await
}

/// First half of a deployment: checks the verdict, copies the artifact to `models/<uc>/<version>/`,
/// stops if another deployment became champion since this run evaluated, and plans the batch
/// scoring in parts of `part_rows` rows ([`score_part_rows`]: `MARQUEE_SCORE_PART_ROWS`).
pub async fn plan_deploy(stores: Stores<'_>, eval: &EvaluateOutput, part_rows: usize) -> Result<DeployPlan> {
    plan(stores, eval, part_rows).await.map_err(|e| e.in_step(&eval.run_id, "deploy", Some(eval.use_case.as_str())))
}

/// Scores one part of a planned deployment and writes its items (idempotent: upserts).
pub async fn score_part(stores: Stores<'_>, req: &ScorePartRequest) -> Result<ScorePartOutput> {
    scoring::score_part(stores, req.use_case, &req.version, req.part)
        .await
        .map(|scores_written| ScorePartOutput { part: req.part, scores_written })
        .map_err(|e| e.in_step(&req.run_id, "deploy", Some(req.use_case.as_str())))
}

/// Second half of a deployment, after every part was scored: flips the champion (the score-store
/// item by a conditional write), records the version, writes the pointer object and removes the
/// previous champion's stale items. Fails, flipping nothing, when a part is missing.
pub async fn finish_deploy(stores: Stores<'_>, plan: &DeployPlan) -> Result<DeployOutput> {
    finish(stores, plan).await.map_err(|e| e.in_step(&plan.run_id, "deploy", Some(plan.use_case.as_str())))
}

impl DeployPlan {
    pub fn request(&self, part: usize) -> ScorePartRequest {
        ScorePartRequest { run_id: self.run_id.clone(), use_case: self.use_case, version: self.version.clone(), part }
    }
}

async fn plan(stores: Stores<'_>, eval: &EvaluateOutput, part_rows: usize) -> Result<DeployPlan> {
    let (run_id, uc) = (eval.run_id.as_str(), eval.use_case);
    let rec: EvaluationRecord = get_json(stores, &eval.evaluation_key).await?;
    if rec.verdict != Verdict::Deploy {
        return Err(Error::Invalid(format!("verdict is {:?}, not deploy: {}", rec.verdict, rec.reasons.join("; "))));
    }
    let version = rec.version.clone();
    let model = get(stores, &keys::run_model(run_id, uc, "model.json")).await?;
    put(stores, &keys::deployed(uc, &version, "model.json"), model).await?;
    put_json(stores, &keys::deployed(uc, &version, "evaluation.json"), &rec).await?;
    check_champion_unchanged(stores, eval, &version).await?;
    let scoring = plan_scores(stores, &rec, part_rows).await?;
    Ok(DeployPlan {
        run_id: run_id.into(),
        use_case: uc,
        version: version.clone(),
        plan_key: ScorePlan::key(uc, &version),
        parts: (0..scoring.parts()).collect(),
        evaluation: eval.clone(),
    })
}

/// Another deployment may have become champion since this run evaluated against the old one:
/// stop before a single score is written (the conditional flip closes the last window). Reported
/// as Marquee.ConditionFailed, which is not retried.
async fn check_champion_unchanged(stores: Stores<'_>, eval: &EvaluateOutput, version: &str) -> Result<()> {
    let uc = eval.use_case;
    let expected = eval.champion_version.as_deref();
    let current = champion_item_version(stores, uc).await?;
    if current.is_none() || current.as_deref() == expected || current.as_deref() == Some(version) {
        return Ok(());
    }
    Err(Error::Store {
        context: "the champion changed since this run was evaluated; no score was written: run the \
                  pipeline again to evaluate against the new champion"
            .into(),
        source: StoreError::ConditionFailed {
            pk: score::model(uc),
            sk: score::CHAMPION.into(),
            reason: format!(
                "evaluated against {}, now {}",
                expected.unwrap_or("no champion"),
                current.as_deref().unwrap_or("none")
            ),
        },
    })
}

async fn finish(stores: Stores<'_>, plan: &DeployPlan) -> Result<DeployOutput> {
    let (run_id, uc, version) = (plan.run_id.as_str(), plan.use_case, plan.version.clone());
    let model_key = keys::deployed(uc, &version, "model.json");
    let evaluation_key = keys::deployed(uc, &version, "evaluation.json");
    let rec: EvaluationRecord = get_json(stores, &evaluation_key).await?;
    let scoring: ScorePlan = get_json(stores, &plan.plan_key).await?;
    if scoring.parts() != plan.parts.len() {
        return Err(Error::Invalid(format!(
            "{} has {} parts, the deployment planned {}",
            stores.objects.uri(&plan.plan_key),
            scoring.parts(),
            plan.parts.len()
        )));
    }
    let scores_written = merge_score_keys(stores, &scoring).await?;
    let artifact_uri = stores.objects.uri(&model_key);
    let lineage = lineage(stores, &rec).await?;

    // The champion flips last. The condition stops two deployments racing from both winning.
    // Already this version: a retry of this step after its flip (or a deployment of the same
    // version that won), nothing to flip.
    let expected = plan.evaluation.champion_version.clone();
    let record = |status: &'static str| {
        let item = version_item(&rec, status, &artifact_uri, &lineage);
        async move { stores.scores.put_items(vec![item]).await.map_err(Error::store("recording the version")) }
    };
    if champion_item_version(stores, uc).await?.as_deref() != Some(version.as_str()) {
        if let Err(lost) = flip_champion(stores, &rec, &artifact_uri, expected.clone()).await {
            // On record, but not as deployed: `marquee models list` shows it, rollback skips it.
            if matches!(lost, Error::Store { source: StoreError::ConditionFailed { .. }, .. }) {
                record(LOST_RACE).await?;
            }
            return Err(lost);
        }
    }
    // Recorded after the flip, so that only a version that became champion is `deployed`. A retry
    // of this step records the same item again.
    record("deployed").await?;
    let champion = Champion::of(&rec, model_key, evaluation_key);
    put_json(stores, &keys::champion(uc), &champion).await?;
    // After the flip: until then the old champion serves its items. On a retry of this step the
    // champion already is this version, so the champion it was evaluated against names them.
    let stale_removed = match &expected {
        Some(previous) => retire_stale(stores, uc, previous, &version).await?,
        None => 0,
    };
    tracing::info!(run_id, use_case = %uc, version, scores_written, stale_removed, parts = plan.parts.len(), "deployed");
    Ok(DeployOutput {
        run_id: run_id.into(),
        use_case: uc,
        version,
        scores_written,
        champion_key: keys::champion(uc),
        stale_removed,
    })
}

/// The `MODEL#<uc> / VERSION#<v>` record of a deployed, rejected or unchanged version.
pub(super) fn version_item(rec: &EvaluationRecord, status: &str, artifact_uri: &str, lineage: &Lineage) -> Item {
    Item::new(
        score::model(rec.use_case),
        score::version(&rec.version),
        json!({
            "use_case": rec.use_case,
            "version": rec.version,
            "run_id": rec.run_id,
            "status": status,
            "metric": rec.challenger.primary.name,
            "value": rec.challenger.primary.value,
            "criteria": rec.challenger.criteria,
            "deploy_params": rec.challenger.deploy_params,
            "reasons": rec.reasons,
            "artifact_uri": artifact_uri,
            "data_fingerprint": rec.fingerprint,
            "recorded_at": chrono::Utc::now().to_rfc3339(),
            "lineage": lineage,
            "drift": rec.drift,
        }),
    )
}
