//! Trending sentiment on real review texts: a sentiment model trained on part of rt-polarity
//! scores held-out reviews that are given synthetic timestamps and entity tags, with planted
//! rising, falling and flat series per entity; the pipeline's own scoring aggregates them per
//! entity and window (net sentiment, slope, direction) and the report checks the directions.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::fmt::Write as _;

use super::data;
use super::sentiment::{folds, run_split, sent_spec};
use super::{EntryBuilder, EvalOptions, Job, TaskReport};
use marquee_pipeline::error::{Error, Result};
use marquee_pipeline::frame::Frame;
use marquee_pipeline::spec::{Spec, UseCase};
use marquee_pipeline::store::Item;
use marquee_pipeline::usecase::{self, Tables};

const UC: UseCase = UseCase::Sentiment;
const DAY: i64 = 86_400;
/// "Now" of the synthetic stream: 2024-06-30T00:00:00Z.
const AS_OF: i64 = 1_719_705_600;

/// A planted entity: share of positive reviews in its first and last window (linear in between).
#[derive(Debug, Clone)]
pub struct Planted {
    pub entity: String,
    pub first: f64,
    pub last: f64,
    /// "rising", "falling" or "flat".
    pub expected: &'static str,
}

pub fn planted_entities() -> Vec<Planted> {
    let p = |e: &str, first, last, expected| Planted { entity: e.into(), first, last, expected };
    vec![
        p("rising_strong", 0.2, 0.8, "rising"),
        p("rising_mild", 0.35, 0.65, "rising"),
        p("falling_strong", 0.8, 0.2, "falling"),
        p("falling_mild", 0.65, 0.35, "falling"),
        p("flat_positive", 0.7, 0.7, "flat"),
        p("flat_even", 0.5, 0.5, "flat"),
    ]
}

/// A posts table from real texts: for each planted entity and window (oldest first), `per_window`
/// reviews with exactly round(share * per_window) drawn from the positive pool, timestamps spread
/// inside the window. Columns: text, label, posted_at (Unix seconds), title.
pub fn planted_posts(
    pos: &[String],
    neg: &[String],
    planted: &[Planted],
    windows: usize,
    window_days: u32,
    per_window: usize,
    seed: u64,
) -> Frame {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut frame = Frame::new(vec!["text".into(), "label".into(), "posted_at".into(), "title".into()]);
    let window = i64::from(window_days) * DAY;
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut pos_order: Vec<usize> = (0..pos.len()).collect();
    let mut neg_order: Vec<usize> = (0..neg.len()).collect();
    pos_order.shuffle(&mut rng);
    neg_order.shuffle(&mut rng);
    for p in planted {
        for w in 0..windows {
            let share =
                if windows > 1 { p.first + (p.last - p.first) * w as f64 / (windows - 1) as f64 } else { p.first };
            let n_pos = (share * per_window as f64).round() as usize;
            let age_windows = (windows - 1 - w) as i64;
            for j in 0..per_window {
                let positive = j < n_pos;
                let text = if positive {
                    pi += 1;
                    &pos[pos_order[(pi - 1) % pos.len()]]
                } else {
                    ni += 1;
                    &neg[neg_order[(ni - 1) % neg.len()]]
                };
                // The newest post sits exactly at AS_OF so windows line up with the scorer's.
                let offset = if w == windows - 1 && j == 0 { 0 } else { rng.gen_range(0..window) };
                let t = AS_OF - age_windows * window - offset;
                frame.push_row(vec![
                    text.clone(),
                    if positive { "1" } else { "0" }.into(),
                    t.to_string(),
                    p.entity.clone(),
                ]);
            }
        }
    }
    frame
}

/// The sentiment spec extended with the synthetic columns: timestamp and a `title` entity.
pub fn trend_spec(spec: &Spec, flat_band: f64) -> Result<Spec> {
    let mut s = spec.clone();
    let sent = s.sentiment.as_mut().ok_or_else(|| Error::spec("sentiment", "needs a [sentiment] section"))?;
    sent.timestamp = "posted_at".into();
    sent.entities = [("title".to_string(), "title".to_string())].into_iter().collect();
    sent.flat_band = flat_band;
    let table = sent.table.clone();
    let t = s.tables.get_mut(&table).ok_or_else(|| Error::spec("tables", "sentiment table missing"))?;
    t.timestamp.push("posted_at".into());
    t.categorical.push("title".into());
    s.validate()?;
    Ok(s)
}

/// Scores the planted posts with `model` through the use case's scoring; returns the SENTIMENT items.
pub fn score_posts(spec: &Spec, model: &[u8], posts: Frame) -> Result<Vec<Item>> {
    let s = sent_spec(spec)?;
    let mut tables = Tables::default();
    tables.0.insert(s.table.clone(), posts);
    usecase::of(UC).score(spec, model, &Default::default(), &tables, "eval")
}

pub fn run(job: &Job, opts: &EvalOptions, progress: &dyn Fn(&str)) -> Result<TaskReport> {
    let spec = job.spec.clone();
    let s = sent_spec(&spec)?.clone();
    let dataset = spec.pipeline.dataset.clone();
    let limit = opts.limit.map(|n| data::Limit::Sample(n, opts.seed));
    let tables =
        data::load_tables_with(&spec, &job.tables_dir, &usecase::of(UC).needed_tables(&spec), &s.table, limit)?;
    // Train on 4/5 of the labelled reviews; the planted posts use only the held-out fifth.
    let fold = folds(&spec, &tables, 5, opts.seed)?.swap_remove(0);
    let run = run_split(&spec, &tables, &fold)?;
    progress(&format!("trend: sentiment model accuracy on held-out texts {:.4}", run.evaluation.primary.value));
    let frame = tables.get(&s.table)?;
    let (texts, labels) = (frame.col(&s.text)?, frame.col(&s.label)?);
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for &i in &fold.test {
        if labels[i] == s.positive {
            pos.push(texts[i].to_string());
        } else {
            neg.push(texts[i].to_string());
        }
    }
    if pos.is_empty() || neg.is_empty() {
        return Err(Error::Invalid(format!(
            "trend: the held-out fifth has {} positive and {} negative reviews; planting a trend needs both (use a larger --limit)",
            pos.len(),
            neg.len()
        )));
    }
    let planted = planted_entities();
    let flat_band = 0.03;
    let tspec = trend_spec(&spec, flat_band)?;
    let ts = sent_spec(&tspec)?;
    let posts = planted_posts(&pos, &neg, &planted, ts.trend_windows, ts.window_days, 100, opts.seed);
    let items = score_posts(&tspec, &run.model, posts)?;
    let mut md = String::new();
    writeln!(
        md,
        "Model: trained on 4/5 of {dataset} (held-out accuracy {:.4}); posts: held-out reviews, 100 per entity and {}-day window, \
         {} windows, flat band |slope| <= {flat_band}.\n",
        run.evaluation.primary.value, ts.window_days, ts.trend_windows
    )
    .ok();
    writeln!(md, "| entity | planted positive share | net sentiment per window (oldest first) | slope | direction | expected |\n|---|---|---|---|---|---|").ok();
    let mut correct = Vec::new();
    let mut rows = Vec::new();
    for p in &planted {
        let item = items.iter().find(|it| it.pk == marquee_pipeline::keys::score::entity("title", &p.entity));
        let Some(item) = item else {
            return Err(Error::Invalid(format!("trend: no SENTIMENT item for planted entity {}", p.entity)));
        };
        let nets: Vec<f64> = item
            .attr("windows")
            .and_then(|w| w.as_array())
            .map(|ws| ws.iter().map(|w| w["net"].as_f64().unwrap_or(f64::NAN)).collect())
            .unwrap_or_default();
        let slope = item.attr("trend_slope").and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let dir = item.attr("direction").and_then(|v| v.as_str()).unwrap_or("?").to_string();
        correct.push(f64::from(u8::from(dir == p.expected)));
        writeln!(
            md,
            "| {} | {:.2} -> {:.2} | {} | {:+.4} | {dir} | {} |",
            p.entity,
            p.first,
            p.last,
            nets.iter().map(|v| format!("{v:+.2}")).collect::<Vec<_>>().join(" "),
            slope,
            p.expected
        )
        .ok();
        rows.push(json!({ "entity": p.entity, "first_share": p.first, "last_share": p.last, "net_per_window": nets,
            "slope": slope, "direction": dir, "expected": p.expected, "item": { "pk": item.pk, "sk": item.sk } }));
    }
    let entries = vec![EntryBuilder::new(
        job,
        "sentiment",
        "trend direction correct (share of planted entities)",
        "planted series on held-out texts",
        &correct,
        true,
    )
    .refs(job.metric("direction_correct"))
    .note(format!("{} planted entities: 2 rising, 2 falling, 2 flat", planted.len()))
    .build()];
    Ok(TaskReport {
        task: job.name.clone(),
        entries,
        details: json!({ "model_accuracy": run.evaluation.primary.value, "entities": rows }),
        markdown: md,
        seconds: 0.0,
    })
}
