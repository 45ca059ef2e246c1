//! Promote: after the use cases of a run, per audience segment the titles to promote
//! ([`crate::promote`]), crossing the current champions of segment, recommend and sentiment, each
//! over the validated tables of the run that trained it. Writes `SEGMENT#<s>` / `PROMOTE` items,
//! removes those of segments the segment champion no longer has, and records what it crossed in
//! `models/promote/promotion.json`; when the champions are the ones that record names, it writes
//! nothing.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

use super::champion::peek_champion;
use super::io::{get, load_manifest, load_run_spec, load_tables, put_json};
use super::{Champion, Manifest, Stores};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::keys::{self, score};
use crate::promote::{rank, PromoteInputs, PromoteVersions, RankParams};
use crate::spec::{PromoteSection, Spec, UseCase};
use crate::usecase::recommend::{self, RecommendModel};
use crate::usecase::segment::{self, SegmentModel};
use crate::usecase::{self, common::from_json, sentiment, Tables};

/// Input of the Promote state: the run whose spec says how to promote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromoteRequest {
    pub run_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromoteOutcome {
    /// New promotions written.
    Written,
    /// The champions are those of the last promotion: nothing written.
    Unchanged,
    /// Not run: the spec does not ask for it, a champion it needs is missing, or nothing was trained.
    Skipped,
}

/// What Promote did (the run summary's `promote` line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromoteOutput {
    pub outcome: PromoteOutcome,
    #[serde(default)]
    pub run_id: String,
    /// Segments with a promotion item.
    #[serde(default)]
    pub segments: usize,
    /// Items of segments the segment champion no longer has, deleted.
    #[serde(default)]
    pub stale_removed: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<PromoteVersions>,
    #[serde(default)]
    pub note: String,
}

impl PromoteOutput {
    pub fn skipped(run_id: &str, note: impl Into<String>) -> Self {
        Self {
            outcome: PromoteOutcome::Skipped,
            run_id: run_id.into(),
            segments: 0,
            stale_removed: 0,
            versions: None,
            note: note.into(),
        }
    }
}

/// `models/promote/promotion.json`: the last promotion written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PromotionRecord {
    run_id: String,
    versions: PromoteVersions,
    /// The `[promote]` section it ranked with (a change re-ranks).
    top_n: usize,
    sentiment_weight: f64,
    lift_weight: f64,
    segments: Vec<usize>,
    written_at: String,
}

pub async fn promote_to_segments(stores: Stores<'_>, run_id: &str) -> Result<PromoteOutput> {
    run(stores, run_id).await.map_err(|e| e.in_step(run_id, "promote", None))
}

async fn run(stores: Stores<'_>, run_id: &str) -> Result<PromoteOutput> {
    let spec = load_run_spec(stores, run_id).await?;
    if !PromoteSection::active(&spec) {
        return Ok(PromoteOutput::skipped(run_id, "the spec does not enable segment, recommend and promote"));
    }
    let (Some(seg), Some(rec)) =
        (peek_champion(stores, UseCase::Segment).await?, peek_champion(stores, UseCase::Recommend).await?)
    else {
        return Ok(PromoteOutput::skipped(run_id, "no deployed segment or recommend champion yet"));
    };
    let sent = match spec.promote.sentiment_kind(&spec) {
        Some(_) => peek_champion(stores, UseCase::Sentiment).await?,
        None => None,
    };
    let versions = PromoteVersions {
        segment: seg.version.clone(),
        recommend: rec.version.clone(),
        sentiment: sent.as_ref().map(|c| c.version.clone()),
    };
    let params = RankParams {
        top_n: spec.promote.top_n,
        sentiment_weight: spec.promote.sentiment_weight,
        lift_weight: spec.promote.lift_weight,
    };
    let previous: Option<PromotionRecord> = match stores
        .objects
        .get_opt(&keys::promotion())
        .await
        .map_err(Error::store(format!("reading {}", keys::promotion())))?
    {
        Some(bytes) => Some(from_json(&bytes, "the promotion record")?),
        None => None,
    };
    if let Some(p) = previous.as_ref().filter(|p| {
        p.versions == versions
            && p.top_n == params.top_n
            && p.sentiment_weight == params.sentiment_weight
            && p.lift_weight == params.lift_weight
    }) {
        return Ok(PromoteOutput {
            outcome: PromoteOutcome::Unchanged,
            run_id: run_id.into(),
            segments: p.segments.len(),
            stale_removed: 0,
            versions: Some(versions),
            note: format!("same champions as the promotion of run {}", p.run_id),
        });
    }

    let mut inputs = ChampionInputs::new(stores, [seg, rec].into_iter().chain(sent.clone())).await?;
    let (seg_model, seg_spec, seg_tables) = inputs.next().await?;
    let seg_model: SegmentModel = from_json(&seg_model, "segment model")?;
    let assignments = segment::assign(&seg_spec, &seg_model, &seg_tables)?;
    drop(seg_tables);
    let labels: Vec<String> = seg_model.profiles.iter().map(|p| p.label.clone()).collect();

    let (rec_model, rec_spec, rec_tables) = inputs.next().await?;
    let rec_model: RecommendModel = from_json(&rec_model, "recommend model")?;
    let lists = recommend::top_lists(&rec_spec, &rec_model, &rec_tables)?;
    drop(rec_tables);

    let mut trends = HashMap::new();
    if let (Some(_), Some(kind)) = (&sent, spec.promote.sentiment_kind(&spec)) {
        let (model, sent_spec, tables) = inputs.next().await?;
        trends = sentiment::trends(&sent_spec, &model, &tables)?
            .into_iter()
            .filter(|t| t.kind == kind)
            .map(|t| (t.entity, t.direction))
            .collect();
    }

    let names: HashMap<&str, &str> =
        rec_model.title_names.iter().map(|(id, name)| (id.as_str(), name.as_str())).collect();
    let inputs = PromoteInputs {
        assignments: &assignments,
        labels: &labels,
        user_ids: &rec_model.user_ids,
        lists: &lists,
        item_ids: &rec_model.item_ids,
        title_names: &names,
        trends: &trends,
    };
    let promotions = rank(&inputs, params, &versions);
    let segments: Vec<usize> = promotions.iter().map(|p| p.segment).collect();
    stores
        .scores
        .put_items(promotions.iter().map(|p| p.to_item()).collect())
        .await
        .map_err(Error::store("writing the segment promotions"))?;
    let stale: Vec<(String, String)> = previous
        .iter()
        .flat_map(|p| p.segments.iter())
        .filter(|s| !segments.contains(s))
        .map(|&s| (score::segment(s), score::PROMOTE.to_string()))
        .collect();
    let stale_removed = stale.len();
    stores.scores.delete_items(stale).await.map_err(Error::store("removing promotions of former segments"))?;
    let record = PromotionRecord {
        run_id: run_id.into(),
        versions: versions.clone(),
        top_n: params.top_n,
        sentiment_weight: params.sentiment_weight,
        lift_weight: params.lift_weight,
        segments: segments.clone(),
        written_at: chrono::Utc::now().to_rfc3339(),
    };
    put_json(stores, &keys::promotion(), &record).await?;
    tracing::info!(run_id, segments = segments.len(), stale_removed, "segment promotions written");
    Ok(PromoteOutput {
        outcome: PromoteOutcome::Written,
        run_id: run_id.into(),
        segments: segments.len(),
        stale_removed,
        versions: Some(versions),
        note: String::new(),
    })
}

/// The champions' artifacts in turn, each with the spec of the run that trained it and that run's
/// validated tables (those its use case scores from). Champions usually share a run: its spec and
/// manifest are read once, and a table is read once and kept only while a later champion of the
/// same run still needs it, so peak memory stays near one champion's tables.
struct ChampionInputs<'a> {
    stores: Stores<'a>,
    runs: HashMap<String, (Spec, Manifest)>,
    /// Champions not loaded yet, with the tables each needs.
    queue: VecDeque<(Champion, Vec<String>)>,
    kept: HashMap<(String, String), Frame>,
}

impl<'a> ChampionInputs<'a> {
    async fn new(stores: Stores<'a>, champions: impl IntoIterator<Item = Champion>) -> Result<Self> {
        let mut runs = HashMap::new();
        let mut queue = VecDeque::new();
        for champion in champions {
            if !runs.contains_key(&champion.run_id) {
                let spec = load_run_spec(stores, &champion.run_id).await?;
                let manifest = load_manifest(stores, &champion.run_id).await?;
                runs.insert(champion.run_id.clone(), (spec, manifest));
            }
            let needed = usecase::of(champion.use_case).needed_tables(&runs[&champion.run_id].0);
            queue.push_back((champion, needed));
        }
        Ok(Self { stores, runs, queue, kept: HashMap::new() })
    }

    async fn next(&mut self) -> Result<(Vec<u8>, Spec, Tables)> {
        let (champion, needed) = self.queue.pop_front().expect("one call per champion given");
        let run = champion.run_id.as_str();
        let (spec, manifest) = &self.runs[run];
        let model = get(self.stores, &champion.model_key).await?;
        let mut tables = Tables::default();
        let mut missing = Vec::new();
        for name in needed {
            match self.kept.remove(&(run.to_string(), name.clone())) {
                Some(frame) => {
                    tables.0.insert(name, frame);
                }
                None => missing.push(name),
            }
        }
        tables.0.extend(load_tables(self.stores, manifest, &missing).await?.0);
        for (later, names) in &self.queue {
            for name in names.iter().filter(|_| later.run_id == run) {
                if let Some(frame) = tables.0.get(name) {
                    self.kept.entry((run.to_string(), name.clone())).or_insert_with(|| frame.clone());
                }
            }
        }
        Ok((model, spec.clone(), tables))
    }
}
