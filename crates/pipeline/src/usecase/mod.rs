//! The use cases behind one trait, [`UseCase`]: prepare -> train -> evaluate -> score, each on
//! in-memory tables and files (the steps module does all storage I/O around them). The pipeline,
//! the steps, the spec's list of use cases and `marquee eval` iterate over [`REGISTERED`]; a use
//! case is its own module here, its section in the spec, its details variant in [`Details`] and
//! its section in the report.

pub mod ads;
pub mod churn;
pub mod common;
pub mod recommend;
pub mod segment;
pub mod sentiment;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::spec::{self, Spec, UseCaseSection};
use crate::store::Item;
use common::{DeployParams, Evaluation};

/// Ingested tables by name.
#[derive(Debug, Default)]
pub struct Tables(pub BTreeMap<String, Frame>);

impl Tables {
    pub fn get(&self, name: &str) -> Result<&Frame> {
        self.0.get(name).ok_or_else(|| Error::Invalid(format!("table `{name}` was not loaded")))
    }
}

/// Named files of one prepared use case (`train.csv`, `test.csv`, `encoder.json`).
#[derive(Debug, Default, Clone)]
pub struct Files(pub BTreeMap<String, Vec<u8>>);

impl Files {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, name: String, bytes: Vec<u8>) {
        self.0.insert(name, bytes);
    }
    pub fn get(&self, name: &str) -> Result<&[u8]> {
        self.0.get(name).map(Vec::as_slice).ok_or_else(|| Error::Invalid(format!("prepared file `{name}` is missing")))
    }
    pub fn frame(&self, name: &str) -> Result<Frame> {
        Frame::from_csv(self.get(name)?, name)
    }
}

/// One use case: how it prepares, trains, evaluates and scores. Implementations are unit structs
/// registered in [`REGISTERED`]; [`of`] finds one by its [`spec::UseCase`] name.
pub trait UseCase: Send + Sync {
    /// Its name in the spec, keys, scores and reports.
    fn id(&self) -> spec::UseCase;

    /// Its section of the spec; None when the spec does not enable it.
    fn section<'a>(&self, spec: &'a Spec) -> Option<&'a dyn UseCaseSection>;

    /// Whether the spec enables it.
    fn enabled(&self, spec: &Spec) -> bool {
        self.section(spec).is_some()
    }

    /// How much worse than the champion, in the primary metric, a challenger may be.
    fn champion_tolerance(&self, spec: &Spec) -> f64 {
        self.section(spec).map_or(0.0, |s| s.champion().tolerance)
    }

    /// Tables it reads (for prepare and scoring).
    fn needed_tables(&self, spec: &Spec) -> Vec<String>;

    /// Tables train reads besides the prepared files (recommend: the titles).
    fn training_tables(&self, _spec: &Spec) -> Vec<String> {
        Vec::new()
    }

    /// The table it scores row by row, when each row's score depends on that row and the model
    /// alone (churn, segment), so batch scoring can stream it; None when scoring needs whole-table
    /// views (recommend: the titles each user has seen; sentiment: per-entity time series).
    fn row_scored_table(&self, _spec: &Spec) -> Option<String> {
        None
    }

    /// (table, label column) pairs whose label must hold two classes (the quality gate checks).
    fn label_columns(&self, _spec: &Spec) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Data preparation on the spec's seeded split: the named files train and evaluate read.
    fn prepare(&self, spec: &Spec, tables: &Tables) -> Result<Files>;

    /// [`UseCase::prepare`] on a given train/test split instead of the spec's seeded one, so an
    /// evaluation protocol (k folds, published holdouts) runs through the same preparation code.
    /// Indices are rows of the use case's main table; encoders see `train` only.
    fn prepare_split(&self, spec: &Spec, tables: &Tables, train: &[usize], test: &[usize]) -> Result<Files>;

    /// Fits the model; returns the serialised artifact (it embeds its encoders so it can score
    /// alone, and records `fingerprint`).
    fn train(&self, spec: &Spec, files: &Files, tables: &Tables, fingerprint: &str) -> Result<Vec<u8>>;

    /// Technical metrics and business criteria of `model` on the prepared test split.
    fn evaluate(&self, spec: &Spec, model: &[u8], files: &Files) -> Result<Evaluation>;

    /// Batch scores of `model` (deployed as `version`) over `tables`, as score-store items, with
    /// the parameters its evaluation decided (e.g. the churn cutoff), handed to `out` a batch at
    /// a time so that batch scoring writes each batch before the next is built: its memory is a
    /// batch, not every customer's items. An error from `out` stops the scoring and is returned.
    fn score_into(
        &self,
        spec: &Spec,
        model: &[u8],
        deploy: &DeployParams,
        tables: &Tables,
        version: &str,
        out: &mut ItemSink<'_>,
    ) -> Result<()>;

    /// Every item [`UseCase::score_into`] gives, in one list.
    fn score(
        &self,
        spec: &Spec,
        model: &[u8],
        deploy: &DeployParams,
        tables: &Tables,
        version: &str,
    ) -> Result<Vec<Item>> {
        let mut all = Vec::new();
        self.score_into(spec, model, deploy, tables, version, &mut |items| {
            all.extend(items);
            Ok(())
        })?;
        Ok(all)
    }
}

/// Where [`UseCase::score_into`] hands its items, a batch at a time.
pub type ItemSink<'a> = dyn FnMut(Vec<Item>) -> Result<()> + 'a;

/// Every use case, in the order the pipeline runs them.
pub const REGISTERED: [&dyn UseCase; 5] =
    [&segment::Segment, &churn::Churn, &recommend::Recommend, &sentiment::Sentiment, &ads::Ads];

/// The implementation of a use case.
pub fn of(id: spec::UseCase) -> &'static dyn UseCase {
    REGISTERED.into_iter().find(|u| u.id() == id).expect("every spec::UseCase is registered (test below)")
}

/// The use cases a spec enables, in pipeline order.
pub fn enabled(spec: &Spec) -> impl Iterator<Item = &'static dyn UseCase> + '_ {
    REGISTERED.into_iter().filter(move |u| u.enabled(spec))
}

/// Label columns per table that must hold two classes (checked by the quality gate).
pub fn label_columns(spec: &Spec) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, label) in enabled(spec).flat_map(|u| u.label_columns(spec)) {
        out.entry(table).or_default().push(label);
    }
    out
}

/// The part of the spec that shapes a use case's model (its section, seed and split), as JSON.
pub fn spec_section(spec: &Spec, model: &dyn UseCase) -> serde_json::Value {
    let section = model.section(spec).map_or(serde_json::Value::Null, |s| s.to_json());
    serde_json::json!({ "section": section, "seed": spec.pipeline.seed, "test_fraction": spec.pipeline.test_fraction })
}

/// What an evaluation found beyond the criteria, per use case: curves, tables, sweeps. Untagged
/// so evaluation.json keeps the shape it had as free-form JSON; every variant denies unknown
/// fields, so exactly one variant reads a given document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Details {
    Segment(segment::SegmentDetails),
    Churn(churn::ChurnDetails),
    Recommend(recommend::RecommendDetails),
    Sentiment(sentiment::SentimentDetails),
    /// Boxed: two policies' estimates make it the largest variant by far.
    Ads(Box<ads::AdsDetails>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_use_case_is_registered_once_in_pipeline_order() {
        let ids: Vec<spec::UseCase> = REGISTERED.iter().map(|u| u.id()).collect();
        assert_eq!(ids, spec::UseCase::ALL.to_vec());
        for id in spec::UseCase::ALL {
            assert_eq!(of(id).id(), id);
        }
    }
}
