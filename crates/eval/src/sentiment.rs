//! Sentiment accuracy on rt-polarity (stratified 10-fold) and IMDB-train (stratified 5-fold):
//! TF-IDF fitted on each training fold, the use case's classifier choice, the neutral band.

use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;

use super::data::{self, Fold};
use super::{secs, EntryBuilder, EvalOptions, Job, TaskReport};
use marquee_pipeline::error::{Error, Result};
use marquee_pipeline::spec::{SentimentSpec, Spec, UseCase};
use marquee_pipeline::usecase::common::Evaluation;
use marquee_pipeline::usecase::Details;
use marquee_pipeline::usecase::{self, Files, Tables};

const UC: UseCase = UseCase::Sentiment;

pub struct FoldRun {
    pub files: Files,
    pub model: Vec<u8>,
    pub evaluation: Evaluation,
    pub prepare_seconds: f64,
    pub train_seconds: f64,
}

pub fn run_split(spec: &Spec, tables: &Tables, fold: &Fold) -> Result<FoldRun> {
    let t = Instant::now();
    let files = usecase::of(UC).prepare_split(spec, tables, &fold.train, &fold.test)?;
    let prepare_seconds = secs(t);
    let t = Instant::now();
    let model = usecase::of(UC).train(spec, &files, tables, "eval")?;
    let train_seconds = secs(t);
    let evaluation = usecase::of(UC).evaluate(spec, &model, &files)?;
    Ok(FoldRun { files, model, evaluation, prepare_seconds, train_seconds })
}

pub fn sent_spec(spec: &Spec) -> Result<&SentimentSpec> {
    spec.sentiment.as_ref().ok_or_else(|| Error::spec("sentiment", "needs a [sentiment] section"))
}

/// Labelled rows of the reviews table and their labels (true = positive).
pub fn labelled(spec: &Spec, tables: &Tables) -> Result<(Vec<usize>, Vec<bool>)> {
    let s = sent_spec(spec)?;
    marquee_pipeline::usecase::sentiment::labelled(tables.get(&s.table)?, s)
}

/// Seeded stratified k folds over the labelled rows, as row indices of the table.
pub fn folds(spec: &Spec, tables: &Tables, k: usize, seed: u64) -> Result<Vec<Fold>> {
    let (rows, y) = labelled(spec, tables)?;
    Ok(data::stratified_kfold(&y, k, seed)
        .into_iter()
        .map(|f| Fold {
            train: f.train.iter().map(|&i| rows[i]).collect(),
            test: f.test.iter().map(|&i| rows[i]).collect(),
        })
        .collect())
}

pub fn run(job: &Job, opts: &EvalOptions, progress: &dyn Fn(&str)) -> Result<TaskReport> {
    let spec = &job.spec;
    let s = sent_spec(spec)?.clone();
    let task = &job.name;
    // A seeded sample, not the first rows: review files are often sorted by label.
    let limit = opts.limit.map(|n| data::Limit::Sample(n, opts.seed));
    let tables = data::load_tables_with(spec, &job.tables_dir, &usecase::of(UC).needed_tables(spec), &s.table, limit)?;
    let k = job.folds(opts);
    let folds = folds(spec, &tables, k, opts.seed)?;
    let protocol = format!("stratified {k}-fold (seed {})", opts.seed);
    let (mut acc, mut fit, mut neutral, mut confident, mut f1) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut per_fold = Vec::new();
    for (f, fold) in folds.iter().enumerate() {
        let run = run_split(spec, &tables, fold)?;
        let Details::Sentiment(d) = &run.evaluation.details else {
            unreachable!("a sentiment evaluation has sentiment details")
        };
        progress(&format!(
            "{task} fold {f}: accuracy {:.4} ({}), neutral share {:.3}, accuracy outside band {:.4}, prepare {:.2}s + train {:.2}s",
            run.evaluation.primary.value,
            d.classifier,
            d.neutral_share,
            d.accuracy_outside_neutral_band,
            run.prepare_seconds,
            run.train_seconds
        ));
        acc.push(run.evaluation.primary.value);
        fit.push(run.prepare_seconds + run.train_seconds);
        neutral.push(d.neutral_share);
        confident.push(d.accuracy_outside_neutral_band);
        f1.push(d.macro_f1);
        per_fold.push(json!({ "fold": f, "accuracy": run.evaluation.primary.value, "classifier": d.classifier,
            "validation_accuracy": d.validation_accuracy, "neutral_share": d.neutral_share,
            "accuracy_outside_neutral_band": d.accuracy_outside_neutral_band, "macro_f1": d.macro_f1,
            "vocabulary": d.vocabulary, "prepare_seconds": run.prepare_seconds, "train_seconds": run.train_seconds }));
    }
    let band = format!("[{}, {}]", s.neutral_band[0], s.neutral_band[1]);
    let entries = vec![
        EntryBuilder::new(job, "sentiment", "accuracy", &protocol, &acc, true)
            .fit_seconds(&fit)
            .refs(job.metric("accuracy"))
            .note("P(positive) >= 0.5; fit = TF-IDF (prepare) + classifier choice and fit (train)")
            .build(),
        EntryBuilder::new(job, "sentiment", "macro F1", &protocol, &f1, true).build(),
        EntryBuilder::new(job, "sentiment", &format!("neutral share (band {band})"), &protocol, &neutral, false)
            .note("share of test reviews reported neutral")
            .build(),
        EntryBuilder::new(
            job,
            "sentiment",
            &format!("accuracy outside the neutral band {band}"),
            &protocol,
            &confident,
            true,
        )
        .note("accuracy on the reviews called positive or negative")
        .build(),
    ];
    let mut md = String::new();
    writeln!(
        md,
        "| fold | accuracy | classifier | neutral share | accuracy outside band | fit s |\n|---|---|---|---|---|---|"
    )
    .ok();
    for p in &per_fold {
        writeln!(
            md,
            "| {} | {:.4} | {} | {:.3} | {:.4} | {:.2} |",
            p["fold"],
            p["accuracy"].as_f64().unwrap_or(f64::NAN),
            p["classifier"].as_str().unwrap_or("?"),
            p["neutral_share"].as_f64().unwrap_or(f64::NAN),
            p["accuracy_outside_neutral_band"].as_f64().unwrap_or(f64::NAN),
            p["prepare_seconds"].as_f64().unwrap_or(0.0) + p["train_seconds"].as_f64().unwrap_or(0.0)
        )
        .ok();
    }
    Ok(TaskReport { task: task.clone(), entries, details: json!({ "folds": per_fold }), markdown: md, seconds: 0.0 })
}
