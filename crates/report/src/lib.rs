//! marquee-report: the evaluation report of one pipeline run, as one self-contained HTML file
//! (inline CSS and SVG charts drawn with plotters, one inline script for the churn cutoff slider;
//! nothing fetched by the browser, so it opens from file://).
//!
//! [`collect`] reads what a run wrote (data profile, quality report, quarantine, each use case's
//! evaluation record) from the object store and a few example scores from the score store;
//! [`render`] turns that into HTML; [`write_report`] does both and stores `runs/<run>/report.html`.
//! Both stores are the pipeline's traits, so the same code reports on S3 + DynamoDB.

mod charts;
mod html;
mod provenance;
mod sections;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use marquee_pipeline::ingest::{QualityReport, QuarantinedRow, TableProfile};
use marquee_pipeline::keys::{self, score};
use marquee_pipeline::promote::SegmentPromotion;
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::{Champion, EvaluationRecord, Lineage, Manifest, RunSummary, Stores, VersionRecord};
use marquee_pipeline::store::{Item, ObjectStore, ScoreStore};

pub use html::render;

/// The global options the report's commands need for a working folder: `--workdir DIR` with
/// DIR absolute (the page may be opened, and the command pasted, from anywhere) and quoted for a
/// shell where it must be.
pub fn workdir_options(workdir: &std::path::Path) -> String {
    let dir = std::fs::canonicalize(workdir).unwrap_or_else(|_| workdir.to_path_buf());
    format!("--workdir {}", sections::cutoff_slider::shell_word(&dir.display().to_string()))
}

/// Quarantined rows shown in the report (the CSV holds all of them).
pub const QUARANTINE_SHOWN: usize = 50;
/// Example customers and titles read from the score store.
pub const EXAMPLES: usize = 3;
/// The most at-risk customers whose lists the report looks up for its examples, at most.
const EXAMPLE_CANDIDATES: usize = 100;
/// Entities in the trending-sentiment chart.
pub const TREND_ENTITIES: usize = 6;
/// Entities listed in the sentiment table (most mentioned first).
pub const SENTIMENT_LISTED: usize = 15;

/// The run has written nothing a report can show (no summary, no quality report).
#[derive(Debug)]
pub struct RunNotFound {
    pub run_id: String,
    pub looked_at: String,
}

impl std::fmt::Display for RunNotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run `{}` not found (nothing under {})", self.run_id, self.looked_at)
    }
}

impl std::error::Error for RunNotFound {}

/// Everything the report shows, gathered from the stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportData {
    pub run_id: String,
    pub generated_at: String,
    pub summary: Option<RunSummary>,
    pub manifest: Option<Manifest>,
    pub profiles: Vec<TableProfile>,
    pub quality: Option<QualityReport>,
    /// The first [`QUARANTINE_SHOWN`] quarantined rows.
    pub quarantine: Vec<QuarantinedRow>,
    pub quarantine_total: usize,
    pub quarantine_uri: String,
    pub use_cases: Vec<UseCaseReport>,
    pub examples: Examples,
    /// The global options a command on this run needs (e.g. `--workdir /tmp/mq`), written into
    /// the commands the page prints so they can be pasted as they are.
    #[serde(default)]
    pub cli_options: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UseCaseReport {
    pub use_case: UseCase,
    pub record: EvaluationRecord,
    /// The champion now (it may be this run's model, an earlier one, or none).
    pub champion: Option<Champion>,
    /// Churn: the cutoff in effect when this run is the champion (it may have been moved with
    /// `marquee churn cutoff --apply` after deployment).
    pub deployed_cutoff: Option<f64>,
    /// Where this run's version came from, as the registry recorded it.
    #[serde(default)]
    pub lineage: Option<Lineage>,
}

impl UseCaseReport {
    pub fn is_champion(&self) -> bool {
        self.champion.as_ref().is_some_and(|c| c.run_id == self.record.run_id)
    }
}

/// Examples read from the score store (what applications see: the deployed champions' scores).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Examples {
    pub customers: Vec<CustomerRecs>,
    pub titles: Vec<TitleSimilar>,
    pub sentiment: Vec<EntitySentiment>,
    /// Per segment, the titles to promote (`SEGMENT#<s>` / `PROMOTE`).
    #[serde(default)]
    pub promotions: Vec<SegmentPromotion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ranked {
    pub title_id: String,
    pub title: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerRecs {
    pub customer_id: String,
    pub segment: Option<String>,
    pub churn_probability: Option<f64>,
    pub recs: Vec<Ranked>,
    pub model_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TitleSimilar {
    pub title_id: String,
    pub title: String,
    pub similar: Vec<Ranked>,
    pub model_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentimentWindow {
    pub start: String,
    pub net: f64,
    pub positive: u64,
    pub negative: u64,
    pub neutral: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntitySentiment {
    pub kind: String,
    pub entity: String,
    /// A title's name (from the SIMILAR items), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub mentions: u64,
    pub net_score: f64,
    pub slope: f64,
    pub direction: String,
    pub windows: Vec<SentimentWindow>,
}

impl EntitySentiment {
    /// From a `SENTIMENT` score item (pk `TITLE#x`, `BRAND#x`, `TALENT#x`).
    pub fn from_item(item: &Item) -> Self {
        let (kind, entity) = item.pk.split_once('#').unwrap_or(("", &item.pk));
        let num = |v: Option<&Value>| v.and_then(Value::as_f64).unwrap_or(0.0);
        let windows = item
            .attr("windows")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|w| SentimentWindow {
                start: w.get("start").and_then(Value::as_str).unwrap_or_default().to_string(),
                net: num(w.get("net")),
                positive: w.get("positive").and_then(Value::as_u64).unwrap_or(0),
                negative: w.get("negative").and_then(Value::as_u64).unwrap_or(0),
                neutral: w.get("neutral").and_then(Value::as_u64).unwrap_or(0),
            })
            .collect();
        Self {
            kind: kind.to_ascii_lowercase(),
            entity: entity.to_string(),
            name: None,
            mentions: item.attr("mentions").and_then(Value::as_u64).unwrap_or(0),
            net_score: num(item.attr("net_score")),
            slope: num(item.attr("trend_slope")),
            direction: item.attr("direction").and_then(Value::as_str).unwrap_or("flat").to_string(),
            windows,
        }
    }

    /// "T0054 Stolen Empire" for a title with a known name, else the entity id.
    pub fn display(&self) -> String {
        match &self.name {
            Some(n) if !n.is_empty() => format!("{} {n}", self.entity),
            _ => self.entity.clone(),
        }
    }

    pub fn arrow(&self) -> &'static str {
        direction_arrow(&self.direction)
    }
}

pub fn direction_arrow(direction: &str) -> &'static str {
    match direction {
        "rising" => "↑",
        "falling" => "↓",
        _ => "→",
    }
}

/// A ranked list (`items: [{title_id, title, score|similarity}]`) of a RECS or SIMILAR item.
pub fn ranked(item: &Item, field: &str) -> Vec<Ranked> {
    item.attr("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| Ranked {
            title_id: r.get("title_id").and_then(Value::as_str).unwrap_or_default().to_string(),
            title: r.get("title").and_then(Value::as_str).unwrap_or_default().to_string(),
            score: r.get(field).and_then(Value::as_f64).unwrap_or(f64::NAN),
        })
        .collect()
}

fn version_of(item: &Item) -> String {
    item.attr("model_version").and_then(Value::as_str).unwrap_or_default().to_string()
}

async fn get_json<T: for<'de> Deserialize<'de>>(objects: &dyn ObjectStore, key: &str) -> Result<Option<T>> {
    match objects.get_opt(key).await.with_context(|| format!("reading {}", objects.uri(key)))? {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes).map(Some).with_context(|| format!("parsing {}", objects.uri(key)))
        }
    }
}

/// Run ids that finished (have a `summary.json`), oldest first by ingest time.
pub async fn finished_runs(objects: &dyn ObjectStore) -> Result<Vec<String>> {
    let keys = objects.list("runs/").await.context("listing runs/")?;
    let mut runs = Vec::new();
    for key in keys {
        if let Some(run) = key.strip_prefix("runs/").and_then(|k| k.strip_suffix("/summary.json")) {
            if !run.contains('/') {
                let at = get_json::<Manifest>(objects, &keys::ingest_manifest(run))
                    .await
                    .ok()
                    .flatten()
                    .map(|m| m.ingested_at)
                    .unwrap_or_default();
                runs.push((at, run.to_string()));
            }
        }
    }
    runs.sort();
    Ok(runs.into_iter().map(|(_, r)| r).collect())
}

/// The most recent finished run.
pub async fn latest_run(objects: &dyn ObjectStore) -> Result<Option<String>> {
    Ok(finished_runs(objects).await?.pop())
}

/// The churn cutoff in effect for a deployed churn version: the one applied after deployment
/// (`models/churn/<version>/cutoff.json`) or else the one evaluation chose.
pub async fn deployed_churn_cutoff(
    objects: &dyn ObjectStore,
    version: &str,
    record: &EvaluationRecord,
) -> Result<Option<f64>> {
    let applied: Option<Value> = get_json(objects, &marquee_pipeline::steps::churn_cutoff_key(version)).await?;
    Ok(applied
        .and_then(|v| v.get("cutoff").and_then(Value::as_f64))
        .or_else(|| record.challenger.deploy_params.get("cutoff").copied()))
}

/// Reads everything the report of `run_id` shows.
pub async fn collect(stores: Stores<'_>, run_id: &str) -> Result<ReportData> {
    let objects = stores.objects;
    let summary: Option<RunSummary> = get_json(objects, &keys::summary(run_id)).await?;
    let manifest: Option<Manifest> = get_json(objects, &keys::ingest_manifest(run_id)).await?;
    let profiles: Vec<TableProfile> = get_json(objects, &keys::profile(run_id)).await?.unwrap_or_default();
    let quality: Option<QualityReport> = get_json(objects, &keys::quality(run_id)).await?;
    if summary.is_none() && quality.is_none() {
        return Err(RunNotFound { run_id: run_id.into(), looked_at: objects.uri(&keys::run_prefix(run_id)) }.into());
    }
    let (quarantine, quarantine_total) = match objects.get_opt(&keys::quarantine(run_id)).await? {
        Some(bytes) => read_quarantine(&bytes)?,
        None => (Vec::new(), 0),
    };

    let mut use_cases = Vec::new();
    for uc in marquee_pipeline::usecase::REGISTERED.iter().map(|u| u.id()) {
        let Some(record) =
            get_json::<EvaluationRecord>(objects, &keys::run_model(run_id, uc, "evaluation.json")).await?
        else {
            continue;
        };
        let champion: Option<Champion> = get_json(objects, &keys::champion(uc)).await?;
        let deployed_cutoff = match (&champion, uc) {
            (Some(ch), UseCase::Churn) if ch.run_id == run_id => {
                deployed_churn_cutoff(objects, &ch.version, &record).await?
            }
            _ => None,
        };
        let lineage = match stores.scores.get_item(&score::model(uc), &score::version(&record.version)).await? {
            Some(item) => {
                serde_json::from_value::<VersionRecord>(Value::Object(item.attrs)).ok().and_then(|v| v.lineage)
            }
            None => None,
        };
        use_cases.push(UseCaseReport { use_case: uc, record, champion, deployed_cutoff, lineage });
    }
    let examples = collect_examples(stores.scores).await?;
    Ok(ReportData {
        run_id: run_id.to_string(),
        generated_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        summary,
        manifest,
        profiles,
        quality,
        quarantine,
        quarantine_total,
        quarantine_uri: objects.uri(&keys::quarantine(run_id)),
        use_cases,
        examples,
        cli_options: String::new(),
    })
}

fn read_quarantine(bytes: &[u8]) -> Result<(Vec<QuarantinedRow>, usize)> {
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let mut rows = Vec::new();
    let mut total = 0;
    for rec in r.records() {
        let rec = rec.context("reading quarantine.csv")?;
        total += 1;
        if rows.len() < QUARANTINE_SHOWN {
            let f = |i: usize| rec.get(i).unwrap_or_default().to_string();
            rows.push(QuarantinedRow {
                table: f(0),
                file: f(1),
                line: f(2).parse().unwrap_or(0),
                column: f(3),
                reason: f(4),
                raw: f(5),
            });
        }
    }
    Ok((rows, total))
}

/// A few customers (the most at risk that have recommendations), a few titles (the most
/// talked-about that have similar titles) and the most-mentioned sentiment entities.
async fn collect_examples(scores: &dyn ScoreStore) -> Result<Examples> {
    let mut ex = Examples::default();
    let mut sentiment: Vec<EntitySentiment> =
        scores.scan_sk("", score::SENTIMENT).await?.iter().map(EntitySentiment::from_item).collect();
    sentiment.sort_by(|a, b| b.mentions.cmp(&a.mentions).then(a.entity.cmp(&b.entity)));

    // The example customers are the most at risk who have a list: their lists are read one by
    // one, since every customer's list together is the largest thing in the store (10 GB of
    // items at a million customers).
    let mut churn: Vec<(f64, String)> = scores
        .scan_sk(&score::customer(""), score::CHURN)
        .await?
        .into_iter()
        .map(|i| (i.attr("probability").and_then(Value::as_f64).unwrap_or(0.0), i.pk))
        .collect();
    churn.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut picks: Vec<(Option<f64>, Item)> = Vec::new();
    for (p, pk) in churn.iter().take(EXAMPLE_CANDIDATES) {
        if picks.len() == EXAMPLES {
            break;
        }
        if let Some(item) = scores.get_item(pk, score::RECS).await? {
            picks.push((Some(*p), item));
        }
    }
    if picks.is_empty() {
        // No churn scores (or none of the most at risk has a list): any customers with a list.
        let recs = scores.scan_sk(&score::customer(""), score::RECS).await?;
        picks = recs.into_iter().take(EXAMPLES).map(|i| (None, i)).collect();
    }
    for (churn_probability, item) in picks {
        let pk = item.pk.as_str();
        let segment = scores.get_item(pk, score::SEGMENT).await?.map(|s| {
            format!(
                "{} ({})",
                s.attr("segment").map(|v| v.to_string()).unwrap_or_default(),
                s.attr("label").and_then(Value::as_str).unwrap_or_default()
            )
        });
        ex.customers.push(CustomerRecs {
            customer_id: pk.split_once('#').map_or(pk, |x| x.1).to_string(),
            segment,
            churn_probability,
            recs: ranked(&item, "score"),
            model_version: version_of(&item),
        });
    }

    let similar = scores.scan_sk(&score::title(""), score::SIMILAR).await?;
    if !similar.is_empty() {
        let by_pk: BTreeMap<&str, &Item> = similar.iter().map(|i| (i.pk.as_str(), i)).collect();
        let mut picks: Vec<&str> = sentiment
            .iter()
            .filter(|e| e.kind == "title")
            .map(|e| score::title(&e.entity))
            .filter_map(|pk| by_pk.get_key_value(pk.as_str()).map(|(k, _)| *k))
            .take(EXAMPLES)
            .collect();
        if picks.is_empty() {
            picks = similar.iter().take(EXAMPLES).map(|i| i.pk.as_str()).collect();
        }
        // Title names: a title appears by name in other titles' lists.
        let names: BTreeMap<String, String> =
            similar.iter().flat_map(|i| ranked(i, "similarity")).map(|r| (r.title_id, r.title)).collect();
        for pk in picks {
            let item = by_pk[pk];
            let id = pk.split_once('#').map_or(pk, |x| x.1).to_string();
            ex.titles.push(TitleSimilar {
                title: item
                    .attr("title")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .or_else(|| names.get(&id).cloned())
                    .unwrap_or_default(),
                title_id: id,
                similar: ranked(item, "similarity"),
                model_version: version_of(item),
            });
        }
    }
    sentiment.truncate(SENTIMENT_LISTED);
    for e in sentiment.iter_mut().filter(|e| e.kind == "title") {
        if let Some(item) = similar.iter().find(|i| i.pk == score::title(&e.entity)) {
            e.name = item.attr("title").and_then(Value::as_str).map(str::to_string);
        }
    }
    ex.sentiment = sentiment;
    ex.promotions = scores
        .scan_sk(score::SEGMENT_PREFIX, score::PROMOTE)
        .await?
        .iter()
        .map(SegmentPromotion::from_item)
        .collect::<marquee_pipeline::Result<_>>()?;
    ex.promotions.sort_by_key(|p| p.segment);
    Ok(ex)
}

/// Collects, renders and stores `runs/<run>/report.html`; returns its key. `cli_options`: the
/// global options the page's commands need to reach this run's stores (e.g. `--workdir W`).
pub async fn write_report(stores: Stores<'_>, run_id: &str, cli_options: &str) -> Result<String> {
    let mut data = collect(stores, run_id).await?;
    data.cli_options = cli_options.to_string();
    let html = render(&data);
    let key = report_key(run_id);
    stores
        .objects
        .put(&key, html.into_bytes())
        .await
        .with_context(|| format!("writing {}", stores.objects.uri(&key)))?;
    Ok(key)
}

pub fn report_key(run_id: &str) -> String {
    format!("{}report.html", keys::run_prefix(run_id))
}
