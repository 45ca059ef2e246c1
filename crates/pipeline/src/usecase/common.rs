//! Pieces shared by the use cases: seeded splits, numeric/categorical encoders, evaluation records.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::frame::Frame;

/// A seeded shuffle split: `test_fraction` of `0..n` to test, the rest to train (both sorted).
pub fn split_indices(n: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_test = ((n as f64) * test_fraction).round() as usize;
    let (test, train) = idx.split_at(n_test.min(n));
    let (mut train, mut test) = (train.to_vec(), test.to_vec());
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Like [`split_indices`] but per class, so train and test keep the class balance.
pub fn stratified_split(labels: &[bool], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (class, salt) in [(true, 1u64), (false, 2u64)] {
        let members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        let (tr, te) = split_indices(members.len(), test_fraction, seed.wrapping_mul(31).wrapping_add(salt));
        train.extend(tr.into_iter().map(|i| members[i]));
        test.extend(te.into_iter().map(|i| members[i]));
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Seeded stratified k-fold: each row's fold (0..k), each class dealt round-robin after a shuffle
/// so every fold keeps the class balance.
pub fn stratified_fold_of(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let mut fold_of = vec![0usize; labels.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut offset = 0;
    for class in [true, false] {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(&mut rng);
        for (j, &i) in members.iter().enumerate() {
            fold_of[i] = (j + offset) % k.max(1);
        }
        offset += members.len();
    }
    fold_of
}

/// Standardises numeric columns with training means/stds; missing values become the training median
/// (so they land near the centre, not at an extreme).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardiser {
    pub columns: Vec<String>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub median: Vec<f64>,
}

impl Standardiser {
    pub fn fit(frame: &Frame, columns: &[String]) -> Result<Self> {
        let values: Vec<Vec<f64>> = columns.iter().map(|c| frame.numeric(c)).collect::<Result<_>>()?;
        Self::fit_values(columns, values)
    }

    /// Fitted on `values[j]`, the training values of `columns[j]` (NaN for missing).
    pub fn fit_values(columns: &[String], values: Vec<Vec<f64>>) -> Result<Self> {
        let (mut mean, mut std, mut median) = (Vec::new(), Vec::new(), Vec::new());
        for (c, mut xs) in columns.iter().zip(values) {
            xs.retain(|x| x.is_finite());
            if xs.is_empty() {
                return Err(Error::Invalid(format!("numeric column `{c}` has no values in the training split")));
            }
            xs.sort_by(f64::total_cmp);
            let n = xs.len() as f64;
            let m = xs.iter().sum::<f64>() / n;
            let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt();
            mean.push(m);
            // A constant column carries no information; scale 1 keeps it at 0 instead of NaN.
            std.push(if sd > 1e-12 { sd } else { 1.0 });
            median.push(xs[xs.len() / 2]);
        }
        Ok(Self { columns: columns.to_vec(), mean, std, median })
    }

    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Writes the standardised values of `row` into `out[..width]`.
    pub fn transform_into(&self, raw: &[f64], out: &mut [f64]) {
        for j in 0..self.columns.len() {
            let x = if raw[j].is_finite() { raw[j] } else { self.median[j] };
            out[j] = (x - self.mean[j]) / self.std[j];
        }
    }

    /// Raw numeric values per row of `frame` (NaN for missing), row-major.
    pub fn raw_rows(&self, frame: &Frame) -> Result<Vec<Vec<f64>>> {
        let cols: Vec<Vec<f64>> = self.columns.iter().map(|c| frame.numeric(c)).collect::<Result<_>>()?;
        Ok((0..frame.n_rows()).map(|r| cols.iter().map(|c| c[r]).collect()).collect())
    }
}

/// One-hot encoding of categorical columns with the categories seen in training; an unseen
/// category encodes as all zeros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneHot {
    pub columns: Vec<String>,
    pub categories: Vec<Vec<String>>,
}

impl OneHot {
    pub fn fit(frame: &Frame, columns: &[String]) -> Result<Self> {
        let mut categories = Vec::new();
        for c in columns {
            let seen: std::collections::BTreeSet<&str> = frame.col(c)?.iter().collect();
            categories.push(seen.into_iter().map(str::to_string).collect());
        }
        Ok(Self { columns: columns.to_vec(), categories })
    }

    pub fn width(&self) -> usize {
        self.categories.iter().map(Vec::len).sum()
    }

    pub fn feature_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .zip(&self.categories)
            .flat_map(|(c, cats)| cats.iter().map(move |v| format!("{c}={v}")))
            .collect()
    }

    /// Sets the one-hot block for one row (values in column order) into `out[..width]`.
    pub fn transform_into(&self, values: &[&str], out: &mut [f64]) {
        out.iter_mut().for_each(|x| *x = 0.0);
        let mut offset = 0;
        for (v, cats) in values.iter().zip(&self.categories) {
            if let Ok(pos) = cats.binary_search_by(|c| c.as_str().cmp(v)) {
                out[offset + pos] = 1.0;
            }
            offset += cats.len();
        }
    }
}

/// What a criterion stands for: a technical check of the model, a business criterion of the spec,
/// or the comparison with the champion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriterionKind {
    Technical,
    Business,
    Champion,
    /// The data moved past a `[drift]` block threshold.
    Drift,
}

impl CriterionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CriterionKind::Technical => "technical",
            CriterionKind::Business => "business",
            CriterionKind::Champion => "champion",
            CriterionKind::Drift => "drift",
        }
    }
}

impl std::fmt::Display for CriterionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a criterion's value is compared with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<")]
    Lt,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Lt => "<",
        }
    }

    /// Whether `value op threshold` holds; a value that is not finite never passes.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        value.is_finite()
            && match self {
                Op::Ge => value >= threshold,
                Op::Le => value <= threshold,
                Op::Gt => value > threshold,
                Op::Lt => value < threshold,
            }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One business or technical criterion with its measured value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    pub name: String,
    pub value: f64,
    pub op: Op,
    pub threshold: f64,
    pub passed: bool,
    pub kind: CriterionKind,
    /// For a failed criterion, what would pass, from numbers the evaluation already has (e.g. the
    /// precision reachable at the required recall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl Criterion {
    pub fn check(kind: CriterionKind, name: &str, value: f64, op: Op, threshold: f64) -> Self {
        Self { name: name.into(), value, op, threshold, passed: op.holds(value, threshold), kind, next: None }
    }

    /// The next step shown when the criterion fails.
    pub fn next(mut self, next: impl Into<String>) -> Self {
        if !self.passed {
            self.next = Some(next.into());
        }
        self
    }

    /// For a failed criterion set by the spec field `field`: the value of that field the model
    /// would pass at (three decimals, rounded the passing way).
    pub fn relax(self, field: &str) -> Self {
        let at = match self.op {
            Op::Ge | Op::Gt => (self.value * 1000.0).floor() / 1000.0,
            Op::Le | Op::Lt => (self.value * 1000.0).ceil() / 1000.0,
        };
        let text = format!("the model passes with {field} = {at:.3}, or needs more signal in its data or features");
        self.next(text)
    }

    pub fn describe(&self) -> String {
        let next = self.next.as_ref().map(|n| format!("; next: {n}")).unwrap_or_default();
        format!("{} = {:.4} (needs {} {:.4}){next}", self.name, self.value, self.op, self.threshold)
    }
}

/// The headline metric a challenger is compared with the champion on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrimaryMetric {
    pub name: String,
    pub value: f64,
    pub higher_is_better: bool,
}

/// Parameters of a deployment that its evaluation decides, by name (e.g. `cutoff` for churn).
pub type DeployParams = BTreeMap<String, f64>;

/// What evaluating one model on one test split found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub primary: PrimaryMetric,
    pub criteria: Vec<Criterion>,
    /// Everything else worth reporting (curves, tables, per-k sweeps), use-case specific.
    pub details: super::Details,
    /// Parameters deploy needs that evaluation decides (e.g. the churn cutoff).
    pub deploy_params: DeployParams,
    /// The distribution of the model's scores on the test split (churn probabilities, segment
    /// shares by size rank, predicted ratings, positive-sentiment probabilities), for drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<crate::drift::Distribution>,
}

/// Artifacts (models, encoders) as compact JSON: programs read them (`jq .` indents one for a
/// person), and indenting every factor and neighbour list multiplied the bytes written, stored
/// and read back at every deployment.
pub fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("model types always serialise")
}

pub fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Invalid(format!("cannot read {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let (a, b) = split_indices(100, 0.2, 7);
        assert_eq!((a.len(), b.len()), (80, 20));
        assert_eq!(split_indices(100, 0.2, 7), (a.clone(), b.clone()));
        assert_ne!(split_indices(100, 0.2, 8).1, b);
        let mut all: Vec<usize> = a.into_iter().chain(b).collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn stratified_split_keeps_balance() {
        let labels: Vec<bool> = (0..1000).map(|i| i % 4 == 0).collect();
        let (_, test) = stratified_split(&labels, 0.2, 1);
        let pos = test.iter().filter(|&&i| labels[i]).count();
        assert_eq!((test.len(), pos), (200, 50));
    }

    #[test]
    fn standardiser_imputes_median_and_handles_constants() {
        let mut f = Frame::new(vec!["x".into(), "c".into()]);
        for (x, c) in [("1", "5"), ("2", "5"), ("", "5"), ("9", "5")] {
            f.push_row([x, c]);
        }
        let s = Standardiser::fit(&f, &["x".into(), "c".into()]).unwrap();
        let mut out = [0.0; 2];
        s.transform_into(&[f64::NAN, 5.0], &mut out);
        assert!((out[0] - (2.0 - 4.0) / s.std[0]).abs() < 1e-12);
        assert_eq!(out[1], 0.0);
    }

    #[test]
    fn one_hot_ignores_unseen() {
        let mut f = Frame::new(vec!["p".into()]);
        for v in ["b", "a", "b"] {
            f.push_row([v]);
        }
        let oh = OneHot::fit(&f, &["p".into()]).unwrap();
        let mut out = [9.0; 2];
        oh.transform_into(&["b"], &mut out);
        assert_eq!(out, [0.0, 1.0]);
        oh.transform_into(&["zzz"], &mut out);
        assert_eq!(out, [0.0, 0.0]);
        assert_eq!(oh.feature_names(), ["p=a", "p=b"]);
    }
}
