//! Queries over what the pipeline deployed: a customer, a title, the segments, the customers at
//! risk. Every function takes the store traits (`&dyn ScoreStore`, `&dyn ObjectStore`), so the same
//! code answers from the embedded stores (SQLite + a folder) and, once wired, from DynamoDB + S3:
//! the extension point for `--aws` is only which stores `main` opens.

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

use marquee_pipeline::keys::{self, score};
use marquee_pipeline::promote::SegmentPromotion;
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::{Champion, EvaluationRecord};
use marquee_pipeline::store::{Item, ObjectStore, ScoreStore};
use marquee_pipeline::usecase::ads::AdPlanScore;
use marquee_pipeline::usecase::Details;
use marquee_report::{ranked, EntitySentiment, Ranked};

use crate::hint;

fn id_of(pk: &str) -> &str {
    pk.split_once('#').map_or(pk, |x| x.1)
}

fn str_attr(item: &Item, k: &str) -> String {
    item.attr(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentOf {
    pub segment: u64,
    pub label: String,
    /// Share of customers in the segment when the model was trained (from the champion's profile).
    pub profile_share: Option<f64>,
    pub model_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChurnOf {
    pub probability: f64,
    pub at_risk: bool,
    pub cutoff: f64,
    /// The inputs raising this customer's risk most, with their contribution to the log-odds.
    pub drivers: Vec<Driver>,
    pub model_version: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Driver {
    pub feature: String,
    pub contribution: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerView {
    pub customer_id: String,
    pub segment: Option<SegmentOf>,
    pub churn: Option<ChurnOf>,
    pub recommendations: Vec<Ranked>,
    pub recommendations_version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TitleView {
    pub title_id: String,
    pub title: Option<String>,
    pub similar: Vec<Ranked>,
    pub similar_version: Option<String>,
    pub sentiment: Option<EntitySentiment>,
    /// Per break slot and audience segment, the ads to place mid-roll, best first.
    pub ad_plan: Vec<AdPlanScore>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentRow {
    pub segment: u64,
    pub label: String,
    /// Customers the deployed model put in this segment (score store).
    pub customers: usize,
    /// `customers` over all segmented customers.
    pub share: f64,
    /// Share in the training data (the champion's profile).
    pub profile_share: Option<f64>,
    /// Feature means of the segment (the champion's profile).
    pub means: BTreeMap<String, f64>,
    pub model_version: String,
    /// The titles to promote at the top of this segment's watchlists (`SEGMENT#<s>` / `PROMOTE`).
    pub promote: Option<SegmentPromotion>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AtRiskRow {
    pub rank: usize,
    pub customer_id: String,
    pub probability: f64,
    pub at_risk: bool,
    pub cutoff: f64,
    pub segment: Option<String>,
    pub model_version: String,
}

/// The deployed champion's evaluation record of a use case, if any.
pub async fn champion_record(objects: &dyn ObjectStore, uc: UseCase) -> Result<Option<(Champion, EvaluationRecord)>> {
    let Some(bytes) = objects.get_opt(&keys::champion(uc)).await? else { return Ok(None) };
    let champion: Champion =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", objects.uri(&keys::champion(uc))))?;
    let rec_bytes = objects
        .get(&champion.evaluation_key)
        .await
        .with_context(|| format!("reading {}", objects.uri(&champion.evaluation_key)))?;
    let rec: EvaluationRecord = serde_json::from_slice(&rec_bytes)
        .with_context(|| format!("parsing {}", objects.uri(&champion.evaluation_key)))?;
    Ok(Some((champion, rec)))
}

/// Segment profiles (segment -> (share, label, means)) of the segmentation champion.
async fn profiles(objects: &dyn ObjectStore) -> Result<BTreeMap<u64, (f64, String, BTreeMap<String, f64>)>> {
    let Some((_, rec)) = champion_record(objects, UseCase::Segment).await? else { return Ok(BTreeMap::new()) };
    let Details::Segment(details) = rec.challenger.details else { return Ok(BTreeMap::new()) };
    Ok(details.profiles.into_iter().map(|p| (p.segment as u64, (p.share, p.label, p.means))).collect())
}

pub async fn customer(
    scores: &dyn ScoreStore,
    objects: &dyn ObjectStore,
    id: &str,
    top: usize,
) -> Result<CustomerView> {
    let pk = score::customer(id);
    let items = scores.query(&pk).await.with_context(|| format!("querying {pk}"))?;
    if items.is_empty() {
        return Err(hint::not_found(
            format!("no scores for customer `{id}` ({pk})"),
            "check the id (e.g. `marquee at-risk` lists some), or run the pipeline first: `marquee run`",
        ));
    }
    let mut view = CustomerView {
        customer_id: id.to_string(),
        segment: None,
        churn: None,
        recommendations: Vec::new(),
        recommendations_version: None,
    };
    for item in &items {
        match item.sk.as_str() {
            score::SEGMENT => {
                let segment = item.attr("segment").and_then(Value::as_u64).unwrap_or(0);
                let profile_share = profiles(objects).await?.get(&segment).map(|p| p.0);
                view.segment = Some(SegmentOf {
                    segment,
                    label: str_attr(item, "label"),
                    profile_share,
                    model_version: str_attr(item, "model_version"),
                });
            }
            score::CHURN => {
                view.churn = Some(ChurnOf {
                    probability: item.attr("probability").and_then(Value::as_f64).unwrap_or(f64::NAN),
                    at_risk: item.attr("at_risk").and_then(Value::as_bool).unwrap_or(false),
                    cutoff: item.attr("cutoff").and_then(Value::as_f64).unwrap_or(f64::NAN),
                    // Scores written before contributions have none.
                    drivers: item
                        .attr("drivers")
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .unwrap_or_default(),
                    model_version: str_attr(item, "model_version"),
                });
            }
            score::RECS => {
                view.recommendations = ranked(item, "score").into_iter().take(top).collect();
                view.recommendations_version = Some(str_attr(item, "model_version"));
            }
            _ => {}
        }
    }
    Ok(view)
}

pub async fn title(scores: &dyn ScoreStore, id: &str, top: usize) -> Result<TitleView> {
    let pk = score::title(id);
    let items = scores.query(&pk).await.with_context(|| format!("querying {pk}"))?;
    if items.is_empty() {
        return Err(hint::not_found(
            format!("no scores for title `{id}` ({pk})"),
            "check the id (titles are listed in the demo's titles.csv), or run the pipeline first: `marquee run`",
        ));
    }
    let mut view = TitleView {
        title_id: id.to_string(),
        title: None,
        similar: Vec::new(),
        similar_version: None,
        sentiment: None,
        ad_plan: Vec::new(),
    };
    for item in &items {
        match item.sk.as_str() {
            score::SIMILAR => {
                let all = ranked(item, "similarity");
                view.title = item.attr("title").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
                // Scores written before SIMILAR items carried the title's name: its neighbours' lists have it.
                if let (None, Some(first)) = (&view.title, all.first()) {
                    if let Some(nb) = scores.get_item(&score::title(&first.title_id), score::SIMILAR).await? {
                        view.title = ranked(&nb, "similarity").into_iter().find(|r| r.title_id == id).map(|r| r.title);
                    }
                }
                view.similar = all.into_iter().take(top).collect();
                view.similar_version = Some(str_attr(item, "model_version"));
            }
            score::SENTIMENT => view.sentiment = Some(EntitySentiment::from_item(item)),
            sk if sk.starts_with(score::ADS_PREFIX) => view.ad_plan.push(AdPlanScore::from_item(item)?),
            _ => {}
        }
    }
    Ok(view)
}

pub async fn segments(scores: &dyn ScoreStore, objects: &dyn ObjectStore) -> Result<Vec<SegmentRow>> {
    let items = scores.scan_sk(&score::customer(""), score::SEGMENT).await.context("scanning SEGMENT items")?;
    let profiles = profiles(objects).await?;
    if items.is_empty() && profiles.is_empty() {
        return Err(hint::not_found(
            "no segmentation is deployed",
            "run the pipeline first: `marquee run` (see its report for why a model was rejected)",
        ));
    }
    let mut rows: BTreeMap<u64, SegmentRow> = BTreeMap::new();
    for (seg, (share, label, means)) in &profiles {
        rows.insert(
            *seg,
            SegmentRow {
                segment: *seg,
                label: label.clone(),
                customers: 0,
                share: 0.0,
                profile_share: Some(*share),
                means: means.clone(),
                model_version: String::new(),
                promote: None,
            },
        );
    }
    for item in &items {
        let seg = item.attr("segment").and_then(Value::as_u64).unwrap_or(0);
        let row = rows.entry(seg).or_insert_with(|| SegmentRow {
            segment: seg,
            label: str_attr(item, "label"),
            customers: 0,
            share: 0.0,
            profile_share: None,
            means: BTreeMap::new(),
            model_version: String::new(),
            promote: None,
        });
        row.customers += 1;
        if row.model_version.is_empty() {
            row.model_version = str_attr(item, "model_version");
        }
    }
    let total = items.len().max(1) as f64;
    let mut out: Vec<SegmentRow> = rows.into_values().collect();
    for r in &mut out {
        r.share = r.customers as f64 / total;
        let key = score::segment(r.segment as usize);
        r.promote = match scores.get_item(&key, score::PROMOTE).await.with_context(|| format!("reading {key}"))? {
            Some(item) => Some(SegmentPromotion::from_item(&item)?),
            None => None,
        };
    }
    Ok(out)
}

pub async fn at_risk(scores: &dyn ScoreStore, top: usize, only_flagged: bool) -> Result<Vec<AtRiskRow>> {
    let items = scores.scan_sk(&score::customer(""), score::CHURN).await.context("scanning CHURN items")?;
    if items.is_empty() {
        return Err(hint::not_found(
            "no churn scores in the score store",
            "run the pipeline first: `marquee run` (see its report for why a model was rejected)",
        ));
    }
    let mut rows: Vec<AtRiskRow> = items
        .iter()
        .map(|i| AtRiskRow {
            rank: 0,
            customer_id: id_of(&i.pk).to_string(),
            probability: i.attr("probability").and_then(Value::as_f64).unwrap_or(f64::NAN),
            at_risk: i.attr("at_risk").and_then(Value::as_bool).unwrap_or(false),
            cutoff: i.attr("cutoff").and_then(Value::as_f64).unwrap_or(f64::NAN),
            segment: None,
            model_version: str_attr(i, "model_version"),
        })
        .filter(|r| !only_flagged || r.at_risk)
        .collect();
    rows.sort_by(|a, b| b.probability.total_cmp(&a.probability).then(a.customer_id.cmp(&b.customer_id)));
    rows.truncate(top);
    for (i, r) in rows.iter_mut().enumerate() {
        r.rank = i + 1;
        if let Some(s) = scores.get_item(&score::customer(&r.customer_id), score::SEGMENT).await? {
            r.segment = Some(format!(
                "{} {}",
                s.attr("segment").map(|v| v.to_string()).unwrap_or_default(),
                str_attr(&s, "label")
            ));
        }
    }
    Ok(rows)
}

// ---------------------------------------------------------------- printing

pub fn print_customer(v: &CustomerView) {
    println!("customer {}", v.customer_id);
    match &v.segment {
        Some(s) => println!(
            "  segment      {} — {}{}   (model {})",
            s.segment,
            s.label,
            s.profile_share.map(|p| format!(", {:.1}% of customers", p * 100.0)).unwrap_or_default(),
            s.model_version
        ),
        None => println!("  segment      -   (no segmentation deployed)"),
    }
    match &v.churn {
        Some(c) => println!(
            "  churn        probability {:.3}, at risk: {} (cutoff {:.2})   (model {})",
            c.probability,
            if c.at_risk { "YES" } else { "no" },
            c.cutoff,
            c.model_version
        ),
        None => println!("  churn        -   (no churn model deployed)"),
    }
    if let Some(c) = v.churn.as_ref().filter(|c| !c.drivers.is_empty()) {
        let parts: Vec<String> = c.drivers.iter().map(|d| format!("{} {:+.2}", d.feature, d.contribution)).collect();
        println!("  drivers      {}   (log-odds raised most)", parts.join(", "));
    }
    if v.recommendations.is_empty() {
        println!("  recommended  -   (no recommendations deployed)");
    } else {
        println!("  recommended  (model {})", v.recommendations_version.as_deref().unwrap_or("-"));
        println!("    {:>3}  {:<8}  {:<40}  {:>6}", "#", "title", "name", "score");
        for (i, r) in v.recommendations.iter().enumerate() {
            println!("    {:>3}  {:<8}  {:<40}  {:>6.3}", i + 1, r.title_id, clip(&r.title, 40), r.score);
        }
    }
}

pub fn print_title(v: &TitleView) {
    println!(
        "title {}{}",
        v.title_id,
        v.title.as_deref().filter(|t| !t.is_empty()).map(|t| format!(" — {t}")).unwrap_or_default()
    );
    if v.similar.is_empty() {
        println!("  similar      -");
    } else {
        println!("  similar      (model {})", v.similar_version.as_deref().unwrap_or("-"));
        println!("    {:>3}  {:<8}  {:<40}  {:>10}", "#", "title", "name", "similarity");
        for (i, r) in v.similar.iter().enumerate() {
            println!("    {:>3}  {:<8}  {:<40}  {:>10.3}", i + 1, r.title_id, clip(&r.title, 40), r.score);
        }
    }
    match &v.sentiment {
        None => println!("  sentiment    -   (too few mentions, or no sentiment model deployed)"),
        Some(e) => {
            println!(
                "  sentiment    net {:+.3} over {} mentions, trend {} {} (slope {:+.4} per window)",
                e.net_score,
                e.mentions,
                e.arrow(),
                e.direction,
                e.slope
            );
            println!("    {:<12} {:>6} {:>5} {:>5} {:>5}", "window", "net", "pos", "neg", "neu");
            for w in &e.windows {
                println!("    {:<12} {:>+6.2} {:>5} {:>5} {:>5}", w.start, w.net, w.positive, w.negative, w.neutral);
            }
        }
    }
    print_ad_plan(&v.ad_plan);
}

fn print_ad_plan(plan: &[AdPlanScore]) {
    let Some(first) = plan.first() else {
        println!("  mid-roll ads -   (no impressions logged for this title, or no ads model deployed)");
        return;
    };
    println!("  mid-roll ads (model {}; expected engagement, the policy's placement probability)", first.model_version);
    println!("    {:<8} {:<16} {:>11}  ads", "slot", "segment", "impressions");
    for p in plan {
        let ads: Vec<String> = p
            .ads
            .iter()
            .map(|a| format!("{} {:.1}% (p {:.2})", a.ad, 100.0 * a.expected_engagement, a.probability))
            .collect();
        println!(
            "    {:<8} {:<16} {:>11}  {}",
            p.slot,
            clip(p.segment.as_deref().unwrap_or("all"), 16),
            p.impressions,
            ads.join(", ")
        );
    }
}

pub fn print_segments(rows: &[SegmentRow]) {
    println!("{:>7}  {:<52}  {:>9}  {:>6}  {:>13}", "segment", "label", "customers", "share", "profile share");
    for r in rows {
        println!(
            "{:>7}  {:<52}  {:>9}  {:>5.1}%  {:>13}",
            r.segment,
            clip(&r.label, 52),
            r.customers,
            r.share * 100.0,
            r.profile_share.map_or("-".into(), |p| format!("{:.1}%", p * 100.0))
        );
    }
    if let Some(v) = rows.iter().map(|r| r.model_version.as_str()).find(|v| !v.is_empty()) {
        println!("(model {v})");
    }
    for r in rows.iter().filter(|r| r.promote.as_ref().is_some_and(|p| !p.titles.is_empty())) {
        let p = r.promote.as_ref().expect("filtered");
        println!();
        println!(
            "promote to segment {} ({}, {} members with recommendations):",
            r.segment,
            clip(&r.label, 40),
            p.members_with_recommendations
        );
        println!(
            "{:>4}  {:<10}  {:<32}  {:>7}  {:>6}  {:>5}  sentiment",
            "rank", "title", "name", "score", "reach", "lift"
        );
        for t in &p.titles {
            println!(
                "{:>4}  {:<10}  {:<32}  {:>7.3}  {:>5.1}%  {:>5.2}  {}",
                t.rank,
                clip(&t.title_id, 10),
                clip(&t.title, 32),
                t.score,
                t.reach * 100.0,
                t.lift,
                t.sentiment.map_or("-", |d| d.as_str())
            );
        }
    }
    if let Some(v) = rows.iter().find_map(|r| r.promote.as_ref()).map(|p| &p.versions) {
        let sentiment = v.sentiment.as_deref().map_or(String::new(), |s| format!(", sentiment {s}"));
        println!("(promotions from segment {}, recommend {}{sentiment})", v.segment, v.recommend);
    }
}

pub fn print_at_risk(rows: &[AtRiskRow]) {
    println!("{:>4}  {:<10}  {:>11}  {:>7}  {:>6}  segment", "rank", "customer", "probability", "at risk", "cutoff");
    for r in rows {
        println!(
            "{:>4}  {:<10}  {:>11.3}  {:>7}  {:>6.2}  {}",
            r.rank,
            r.customer_id,
            r.probability,
            if r.at_risk { "YES" } else { "no" },
            r.cutoff,
            clip(r.segment.as_deref().unwrap_or("-"), 56)
        );
    }
    if let Some(r) = rows.first() {
        println!("(model {})", r.model_version);
    }
}

pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
