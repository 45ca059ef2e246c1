//! Model quality on real public data (`marquee eval`): each use case runs on a named dataset
//! through the same `prepare_split -> train -> evaluate` code the pipeline uses, on the published
//! protocol splits where there are some (MovieLens 5-fold and per-user holdout, Telco stratified
//! 5-fold) and on seeded stratified k-folds otherwise, and reports metric mean, spread, per-fold
//! values and fit time beside the peer figure measured on the same splits.
//!
//! Data is read from a data folder (`marquee eval --data-dir`, or `MARQUEE_DATA_DIR`) laid out as
//! `<dir>/<spec.pipeline.dataset>/<table file>`, plus `<dir>/protocol/` for the fold files. The
//! specs (column roles of the real exports) ship in `specs/` and are embedded here.

pub mod bandit;
pub mod churn;
pub mod data;
pub mod recommend;
pub mod report;
pub mod segment;
pub mod sentiment;
pub mod tasks;
pub mod trend;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

use marquee_pipeline::error::{Error, Result};
pub use tasks::{Catalog, Job, MetricRef, NamedTask, Runner};

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Folder with one sub-folder per dataset plus `protocol/` (named tasks).
    pub data_dir: PathBuf,
    /// Read specs and the task catalog from this folder instead of the embedded copies of `specs/`.
    pub spec_dir: Option<PathBuf>,
    /// Folds to run: for protocol splits, the first N of the published folds; otherwise k.
    pub folds: Option<usize>,
    /// Use only the first ROWS rows of the main table (slices for CI and quick checks).
    pub limit: Option<usize>,
    /// Seed of the k-fold assignment, inner validation splits and models.
    pub seed: u64,
    /// Hyper-parameter search where a task has one (ALS rank x lambda); off = the spec's values.
    pub tune: bool,
}

impl EvalOptions {
    /// The defaults (all folds, whole tables, seed 42, tuning on) over the datasets in `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self { data_dir, spec_dir: None, folds: None, limit: None, seed: 42, tune: true }
    }

    /// The named task `name` of the catalog, ready to run.
    pub fn job(&self, name: &str) -> Result<Job> {
        Job::named(name, self)
    }
}

/// A published figure to compare with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    pub name: String,
    pub value: f64,
}

/// The quality the issue asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// "<=" or ">=".
    pub op: String,
    pub value: f64,
}

impl Target {
    pub fn at_least(value: f64) -> Option<Self> {
        Some(Self { op: ">=".into(), value })
    }
    pub fn at_most(value: f64) -> Option<Self> {
        Some(Self { op: "<=".into(), value })
    }
    pub fn met(&self, x: f64) -> bool {
        match self.op.as_str() {
            ">=" => x >= self.value,
            "<=" => x <= self.value,
            _ => false,
        }
    }
}

/// One row of the results table (and one entry of `eval.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub task: String,
    pub dataset: String,
    pub use_case: String,
    pub metric: String,
    /// e.g. "5-fold (protocol)", "per-user holdout 20%", "all rows".
    pub protocol: String,
    pub mean: f64,
    /// Population standard deviation over folds (0 for one value).
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub per_fold: Vec<f64>,
    /// Mean seconds per fold to fit (encoders + model, including writing the artifact).
    pub fit_seconds: f64,
    pub anchor: Option<Anchor>,
    pub target: Option<Target>,
    /// Whether the mean meets the target (None without a target).
    pub passed: Option<bool>,
    pub higher_is_better: bool,
    pub note: String,
}

/// Builder for [`Entry`] so each task states only what differs.
pub struct EntryBuilder(Entry);

impl EntryBuilder {
    pub fn new(
        job: &Job,
        use_case: &str,
        metric: &str,
        protocol: &str,
        values: &[f64],
        higher_is_better: bool,
    ) -> Self {
        Self::named(&job.name, &job.spec.pipeline.dataset, use_case, metric, protocol, values, higher_is_better)
    }

    pub fn named(
        task: &str,
        dataset: &str,
        use_case: &str,
        metric: &str,
        protocol: &str,
        values: &[f64],
        higher_is_better: bool,
    ) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        Self(Entry {
            task: task.into(),
            dataset: dataset.into(),
            use_case: use_case.into(),
            metric: metric.into(),
            protocol: protocol.into(),
            mean,
            std,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            per_fold: values.to_vec(),
            fit_seconds: 0.0,
            anchor: None,
            target: None,
            passed: None,
            higher_is_better,
            note: String::new(),
        })
    }
    pub fn fit_seconds(mut self, s: &[f64]) -> Self {
        self.0.fit_seconds = s.iter().sum::<f64>() / s.len().max(1) as f64;
        self
    }
    pub fn anchor(mut self, name: &str, value: f64) -> Self {
        self.0.anchor = Some(Anchor { name: name.into(), value });
        self
    }
    /// The anchor and target a task declares for this metric, if any.
    pub fn refs(mut self, m: Option<&MetricRef>) -> Self {
        if let Some(m) = m {
            self.0.anchor = m.anchor.clone().or(self.0.anchor);
            if m.target.is_some() {
                self = self.target(m.target.clone());
            }
        }
        self
    }
    pub fn target(mut self, t: Option<Target>) -> Self {
        self.0.passed = t.as_ref().map(|t| t.met(self.0.mean));
        self.0.target = t;
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.0.note = note.into();
        self
    }
    pub fn build(self) -> Entry {
        self.0
    }
}

/// What one task found: table rows, task-specific details (cutoff tables, sweeps, neighbours)
/// and a markdown section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskReport {
    pub task: String,
    pub entries: Vec<Entry>,
    pub details: serde_json::Value,
    pub markdown: String,
    pub seconds: f64,
}

/// Runs one job. `progress` receives one line per fold / phase.
pub fn run(job: &Job, opts: &EvalOptions, progress: &dyn Fn(&str)) -> Result<TaskReport> {
    // A mean over fewer than two folds is no cross-validation (and over none, no number at all).
    if let Some(k) = opts.folds.filter(|&k| k < 2) {
        return Err(Error::Invalid(format!("--folds {k}: cross-validation needs at least 2 folds")));
    }
    if opts.limit == Some(0) {
        return Err(Error::Invalid("--limit 0: a slice needs at least one row".into()));
    }
    let started = Instant::now();
    let mut report = match job.runner {
        Runner::Recommend => recommend::run(job, opts, progress)?,
        Runner::Churn => churn::run(job, opts, progress)?,
        Runner::Sentiment => sentiment::run(job, opts, progress)?,
        Runner::Segment => segment::run(job, opts, progress)?,
        Runner::Trend => trend::run(job, opts, progress)?,
        Runner::Bandit => bandit::run(job, opts, progress)?,
    };
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Seconds since `t`.
pub(crate) fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}
