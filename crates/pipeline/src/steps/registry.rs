//! The model registry: the recorded versions of a use case (`MODEL#<uc> / VERSION#<v>`), and
//! making a deployed version champion again (promote, rollback). A promotion re-publishes the
//! version's scores from its artifact under `models/<uc>/<v>/` and the validated data of the run
//! that trained it, then flips the champion with the conditional write a deployment uses, and
//! writes the pointer last: a promotion racing a deployment leaves exactly one champion.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::champion::{champion_item_version, flip_champion};
use super::io::{get_json, load_manifest, load_run_spec, put_json};
use super::scoring::publish_scores;
use super::{Champion, EvaluationRecord, Stores};
use crate::error::{Error, Result};
use crate::keys::{self, score};
use crate::spec::UseCase;
use crate::usecase;

/// One recorded version: what deploy or reject wrote (`MODEL#<uc> / VERSION#<v>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub use_case: UseCase,
    pub version: String,
    pub run_id: String,
    /// `deployed`, `rejected` or `unchanged`.
    pub status: String,
    pub metric: String,
    pub value: f64,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub artifact_uri: String,
    #[serde(default)]
    pub data_fingerprint: String,
    /// RFC 3339; the order versions were recorded in.
    pub recorded_at: String,
    /// Where it came from (versions recorded before lineage was kept have none).
    #[serde(default)]
    pub lineage: Option<Lineage>,
    /// Set by the listing: the version the champion item names.
    #[serde(default)]
    pub champion: bool,
}

/// Where a version came from, recorded with it: the data (each input file's key, sha256, size and
/// validated rows), the spec section and its hash, the code, the run and the champion it was
/// compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    pub run_id: String,
    /// The champion it was evaluated against (None: there was none).
    pub parent: Option<String>,
    pub inputs: Vec<InputFile>,
    pub spec_section_sha256: String,
    pub spec_section: serde_json::Value,
    /// `marquee <crate version> (<git commit>)` of the code that trained it.
    pub code_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    pub table: String,
    pub key: String,
    pub sha256: String,
    pub bytes: u64,
    pub rows: usize,
}

/// The version of this code, as lineage records it.
pub fn code_version() -> String {
    format!("marquee {} ({})", env!("CARGO_PKG_VERSION"), env!("MARQUEE_GIT_COMMIT"))
}

/// The lineage of an evaluated version, from its run's spec and ingest manifest.
pub(super) async fn lineage(stores: Stores<'_>, rec: &EvaluationRecord) -> Result<Lineage> {
    let spec = load_run_spec(stores, &rec.run_id).await?;
    let manifest = load_manifest(stores, &rec.run_id).await?;
    let model = usecase::of(rec.use_case);
    let section = usecase::spec_section(&spec, model);
    let inputs = model
        .needed_tables(&spec)
        .into_iter()
        .filter_map(|table| {
            let t = manifest.tables.get(&table)?;
            Some(InputFile { key: t.source_key.clone(), sha256: t.sha256.clone(), bytes: t.bytes, rows: t.rows, table })
        })
        .collect();
    Ok(Lineage {
        run_id: rec.run_id.clone(),
        parent: rec.champion.as_ref().map(|c| c.version.clone()),
        inputs,
        spec_section_sha256: hex::encode(Sha256::digest(section.to_string().as_bytes())),
        spec_section: section,
        code_version: code_version(),
    })
}

/// Every recorded version of `uc`, oldest first, the champion marked.
pub async fn versions(stores: Stores<'_>, uc: UseCase) -> Result<Vec<VersionRecord>> {
    let pk = score::model(uc);
    let items = stores.scores.query(&pk).await.map_err(Error::store(format!("reading the versions of {uc}")))?;
    let champion = champion_item_version(stores, uc).await?;
    let mut out = Vec::new();
    for item in items.iter().filter(|i| i.sk.starts_with(&score::version(""))) {
        let mut rec: VersionRecord = serde_json::from_value(serde_json::Value::Object(item.attrs.clone()))
            .map_err(|e| Error::Invalid(format!("version record {pk} / {}: {e}", item.sk)))?;
        rec.champion = champion.as_deref() == Some(rec.version.as_str());
        out.push(rec);
    }
    out.sort_by(|a, b| a.recorded_at.cmp(&b.recorded_at).then_with(|| a.version.cmp(&b.version)));
    Ok(out)
}

/// What a promotion did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub use_case: UseCase,
    pub version: String,
    /// The champion before (None: there was none).
    pub previous: Option<String>,
    /// Score items re-published (0 when the version already was champion).
    pub scores_written: usize,
}

/// Makes `version`, a version of `uc` that was deployed once, champion again.
pub async fn promote(stores: Stores<'_>, uc: UseCase, version: &str) -> Result<Promotion> {
    let evaluation_key = keys::deployed(uc, version, "evaluation.json");
    let deployed = stores
        .objects
        .get_opt(&evaluation_key)
        .await
        .map_err(Error::store(format!("reading {}", stores.objects.uri(&evaluation_key))))?;
    if deployed.is_none() {
        return Err(Error::Invalid(format!(
            "{uc} version {version} was never deployed ({} is absent): only deployed versions can be promoted; \
             `marquee models list {uc}` lists them",
            stores.objects.uri(&evaluation_key)
        )));
    }
    let rec: EvaluationRecord = get_json(stores, &evaluation_key).await?;
    let current = champion_item_version(stores, uc).await?;
    if current.as_deref() == Some(version) {
        return Ok(Promotion { use_case: uc, version: version.into(), previous: current, scores_written: 0 });
    }
    let manifest = keys::ingest_manifest(&rec.run_id);
    let data = stores.objects.size(&manifest).await.map_err(Error::store(format!("reading {manifest}")))?;
    if data.is_none() {
        return Err(Error::Invalid(format!(
            "the data of run {} that {uc} version {version} was trained on is gone ({} expired with runs/): \
             its scores cannot be re-published",
            rec.run_id,
            stores.objects.uri(&manifest)
        )));
    }
    let scores_written = publish_scores(stores, uc, version).await?;
    let model_key = keys::deployed(uc, version, "model.json");
    flip_champion(stores, &rec, &stores.objects.uri(&model_key), current.clone()).await?;
    put_json(stores, &keys::champion(uc), &Champion::of(&rec, model_key, evaluation_key)).await?;
    tracing::info!(use_case = %uc, version, previous = ?current, scores_written, "promoted");
    Ok(Promotion { use_case: uc, version: version.into(), previous: current, scores_written })
}

/// Promotes the deployed version recorded before the current champion.
pub async fn rollback(stores: Stores<'_>, uc: UseCase) -> Result<Promotion> {
    let deployed: Vec<VersionRecord> =
        versions(stores, uc).await?.into_iter().filter(|v| v.status == "deployed").collect();
    let Some(at) = deployed.iter().position(|v| v.champion) else {
        return Err(Error::Invalid(format!("{uc} has no champion to roll back from")));
    };
    let Some(previous) = at.checked_sub(1).map(|i| &deployed[i]) else {
        return Err(Error::Invalid(format!(
            "{uc} version {} is the first deployed version: there is none before it to roll back to",
            deployed[at].version
        )));
    };
    promote(stores, uc, &previous.version).await
}
