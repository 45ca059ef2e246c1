//! The four use cases behind one dispatch: prepare -> train -> evaluate -> score. Each works on
//! in-memory tables and files; the steps module does all storage I/O around them.

pub mod churn;
pub mod common;
pub mod recommend;
pub mod segment;
pub mod sentiment;

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::spec::{Spec, UseCase};
use crate::store::Item;
use common::Evaluation;

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

/// Tables a use case reads (for prepare, train and scoring).
pub fn needed_tables(spec: &Spec, uc: UseCase) -> Vec<String> {
    match uc {
        UseCase::Segment => segment::needed_tables(spec),
        UseCase::Churn => churn::needed_tables(spec),
        UseCase::Recommend => recommend::needed_tables(spec),
        UseCase::Sentiment => sentiment::needed_tables(spec),
    }
}

/// The table a use case scores row by row (churn, segment: each row's score depends on that row
/// and the model alone), so its batch scoring can stream; None for the use cases that need
/// whole-table views (recommend: the titles each user has seen; sentiment: per-entity time series).
pub fn row_scored_table(spec: &Spec, uc: UseCase) -> Option<String> {
    match uc {
        UseCase::Churn => spec.churn.as_ref().map(|c| c.table.clone()),
        UseCase::Segment => spec.segment.as_ref().map(|s| s.table.clone()),
        UseCase::Recommend | UseCase::Sentiment => None,
    }
}

/// Label columns per table that must hold two classes (checked by the quality gate).
pub fn label_columns(spec: &Spec) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(c) = &spec.churn {
        out.entry(c.table.clone()).or_default().push(c.label.clone());
    }
    if let Some(s) = &spec.sentiment {
        out.entry(s.table.clone()).or_default().push(s.label.clone());
    }
    out
}

pub fn prepare(uc: UseCase, spec: &Spec, tables: &Tables) -> Result<Files> {
    match uc {
        UseCase::Segment => segment::prepare(spec, tables),
        UseCase::Churn => churn::prepare(spec, tables),
        UseCase::Recommend => recommend::prepare(spec, tables),
        UseCase::Sentiment => sentiment::prepare(spec, tables),
    }
}

/// [`prepare`] on a given train/test split instead of the spec's seeded one, so an evaluation
/// protocol (k folds, published holdouts) runs through the same preparation code. Indices are rows
/// of the use case's main table (the ratings table for recommend); encoders see `train` only.
pub fn prepare_split(uc: UseCase, spec: &Spec, tables: &Tables, train: &[usize], test: &[usize]) -> Result<Files> {
    match uc {
        UseCase::Segment => segment::prepare_split(spec, tables, train, test),
        UseCase::Churn => churn::prepare_split(spec, tables, train, test),
        UseCase::Recommend => recommend::prepare_split(spec, tables, train, test),
        UseCase::Sentiment => sentiment::prepare_split(spec, tables, train, test),
    }
}

/// Fits the model; returns the serialised artifact (it embeds its encoders so it can score alone).
pub fn train(uc: UseCase, spec: &Spec, files: &Files, tables: &Tables, fingerprint: &str) -> Result<Vec<u8>> {
    match uc {
        UseCase::Segment => segment::train(spec, files, fingerprint),
        UseCase::Churn => churn::train(spec, files, fingerprint),
        UseCase::Recommend => recommend::train(spec, files, tables, fingerprint),
        UseCase::Sentiment => sentiment::train(spec, files, fingerprint),
    }
}

pub fn evaluate(uc: UseCase, spec: &Spec, model: &[u8], files: &Files) -> Result<Evaluation> {
    match uc {
        UseCase::Segment => segment::evaluate(spec, model, files),
        UseCase::Churn => churn::evaluate(spec, model, files),
        UseCase::Recommend => recommend::evaluate(spec, model, files),
        UseCase::Sentiment => sentiment::evaluate(spec, model, files),
    }
}

pub fn score(
    uc: UseCase,
    spec: &Spec,
    model: &[u8],
    eval: &Evaluation,
    tables: &Tables,
    version: &str,
) -> Result<Vec<Item>> {
    match uc {
        UseCase::Segment => segment::score(spec, model, tables, version),
        UseCase::Churn => {
            let cutoff = eval.deploy_params.get("cutoff").copied().unwrap_or(0.5);
            churn::score(spec, model, tables, version, cutoff)
        }
        UseCase::Recommend => recommend::score(spec, model, tables, version),
        UseCase::Sentiment => sentiment::score(spec, model, tables, version),
    }
}

/// The part of the spec that shapes a use case's model (its section, seed and split), as JSON.
pub fn spec_section(spec: &Spec, uc: UseCase) -> serde_json::Value {
    let section = match uc {
        UseCase::Segment => serde_json::to_value(&spec.segment),
        UseCase::Churn => serde_json::to_value(&spec.churn),
        UseCase::Recommend => serde_json::to_value(&spec.recommend),
        UseCase::Sentiment => serde_json::to_value(&spec.sentiment),
    }
    .expect("spec serialises");
    serde_json::json!({ "section": section, "seed": spec.pipeline.seed, "test_fraction": spec.pipeline.test_fraction })
}
