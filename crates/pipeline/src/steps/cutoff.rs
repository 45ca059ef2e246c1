//! The churn cutoff as a business lever: move the deployed churn model's cutoff without
//! retraining, rescoring every customer and recording the change.

use serde::{Deserialize, Serialize};

use super::io::{get, get_json, load_manifest, load_run_spec, load_tables, put_json};
use super::{read_champion, EvaluationRecord, Stores};
use crate::error::{Error, Result};
use crate::keys;
use crate::spec::UseCase;
use crate::usecase;

/// Where a cutoff moved after deployment is recorded: `models/churn/<version>/cutoff.json`.
pub fn churn_cutoff_key(version: &str) -> String {
    keys::deployed(UseCase::Churn, version, "cutoff.json")
}

/// The cutoff record written by [`redeploy_churn_cutoff`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoffChange {
    pub version: String,
    pub run_id: String,
    pub cutoff: f64,
    pub previous: f64,
    pub customers_rescored: usize,
    pub at_risk: usize,
    pub applied_at: String,
    /// Why, in the operator's words (e.g. "min precision 0.6").
    pub rule: String,
}

/// The churn cutoff as a business lever: rescores the deployed churn champion of `run_id` at a new
/// `cutoff` without retraining (same model, same ingested table), upserting every customer's CHURN
/// item (probability unchanged; at_risk and cutoff updated), and records the change. Refuses when
/// `run_id` is not the deployed churn champion, so scores never mix versions.
pub async fn redeploy_churn_cutoff(stores: Stores<'_>, run_id: &str, cutoff: f64, rule: &str) -> Result<CutoffChange> {
    run(stores, run_id, cutoff, rule).await.map_err(|e| e.in_step(run_id, "redeploy-cutoff", Some("churn")))
}

async fn run(stores: Stores<'_>, run_id: &str, cutoff: f64, rule: &str) -> Result<CutoffChange> {
    let uc = UseCase::Churn;
    if !(0.0..=1.0).contains(&cutoff) {
        return Err(Error::Invalid(format!("cutoff {cutoff} is not a probability in [0, 1]")));
    }
    let champion =
        read_champion(stores, run_id, uc).await?.ok_or_else(|| Error::Invalid("no churn model is deployed".into()))?;
    if champion.run_id != run_id {
        return Err(Error::Invalid(format!(
            "run {run_id} is not the deployed churn champion (the champion is version {} from run {})",
            champion.version, champion.run_id
        )));
    }
    let rec: EvaluationRecord = get_json(stores, &champion.evaluation_key).await?;
    let cutoff_key = churn_cutoff_key(&champion.version);
    let recorded = stores
        .objects
        .get_opt(&cutoff_key)
        .await
        .map_err(Error::store(format!("reading {}", stores.objects.uri(&cutoff_key))))?;
    let previous = recorded
        .and_then(|bytes| serde_json::from_slice::<CutoffChange>(&bytes).map(|c| c.cutoff).ok())
        .or_else(|| rec.challenger.deploy_params.get("cutoff").copied())
        .unwrap_or(0.5);
    let spec = load_run_spec(stores, run_id).await?;
    let manifest = load_manifest(stores, run_id).await?;
    let model = get(stores, &champion.model_key).await?;
    let tables = load_tables(stores, &manifest, &usecase::of(uc).needed_tables(&spec)).await?;
    let items = usecase::churn::score(&spec, &model, &tables, &champion.version, cutoff)?;
    let at_risk = items.iter().filter(|i| i.attr("at_risk").and_then(|v| v.as_bool()).unwrap_or(false)).count();
    let customers_rescored = items.len();
    stores.scores.put_items(items).await.map_err(Error::store("writing churn scores"))?;
    let change = CutoffChange {
        version: champion.version.clone(),
        run_id: run_id.into(),
        cutoff,
        previous,
        customers_rescored,
        at_risk,
        applied_at: chrono::Utc::now().to_rfc3339(),
        rule: rule.into(),
    };
    put_json(stores, &cutoff_key, &change).await?;
    tracing::info!(run_id, version = %champion.version, cutoff, previous, at_risk, "churn cutoff redeployed");
    Ok(change)
}
