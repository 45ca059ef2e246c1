//! Churn: who is at risk of cancelling. Logistic regression with class weights over standardised
//! numerics and one-hot categoricals; AUC, ROC and a cutoff table; the deployed cutoff is the
//! business lever (best precision among cutoffs that reach the spec's recall).

use marquee_ml::logistic::{LogisticModel, LogisticParams};
pub use marquee_ml::metrics::CutoffRow;
use marquee_ml::metrics::{self, RocPoint};
use marquee_ml::{Fit, Predict};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

use super::common::{
    from_json, stratified_split, to_json, Criterion, CriterionKind, DeployParams, Evaluation, OneHot, Op,
    PrimaryMetric, Standardiser,
};
use super::{Details, Files, Tables, UseCase};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::keys::score;
use crate::spec::{ChurnCriteria, ChurnSpec, Spec, UseCaseSection};
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

/// `frame` with the derived feature columns appended (the frame itself when there are none).
fn with_derived<'a>(frame: &'a Frame, derived: &[Derived]) -> Result<std::borrow::Cow<'a, Frame>> {
    if derived.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(frame));
    }
    let values: Vec<Vec<f64>> = derived.iter().map(|d| d.values(frame)).collect::<Result<_>>()?;
    let mut headers = frame.headers.clone();
    headers.extend(derived.iter().map(Derived::name));
    let mut out = Frame::new(headers);
    for r in 0..frame.n_rows() {
        let mut row: Vec<String> = frame.columns.iter().map(|c| c[r].clone()).collect();
        row.extend(values.iter().map(|v| if v[r].is_finite() { v[r].to_string() } else { String::new() }));
        out.push_row(row);
    }
    Ok(std::borrow::Cow::Owned(out))
}

impl ChurnEncoder {
    /// Scaler and one-hot categories fitted on `train` only.
    pub fn fit(train: &Frame, c: &ChurnSpec) -> Result<Self> {
        let derived = Derived::from_spec(c);
        let aug = with_derived(train, &derived)?;
        let mut numeric = c.numeric.clone();
        numeric.extend(derived.iter().map(Derived::name));
        Ok(Self {
            numeric: Standardiser::fit(&aug, &numeric)?,
            categorical: OneHot::fit(&aug, &c.categorical)?,
            derived,
        })
    }

    pub fn width(&self) -> usize {
        self.numeric.width() + self.categorical.width()
    }

    pub fn feature_names(&self) -> Vec<String> {
        let mut names = self.numeric.columns.clone();
        names.extend(self.categorical.feature_names());
        names
    }

    pub fn transform(&self, frame: &Frame) -> Result<Array2<f64>> {
        let frame = &*with_derived(frame, &self.derived)?;
        let raw = self.numeric.raw_rows(frame)?;
        let cats: Vec<&[String]> = self.categorical.columns.iter().map(|c| frame.col(c)).collect::<Result<_>>()?;
        let (wn, w) = (self.numeric.width(), self.width());
        let mut x = Array2::zeros((frame.n_rows(), w));
        let mut values: Vec<&str> = Vec::with_capacity(cats.len());
        for (r, raw_row) in raw.iter().enumerate() {
            let mut row = x.row_mut(r);
            let out = row.as_slice_mut().expect("standard layout");
            self.numeric.transform_into(raw_row, &mut out[..wn]);
            values.clear();
            values.extend(cats.iter().map(|c| c[r].as_str()));
            self.categorical.transform_into(&values, &mut out[wn..]);
        }
        Ok(x)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    pub id_column: Option<String>,
    pub label: String,
    pub positive: String,
    pub encoder: ChurnEncoder,
    pub logistic: LogisticModel,
    pub feature_names: Vec<String>,
    pub fingerprint: String,
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
    /// The largest coefficients by magnitude (standardised features): the churn drivers.
    #[serde(default)]
    pub top_coefficients: Vec<(String, f64)>,
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
        files.insert("test.csv".into(), frame.select_rows(test).to_csv());
        files.insert("encoder.json".into(), to_json(&encoder));
        Ok(files)
    }
    fn train(&self, spec: &Spec, files: &Files, _tables: &Tables, fingerprint: &str) -> Result<Vec<u8>> {
        let c = spec_of(spec)?;
        let train = files.frame("train.csv")?;
        let encoder: ChurnEncoder = from_json(files.get("encoder.json")?, "churn encoder")?;
        let x = encoder.transform(&train)?;
        let y = labels(&train, c)?;
        let params = LogisticParams { l2: c.l2, class_weight: c.class_weight, ..Default::default() };
        let logistic = params.fit((x.view(), &y))?;
        let model = ChurnModel {
            id_column: spec.table(&c.table)?.id.clone(),
            label: c.label.clone(),
            positive: c.positive.clone(),
            feature_names: encoder.feature_names(),
            encoder,
            logistic,
            fingerprint: fingerprint.to_string(),
        };
        Ok(to_json(&model))
    }
    fn evaluate(&self, spec: &Spec, model_bytes: &[u8], files: &Files) -> Result<Evaluation> {
        let c = spec_of(spec)?;
        let model: ChurnModel = from_json(model_bytes, "churn model")?;
        let test = files.frame("test.csv")?;
        let x = model.encoder.transform(&test)?;
        let y: Vec<bool> = test.col(&model.label)?.iter().map(|v| v == &model.positive).collect();
        let p = model.logistic.predict(x.view()).to_vec();
        let auc = metrics::roc_auc(&p, &y)?;
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
        let mut weights: Vec<(String, f64)> =
            model.feature_names.iter().cloned().zip(model.logistic.coef.iter().copied()).collect();
        weights.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
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
            }),
            deploy_params,
            scores: crate::drift::Distribution::numeric(&p),
        })
    }
    /// At the cutoff evaluation chose (`deploy_params.cutoff`).
    fn score(
        &self,
        spec: &Spec,
        model: &[u8],
        deploy: &DeployParams,
        tables: &Tables,
        version: &str,
    ) -> Result<Vec<Item>> {
        let cutoff = deploy.get("cutoff").copied().unwrap_or(0.5);
        score(spec, model, tables, version, cutoff)
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
    let x = model.encoder.transform(frame)?;
    let p = model.logistic.predict(x.view());
    Ok(frame
        .col(id_col)?
        .iter()
        .zip(p.iter())
        .map(|(id, &prob)| {
            Item::new(
                score::customer(id),
                score::CHURN,
                json!({
                    "probability": round6(prob),
                    "at_risk": prob >= cutoff,
                    "cutoff": cutoff,
                    "model_version": version,
                }),
            )
        })
        .collect())
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

    #[test]
    fn cutoff_rule_takes_best_precision_reaching_recall() {
        let t = [row(0.1, 0.3, 0.95), row(0.3, 0.55, 0.7), row(0.5, 0.7, 0.55), row(0.7, 0.9, 0.2)];
        assert_eq!(choose_cutoff(&t, 0.6).unwrap().cutoff, 0.3);
        assert_eq!(choose_cutoff(&t, 0.5).unwrap().cutoff, 0.5);
        assert!(choose_cutoff(&t, 0.99).is_none());
    }
}
