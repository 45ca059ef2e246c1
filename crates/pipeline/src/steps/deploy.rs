//! Deploy (CRISP-DM deployment): copy the artifact to `models/<uc>/<version>/`, write the batch
//! scores, record the version, then flip the champion: the score-store item by a conditional
//! write (two racing deployments cannot both win), the pointer object last.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::champion::{champion_item_version, flip_champion};
use super::io::{get, get_json, load_run_spec, put, put_json};
use super::registry::{lineage, Lineage};
use super::scoring::score_and_write;
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

pub async fn deploy(stores: Stores<'_>, eval: &EvaluateOutput) -> Result<DeployOutput> {
    run(stores, eval).await.map_err(|e| e.in_step(&eval.run_id, "deploy", Some(eval.use_case.as_str())))
}

async fn run(stores: Stores<'_>, eval: &EvaluateOutput) -> Result<DeployOutput> {
    let (run_id, uc) = (eval.run_id.as_str(), eval.use_case);
    let rec: EvaluationRecord = get_json(stores, &eval.evaluation_key).await?;
    if rec.verdict != Verdict::Deploy {
        return Err(Error::Invalid(format!("verdict is {:?}, not deploy: {}", rec.verdict, rec.reasons.join("; "))));
    }
    let version = rec.version.clone();
    let spec = load_run_spec(stores, run_id).await?;
    let model = get(stores, &keys::run_model(run_id, uc, "model.json")).await?;
    let model_key = keys::deployed(uc, &version, "model.json");
    let evaluation_key = keys::deployed(uc, &version, "evaluation.json");
    put(stores, &model_key, model.clone()).await?;
    put_json(stores, &evaluation_key, &rec).await?;

    // Another deployment may have become champion since this run evaluated against the old one:
    // stop before a single score is written (the conditional flip below closes the last window).
    let expected = eval.champion_version.clone();
    let current = champion_item_version(stores, uc).await?;
    if current.is_some() && current != expected && current.as_deref() != Some(version.as_str()) {
        // The same condition the flip would fail, checked before anything is written (so the Lambda
        // reports it as Marquee.ConditionFailed, which is not retried).
        return Err(Error::Store {
            context: "the champion changed since this run was evaluated; no score was written: run the \
                      pipeline again to evaluate against the new champion"
                .into(),
            source: StoreError::ConditionFailed {
                pk: score::model(uc),
                sk: score::CHAMPION.into(),
                reason: format!(
                    "evaluated against {}, now {}",
                    expected.as_deref().unwrap_or("no champion"),
                    current.as_deref().unwrap_or("none")
                ),
            },
        });
    }

    let scores_written = score_and_write(stores, &spec, uc, &model, &rec).await?;
    let artifact_uri = stores.objects.uri(&model_key);
    stores
        .scores
        .put_items(vec![version_item(&rec, "deployed", &artifact_uri, &lineage(stores, &rec).await?)])
        .await
        .map_err(Error::store("recording the version"))?;

    // The champion flips last. The condition stops two deployments racing from both winning.
    if current.as_deref() != Some(version.as_str()) {
        flip_champion(stores, &rec, &artifact_uri, expected.clone()).await?;
    }
    let champion = Champion::of(&rec, model_key, evaluation_key);
    put_json(stores, &keys::champion(uc), &champion).await?;
    // After the flip: until then the old champion serves its items. On a retry of this step the
    // champion already is this version, so the champion it was evaluated against names them.
    let stale_removed = match &expected {
        Some(previous) => retire_stale(stores, uc, previous, &version).await?,
        None => 0,
    };
    tracing::info!(run_id, use_case = %uc, version, scores_written, stale_removed, "deployed");
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
