//! Evaluate (CRISP-DM evaluation): technical metrics, business criteria, and the comparison with
//! the current champion on this run's test split; writes the evaluation record the deploy gate,
//! deploy, reject and the report read.

use serde::{Deserialize, Serialize};

use super::champion::peek_champion;
use super::io::{get, get_json, load_files, load_run_spec, parse_json, put, put_json};
use super::{Champion, Stores, UseCaseTask};
use crate::drift::{self, DriftReport, Level, Profile};
use crate::error::Result;
use crate::ingest::TableProfile;
use crate::keys;
use crate::spec::UseCase;
use crate::usecase;
use crate::usecase::common::{Criterion, CriterionKind, Evaluation, Op};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every criterion holds: deploy.
    Deploy,
    /// A technical or business criterion, or the champion comparison, failed.
    Reject,
    /// Same data and parameters as the champion: nothing to deploy.
    Unchanged,
    /// A step of the use case failed before a verdict (only in run summaries).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateOutput {
    pub run_id: String,
    pub use_case: UseCase,
    pub verdict: Verdict,
    pub metric: String,
    pub value: f64,
    pub champion_version: Option<String>,
    pub champion_value: Option<f64>,
    pub reasons: Vec<String>,
    pub evaluation_key: String,
    /// Drift at or past the spec's warn thresholds, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
}

/// The evaluation document of a challenger, `runs/<run>/models/<uc>/evaluation.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    pub run_id: String,
    pub use_case: UseCase,
    pub version: String,
    pub fingerprint: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub challenger: Evaluation,
    pub champion: Option<ChampionComparison>,
    /// This version's data and scores in summary, the reference for the next challenger's drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Drift against the champion (None: no champion, or one recorded without a profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChampionComparison {
    pub version: String,
    pub value: Option<f64>,
    pub note: String,
}

/// The metrics file beside the evaluation record (`metrics.json`), for tools that only want numbers.
#[derive(Serialize)]
struct Metrics<'a> {
    primary: &'a usecase::common::PrimaryMetric,
    criteria: &'a [Criterion],
    details: &'a usecase::Details,
}

pub async fn evaluate(stores: Stores<'_>, task: &UseCaseTask) -> Result<EvaluateOutput> {
    run(stores, task).await.map_err(|e| e.in_step(&task.run_id, "evaluate", Some(task.use_case.as_str())))
}

async fn run(stores: Stores<'_>, task: &UseCaseTask) -> Result<EvaluateOutput> {
    let (run_id, uc) = (task.run_id.as_str(), task.use_case);
    let model = usecase::of(uc);
    let spec = load_run_spec(stores, run_id).await?;
    let files = load_files(stores, run_id, uc).await?;
    let model_key = keys::run_model(run_id, uc, "model.json");
    let artifact = get(stores, &model_key).await?;
    let fp = artifact_fingerprint(&artifact);
    let mut challenger = model.evaluate(&spec, &artifact, &files)?;
    let primary = challenger.primary.clone();

    let tables: Vec<TableProfile> = get_json(stores, &keys::profile(run_id)).await?;
    let profile =
        Profile::of(&tables, &model.needed_tables(&spec), &model.label_columns(&spec), challenger.scores.clone());

    let champion = peek_champion(stores, uc).await?;
    let unchanged = champion.as_ref().is_some_and(|ch| ch.fingerprint == fp && !fp.is_empty());
    let drift = match &champion {
        // Measured on unchanged data too: a re-run must find no drift, which is a check of its own.
        Some(ch) => reference_profile(stores, ch)
            .await?
            .map(|reference| drift::compare(&ch.version, &reference, &profile, &spec.drift)),
        _ => None,
    };
    for shift in drift.iter().flat_map(|d| d.at_least(Level::Block)) {
        let block = match shift.what.as_str() {
            "missing" => spec.drift.missing_block,
            "label" => spec.drift.label_block,
            _ => spec.drift.psi_block,
        };
        challenger.criteria.push(Criterion::check(
            CriterionKind::Drift,
            &format!("{} {} vs champion {}", shift.what, shift.name, champion.as_ref().map_or("", |c| c.version.as_str())),
            shift.value,
            Op::Lt,
            block.unwrap_or(f64::INFINITY),
        )
        .next("check the data against the champion's (models diff); if the change is real, retrain with the block threshold raised in [drift]"));
    }
    let comparison = match &champion {
        None => None,
        Some(ch) if unchanged => Some(ChampionComparison {
            version: ch.version.clone(),
            value: Some(ch.value),
            note: "same data and parameters as the champion".into(),
        }),
        Some(ch) => {
            let (comparison, criterion) = compare_with_champion(stores, &spec, uc, &files, &primary, ch).await?;
            challenger.criteria.push(criterion);
            Some(comparison)
        }
    };
    let reasons: Vec<String> = if unchanged {
        vec![format!(
            "unchanged: same data and parameters as champion {}",
            champion.as_ref().map_or("", |c| c.version.as_str())
        )]
    } else {
        challenger
            .criteria
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} criterion failed: {}", c.kind, c.describe()))
            .collect()
    };
    let verdict = match (unchanged, reasons.is_empty()) {
        (true, _) => Verdict::Unchanged,
        (false, true) => Verdict::Deploy,
        (false, false) => Verdict::Reject,
    };
    let record = EvaluationRecord {
        run_id: run_id.into(),
        use_case: uc,
        version: run_id.into(),
        fingerprint: fp,
        verdict,
        reasons: reasons.clone(),
        challenger,
        champion: comparison.clone(),
        profile: Some(profile),
        drift,
    };
    let evaluation_key = keys::run_model(run_id, uc, "evaluation.json");
    put_json(stores, &evaluation_key, &record).await?;
    put(stores, &keys::run_model(run_id, uc, "summary.md"), summary_markdown(&record).into_bytes()).await?;
    let c = &record.challenger;
    let metrics = Metrics { primary: &c.primary, criteria: &c.criteria, details: &c.details };
    put_json(stores, &keys::run_model(run_id, uc, "metrics.json"), &metrics).await?;
    tracing::info!(run_id, use_case = %uc, metric = %primary.name, value = primary.value, ?verdict, "evaluated");
    Ok(EvaluateOutput {
        run_id: run_id.into(),
        use_case: uc,
        verdict,
        metric: primary.name,
        value: primary.value,
        champion_version: comparison.as_ref().map(|c| c.version.clone()),
        champion_value: comparison.and_then(|c| c.value),
        reasons,
        evaluation_key,
        drift: record.drift.as_ref().map(|d| d.warnings(&spec.drift)).unwrap_or_default(),
    })
}

/// The champion on this run's test split, and the criterion "no loss to the champion" (within the
/// spec's tolerance). A champion that cannot score the split (e.g. the schema changed) is compared
/// by the metric it recorded on its own test split instead.
async fn compare_with_champion(
    stores: Stores<'_>,
    spec: &crate::spec::Spec,
    uc: UseCase,
    files: &usecase::Files,
    primary: &usecase::common::PrimaryMetric,
    ch: &Champion,
) -> Result<(ChampionComparison, Criterion)> {
    let model = usecase::of(uc);
    let champion_artifact = get(stores, &ch.model_key).await?;
    let (value, note) = match model.evaluate(spec, &champion_artifact, files) {
        Ok(e) => (e.primary.value, "evaluated on this run's test split".to_string()),
        Err(e) => (ch.value, format!("recorded metric of the champion (it cannot score this run's test split: {e})")),
    };
    let tol = model.champion_tolerance(spec);
    let (op, threshold) = if primary.higher_is_better { (Op::Ge, value - tol) } else { (Op::Le, value + tol) };
    let criterion = Criterion::check(
        CriterionKind::Champion,
        &format!("{} vs champion {} ({value:.4}, tolerance {tol})", primary.name, ch.version),
        primary.value,
        op,
        threshold,
    )
    .next(format!(
        "the champion stays; to let a model this close replace it, raise [{uc}.champion] tolerance to at least {:.4}",
        (primary.value - value).abs()
    ));
    Ok((ChampionComparison { version: ch.version.clone(), value: Some(value), note }, criterion))
}

/// The champion's recorded profile (None when it was recorded before profiles were kept).
async fn reference_profile(stores: Stores<'_>, ch: &Champion) -> Result<Option<Profile>> {
    let Some(bytes) = stores
        .objects
        .get_opt(&ch.evaluation_key)
        .await
        .map_err(crate::Error::store(format!("reading {}", stores.objects.uri(&ch.evaluation_key))))?
    else {
        return Ok(None);
    };
    Ok(parse_json::<EvaluationRecord>(&bytes, &ch.evaluation_key)?.profile)
}

/// The fingerprint a model artifact records (every use case's model has a `fingerprint` field).
fn artifact_fingerprint(artifact: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Fingerprint {
        #[serde(default)]
        fingerprint: String,
    }
    parse_json::<Fingerprint>(artifact, "model.json").map(|f| f.fingerprint).unwrap_or_default()
}

fn summary_markdown(r: &EvaluationRecord) -> String {
    let mut s = format!(
        "# {} — run {}\n\nVerdict: **{:?}**\n\nPrimary metric: {} = {:.4}\n\n| kind | criterion | value | needs | passed |\n|---|---|---|---|---|\n",
        r.use_case, r.run_id, r.verdict, r.challenger.primary.name, r.challenger.primary.value
    );
    for c in &r.challenger.criteria {
        s += &format!(
            "| {} | {} | {:.4} | {} {:.4} | {} |\n",
            c.kind,
            c.name,
            c.value,
            c.op,
            c.threshold,
            if c.passed { "yes" } else { "NO" }
        );
    }
    if let Some(ch) = &r.champion {
        s += &format!("\nChampion {}: {}\n", ch.version, ch.note);
    }
    for reason in &r.reasons {
        s += &format!("\n- {reason}");
    }
    s.push('\n');
    s
}
