//! The model registry: the recorded versions of a use case (`MODEL#<uc> / VERSION#<v>`), and
//! making a deployed version champion again (promote, rollback). A promotion re-publishes the
//! version's scores from its artifact under `models/<uc>/<v>/` and the validated data of the run
//! that trained it, then flips the champion with the conditional write a deployment uses, and
//! writes the pointer last: a promotion racing a deployment leaves exactly one champion.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

use super::champion::{champion_item_version, flip_champion};
use super::io::{get_json, load_manifest, load_run_spec, put_json};
use super::scoring::publish_scores;
use super::stale::retire_stale;
use super::summary::PromoteLine;
use super::to_segments::promote_to_segments;
use super::{Champion, EvaluationRecord, Stores};
use crate::drift::{self, DriftReport};
use crate::error::{Error, Result};
use crate::keys::{self, score};
use crate::spec::UseCase;
use crate::usecase;
use crate::usecase::common::{Criterion, CriterionKind};

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
    /// Every criterion it was judged by, with its value and threshold.
    #[serde(default)]
    pub criteria: Vec<Criterion>,
    /// Parameters its evaluation chose for deployment (e.g. the churn cutoff).
    #[serde(default)]
    pub deploy_params: BTreeMap<String, f64>,
    #[serde(default)]
    pub artifact_uri: String,
    #[serde(default)]
    pub data_fingerprint: String,
    /// RFC 3339; the order versions were recorded in.
    pub recorded_at: String,
    /// Where it came from (versions recorded before lineage was kept have none).
    #[serde(default)]
    pub lineage: Option<Lineage>,
    /// Its drift against the champion it was compared with.
    #[serde(default)]
    pub drift: Option<DriftReport>,
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
    /// S3 version id or ETag of the file read (None in a folder, or recorded before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_version: Option<String>,
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
            Some(InputFile {
                key: t.source_key.clone(),
                sha256: t.sha256.clone(),
                bytes: t.bytes,
                rows: t.rows,
                object_version: t.object_version.clone(),
                table,
            })
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
    /// Score items of the previous champion deleted: customers or titles absent from the data
    /// of the promoted version.
    #[serde(default)]
    pub stale_removed: usize,
    /// A new segment, recommend or sentiment champion changes what the segment x content
    /// promotion crosses: it is ranked again (with the promoted version's `[promote]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<PromoteLine>,
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
        return Ok(Promotion {
            use_case: uc,
            version: version.into(),
            previous: current,
            scores_written: 0,
            stale_removed: 0,
            segments: None,
        });
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
    let stale_removed = match &current {
        Some(previous) => retire_stale(stores, uc, previous, version).await?,
        None => 0,
    };
    tracing::info!(use_case = %uc, version, previous = ?current, scores_written, stale_removed, "promoted");
    // The champion has moved either way: a failed re-ranking is reported, not the promotion's error.
    let segments = match uc {
        UseCase::Segment | UseCase::Recommend | UseCase::Sentiment => {
            Some(match promote_to_segments(stores, &rec.run_id).await {
                Ok(out) => PromoteLine::Done(out),
                Err(e) => {
                    tracing::warn!(use_case = %uc, version, error = %e, "segment promotions not ranked again");
                    PromoteLine::Failed { error: e.error_type().to_string(), cause: e.to_string() }
                }
            })
        }
        _ => None,
    };
    Ok(Promotion { use_case: uc, version: version.into(), previous: current, scores_written, stale_removed, segments })
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

/// What differs between two versions of a use case: metrics, parameters (spec section and the
/// deployment parameters evaluation chose), input files, code, and the drift of the second's data
/// and scores against the first's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionDiff {
    pub use_case: UseCase,
    pub from: String,
    pub to: String,
    /// The primary metric and every criterion, by name (None: the version was not judged by it).
    pub metrics: Vec<Change<f64>>,
    /// Spec-section values (dotted paths) and deployment parameters that differ.
    pub parameters: Vec<Change<Value>>,
    /// Every input table, with whether its file's sha256 is the same.
    pub inputs: Vec<InputChange>,
    pub code: Change<String>,
    /// Drift of `to` against `from`, under `to`'s run's thresholds (None: a profile is missing,
    /// e.g. a version recorded before profiles were kept, or a rejected one whose run expired).
    pub drift: Option<DriftReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<T> {
    pub name: String,
    pub from: Option<T>,
    pub to: Option<T>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputChange {
    pub table: String,
    pub same: bool,
    pub from: Option<InputFile>,
    pub to: Option<InputFile>,
}

/// Compares version `from` of `uc` with version `to`.
pub async fn diff(stores: Stores<'_>, uc: UseCase, from: &str, to: &str) -> Result<VersionDiff> {
    let all = versions(stores, uc).await?;
    let find = |v: &str| {
        all.iter().find(|r| r.version == v).cloned().ok_or_else(|| {
            Error::Invalid(format!("{uc} has no version {v}: `marquee models list {uc}` lists its versions"))
        })
    };
    let (a, b) = (find(from)?, find(to)?);
    let metrics = changes(&metric_values(&a), &metric_values(&b));
    let mut parameters = changes(&spec_values(&a), &spec_values(&b));
    let params = |v: &VersionRecord| -> BTreeMap<String, Value> {
        v.deploy_params.iter().map(|(k, x)| (format!("deploy.{k}"), Value::from(*x))).collect()
    };
    parameters.extend(changes(&params(&a), &params(&b)));
    parameters.retain(|c| c.from != c.to);
    let files = |v: &VersionRecord| -> BTreeMap<String, InputFile> {
        v.lineage.iter().flat_map(|l| l.inputs.iter()).map(|f| (f.table.clone(), f.clone())).collect()
    };
    let (fa, fb) = (files(&a), files(&b));
    let tables: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    let inputs = tables
        .into_iter()
        .map(|t| {
            let (from, to) = (fa.get(t).cloned(), fb.get(t).cloned());
            let same = matches!((&from, &to), (Some(x), Some(y)) if x.sha256 == y.sha256);
            InputChange { table: t.clone(), same, from, to }
        })
        .collect();
    let code = |v: &VersionRecord| v.lineage.as_ref().map(|l| l.code_version.clone());
    let drift = match (recorded_evaluation(stores, &a).await?, recorded_evaluation(stores, &b).await?) {
        (Some(ea), Some(eb)) => match (ea.profile, eb.profile) {
            (Some(pa), Some(pb)) => {
                let thresholds = super::io::load_run_spec(stores, &b.run_id).await.map(|s| s.drift).unwrap_or_default();
                Some(drift::compare(from, &pa, &pb, &thresholds))
            }
            _ => None,
        },
        _ => None,
    };
    Ok(VersionDiff {
        use_case: uc,
        from: from.into(),
        to: to.into(),
        metrics,
        parameters,
        inputs,
        code: Change { name: "code".into(), from: code(&a), to: code(&b) },
        drift,
    })
}

fn changes<T: Clone + PartialEq>(a: &BTreeMap<String, T>, b: &BTreeMap<String, T>) -> Vec<Change<T>> {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names.into_iter().map(|n| Change { name: n.clone(), from: a.get(n).cloned(), to: b.get(n).cloned() }).collect()
}

/// A version's headline metric and the values of its own criteria. Champion and drift criteria
/// compare it with whichever version was champion then, so they do not line up across versions.
fn metric_values(v: &VersionRecord) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = v
        .criteria
        .iter()
        .filter(|c| matches!(c.kind, CriterionKind::Technical | CriterionKind::Business))
        .map(|c| (c.name.clone(), c.value))
        .collect();
    if !out.keys().any(|k| k.eq_ignore_ascii_case(&v.metric)) {
        out.insert(v.metric.clone(), v.value);
    }
    out
}

/// The spec section of a version's lineage as dotted paths (`section.k`, `seed`, ...).
fn spec_values(v: &VersionRecord) -> BTreeMap<String, Value> {
    fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    flatten(&path, x, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Some(l) = &v.lineage {
        flatten("", &l.spec_section, &mut out);
    }
    out
}

/// A version's evaluation record: beside its deployed artifact, else in its run (which may have
/// expired); None when neither is there.
async fn recorded_evaluation(stores: Stores<'_>, v: &VersionRecord) -> Result<Option<EvaluationRecord>> {
    for key in [
        keys::deployed(v.use_case, &v.version, "evaluation.json"),
        keys::run_model(&v.run_id, v.use_case, "evaluation.json"),
    ] {
        let found = stores
            .objects
            .get_opt(&key)
            .await
            .map_err(Error::store(format!("reading {}", stores.objects.uri(&key))))?;
        if let Some(bytes) = found {
            return Ok(Some(super::io::parse_json(&bytes, &key)?));
        }
    }
    Ok(None)
}
