//! The champion of a use case: the `MODEL#<uc> / CHAMPION` score-store item (the authority, set
//! by a conditional write) and the `models/<uc>/champion.json` pointer written after it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::io::{get_json, parse_json, put_json};
use super::scoring::publish_scores;
use super::stale::retire_stale;
use super::{EvaluationRecord, Stores};
use crate::error::{Error, Result};
use crate::keys::{self, score};
use crate::spec::UseCase;
use crate::store::{Condition, Item, StoreError};

/// The champion pointer, `models/<use_case>/champion.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Champion {
    pub use_case: UseCase,
    pub version: String,
    pub run_id: String,
    pub model_key: String,
    pub evaluation_key: String,
    pub fingerprint: String,
    pub metric: String,
    pub value: f64,
    pub deployed_at: String,
}

impl Champion {
    /// The pointer to a deployed version, from its evaluation record.
    pub(super) fn of(rec: &EvaluationRecord, model_key: String, evaluation_key: String) -> Self {
        Self {
            use_case: rec.use_case,
            version: rec.version.clone(),
            run_id: rec.run_id.clone(),
            model_key,
            evaluation_key,
            fingerprint: rec.fingerprint.clone(),
            metric: rec.challenger.primary.name.clone(),
            value: rec.challenger.primary.value,
            deployed_at: chrono::Utc::now().to_rfc3339(),
        }
    }
}

/// The current champion of `uc`, if any, repairing a lagging pointer (ingest, before a run
/// compares anything with it). `run_id` names the run asking, in logs.
pub async fn read_champion(stores: Stores<'_>, run_id: &str, uc: UseCase) -> Result<Option<Champion>> {
    let (champion, lagging) = resolve_champion(stores, uc).await?;
    if let (Some(champion), true) = (&champion, lagging) {
        put_json(stores, &keys::champion(uc), champion).await?;
        tracing::warn!(run_id, use_case = %uc, version = %champion.version, "champion pointer lagged the champion item: rolled forward");
    }
    Ok(champion)
}

/// The current champion of `uc`, read only: for a step that may not write models/ (evaluate).
pub(super) async fn peek_champion(stores: Stores<'_>, uc: UseCase) -> Result<Option<Champion>> {
    Ok(resolve_champion(stores, uc).await?.0)
}

/// The champion, and whether the pointer lags the score store's item. The `MODEL#<uc> /
/// CHAMPION` item is the authority (it is the conditional write). When it names another version
/// than the pointer, that deployment stopped between flipping the item and writing the pointer:
/// the champion is the version the item names, read from its deployed evaluation.
async fn resolve_champion(stores: Stores<'_>, uc: UseCase) -> Result<(Option<Champion>, bool)> {
    let key = keys::champion(uc);
    let pointer: Option<Champion> = match stores
        .objects
        .get_opt(&key)
        .await
        .map_err(Error::store(format!("reading {}", stores.objects.uri(&key))))?
    {
        None => None,
        Some(bytes) => Some(parse_json(&bytes, &key)?),
    };
    let Some(version) = champion_item_version(stores, uc).await? else { return Ok((pointer, false)) };
    if pointer.as_ref().is_some_and(|p| p.version == version) {
        return Ok((pointer, false));
    }
    let evaluation_key = keys::deployed(uc, &version, "evaluation.json");
    let rec: EvaluationRecord = get_json(stores, &evaluation_key).await?;
    Ok((Some(Champion::of(&rec, keys::deployed(uc, &version, "model.json"), evaluation_key)), true))
}

/// The version named by the `MODEL#<uc> / CHAMPION` item.
pub(super) async fn champion_item_version(stores: Stores<'_>, uc: UseCase) -> Result<Option<String>> {
    let item = stores
        .scores
        .get_item(&score::model(uc), score::CHAMPION)
        .await
        .map_err(Error::store(format!("reading the champion item of {uc}")))?;
    Ok(item.as_ref().and_then(|i| i.attr("version")).and_then(|v| v.as_str()).map(str::to_string))
}

/// Makes `rec`'s version champion: the `MODEL#<uc> / CHAMPION` item, written only if it still
/// names `expected` (two deployments or promotions racing cannot both win). Its scores must be
/// written already. A loser's scores overwrote the winner's: the winner's are re-published before
/// the error (ConditionFailed) is returned. The caller writes the pointer after this.
pub(super) async fn flip_champion(
    stores: Stores<'_>,
    rec: &EvaluationRecord,
    artifact_uri: &str,
    expected: Option<String>,
) -> Result<()> {
    let uc = rec.use_case;
    let item = Item::new(
        score::model(uc),
        score::CHAMPION,
        json!({ "version": rec.version, "run_id": rec.run_id, "artifact_uri": artifact_uri, "metric": rec.challenger.primary.name, "value": rec.challenger.primary.value }),
    );
    let flip = stores
        .scores
        .put_conditional(item, Condition::AttrEquals { name: "version".into(), value: expected.map(Value::String) })
        .await;
    let Err(lost) = flip else { return Ok(()) };
    let why = match lost {
        StoreError::ConditionFailed { .. } => "another deployment won the race",
        _ => "the conditional write failed",
    };
    let winner = champion_item_version(stores, uc).await?;
    let restored = match &winner {
        Some(w) => {
            let restored = publish_scores(stores, uc, w).await?;
            // The loser's items of customers or titles the winner does not score go too.
            retire_stale(stores, uc, &rec.version, w).await?;
            restored
        }
        None => 0,
    };
    tracing::warn!(run_id = %rec.run_id, use_case = %uc, winner = ?winner, restored, "lost the champion race");
    Err(Error::Store {
        context: format!(
            "flipping the champion: {why} (champion is now {}; its {restored} scores were re-published)",
            winner.as_deref().unwrap_or("none")
        ),
        source: lost,
    })
}
