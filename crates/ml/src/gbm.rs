//! Gradient-boosted trees for binary classification: histogram-based, native categorical splits,
//! class weights, early stopping on a validation set, L2 and depth limits.
//!
//! The booster is [hessboost](https://crates.io/crates/hessboost) (pinned in the workspace): a
//! deterministic histogram GBDT in Rust with set splits on categorical features and exact
//! TreeSHAP contributions. This module fixes the objective (log loss), chooses its defaults, and
//! keeps the fitted booster inside this crate's serialisable model: [`GbmModel`] serialises as
//! JSON with its own `format` version around hessboost's native JSON model.
//!
//! Inputs are dense row-major `f32` rows: numeric features as values (NaN = missing, learned as
//! its own branch), categorical features as category codes `0, 1, 2, ...` (NaN = missing or a
//! category not seen in training).

use crate::logistic::ClassWeight;
use crate::{Fit, MlError, Predict, Result};
use hessboost::data::FeatureType;
use hessboost::prelude::{
    BoostedModel, DMatrix, EvalMetric, Iterations, ModelFormat, Objective, RegLoss, TrainingParams,
};
use hessboost::training::Trainer;
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;

/// How a feature column is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Ordered values; splits are `x < threshold`.
    Numeric,
    /// Category codes; splits partition the set of categories.
    Categorical,
}

/// Hyper-parameters. The defaults were chosen on generated data and the demo data (docs/evaluation.md,
/// "Where the defaults were chosen", says which), never on a reported test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbmParams {
    /// Deepest tree (levels of splits); at most 7 so contributions stay exact and cheap.
    pub max_depth: usize,
    /// Shrinkage per tree.
    pub learning_rate: f64,
    /// L2 penalty on leaf weights (`lambda`).
    pub l2: f64,
    /// Smallest summed hessian in a leaf: no leaf rests on a handful of rows.
    pub min_child_weight: f64,
    /// Most boosting rounds.
    pub max_rounds: usize,
    /// Stop after this many rounds without a better validation log loss.
    pub early_stopping_rounds: usize,
    /// Histogram bins per numeric feature.
    pub max_bins: usize,
    pub class_weight: ClassWeight,
    pub seed: u64,
}

impl Default for GbmParams {
    fn default() -> Self {
        Self {
            max_depth: 4,
            learning_rate: 0.05,
            l2: 1.0,
            min_child_weight: 5.0,
            max_rounds: 2000,
            early_stopping_rounds: 50,
            max_bins: 256,
            class_weight: ClassWeight::None,
            seed: 0,
        }
    }
}

/// Rows and labels the trees learn from, and the validation rows early stopping watches.
#[derive(Debug, Clone, Copy)]
pub struct GbmData<'a> {
    pub train: ArrayView2<'a, f32>,
    pub train_labels: &'a [bool],
    pub valid: ArrayView2<'a, f32>,
    pub valid_labels: &'a [bool],
    /// One per column.
    pub kinds: &'a [FeatureKind],
}

/// A fitted ensemble. `predict` gives P(positive) under the training weights: with balanced
/// class weights that overstates the rare class, so calibrate the margins ([`crate::calibration`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GbmModel {
    /// This wrapper's format: bumped when the fields change meaning.
    pub format: u32,
    pub kinds: Vec<FeatureKind>,
    /// Trees in the model (the best iteration's, after early stopping).
    pub rounds: usize,
    /// Validation log loss at the best iteration.
    pub valid_log_loss: f64,
    #[serde(with = "booster_json")]
    booster: BoostedModel,
}

/// [`GbmModel::format`] written now.
pub const FORMAT: u32 = 1;

impl PartialEq for GbmModel {
    /// Same wrapper fields and the same trees (compared through their JSON form).
    fn eq(&self, other: &Self) -> bool {
        self.format == other.format
            && self.kinds == other.kinds
            && self.rounds == other.rounds
            && self.booster.encode(ModelFormat::Json).ok() == other.booster.encode(ModelFormat::Json).ok()
    }
}

mod booster_json {
    use super::*;
    use serde::{de::Error as _, ser::Error as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(model: &BoostedModel, s: S) -> std::result::Result<S::Ok, S::Error> {
        let bytes = model.encode(ModelFormat::Json).map_err(S::Error::custom)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(S::Error::custom)?;
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<BoostedModel, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let bytes = serde_json::to_vec(&value).map_err(D::Error::custom)?;
        BoostedModel::decode(bytes, ModelFormat::Json).map_err(|e| D::Error::custom(format!("gbm booster: {e}")))
    }
}

fn booster_error(context: &str, e: hessboost::prelude::HessboostError) -> MlError {
    MlError::InvalidInput(format!("gbm {context}: {e}"))
}

fn to_dmatrix(x: ArrayView2<f32>, kinds: &[FeatureKind]) -> Result<DMatrix> {
    let (n, d) = x.dim();
    let data: Vec<f32> = x.iter().copied().collect();
    let types: Vec<FeatureType> = kinds
        .iter()
        .map(|k| match k {
            FeatureKind::Numeric => FeatureType::Numerical,
            FeatureKind::Categorical => FeatureType::Categorical,
        })
        .collect();
    DMatrix::from_dense_vec(data, n, d).and_then(|m| m.with_feature_types(&types)).map_err(|e| booster_error("data", e))
}

fn check_rows(name: &str, x: ArrayView2<f32>, y: &[bool], kinds: &[FeatureKind]) -> Result<()> {
    if x.nrows() != y.len() {
        return Err(MlError::InvalidInput(format!("gbm: `{name}` has {} rows but {} labels", x.nrows(), y.len())));
    }
    if x.ncols() != kinds.len() {
        return Err(MlError::InvalidInput(format!(
            "gbm: `{name}` has {} columns but {} feature kinds",
            x.ncols(),
            kinds.len()
        )));
    }
    if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| v.is_infinite()) {
        return Err(MlError::InvalidInput(format!(
            "gbm: `{name}` has infinite value {v} at row {}, column {}",
            i / x.ncols().max(1),
            i % x.ncols().max(1)
        )));
    }
    Ok(())
}

impl GbmParams {
    fn validate(&self) -> Result<()> {
        let invalid = |name, reason: String| Err(MlError::InvalidParam { name, reason });
        if !(1..=7).contains(&self.max_depth) {
            return invalid("max_depth", format!("must be 1..=7, got {}", self.max_depth));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return invalid("learning_rate", format!("must be in (0, 1], got {}", self.learning_rate));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return invalid("l2", format!("must be finite and non-negative, got {}", self.l2));
        }
        if !(self.min_child_weight.is_finite() && self.min_child_weight >= 0.0) {
            return invalid(
                "min_child_weight",
                format!("must be finite and non-negative, got {}", self.min_child_weight),
            );
        }
        if self.max_rounds == 0 || self.early_stopping_rounds == 0 {
            return invalid("max_rounds", "max_rounds and early_stopping_rounds must be at least 1".into());
        }
        if !(2..=65_536).contains(&self.max_bins) {
            return invalid("max_bins", format!("must be 2..=65536, got {}", self.max_bins));
        }
        Ok(())
    }
}

/// Training sets below this many rows are fitted on one thread.
const SINGLE_THREAD_ROWS: usize = 50_000;

/// Whether a fit on `rows` training rows runs on one thread: a caller with several such fits (the
/// folds of a cross-validation) then gets more from running them side by side.
pub fn fits_on_one_thread(rows: usize) -> bool {
    rows < SINGLE_THREAD_ROWS
}

/// Row weights for `y` under `weight` (balanced: each class sums to n / 2).
fn row_weights(y: &[bool], weight: ClassWeight) -> Vec<f32> {
    let n_pos = y.iter().filter(|&&t| t).count().max(1) as f64;
    let n_neg = (y.len() as f64 - n_pos).max(1.0);
    let (w_pos, w_neg) = match weight {
        ClassWeight::None => (1.0, 1.0),
        ClassWeight::Balanced => (y.len() as f64 / (2.0 * n_pos), y.len() as f64 / (2.0 * n_neg)),
    };
    y.iter().map(|&t| (if t { w_pos } else { w_neg }) as f32).collect()
}

impl Fit for GbmParams {
    type Data<'a> = GbmData<'a>;
    type Model = GbmModel;

    /// Errors on invalid parameters, mismatched shapes, infinite values, a split with one class.
    fn fit(&self, data: GbmData<'_>) -> Result<GbmModel> {
        self.validate()?;
        check_rows("train", data.train, data.train_labels, data.kinds)?;
        check_rows("valid", data.valid, data.valid_labels, data.kinds)?;
        for (name, y) in [("train", data.train_labels), ("valid", data.valid_labels)] {
            if !y.contains(&true) || !y.contains(&false) {
                return Err(MlError::InvalidInput(format!("gbm: `{name}` labels need both classes")));
            }
        }
        let labels = |y: &[bool]| y.iter().map(|&t| f32::from(u8::from(t))).collect::<Vec<f32>>();
        let dtrain = to_dmatrix(data.train, data.kinds)?
            .with_labels(&labels(data.train_labels))
            .and_then(|m| m.with_weights(&row_weights(data.train_labels, self.class_weight)))
            .map_err(|e| booster_error("training data", e))?;
        let dvalid = to_dmatrix(data.valid, data.kinds)?
            .with_labels(&labels(data.valid_labels))
            .and_then(|m| m.with_weights(&row_weights(data.valid_labels, self.class_weight)))
            .map_err(|e| booster_error("validation data", e))?;
        let builder = TrainingParams::builder();
        // On small tables a tree level is microseconds of work: handing it to other threads costs
        // more than it saves (measured in bench/: the Telco fold fits faster on one thread).
        let builder = if fits_on_one_thread(data.train.nrows()) { builder.nthread(1) } else { builder };
        let params = builder
            .objective(Objective::BinaryLogistic(RegLoss::default()))
            .eval_metric(EvalMetric::LogLoss)
            .max_depth(self.max_depth)
            .eta(self.learning_rate)
            .lambda(self.l2)
            .min_child_weight(self.min_child_weight)
            .max_bin(self.max_bins)
            .seed(self.seed)
            .build()
            .map_err(|e| booster_error("parameters", e))?;
        let stop = NonZeroUsize::new(self.early_stopping_rounds).expect("validated above");
        let out = Trainer::new(&params, &dtrain, self.max_rounds)
            .eval(&dvalid, "valid")
            .early_stopping_rounds(stop)
            .train()
            .map_err(|e| booster_error("training", e))?;
        let booster = out.model;
        let rounds = booster.best_iteration().map_or(booster.num_trees(), |b| b + 1);
        let mut model =
            GbmModel { format: FORMAT, kinds: data.kinds.to_vec(), rounds, valid_log_loss: f64::NAN, booster };
        let p = model.predict(data.valid);
        model.valid_log_loss = crate::metrics::log_loss(&p, data.valid_labels);
        Ok(model)
    }
}

impl GbmModel {
    pub fn n_features(&self) -> usize {
        self.kinds.len()
    }

    /// Log-odds per row (before any calibration).
    pub fn margins(&self, x: ArrayView2<f32>) -> Result<Vec<f64>> {
        if x.ncols() != self.n_features() {
            return Err(MlError::InvalidInput(format!(
                "gbm: rows have {} columns, the model {}",
                x.ncols(),
                self.n_features()
            )));
        }
        let rows: std::borrow::Cow<[f32]> = match x.as_slice() {
            Some(s) => s.into(),
            None => x.iter().copied().collect::<Vec<f32>>().into(),
        };
        let m =
            self.booster.predict_margin_rows(&rows, Iterations::Best).map_err(|e| booster_error("prediction", e))?;
        Ok(m.as_slice().iter().map(|&v| f64::from(v)).collect())
    }

    /// Exact TreeSHAP contributions to the log-odds: per row, one value per feature, then the base
    /// value last; each row's values sum to its margin.
    pub fn contributions(&self, x: ArrayView2<f32>) -> Result<Vec<Vec<f64>>> {
        let d = to_dmatrix(x, &self.kinds)?;
        let c = self.booster.predict_contribs(&d, Iterations::Best).map_err(|e| booster_error("contributions", e))?;
        Ok((0..x.nrows())
            .map(|r| c.get(r, 0).expect("one output per row").iter().map(|&v| f64::from(v)).collect())
            .collect())
    }

    /// Total gain of the splits on each feature, normalised to sum to 1.
    pub fn gain_importance(&self) -> Vec<f64> {
        let gains = self.booster.feature_importance(hessboost::prelude::ImportanceType::TotalGain);
        let total: f64 = gains.values().sum();
        (0..self.n_features()).map(|j| gains.get(&j).copied().unwrap_or(0.0) / total.max(f64::MIN_POSITIVE)).collect()
    }
}

impl Predict for GbmModel {
    type Input<'a> = ArrayView2<'a, f32>;
    type Output = Vec<f64>;

    /// P(positive) per row, `sigmoid(margin)`. Panics when the column count differs from training.
    fn predict(&self, x: ArrayView2<f32>) -> Vec<f64> {
        self.margins(x).expect("rows as wide as the training rows").into_iter().map(crate::logistic::sigmoid).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logistic::LogisticParams;
    use crate::metrics::roc_auc;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Planted XOR-like interaction: churn when (a > 0) != (b > 0), plus a categorical effect
    /// (category 2 of 4 raises risk). Neither feature alone nor any linear mix separates it.
    fn planted(n: usize, seed: u64) -> (Array2<f32>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Array2::zeros((n, 3));
        let mut y = Vec::with_capacity(n);
        for r in 0..n {
            let (a, b): (f32, f32) = (rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0));
            let cat = rng.gen_range(0..4u8);
            x[[r, 0]] = a;
            x[[r, 1]] = b;
            x[[r, 2]] = f32::from(cat);
            let logit = if (a > 0.0) != (b > 0.0) { 1.5 } else { -1.5 } + if cat == 2 { 1.0 } else { 0.0 };
            y.push(rng.gen_bool(crate::logistic::sigmoid(logit)));
        }
        (x, y)
    }

    const KINDS: [FeatureKind; 3] = [FeatureKind::Numeric, FeatureKind::Numeric, FeatureKind::Categorical];

    fn fit(seed: u64) -> (GbmModel, Array2<f32>, Vec<bool>) {
        let (x, y) = planted(4000, seed);
        let (xv, yv) = planted(1000, seed + 1);
        let data = GbmData { train: x.view(), train_labels: &y, valid: xv.view(), valid_labels: &yv, kinds: &KINDS };
        let model = GbmParams::default().fit(data).unwrap();
        let (xt, yt) = planted(2000, seed + 2);
        (model, xt, yt)
    }

    #[test]
    fn trees_recover_an_interaction_logistic_cannot() {
        let (model, xt, yt) = fit(7);
        let gbm_auc = roc_auc(&model.predict(xt.view()), &yt).unwrap();
        // Logistic regression on the same features (category one-hot, as the pipeline does).
        let one_hot = |x: &Array2<f32>| {
            Array2::from_shape_fn((x.nrows(), 6), |(r, c)| match c {
                0 | 1 => f64::from(x[[r, c]]),
                _ => f64::from(u8::from(x[[r, 2]] as usize == c - 2)),
            })
        };
        let (x, y) = planted(4000, 7);
        let logistic = LogisticParams::default().fit((one_hot(&x).view(), &y[..])).unwrap();
        let lr_auc = roc_auc(&logistic.predict(one_hot(&xt).view()).to_vec(), &yt).unwrap();
        assert!(gbm_auc > 0.80, "gbm AUC {gbm_auc}");
        assert!(gbm_auc - lr_auc > 0.15, "gbm {gbm_auc} vs logistic {lr_auc}");
        assert!(model.rounds >= 10 && model.rounds < GbmParams::default().max_rounds, "{}", model.rounds);
    }

    #[test]
    fn contributions_sum_to_the_margin() {
        let (model, xt, _) = fit(3);
        let rows = xt.slice(ndarray::s![..200, ..]);
        let margins = model.margins(rows).unwrap();
        let contributions = model.contributions(rows).unwrap();
        for (m, c) in margins.iter().zip(&contributions) {
            assert_eq!(c.len(), 4);
            let sum: f64 = c.iter().sum();
            assert!((sum - m).abs() < 1e-4 * (1.0 + m.abs()), "sum {sum} margin {m}");
        }
        // The planted features carry the attributions; the categorical one matters too.
        let mean_abs: Vec<f64> = (0..3)
            .map(|j| contributions.iter().map(|c| c[j].abs()).sum::<f64>() / contributions.len() as f64)
            .collect();
        assert!(mean_abs.iter().all(|&v| v > 0.05), "{mean_abs:?}");
        let gain = model.gain_importance();
        assert!((gain.iter().sum::<f64>() - 1.0).abs() < 1e-9 && gain.iter().all(|&g| g > 0.0), "{gain:?}");
    }

    #[test]
    fn same_seed_same_model_and_json_round_trip() {
        let (a, xt, _) = fit(11);
        let (b, _, _) = fit(11);
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        let back: GbmModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back.predict(xt.view()), a.predict(xt.view()));
        assert_eq!(back.format, FORMAT);
    }

    #[test]
    fn bad_inputs_are_named() {
        let (x, y) = planted(100, 1);
        let data =
            GbmData { train: x.view(), train_labels: &y[..90], valid: x.view(), valid_labels: &y, kinds: &KINDS };
        assert!(GbmParams::default().fit(data).unwrap_err().to_string().contains("`train` has 100 rows but 90 labels"));
        let params = GbmParams { max_depth: 9, ..Default::default() };
        let data = GbmData { train: x.view(), train_labels: &y, valid: x.view(), valid_labels: &y, kinds: &KINDS };
        assert!(params.fit(data).unwrap_err().to_string().contains("max_depth"));
        let mut inf = x.clone();
        inf[[5, 1]] = f32::INFINITY;
        let data = GbmData { train: inf.view(), train_labels: &y, valid: x.view(), valid_labels: &y, kinds: &KINDS };
        assert!(GbmParams::default().fit(data).unwrap_err().to_string().contains("row 5, column 1"));
    }
}
