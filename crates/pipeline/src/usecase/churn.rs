//! Churn: who is at risk of cancelling. Logistic regression with class weights over standardised
//! numerics and one-hot categoricals, gradient-boosted trees over raw numerics and native
//! categoricals, or their blend, chosen by out-of-fold AUC on the training rows (`churn.model`);
//! probabilities Platt-calibrated on those out-of-fold margins; AUC, ROC, reliability and a cutoff table; the
//! deployed cutoff is the business lever (best precision among cutoffs that reach the spec's
//! recall); churn drivers as exact per-customer contributions to the log-odds.

use marquee_ml::calibration::{self, Platt, ReliabilityBin};
use marquee_ml::gbm::{FeatureKind, GbmData, GbmModel};
use marquee_ml::logistic::{LogisticModel, LogisticParams};
pub use marquee_ml::metrics::CutoffRow;
use marquee_ml::metrics::{self, RocPoint};
use marquee_ml::{parallel, Fit, Predict};
use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

use super::common::{
    from_json, stratified_split, to_json, Criterion, CriterionKind, DeployParams, Evaluation, OneHot, Op,
    PrimaryMetric, Standardiser,
};
use super::{Details, Files, ItemSink, Tables, UseCase};
use crate::error::{Error, Result};
use crate::frame::{Column, Frame};
use crate::keys::score;
use crate::spec::{ChurnCriteria, ChurnModelKind, ChurnSpec, Spec, UseCaseSection};
use crate::store::Item;

/// Cutoffs offered in the table: 0.05, 0.10, ..., 0.95.
pub fn standard_cutoffs() -> Vec<f64> {
    (1..=19).map(|i| i as f64 * 0.05).collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnEncoder {
    pub numeric: Standardiser,
    pub categorical: OneHot,
    /// Features computed from columns before scaling (their names are among `numeric.columns`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<Derived>,
}

/// A feature computed from a row: `ln(1 + x)` of a column, or the product of two terms (a numeric
/// column, or `column=value`: 1 when the categorical column has that value, else 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Derived {
    Log1p { column: String },
    Product { terms: [String; 2] },
}

impl Derived {
    pub fn name(&self) -> String {
        match self {
            Derived::Log1p { column } => format!("log1p({column})"),
            Derived::Product { terms } => format!("{} * {}", terms[0], terms[1]),
        }
    }

    fn term(frame: &Frame, term: &str) -> Result<Vec<f64>> {
        match term.split_once('=') {
            Some((col, value)) => Ok(frame.col(col)?.iter().map(|v| f64::from(u8::from(v == value))).collect()),
            None => frame.numeric(term),
        }
    }

    /// Values per row (NaN where an input is missing: the scaler imputes its training median).
    pub fn values(&self, frame: &Frame) -> Result<Vec<f64>> {
        Ok(match self {
            Derived::Log1p { column } => {
                frame.numeric(column)?.into_iter().map(|x| x.signum() * x.abs().ln_1p()).collect()
            }
            Derived::Product { terms } => {
                let (a, b) = (Self::term(frame, &terms[0])?, Self::term(frame, &terms[1])?);
                a.iter().zip(&b).map(|(x, y)| x * y).collect()
            }
        })
    }

    pub fn from_spec(c: &ChurnSpec) -> Vec<Derived> {
        let mut out: Vec<Derived> = c.log1p.iter().map(|col| Derived::Log1p { column: col.clone() }).collect();
        out.extend(c.interactions.iter().map(|t| Derived::Product { terms: t.clone() }));
        out
    }
}

/// Values of `columns` in `frame`, column by column: a derived feature (named by
/// [`Derived::name`]) computed from its inputs, any other column read as numbers (NaN for missing).
fn numeric_values(frame: &Frame, columns: &[String], derived: &[Derived]) -> Result<Vec<Vec<f64>>> {
    columns
        .iter()
        .map(|name| match derived.iter().find(|d| d.name() == *name) {
            // A value that overflowed reads as missing, as a blank input does.
            Some(d) => Ok(d.values(frame)?.into_iter().map(|v| if v.is_finite() { v } else { f64::NAN }).collect()),
            None => frame.numeric(name),
        })
        .collect()
}

impl ChurnEncoder {
    /// Scaler and one-hot categories fitted on `train` only.
    pub fn fit(train: &Frame, c: &ChurnSpec) -> Result<Self> {
        let derived = Derived::from_spec(c);
        let mut numeric = c.numeric.clone();
        numeric.extend(derived.iter().map(Derived::name));
        let values = numeric_values(train, &numeric, &derived)?;
        Ok(Self {
            numeric: Standardiser::fit_values(&numeric, values)?,
            categorical: OneHot::fit(train, &c.categorical)?,
            derived,
        })
    }

    /// The raw values of the numeric (and derived) columns of `frame`, column by column.
    fn numeric_columns(&self, frame: &Frame) -> Result<Vec<Vec<f64>>> {
        numeric_values(frame, &self.numeric.columns, &self.derived)
    }

    pub fn width(&self) -> usize {
        self.numeric.width() + self.categorical.width()
    }

    pub fn feature_names(&self) -> Vec<String> {
        let mut names = self.numeric.columns.clone();
        names.extend(self.categorical.feature_names());
        names
    }

    /// The inputs the churn drivers are reported over: the numeric (and derived) columns, then the
    /// categorical columns (a categorical column's one-hot features count as one driver).
    pub fn driver_names(&self) -> Vec<String> {
        let mut names = self.numeric.columns.clone();
        names.extend(self.categorical.columns.iter().cloned());
        names
    }

    /// Which driver each encoded (logistic) feature belongs to.
    fn driver_of_feature(&self) -> Vec<usize> {
        let wn = self.numeric.width();
        let mut out: Vec<usize> = (0..wn).collect();
        for (c, cats) in self.categorical.categories.iter().enumerate() {
            out.extend(std::iter::repeat_n(wn + c, cats.len()));
        }
        out
    }

    /// The trees' inputs, one column per driver: raw numerics (NaN when missing) and category codes
    /// (NaN for a category not seen in training).
    pub fn tree_rows(&self, frame: &Frame) -> Result<Array2<f32>> {
        let raw = self.numeric_columns(frame)?;
        let cats: Vec<&Column> = self.categorical.columns.iter().map(|c| frame.col(c)).collect::<Result<_>>()?;
        let wn = self.numeric.width();
        let mut x = Array2::from_elem((frame.n_rows(), wn + cats.len()), f32::NAN);
        for (j, column) in raw.iter().enumerate() {
            x.column_mut(j).iter_mut().zip(column).for_each(|(out, &v)| *out = v as f32);
        }
        for r in 0..frame.n_rows() {
            for (c, (col, known)) in cats.iter().zip(&self.categorical.categories).enumerate() {
                if let Ok(code) = known.binary_search_by(|k| k.as_str().cmp(&col[r])) {
                    x[[r, wn + c]] = code as f32;
                }
            }
        }
        Ok(x)
    }

    fn tree_kinds(&self) -> Vec<FeatureKind> {
        let mut kinds = vec![FeatureKind::Numeric; self.numeric.width()];
        kinds.extend(std::iter::repeat_n(FeatureKind::Categorical, self.categorical.columns.len()));
        kinds
    }

    pub fn transform(&self, frame: &Frame) -> Result<Array2<f64>> {
        let raw = self.numeric_columns(frame)?;
        let cats: Vec<&Column> = self.categorical.columns.iter().map(|c| frame.col(c)).collect::<Result<_>>()?;
        let (wn, w) = (self.numeric.width(), self.width());
        let mut x = Array2::zeros((frame.n_rows(), w));
        let mut values: Vec<&str> = Vec::with_capacity(cats.len());
        let mut raw_row = vec![0.0; wn];
        for r in 0..frame.n_rows() {
            let mut row = x.row_mut(r);
            let out = row.as_slice_mut().expect("standard layout");
            raw_row.iter_mut().zip(&raw).for_each(|(v, column)| *v = column[r]);
            self.numeric.transform_into(&raw_row, &mut out[..wn]);
            values.clear();
            values.extend(cats.iter().map(|c| &c[r]));
            self.categorical.transform_into(&values, &mut out[wn..]);
        }
        Ok(x)
    }
}

/// A churn model family, as trained and as chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    #[default]
    Logistic,
    Gbm,
    /// The mean of the logistic and the trees' log-odds.
    Blend,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Logistic => "logistic",
            Family::Gbm => "gbm",
            Family::Blend => "blend",
        }
    }
}

/// One family's AUC on out-of-fold margins of the training rows (what `auto` chose on).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub family: Family,
    pub validation_auc: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    pub id_column: Option<String>,
    pub label: String,
    pub positive: String,
    pub encoder: ChurnEncoder,
    /// The family that scores (artifacts written before trees existed read as logistic).
    #[serde(default)]
    pub family: Family,
    /// Present for logistic and blend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logistic: Option<LogisticModel>,
    /// Present for gbm and blend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gbm: Option<GbmModel>,
    /// Training means of the logistic features: its contributions are `coef * (x - mean)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_means: Vec<f64>,
    /// P(churn) = sigmoid(a * margin + b), fitted on out-of-fold margins of the training rows; absent in
    /// artifacts written before calibration (read as the identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Platt>,
    /// Every family compared, with its out-of-fold AUC on the training rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    pub feature_names: Vec<String>,
    pub fingerprint: String,
}

/// Per-row contributions to the calibrated log-odds, one per driver, and the base value: each
/// row's contributions plus `base` are its log-odds.
pub struct Contributions {
    pub drivers: Vec<String>,
    pub rows: Vec<Vec<f64>>,
    pub base: Vec<f64>,
}

/// A frame encoded for a model's parts (see [`ChurnModel::encode`]).
struct Encoded {
    rows: usize,
    x: Option<Array2<f64>>,
    t: Option<Array2<f32>>,
}

impl ChurnModel {
    fn logistic(&self) -> Result<&LogisticModel> {
        self.logistic
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("churn model ({}) has no logistic part", self.family.name())))
    }
    fn trees(&self) -> Result<&GbmModel> {
        self.gbm.as_ref().ok_or_else(|| Error::Invalid(format!("churn model ({}) has no trees", self.family.name())))
    }

    /// `frame` encoded for the family's parts: the logistic features and/or the trees' inputs.
    fn encode(&self, frame: &Frame) -> Result<Encoded> {
        let lr = matches!(self.family, Family::Logistic | Family::Blend);
        let trees = matches!(self.family, Family::Gbm | Family::Blend);
        Ok(Encoded {
            rows: frame.n_rows(),
            x: if lr { Some(self.encoder.transform(frame)?) } else { None },
            t: if trees { Some(self.encoder.tree_rows(frame)?) } else { None },
        })
    }

    /// Uncalibrated log-odds per encoded row.
    fn margins_of(&self, e: &Encoded) -> Result<Vec<f64>> {
        let lr = || -> Result<Vec<f64>> {
            let (m, x) = (self.logistic()?, e.x.as_ref().expect("encoded for logistic"));
            Ok(logistic_margins(m, x.view()))
        };
        let gbm =
            || -> Result<Vec<f64>> { Ok(self.trees()?.margins(e.t.as_ref().expect("encoded for trees").view())?) };
        Ok(match self.family {
            Family::Logistic => lr()?,
            Family::Gbm => gbm()?,
            Family::Blend => lr()?.iter().zip(gbm()?).map(|(a, b)| 0.5 * (a + b)).collect(),
        })
    }

    /// Uncalibrated log-odds per row of `frame`.
    pub fn margins(&self, frame: &Frame) -> Result<Vec<f64>> {
        self.margins_of(&self.encode(frame)?)
    }

    fn platt(&self) -> Platt {
        self.calibration.unwrap_or_default()
    }

    fn probabilities_of(&self, e: &Encoded) -> Result<Vec<f64>> {
        let platt = self.platt();
        Ok(self.margins_of(e)?.into_iter().map(|m| platt.predict(m)).collect())
    }

    /// Calibrated P(churn) per row of `frame`.
    pub fn probabilities(&self, frame: &Frame) -> Result<Vec<f64>> {
        self.probabilities_of(&self.encode(frame)?)
    }

    /// Exact contributions to the calibrated log-odds per driver: `coef * (x - mean)` summed over a
    /// column's features for logistic regression, TreeSHAP for the trees, their mean for a blend;
    /// all scaled by the calibration's slope.
    pub fn contributions(&self, frame: &Frame) -> Result<Contributions> {
        self.contributions_of(&self.encode(frame)?)
    }

    /// [`Self::probabilities`] and [`Self::contributions`] of `frame`, encoding it once.
    pub fn probabilities_and_contributions(&self, frame: &Frame) -> Result<(Vec<f64>, Contributions)> {
        let e = self.encode(frame)?;
        Ok((self.probabilities_of(&e)?, self.contributions_of(&e)?))
    }

    fn contributions_of(&self, e: &Encoded) -> Result<Contributions> {
        let drivers = self.encoder.driver_names();
        let mut rows = vec![vec![0.0; drivers.len()]; e.rows];
        let mut base = vec![0.0; e.rows];
        let share = if self.family == Family::Blend { 0.5 } else { 1.0 };
        if let Some(x) = &e.x {
            let m = self.logistic()?;
            let driver_of = self.encoder.driver_of_feature();
            let means = if self.feature_means.len() == m.coef.len() {
                self.feature_means.clone()
            } else {
                vec![0.0; m.coef.len()]
            };
            let offset = m.intercept + m.coef.iter().zip(&means).map(|(c, mu)| c * mu).sum::<f64>();
            for (r, xr) in x.rows().into_iter().enumerate() {
                for (j, &v) in xr.iter().enumerate() {
                    rows[r][driver_of[j]] += share * m.coef[j] * (v - means[j]);
                }
                base[r] += share * offset;
            }
        }
        if let Some(t) = &e.t {
            let c = self.trees()?.contributions(t.view())?;
            for (r, cr) in c.iter().enumerate() {
                let (phi, bias) = cr.split_at(drivers.len());
                for (out, v) in rows[r].iter_mut().zip(phi) {
                    *out += share * v;
                }
                base[r] += share * bias[0];
            }
        }
        let platt = self.platt();
        for (row, b) in rows.iter_mut().zip(base.iter_mut()) {
            row.iter_mut().for_each(|v| *v *= platt.a);
            *b = platt.a * *b + platt.b;
        }
        Ok(Contributions { drivers, rows, base })
    }
}

/// A driver's weight over a set of rows: the mean absolute contribution to the log-odds, and the
/// mean contribution (near zero on data like the training rows: contributions are measured from
/// the average customer; far from zero, the rows differ from training in that input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverImportance {
    pub feature: String,
    pub mean_abs: f64,
    pub mean: f64,
}

/// Drivers by mean absolute contribution, largest first.
pub fn driver_importance(c: &Contributions) -> Vec<DriverImportance> {
    let n = c.rows.len().max(1) as f64;
    let mut out: Vec<DriverImportance> = c
        .drivers
        .iter()
        .enumerate()
        .map(|(j, name)| DriverImportance {
            feature: name.clone(),
            mean_abs: c.rows.iter().map(|r| r[j].abs()).sum::<f64>() / n,
            mean: c.rows.iter().map(|r| r[j]).sum::<f64>() / n,
        })
        .collect();
    out.sort_by(|a, b| b.mean_abs.total_cmp(&a.mean_abs));
    out
}

/// A row's largest contributions raising its risk (at most `k`, positive ones only), largest first.
pub fn top_drivers(names: &[String], row: &[f64], k: usize) -> Vec<(String, f64)> {
    let mut idx: Vec<usize> = (0..row.len()).filter(|&j| row[j] > 0.0).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    idx.into_iter().take(k).map(|j| (names[j].clone(), row[j])).collect()
}

/// What churn's evaluation reports besides its criteria.
/// Every field but `cutoff_table` may be absent (read as empty), so partial documents stay readable;
/// `cutoff_table` tells the use cases' details apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnDetails {
    #[serde(default)]
    pub test_rows: usize,
    #[serde(default)]
    pub positive_rate: f64,
    /// The first point's threshold is +infinity, which JSON writes as null.
    #[serde(default, deserialize_with = "roc_points")]
    pub roc: Vec<RocPoint>,
    pub cutoff_table: Vec<CutoffRow>,
    /// The deployed cutoff: the best precision among the cutoffs reaching the spec's recall.
    #[serde(default)]
    pub chosen_cutoff: Option<CutoffRow>,
    /// The logistic part's largest coefficients by magnitude (standardised features).
    #[serde(default)]
    pub top_coefficients: Vec<(String, f64)>,
    /// The family that scored (absent in evaluations written before trees: logistic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Family>,
    /// Each family's AUC on out-of-fold margins of the training rows (5 inner folds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    /// Predicted probability against the observed churn rate, in ten bins (test split).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reliability: Vec<ReliabilityBin>,
    /// Expected calibration error of the reliability curve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_error: Option<f64>,
    /// The churn drivers on the test split: mean |contribution| to the log-odds per input column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<DriverImportance>,
}

fn roc_points<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<RocPoint>, D::Error> {
    #[derive(Deserialize)]
    struct Stored {
        threshold: Option<f64>,
        fpr: f64,
        tpr: f64,
    }
    let stored = Vec::<Stored>::deserialize(d)?;
    Ok(stored
        .into_iter()
        .map(|p| RocPoint { threshold: p.threshold.unwrap_or(f64::INFINITY), fpr: p.fpr, tpr: p.tpr })
        .collect())
}

/// Churn: logistic regression with class weights; the cutoff is a business lever.
pub struct Churn;

impl UseCase for Churn {
    fn id(&self) -> crate::spec::UseCase {
        crate::spec::UseCase::Churn
    }
    fn section<'a>(&self, spec: &'a Spec) -> Option<&'a dyn UseCaseSection> {
        spec.churn.as_ref().map(|s| s as &dyn UseCaseSection)
    }
    fn needed_tables(&self, spec: &Spec) -> Vec<String> {
        spec.churn.iter().map(|c| c.table.clone()).collect()
    }
    fn row_scored_table(&self, spec: &Spec) -> Option<String> {
        spec.churn.as_ref().map(|c| c.table.clone())
    }
    fn label_columns(&self, spec: &Spec) -> Vec<(String, String)> {
        spec.churn.iter().map(|c| (c.table.clone(), c.label.clone())).collect()
    }
    fn prepare(&self, spec: &Spec, tables: &Tables) -> Result<Files> {
        let c = spec_of(spec)?;
        let frame = tables.get(&c.table)?;
        let y = labels(frame, c)?;
        if !y.iter().any(|&v| v) {
            return Err(Error::Input {
                file: spec.table(&c.table)?.file.clone(),
                line: 1,
                column: c.label.clone(),
                reason: format!("no row has the positive label `{}`", c.positive),
            });
        }
        let (train, test) = stratified_split(&y, spec.pipeline.test_fraction, spec.pipeline.seed);
        self.prepare_split(spec, tables, &train, &test)
    }
    /// [`UseCase::prepare`] on a given split (row indices of the churn table, e.g. protocol folds). The
    /// encoder (scaler, one-hot categories) is fitted on the `train` rows only.
    fn prepare_split(&self, spec: &Spec, tables: &Tables, train: &[usize], test: &[usize]) -> Result<Files> {
        let c = spec_of(spec)?;
        let frame = tables.get(&c.table)?;
        // Whole rows, not just this spec's features: a champion with other features must be able to
        // score the same test split.
        let train_frame = frame.select_rows(train);
        let encoder = ChurnEncoder::fit(&train_frame, c)?;
        let mut files = Files::new();
        files.insert("train.csv".into(), train_frame.to_csv());
        files.insert("test.csv".into(), frame.csv_of(&frame.headers, test)?);
        files.insert("encoder.json".into(), to_json(&encoder));
        Ok(files)
    }
    fn train(&self, spec: &Spec, files: &Files, _tables: &Tables, fingerprint: &str) -> Result<Vec<u8>> {
        let c = spec_of(spec)?;
        let train = files.frame("train.csv")?;
        let encoder: ChurnEncoder = from_json(files.get("encoder.json")?, "churn encoder")?;
        let model = fit(c, encoder, &train, spec.pipeline.seed)?;
        Ok(to_json(&ChurnModel {
            id_column: spec.table(&c.table)?.id.clone(),
            label: c.label.clone(),
            positive: c.positive.clone(),
            fingerprint: fingerprint.to_string(),
            ..model
        }))
    }
    fn evaluate(&self, spec: &Spec, model_bytes: &[u8], files: &Files) -> Result<Evaluation> {
        let c = spec_of(spec)?;
        let model: ChurnModel = from_json(model_bytes, "churn model")?;
        let test = files.frame("test.csv")?;
        let y: Vec<bool> = test.col(&model.label)?.iter().map(|v| v == &model.positive).collect();
        let (p, contributions) = model.probabilities_and_contributions(&test)?;
        let auc = metrics::roc_auc(&p, &y)?;
        let reliability = calibration::reliability_curve(&p, &y, 10);
        let roc = metrics::roc_curve(&p, &y);
        let table = metrics::cutoff_table(&p, &y, &standard_cutoffs());
        let chosen = choose_cutoff(&table, c.criteria.min_recall).copied();
        let base_rate = y.iter().filter(|&&v| v).count() as f64 / y.len().max(1) as f64;

        let mut criteria = vec![
            Criterion::check(CriterionKind::Technical, "AUC above chance", auc, Op::Gt, 0.5),
            Criterion::check(CriterionKind::Business, "AUC", auc, Op::Ge, c.criteria.min_auc)
                .relax("churn.criteria.min_auc"),
        ];
        match &chosen {
            Some(row) => {
                criteria.push(Criterion::check(
                    CriterionKind::Business,
                    &format!("recall at cutoff {:.2}", row.cutoff),
                    row.recall,
                    Op::Ge,
                    c.criteria.min_recall,
                ));
                criteria.push(
                    Criterion::check(
                        CriterionKind::Business,
                        &format!("precision at cutoff {:.2}", row.cutoff),
                        row.precision,
                        Op::Ge,
                        c.criteria.min_precision,
                    )
                    .next(precision_trade(&table, row, &c.criteria)),
                );
            }
            None => {
                let best = table.iter().map(|r| r.recall).fold(0.0, f64::max);
                criteria.push(
                    Criterion::check(CriterionKind::Business, "a cutoff reaching the minimum recall", 0.0, Op::Ge, 1.0)
                        .next(format!(
                            "no cutoff reaches recall {:.2}; the highest is {best:.4}: lower churn.criteria.min_recall to \
                             {:.2}",
                            c.criteria.min_recall,
                            (best * 100.0).floor() / 100.0
                        )),
                );
            }
        }
        let mut weights: Vec<(String, f64)> = match &model.logistic {
            Some(m) => model.feature_names.iter().cloned().zip(m.coef.iter().copied()).collect(),
            None => Vec::new(),
        };
        weights.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        let drivers = driver_importance(&contributions);
        let mut deploy_params = BTreeMap::new();
        deploy_params.insert("cutoff".to_string(), chosen.map_or(0.5, |r| r.cutoff));
        Ok(Evaluation {
            primary: PrimaryMetric { name: "auc".into(), value: auc, higher_is_better: true },
            criteria,
            details: Details::Churn(ChurnDetails {
                test_rows: y.len(),
                positive_rate: base_rate,
                roc,
                cutoff_table: table,
                chosen_cutoff: chosen,
                top_coefficients: weights.into_iter().take(15).collect(),
                model: Some(model.family),
                candidates: model.candidates.clone(),
                calibration_error: Some(calibration::expected_calibration_error(&reliability)),
                reliability,
                drivers: drivers.into_iter().take(15).collect(),
            }),
            deploy_params,
            scores: crate::drift::Distribution::numeric(&p),
        })
    }
    /// At the cutoff evaluation chose (`deploy_params.cutoff`).
    fn score_into(
        &self,
        spec: &Spec,
        model: &[u8],
        deploy: &DeployParams,
        tables: &Tables,
        version: &str,
        out: &mut ItemSink<'_>,
    ) -> Result<()> {
        let cutoff = deploy.get("cutoff").copied().unwrap_or(0.5);
        out(score(spec, model, tables, version, cutoff)?)
    }
}

fn spec_of(spec: &Spec) -> Result<&ChurnSpec> {
    spec.churn.as_ref().ok_or_else(|| Error::spec("churn", "the spec has no [churn] section"))
}

fn labels(frame: &Frame, c: &ChurnSpec) -> Result<Vec<bool>> {
    Ok(frame.col(&c.label)?.iter().map(|v| v == &c.positive).collect())
}

/// The business rule: among cutoffs reaching `min_recall`, the one with the best precision
/// (ties: the higher cutoff, fewer customers contacted). None when no cutoff reaches the recall.
/// What would pass when the best precision at the required recall (`chosen`) is short of the
/// required precision: the recall reachable at that precision, or lowering the precision bar.
fn precision_trade(table: &[CutoffRow], chosen: &CutoffRow, criteria: &ChurnCriteria) -> String {
    let at_precision = table
        .iter()
        .filter(|r| r.precision >= criteria.min_precision && r.tp > 0)
        .max_by(|a, b| a.recall.total_cmp(&b.recall).then(a.cutoff.total_cmp(&b.cutoff)));
    let lower = format!(
        "the best precision reaching recall {:.2} is {:.4} (cutoff {:.2}): lower churn.criteria.min_precision to {:.2}",
        criteria.min_recall,
        chosen.precision,
        chosen.cutoff,
        (chosen.precision * 100.0).floor() / 100.0
    );
    match at_precision {
        Some(r) => format!(
            "{lower}, or precision {:.2} is reached at recall {:.4} (cutoff {:.2}): lower churn.criteria.min_recall to {:.2}",
            criteria.min_precision,
            r.recall,
            r.cutoff,
            (r.recall * 100.0).floor() / 100.0
        ),
        None => format!("{lower} (no cutoff reaches precision {:.2} at any recall)", criteria.min_precision),
    }
}

pub fn choose_cutoff(table: &[CutoffRow], min_recall: f64) -> Option<&CutoffRow> {
    table
        .iter()
        .filter(|r| r.recall >= min_recall)
        .max_by(|a, b| a.precision.total_cmp(&b.precision).then(a.cutoff.total_cmp(&b.cutoff)))
}

pub fn score(spec: &Spec, model_bytes: &[u8], tables: &Tables, version: &str, cutoff: f64) -> Result<Vec<Item>> {
    let c = spec_of(spec)?;
    let model: ChurnModel = from_json(model_bytes, "churn model")?;
    let frame = tables.get(&c.table)?;
    let id_col = model
        .id_column
        .as_ref()
        .ok_or_else(|| Error::spec(format!("tables.{}.id", c.table), "scoring churn needs a customer id column"))?;
    let (p, contributions) = model.probabilities_and_contributions(frame)?;
    Ok(frame
        .col(id_col)?
        .iter()
        .zip(p.iter())
        .zip(&contributions.rows)
        .map(|((id, &prob), row)| {
            let drivers: Vec<serde_json::Value> = top_drivers(&contributions.drivers, row, TOP_DRIVERS)
                .into_iter()
                .map(|(feature, v)| json!({ "feature": feature, "contribution": round6(v) }))
                .collect();
            Item::new(
                score::customer(id),
                score::CHURN,
                json!({
                    "probability": round6(prob),
                    "at_risk": prob >= cutoff,
                    "cutoff": cutoff,
                    "drivers": drivers,
                    "model_version": version,
                }),
            )
        })
        .collect())
}

/// Risk-raising drivers stored per customer.
pub const TOP_DRIVERS: usize = 3;

/// Inner folds of the training rows the families are compared and calibrated on.
const INNER_FOLDS: usize = 5;
/// Share of a tree fit's rows held out for early stopping.
const EARLY_STOPPING_SHARE: f64 = 0.1;

fn logistic_params(c: &ChurnSpec) -> LogisticParams {
    LogisticParams { l2: c.l2, class_weight: c.class_weight, ..Default::default() }
}

/// Column means of `x`.
fn column_means(x: ArrayView2<f64>) -> Vec<f64> {
    let n = x.nrows().max(1) as f64;
    x.columns().into_iter().map(|c| c.sum() / n).collect()
}

fn logistic_margins(m: &LogisticModel, x: ArrayView2<f64>) -> Vec<f64> {
    x.rows().into_iter().map(|r| r.dot(&m.coef) + m.intercept).collect()
}

/// Trees on `rows` of `t`, stopping early on a seeded stratified share of them.
fn fit_trees(
    c: &ChurnSpec,
    t: &Array2<f32>,
    y: &[bool],
    rows: &[usize],
    kinds: &[FeatureKind],
    seed: u64,
) -> Result<GbmModel> {
    fit_trees_on(c, t, y, &TreeJob::new(y, rows, seed), kinds)
}

/// One tree fit: the rows it grows on and those it stops early on (a seeded stratified share of
/// its rows), known before it runs so the caller can tell how large it is.
struct TreeJob {
    seed: u64,
    fit: Vec<usize>,
    stop: Vec<usize>,
}

impl TreeJob {
    fn new(y: &[bool], rows: &[usize], seed: u64) -> Self {
        let labels: Vec<bool> = rows.iter().map(|&i| y[i]).collect();
        let (fit, stop) = stratified_split(&labels, EARLY_STOPPING_SHARE, seed);
        let pick = |r: Vec<usize>| r.into_iter().map(|i| rows[i]).collect();
        Self { seed, fit: pick(fit), stop: pick(stop) }
    }
}

fn fit_trees_on(c: &ChurnSpec, t: &Array2<f32>, y: &[bool], job: &TreeJob, kinds: &[FeatureKind]) -> Result<GbmModel> {
    let (seed, fit, stop) = (job.seed, &job.fit, &job.stop);
    let pick = |r: &[usize]| r.iter().map(|&i| y[i]).collect::<Vec<bool>>();
    let (t_fit, t_stop) = (t.select(Axis(0), fit), t.select(Axis(0), stop));
    let (y_fit, y_stop) = (pick(fit), pick(stop));
    let data =
        GbmData { train: t_fit.view(), train_labels: &y_fit, valid: t_stop.view(), valid_labels: &y_stop, kinds };
    Ok(c.gbm.params(c.class_weight, seed).fit(data)?)
}

/// Fits the family `churn.model` names. With `auto`, logistic regression, the trees and their blend
/// are compared by AUC (the trees must lead by more than a standard error) on out-of-fold margins of a seeded stratified 5-fold split of `train` (each
/// row scored by models that did not see it; the trees stop early on a share of their own fold's
/// rows); the test split is never seen here. Platt calibration is fitted on the chosen family's
/// out-of-fold margins; the final models are refitted on every training row (the trees on 90%,
/// stopping early on the rest).
pub fn fit(c: &ChurnSpec, encoder: ChurnEncoder, train: &Frame, seed: u64) -> Result<ChurnModel> {
    let y = labels(train, c)?;
    let n_pos = y.iter().filter(|&&v| v).count();
    if n_pos < INNER_FOLDS || y.len() - n_pos < INNER_FOLDS {
        return Err(Error::Invalid(format!(
            "churn: {n_pos} churned and {} other training rows: each class needs at least {INNER_FOLDS} for the inner folds",
            y.len() - n_pos
        )));
    }
    let uses_trees = c.model != ChurnModelKind::Logistic;
    let x = encoder.transform(train)?;
    let t = if uses_trees { Some(encoder.tree_rows(train)?) } else { None };
    let kinds = encoder.tree_kinds();
    let fold_of = super::common::stratified_fold_of(&y, INNER_FOLDS, seed.wrapping_add(1));
    // The fit on every training row first: the inner folds' fits start from it (4/5 of the same
    // rows, so Newton needs a step or two from there).
    let full_lr = logistic_params(c).fit((x.view(), &y[..]))?;
    let folds: Vec<(Vec<usize>, Vec<usize>)> =
        (0..INNER_FOLDS).map(|f| (0..y.len()).partition(|&i| fold_of[i] == f)).collect();
    // The folds' logistic fits are independent: one per core.
    let lr_folds = parallel::map(&folds, |(held, rest)| -> Result<Vec<f64>> {
        let y_rest: Vec<bool> = rest.iter().map(|&i| y[i]).collect();
        let lr = logistic_params(c).fit_from(x.select(Axis(0), rest).view(), &y_rest, &full_lr)?;
        Ok(logistic_margins(&lr, x.select(Axis(0), held).view()))
    });
    let (mut oof_lr, mut oof_gbm) = (vec![0.0; y.len()], vec![0.0; y.len()]);
    for ((held, _), lr) in folds.iter().zip(lr_folds) {
        for (&i, m) in held.iter().zip(lr?) {
            oof_lr[i] = m;
        }
    }
    // Tree fits, one per fold and (when the family is already known to need them) the one on every
    // row. Each seeded by its fold: the same trees whether they run side by side or in turn. When
    // every fit grows on fewer rows than the booster's threading threshold, each uses one core, so
    // they run one per core; otherwise they use every core themselves and run in turn.
    let all: Vec<usize> = (0..y.len()).collect();
    let mut final_trees = None;
    if let Some(t) = &t {
        let needs_final = matches!(c.model, ChurnModelKind::Gbm | ChurnModelKind::Blend);
        let mut jobs: Vec<TreeJob> = folds
            .iter()
            .enumerate()
            .map(|(f, (_, rest))| TreeJob::new(&y, rest, seed.wrapping_add(f as u64)))
            .collect();
        if needs_final {
            jobs.push(TreeJob::new(&y, &all, seed));
        }
        let fit_one = |job: &TreeJob| fit_trees_on(c, t, &y, job, &kinds);
        let largest = jobs.iter().map(|j| j.fit.len()).max().unwrap_or(0);
        let mut fitted: Vec<Result<GbmModel>> = if marquee_ml::gbm::fits_on_one_thread(largest) {
            parallel::map(&jobs, fit_one)
        } else {
            jobs.iter().map(fit_one).collect()
        };
        if needs_final {
            final_trees = fitted.pop();
        }
        for ((held, _), trees) in folds.iter().zip(fitted) {
            for (&i, m) in held.iter().zip(trees?.margins(t.select(Axis(0), held).view())?) {
                oof_gbm[i] = m;
            }
        }
    }
    let oof_blend: Vec<f64> = oof_lr.iter().zip(&oof_gbm).map(|(a, b)| 0.5 * (a + b)).collect();
    let mut oof = vec![(Family::Logistic, &oof_lr)];
    if uses_trees {
        oof.extend([(Family::Gbm, &oof_gbm), (Family::Blend, &oof_blend)]);
    }
    let mut candidates = Vec::new();
    for (family, m) in &oof {
        candidates.push(Candidate { family: *family, validation_auc: metrics::roc_auc(m, &y)? });
    }
    let family = match c.model {
        ChurnModelKind::Logistic => Family::Logistic,
        ChurnModelKind::Gbm => Family::Gbm,
        ChurnModelKind::Blend => Family::Blend,
        // Logistic regression unless a tree family beats it by more than one standard error of
        // the (paired, DeLong) AUC difference: a lead inside the noise of the training rows is no
        // reason to ship the more complex model.
        ChurnModelKind::Auto => {
            let mut best = Family::Logistic;
            let mut best_auc = candidates[0].validation_auc;
            for (family, m) in &oof[1..] {
                let (lead, se) = metrics::auc_difference(m, &oof_lr, &y)?;
                let auc = candidates[0].validation_auc + lead;
                if lead > se && auc > best_auc {
                    (best, best_auc) = (*family, auc);
                }
            }
            best
        }
    };
    let chosen = oof.iter().find(|(f, _)| *f == family).expect("the chosen family was validated").1;
    // A non-positive slope would reverse the ranking (a model no better than chance out of fold):
    // keep its own probabilities then.
    let calibration = Some(Platt::fit(chosen, &y)?).filter(|p| p.a > 0.0).unwrap_or_default();
    let uses_logistic = family != Family::Gbm;
    let logistic = uses_logistic.then_some(full_lr);
    let gbm = match (&t, family, final_trees) {
        (Some(_), Family::Gbm | Family::Blend, Some(fitted)) => Some(fitted?),
        (Some(t), Family::Gbm | Family::Blend, None) => Some(fit_trees(c, t, &y, &all, &kinds, seed)?),
        _ => None,
    };
    Ok(ChurnModel {
        id_column: None,
        label: c.label.clone(),
        positive: c.positive.clone(),
        feature_names: encoder.feature_names(),
        feature_means: if uses_logistic { column_means(x.view()) } else { Vec::new() },
        family,
        logistic,
        gbm,
        calibration: Some(calibration),
        candidates: if c.model == ChurnModelKind::Auto {
            candidates
        } else {
            candidates.into_iter().filter(|k| k.family == family).collect()
        },
        encoder,
        fingerprint: String::new(),
    })
}

/// Scores are stored rounded: stable across platforms and compact in DynamoDB.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cutoff: f64, precision: f64, recall: f64) -> CutoffRow {
        CutoffRow { cutoff, tp: 0, fp: 0, tn: 0, fn_: 0, precision, recall, false_positive_rate: 0.0, accuracy: 0.0 }
    }

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Customers whose churn depends on an interaction (watch hours low AND on the monthly plan, or
    /// high hours on the annual plan) that no additive model captures, plus noise columns.
    fn planted(n: usize, seed: u64) -> Frame {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut f = Frame::new(["id", "hours", "tickets", "plan", "churned"].map(String::from).to_vec());
        for i in 0..n {
            let hours: f64 = rng.gen_range(0.0..40.0);
            let tickets: u32 = rng.gen_range(0..5);
            let plan = ["monthly", "annual", "family"][rng.gen_range(0..3)];
            let logit = match plan {
                "monthly" => {
                    if hours < 20.0 {
                        2.0
                    } else {
                        -2.0
                    }
                }
                "annual" => {
                    if hours < 20.0 {
                        -2.0
                    } else {
                        1.0
                    }
                }
                _ => -1.0,
            } + 0.2 * f64::from(tickets);
            let churned = rng.gen_bool(marquee_ml::logistic::sigmoid(logit));
            f.push_row(vec![
                format!("C{i}"),
                format!("{hours:.2}"),
                tickets.to_string(),
                plan.into(),
                if churned { "yes" } else { "no" }.into(),
            ]);
        }
        f
    }

    fn churn_spec(model: &str, class_weight: &str) -> ChurnSpec {
        toml::from_str(&format!(
            "table = \"customers\"\nlabel = \"churned\"\npositive = \"yes\"\nnumeric = [\"hours\", \"tickets\"]\n\
             categorical = [\"plan\"]\nmodel = \"{model}\"\nclass_weight = \"{class_weight}\"\n"
        ))
        .unwrap()
    }

    fn fitted(model: &str, class_weight: &str, train: &Frame) -> ChurnModel {
        let c = churn_spec(model, class_weight);
        fit(&c, ChurnEncoder::fit(train, &c).unwrap(), train, 42).unwrap()
    }

    fn auc_on(m: &ChurnModel, test: &Frame) -> f64 {
        let y: Vec<bool> = test.col("churned").unwrap().iter().map(|v| v == "yes").collect();
        metrics::roc_auc(&m.probabilities(test).unwrap(), &y).unwrap()
    }

    #[test]
    fn auto_picks_trees_where_an_interaction_rules_and_they_win() {
        let (train, test) = (planted(3000, 1), planted(2000, 2));
        let auto = fitted("auto", "none", &train);
        let logistic = fitted("logistic", "none", &train);
        assert_ne!(auto.family, Family::Logistic, "{:?}", auto.candidates);
        assert_eq!(auto.candidates.len(), 3);
        let (a, l) = (auc_on(&auto, &test), auc_on(&logistic, &test));
        assert!(a - l > 0.1, "auto ({:?}) {a} vs logistic {l}", auto.family);
        // The model artifact round-trips through its JSON and scores the same.
        let back: ChurnModel = serde_json::from_slice(&to_json(&auto)).unwrap();
        assert_eq!(back.probabilities(&test).unwrap(), auto.probabilities(&test).unwrap());
    }

    #[test]
    fn probabilities_are_calibrated_even_with_balanced_weights() {
        let (train, test) = (planted(4000, 3), planted(4000, 4));
        let y: Vec<bool> = test.col("churned").unwrap().iter().map(|v| v == "yes").collect();
        for family in ["logistic", "gbm"] {
            let m = fitted(family, "balanced", &train);
            let ece = |p: &[f64]| calibration::expected_calibration_error(&calibration::reliability_curve(p, &y, 10));
            let raw: Vec<f64> = m.margins(&test).unwrap().into_iter().map(marquee_ml::logistic::sigmoid).collect();
            let calibrated = ece(&m.probabilities(&test).unwrap());
            assert!(calibrated < 0.04, "{family}: calibration error {calibrated}");
            if family == "gbm" {
                // Balanced weights overstate the rare class before calibration.
                assert!(ece(&raw) > calibrated, "{family}: raw {} vs calibrated {calibrated}", ece(&raw));
            }
        }
    }

    #[test]
    fn contributions_sum_to_the_log_odds_for_every_family() {
        let (train, test) = (planted(2000, 5), planted(300, 6));
        for family in ["logistic", "gbm", "blend"] {
            let m = fitted(family, "none", &train);
            let c = m.contributions(&test).unwrap();
            assert_eq!(c.drivers, ["hours", "tickets", "plan"]);
            for ((row, base), p) in c.rows.iter().zip(&c.base).zip(m.probabilities(&test).unwrap()) {
                let log_odds = (p / (1.0 - p)).ln();
                let sum = row.iter().sum::<f64>() + base;
                assert!((sum - log_odds).abs() < 1e-3 * (1.0 + log_odds.abs()), "{family}: {sum} vs {log_odds}");
            }
            let top = driver_importance(&c);
            assert_ne!(top[0].feature, "tickets", "{family}: the planted plan x hours effect leads: {top:?}");
        }
    }

    #[test]
    fn auto_never_reads_the_test_split() {
        // Same training rows, two very different test splits: the same model, byte for byte.
        let mut spec = Spec::from_toml(marquee_demo::DEMO_SPEC, "demo").unwrap();
        spec.churn = Some(churn_spec("auto", "none"));
        let frame = planted(1200, 7);
        let train = frame.select_rows(&(0..900).collect::<Vec<_>>());
        let encoder = ChurnEncoder::fit(&train, spec.churn.as_ref().unwrap()).unwrap();
        let model_with = |test: Frame| {
            let mut files = Files::new();
            files.insert("train.csv".into(), train.to_csv());
            files.insert("test.csv".into(), test.to_csv());
            files.insert("encoder.json".into(), to_json(&encoder));
            let mut tables = Tables::default();
            tables.0.insert("customers".into(), frame.clone());
            Churn.train(&spec, &files, &tables, "fp").unwrap()
        };
        let test = frame.select_rows(&(900..1200).collect::<Vec<_>>());
        let mut flipped = test.clone();
        let label = flipped.headers.iter().position(|h| h == "churned").unwrap();
        flipped.columns[label] = test.columns[label].iter().map(|v| if v == "yes" { "no" } else { "yes" }).collect();
        assert_eq!(model_with(test), model_with(flipped));
    }

    #[test]
    fn cutoff_rule_takes_best_precision_reaching_recall() {
        let t = [row(0.1, 0.3, 0.95), row(0.3, 0.55, 0.7), row(0.5, 0.7, 0.55), row(0.7, 0.9, 0.2)];
        assert_eq!(choose_cutoff(&t, 0.6).unwrap().cutoff, 0.3);
        assert_eq!(choose_cutoff(&t, 0.5).unwrap().cutoff, 0.5);
        assert!(choose_cutoff(&t, 0.99).is_none());
    }
}
