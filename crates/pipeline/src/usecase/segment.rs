//! Customer segmentation: k-means over standardised engagement/value features, a sweep over k
//! (SSE for the elbow, silhouette to choose), named segment profiles, and a rule-based baseline.

use marquee_ml::kmeans::{KMeansModel, KMeansParams};
use marquee_ml::metrics;
use marquee_ml::{Fit, Predict};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

use super::common::{
    from_json, split_indices, to_json, Criterion, CriterionKind, DeployParams, Evaluation, Op, PrimaryMetric,
    Standardiser,
};
use super::{Details, Files, ItemSink, Tables, UseCase};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::keys::score;
use crate::spec::{SegmentSpec, Spec, UseCaseSection};
use crate::store::Item;

/// Silhouette is O(sample x n): a 2,000-row sample keeps it cheap and stable.
const SILHOUETTE_SAMPLE: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub k: usize,
    pub sse: f64,
    pub silhouette: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentProfile {
    pub segment: usize,
    pub label: String,
    pub share: f64,
    /// Mean of each original (unscaled) feature in the segment.
    pub means: BTreeMap<String, f64>,
}

/// Rule-based baseline: quantile cut points on two columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleBaseline {
    pub columns: [String; 2],
    pub cuts: [Vec<f64>; 2],
    pub bins: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentModel {
    pub id_column: String,
    pub scaler: Standardiser,
    pub k: usize,
    pub kmeans: KMeansModel,
    /// k-means with as many segments as the baseline, for the like-for-like SSE comparison.
    pub kmeans_at_baseline_k: Option<KMeansModel>,
    pub sweep: Vec<SweepPoint>,
    pub profiles: Vec<SegmentProfile>,
    pub population_means: BTreeMap<String, f64>,
    pub baseline: RuleBaseline,
    pub fingerprint: String,
}

/// What segmentation's evaluation reports besides its criteria.
/// Every field but `sweep` may be absent (read as empty), so partial documents stay readable;
/// `sweep` tells the use cases' details apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentDetails {
    /// The deployed number of segments.
    #[serde(default)]
    pub k: usize,
    #[serde(default)]
    pub test_sse: f64,
    #[serde(default)]
    pub test_rows: usize,
    /// Share of the test rows per segment.
    #[serde(default)]
    pub segment_shares: Vec<f64>,
    /// SSE (elbow) and silhouette per k of the sweep, on the training split.
    pub sweep: Vec<SweepPoint>,
    #[serde(default)]
    pub profiles: Vec<SegmentProfile>,
    #[serde(default)]
    pub population_means: BTreeMap<String, f64>,
    #[serde(default)]
    pub baseline: BaselineComparison,
}

/// The rule-based segmentation against k-means with as many segments, on the test split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineComparison {
    pub k: usize,
    pub columns: [String; 2],
    pub test_sse: f64,
    pub kmeans_test_sse: Option<f64>,
}

/// Segmentation: k-means over standardised features, k chosen by silhouette.
pub struct Segment;

impl UseCase for Segment {
    fn id(&self) -> crate::spec::UseCase {
        crate::spec::UseCase::Segment
    }
    fn section<'a>(&self, spec: &'a Spec) -> Option<&'a dyn UseCaseSection> {
        spec.segment.as_ref().map(|s| s as &dyn UseCaseSection)
    }
    fn needed_tables(&self, spec: &Spec) -> Vec<String> {
        spec.segment.iter().map(|s| s.table.clone()).collect()
    }
    fn row_scored_table(&self, spec: &Spec) -> Option<String> {
        spec.segment.as_ref().map(|s| s.table.clone())
    }
    fn prepare(&self, spec: &Spec, tables: &Tables) -> Result<Files> {
        let s = spec_of(spec)?;
        let frame = tables.get(&s.table)?;
        let (train, test) = split_indices(frame.n_rows(), spec.pipeline.test_fraction, spec.pipeline.seed);
        self.prepare_split(spec, tables, &train, &test)
    }
    /// [`UseCase::prepare`] on a given split (row indices of the segment table); the scaler is fitted on the
    /// `train` rows only. `train == test == all rows` measures in-sample SSE (as scikit-learn reports it).
    fn prepare_split(&self, spec: &Spec, tables: &Tables, train: &[usize], test: &[usize]) -> Result<Files> {
        let s = spec_of(spec)?;
        let frame = tables.get(&s.table)?;
        let id = spec
            .table(&s.table)?
            .id
            .clone()
            .ok_or_else(|| Error::spec(format!("tables.{}.id", s.table), "segmentation needs an id column"))?;
        // Whole rows (id first): a champion with other features must be able to score the same split.
        let mut cols = vec![id.clone()];
        cols.extend(frame.headers.iter().filter(|h| **h != id).cloned());
        let train_frame = frame.select(&cols, train)?;
        let scaler = Standardiser::fit(&train_frame, &s.features)?;
        let mut files = Files::new();
        files.insert("train.csv".into(), train_frame.to_csv());
        files.insert("test.csv".into(), frame.csv_of(&cols, test)?);
        files.insert("encoder.json".into(), to_json(&scaler));
        Ok(files)
    }
    fn train(&self, spec: &Spec, files: &Files, _tables: &Tables, fingerprint: &str) -> Result<Vec<u8>> {
        let s = spec_of(spec)?;
        let train = files.frame("train.csv")?;
        let scaler: Standardiser = from_json(files.get("encoder.json")?, "segment encoder")?;
        let x = scaled_matrix(&scaler, &train)?;
        let seed = spec.pipeline.seed;
        let fit = |k: usize| -> Result<KMeansModel> {
            Ok(KMeansParams { k, n_init: s.n_init, max_iter: s.max_iter, tol: s.tol, seed }.fit(x.view())?)
        };

        let mut sweep = Vec::new();
        let mut models = BTreeMap::new();
        for k in s.k_min..=s.k_max.min(x.nrows().saturating_sub(1)).max(s.k_min) {
            let m = fit(k)?;
            let assign = m.predict(x.view());
            let silhouette = metrics::silhouette(x.view(), &assign, SILHOUETTE_SAMPLE, seed);
            sweep.push(SweepPoint { k, sse: m.sse, silhouette });
            models.insert(k, m);
        }
        let k = match s.k {
            Some(k) => k,
            None => sweep
                .iter()
                .max_by(|a, b| a.silhouette.total_cmp(&b.silhouette).then(b.k.cmp(&a.k)))
                .map(|p| p.k)
                .ok_or_else(|| Error::Invalid("segment: empty k range".into()))?,
        };
        let kmeans = match models.get(&k) {
            Some(m) => m.clone(),
            None => fit(k)?,
        };
        let baseline_k = s.baseline_bins * s.baseline_bins;
        let kmeans_at_baseline_k = models.get(&baseline_k).cloned();

        let assign = kmeans.predict(x.view());
        let raw_cols = features_and_baseline(s);
        let raw: Vec<Vec<f64>> = raw_cols.iter().map(|c| train.numeric(c)).collect::<Result<_>>()?;
        let mut population_means = BTreeMap::new();
        for (c, v) in raw_cols.iter().zip(&raw) {
            population_means.insert(c.clone(), nan_mean(v.iter().copied()));
        }
        let n = assign.len() as f64;
        let profiles = (0..k)
            .map(|seg| {
                let members: Vec<usize> = (0..assign.len()).filter(|&i| assign[i] == seg).collect();
                let means: BTreeMap<String, f64> = raw_cols
                    .iter()
                    .zip(&raw)
                    .map(|(c, v)| (c.clone(), nan_mean(members.iter().map(|&i| v[i]))))
                    .collect();
                let label = label_segment(&kmeans.centroids.row(seg).to_vec(), &s.features);
                SegmentProfile { segment: seg, label, share: members.len() as f64 / n, means }
            })
            .collect();

        let baseline = RuleBaseline {
            columns: s.baseline_columns.clone(),
            cuts: [
                quantile_cuts(&train.numeric(&s.baseline_columns[0])?, s.baseline_bins),
                quantile_cuts(&train.numeric(&s.baseline_columns[1])?, s.baseline_bins),
            ],
            bins: s.baseline_bins,
        };
        let model = SegmentModel {
            id_column: train.headers[0].clone(),
            scaler,
            k,
            kmeans,
            kmeans_at_baseline_k,
            sweep,
            profiles,
            population_means,
            baseline,
            fingerprint: fingerprint.to_string(),
        };
        Ok(to_json(&model))
    }
    fn evaluate(&self, spec: &Spec, model_bytes: &[u8], files: &Files) -> Result<Evaluation> {
        let s = spec_of(spec)?;
        let model: SegmentModel = from_json(model_bytes, "segment model")?;
        let test = files.frame("test.csv")?;
        let x = scaled_matrix(&model.scaler, &test)?;
        if x.nrows() < 2 {
            return Err(Error::Invalid("segment: the test split has fewer than 2 rows".into()));
        }
        let assign = model.kmeans.predict(x.view());
        let test_sse = metrics::sse(x.view(), model.kmeans.centroids.view(), &assign);
        let silhouette = metrics::silhouette(x.view(), &assign, SILHOUETTE_SAMPLE, spec.pipeline.seed);
        let mut counts = vec![0usize; model.k];
        assign.iter().for_each(|&a| counts[a] += 1);
        let shares: Vec<f64> = counts.iter().map(|&c| c as f64 / assign.len() as f64).collect();
        let min_share = shares.iter().copied().fold(f64::INFINITY, f64::min);

        // Baseline vs k-means with the same number of segments, on the test split.
        let base_assign = model
            .baseline
            .assign(&test.numeric(&model.baseline.columns[0])?, &test.numeric(&model.baseline.columns[1])?);
        let base_k = model.baseline.bins * model.baseline.bins;
        let base_sse = metrics::sse(x.view(), group_centroids(x.view(), &base_assign, base_k).view(), &base_assign);
        let km_base_sse = model.kmeans_at_baseline_k.as_ref().map(|m| {
            let a = m.predict(x.view());
            metrics::sse(x.view(), m.centroids.view(), &a)
        });

        let mut criteria = vec![
            Criterion::check(CriterionKind::Technical, "silhouette (test)", silhouette, Op::Gt, 0.0),
            Criterion::check(
                CriterionKind::Business,
                "min segment share (test)",
                min_share,
                Op::Ge,
                s.criteria.min_segment_share,
            )
            .relax("segment.criteria.min_segment_share"),
            Criterion::check(
                CriterionKind::Business,
                "silhouette (test)",
                silhouette,
                Op::Ge,
                s.criteria.min_silhouette,
            )
            .relax("segment.criteria.min_silhouette"),
        ];
        if s.criteria.beat_baseline {
            criteria.push(Criterion::check(
                CriterionKind::Business,
                &format!("k-means SSE at k={base_k} vs rule-based (test)"),
                km_base_sse.unwrap_or(f64::INFINITY),
                Op::Lt,
                base_sse,
            )
            .next("the rule-based segments are as tight: segment on other features, or set segment.criteria.beat_baseline = false"));
        }
        Ok(Evaluation {
            primary: PrimaryMetric { name: "silhouette".into(), value: silhouette, higher_is_better: true },
            criteria,
            details: Details::Segment(SegmentDetails {
                k: model.k,
                test_sse,
                test_rows: x.nrows(),
                segment_shares: shares,
                sweep: model.sweep,
                profiles: model.profiles,
                population_means: model.population_means,
                baseline: BaselineComparison {
                    k: base_k,
                    columns: model.baseline.columns,
                    test_sse: base_sse,
                    kmeans_test_sse: km_base_sse,
                },
            }),
            deploy_params: BTreeMap::new(),
            scores: segment_size_ranks(&counts),
        })
    }
    fn score_into(
        &self,
        spec: &Spec,
        model_bytes: &[u8],
        _deploy: &DeployParams,
        tables: &Tables,
        version: &str,
        out: &mut ItemSink<'_>,
    ) -> Result<()> {
        let model: SegmentModel = from_json(model_bytes, "segment model")?;
        out(assign(spec, &model, tables)?
            .into_iter()
            .map(|(id, seg)| {
                Item::new(
                    score::customer(&id),
                    score::SEGMENT,
                    json!({
                        "segment": seg,
                        "label": model.profiles[seg].label,
                        "model_version": version,
                    }),
                )
            })
            .collect())
    }
}

/// Every customer of the segmented table in `tables` with its segment under `model`, in table order.
pub fn assign(spec: &Spec, model: &SegmentModel, tables: &Tables) -> Result<Vec<(String, usize)>> {
    let frame = tables.get(&spec_of(spec)?.table)?;
    let x = scaled_matrix(&model.scaler, frame)?;
    let ids = frame.col(&model.id_column)?;
    Ok(ids.iter().map(str::to_string).zip(model.kmeans.predict(x.view())).collect())
}

fn spec_of(spec: &Spec) -> Result<&SegmentSpec> {
    spec.segment.as_ref().ok_or_else(|| Error::spec("segment", "the spec has no [segment] section"))
}

fn features_and_baseline(s: &SegmentSpec) -> Vec<String> {
    let mut cols = s.features.clone();
    for c in &s.baseline_columns {
        if !cols.contains(c) {
            cols.push(c.clone());
        }
    }
    cols
}

fn scaled_matrix(scaler: &Standardiser, frame: &Frame) -> Result<Array2<f64>> {
    let raw = scaler.raw_rows(frame)?;
    let w = scaler.width();
    let mut m = Array2::zeros((raw.len(), w));
    for (r, row) in raw.iter().enumerate() {
        scaler.transform_into(row, m.row_mut(r).as_slice_mut().expect("standard layout"));
    }
    Ok(m)
}

fn nan_mean(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.filter(|x| x.is_finite()).fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// A name a marketer can start from: the two features that set the segment apart most
/// (largest |z| of its centroid), e.g. "high watch_hours_month, low tenure_months".
fn label_segment(centroid: &[f64], features: &[String]) -> String {
    let mut order: Vec<usize> = (0..centroid.len()).collect();
    order.sort_by(|&a, &b| centroid[b].abs().total_cmp(&centroid[a].abs()));
    let parts: Vec<String> = order
        .iter()
        .take(2)
        .filter(|&&j| centroid[j].abs() >= 0.25)
        .map(|&j| format!("{} {}", if centroid[j] > 0.0 { "high" } else { "low" }, features[j]))
        .collect();
    if parts.is_empty() {
        "average".into()
    } else {
        parts.join(", ")
    }
}

fn quantile_cuts(values: &[f64], bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return vec![0.0; bins - 1];
    }
    (1..bins).map(|b| v[(b * v.len() / bins).min(v.len() - 1)]).collect()
}

impl RuleBaseline {
    fn assign(&self, a: &[f64], b: &[f64]) -> Vec<usize> {
        let bin = |x: f64, cuts: &[f64]| cuts.iter().filter(|&&c| x >= c).count();
        a.iter().zip(b).map(|(&x, &y)| bin(x, &self.cuts[0]) * self.bins + bin(y, &self.cuts[1])).collect()
    }
}

/// Means of the rows of each group (empty groups get a zero row: they add nothing to SSE).
fn group_centroids(x: ArrayView2<f64>, assign: &[usize], k: usize) -> Array2<f64> {
    let mut c = Array2::zeros((k, x.ncols()));
    let mut n = vec![0usize; k];
    for (r, &g) in assign.iter().enumerate() {
        c.row_mut(g).zip_mut_with(&x.row(r), |a, b| *a += b);
        n[g] += 1;
    }
    for (mut row, &count) in c.rows_mut().into_iter().zip(&n) {
        if count > 0 {
            row.mapv_inplace(|v| v / count as f64);
        }
    }
    c
}

/// Segment shares keyed by size rank ("size rank 01", ...): k-means numbers its clusters
/// arbitrarily, so a retrained model's segment 0 is not the champion's; ranks compare.
fn segment_size_ranks(counts: &[usize]) -> Option<crate::drift::Distribution> {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let names: Vec<String> = (1..=sorted.len()).map(|r| format!("size rank {r:02}")).collect();
    crate::drift::Distribution::categorical(names.iter().map(String::as_str).zip(sorted))
}
