//! The champion of a use case: the `MODEL#<uc> / CHAMPION` score-store item (the authority, set
//! by a conditional write) and the `models/<uc>/champion.json` pointer written after it.

use serde::{Deserialize, Serialize};

use super::io::{get_json, parse_json, put_json};
use super::{EvaluationRecord, Stores};
use crate::error::{Error, Result};
use crate::keys::{self, score};
use crate::spec::UseCase;

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
