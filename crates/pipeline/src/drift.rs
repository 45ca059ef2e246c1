//! Drift between a challenger's data and its champion's: population stability index (PSI) per
//! feature, missing-rate change, label-rate change and the shift of the model's score
//! distribution, judged against the spec's `[drift]` thresholds (warn, or block the deployment).
//!
//! Both sides are summarised by a [`Distribution`] recorded with every version (in its
//! evaluation record), so a comparison never needs the champion's data, which may have expired
//! with `runs/`. Numeric columns keep [`QUANTILE_POINTS`] quantiles of a seeded reservoir sample
//! of [`SAMPLE_SIZE`] values (all values when fewer): the same data gives the same summary, so a
//! re-run of the same data has PSI 0 exactly.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ingest::{ColumnProfile, TableProfile};
use crate::spec::{ColumnKind, DriftSection};

/// Values a numeric column's reservoir keeps.
pub const SAMPLE_SIZE: usize = 10_000;
/// Quantiles a numeric summary keeps (0%, 0.5%, ..., 100%).
pub const QUANTILE_POINTS: usize = 201;
/// Categories a categorical summary keeps by name; the rest share one `(other)` bucket.
pub const TOP_CATEGORIES: usize = 50;
/// PSI bins of a numeric comparison: the reference's deciles.
const PSI_BINS: usize = 10;
/// Share given to an empty bin so PSI stays finite (the usual smoothing).
const EMPTY_BIN_SHARE: f64 = 1e-4;
pub const OTHER: &str = "(other)";

/// A summary of one column's (or one model's scores') distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Distribution {
    /// `quantiles[i]` is the (lower) value at probability `i / (len - 1)`.
    Numeric { n: usize, mean: f64, quantiles: Vec<f64> },
    /// Share of each category (the top ones by name, the rest as `(other)`).
    Categorical { n: usize, shares: BTreeMap<String, f64> },
}

impl Distribution {
    /// The summary of numeric values (None when there are none).
    pub fn numeric(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let last = (v.len() - 1) as f64;
        // Lower quantiles (values of the sample, not interpolated between them): a discrete
        // column's jump stays a jump, so its bins hold what the data holds.
        let quantiles = (0..QUANTILE_POINTS)
            .map(|i| v[(last * i as f64 / (QUANTILE_POINTS - 1) as f64).floor() as usize])
            .collect();
        Some(Self::Numeric { n: v.len(), mean, quantiles })
    }

    /// The summary of category counts (None when there are none).
    pub fn categorical<'a>(counts: impl IntoIterator<Item = (&'a str, usize)>) -> Option<Self> {
        let mut counts: Vec<(&str, usize)> = counts.into_iter().filter(|c| c.1 > 0).collect();
        let n: usize = counts.iter().map(|c| c.1).sum();
        if n == 0 {
            return None;
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut shares = BTreeMap::new();
        let mut other = 0;
        for (i, (name, c)) in counts.into_iter().enumerate() {
            if i < TOP_CATEGORIES {
                shares.insert(name.to_string(), c as f64 / n as f64);
            } else {
                other += c;
            }
        }
        if other > 0 {
            *shares.entry(OTHER.to_string()).or_default() += other as f64 / n as f64;
        }
        Some(Self::Categorical { n, shares })
    }

    /// Share of values at or below `x`, read off the quantiles (linear between them).
    fn cdf(quantiles: &[f64], x: f64) -> f64 {
        let last = quantiles.len() - 1;
        if x < quantiles[0] {
            return 0.0;
        }
        if x >= quantiles[last] {
            return 1.0;
        }
        // The last quantile point at or below x: ties (a discrete column) count whole.
        let j = quantiles.partition_point(|&q| q <= x) - 1;
        let (a, b) = (quantiles[j], quantiles[j + 1]);
        let within = if b > a { (x - a) / (b - a) } else { 0.0 };
        (j as f64 + within) / last as f64
    }

    /// Mean (numeric) or None.
    pub fn mean(&self) -> Option<f64> {
        match self {
            Self::Numeric { mean, .. } => Some(*mean),
            Self::Categorical { .. } => None,
        }
    }
}

/// Population stability index of `actual` against `reference`: sum over bins of
/// `(a - r) * ln(a / r)`. Numeric bins are the reference's deciles; categorical bins are the
/// categories of either side. None when the two are of different kinds.
pub fn psi(reference: &Distribution, actual: &Distribution) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = match (reference, actual) {
        (Distribution::Numeric { quantiles: r, .. }, Distribution::Numeric { quantiles: a, .. }) => {
            let mut edges: Vec<f64> = (1..PSI_BINS).map(|i| r[(r.len() - 1) * i / PSI_BINS]).collect();
            edges.dedup();
            let bin_shares = |q: &[f64]| {
                let cdf: Vec<f64> = edges.iter().map(|&e| Distribution::cdf(q, e)).collect();
                let mut shares = Vec::with_capacity(edges.len() + 1);
                let mut below = 0.0;
                for c in cdf {
                    shares.push(c - below);
                    below = c;
                }
                shares.push(1.0 - below);
                shares
            };
            bin_shares(r).into_iter().zip(bin_shares(a)).collect()
        }
        (Distribution::Categorical { shares: r, .. }, Distribution::Categorical { shares: a, .. }) => {
            let names: std::collections::BTreeSet<&String> = r.keys().chain(a.keys()).collect();
            names.into_iter().map(|k| (r.get(k).copied().unwrap_or(0.0), a.get(k).copied().unwrap_or(0.0))).collect()
        }
        _ => return None,
    };
    Some(
        pairs
            .into_iter()
            .map(|(r, a)| {
                let (r, a) = (r.max(EMPTY_BIN_SHARE), a.max(EMPTY_BIN_SHARE));
                (a - r) * (a / r).ln()
            })
            .sum(),
    )
}

/// A seeded reservoir of numeric values (Algorithm R): a fixed-size uniform sample of a stream.
#[derive(Debug)]
pub struct Reservoir {
    sample: Vec<f64>,
    seen: u64,
    rng: ChaCha8Rng,
}

impl Reservoir {
    /// Seeded by the column's name, so the same stream gives the same sample.
    pub fn new(name: &str) -> Self {
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        Self { sample: Vec::new(), seen: 0, rng: ChaCha8Rng::seed_from_u64(seed) }
    }
    pub fn push(&mut self, x: f64) {
        self.seen += 1;
        if self.sample.len() < SAMPLE_SIZE {
            self.sample.push(x);
        } else {
            let j = self.rng.gen_range(0..self.seen);
            if (j as usize) < SAMPLE_SIZE {
                self.sample[j as usize] = x;
            }
        }
    }
    pub fn summary(&self) -> Option<Distribution> {
        Distribution::numeric(&self.sample)
    }
}

/// What a version's data and scores looked like, recorded with it: the numeric and categorical
/// columns of the tables its use case reads, its label columns, and its scores on its test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub features: Vec<FeatureSummary>,
    pub labels: Vec<FeatureSummary>,
    pub scores: Option<Distribution>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    /// `table.column`.
    pub name: String,
    pub rows: usize,
    pub missing_rate: f64,
    pub distribution: Option<Distribution>,
}

impl FeatureSummary {
    fn of(table: &TableProfile, c: &ColumnProfile) -> Self {
        Self {
            name: format!("{}.{}", table.table, c.name),
            rows: table.rows_ok,
            missing_rate: c.missing as f64 / table.rows_ok.max(1) as f64,
            distribution: c.distribution.clone(),
        }
    }
}

impl Profile {
    /// The profile of a use case's data: its tables' numeric and categorical columns (ids,
    /// timestamps, text and lists are not features whose population is compared), with its
    /// label columns apart.
    pub fn of(
        tables: &[TableProfile],
        needed: &[String],
        labels: &[(String, String)],
        scores: Option<Distribution>,
    ) -> Self {
        let (mut features, mut label_summaries) = (Vec::new(), Vec::new());
        for t in tables.iter().filter(|t| needed.contains(&t.table)) {
            for c in &t.columns {
                let is_label = labels.iter().any(|(table, col)| table == &t.table && col == &c.name);
                if is_label {
                    label_summaries.push(FeatureSummary::of(t, c));
                } else if matches!(c.kind, Some(ColumnKind::Numeric) | Some(ColumnKind::Categorical)) {
                    features.push(FeatureSummary::of(t, c));
                }
            }
        }
        Self { features, labels: label_summaries, scores }
    }
}

/// How far one quantity moved, and what the thresholds make of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    /// `feature`, `missing`, `label` or `score`.
    pub what: String,
    /// The feature, label or `scores`.
    pub name: String,
    /// PSI (feature, score), or the absolute change of a rate (missing, label).
    pub value: f64,
    /// The reference's and the challenger's mean or rate, for the reader.
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub level: Level,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warn,
    Block,
}

/// The drift of a challenger against the version it was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// The reference version (the champion).
    pub reference: String,
    pub shifts: Vec<Shift>,
    /// Features of one side that the other lacks (schema change): named, not compared.
    #[serde(default)]
    pub unmatched: Vec<String>,
}

impl DriftReport {
    /// The shifts at `level` or above, worst first.
    pub fn at_least(&self, level: Level) -> Vec<&Shift> {
        let mut out: Vec<&Shift> = self.shifts.iter().filter(|s| s.level >= level).collect();
        out.sort_by(|a, b| b.level.cmp(&a.level).then(b.value.total_cmp(&a.value)));
        out
    }

    /// One line per shift at warn or above, e.g. "feature customers.tenure PSI 0.31 (warn >= 0.10)".
    pub fn warnings(&self, t: &DriftSection) -> Vec<String> {
        self.at_least(Level::Warn).into_iter().map(|s| s.describe(t)).collect()
    }
}

impl Shift {
    /// What `value` measures.
    pub fn measure(&self) -> &'static str {
        match self.what.as_str() {
            "missing" => "missing-rate change",
            "label" => "label-rate change",
            _ => "PSI",
        }
    }

    pub fn describe(&self, t: &DriftSection) -> String {
        let measure = self.measure();
        let (warn, block) = match self.what.as_str() {
            "missing" => (t.missing_warn, t.missing_block),
            "label" => (t.label_warn, t.label_block),
            _ => (t.psi_warn, t.psi_block),
        };
        let limit = match (self.level, block) {
            (Level::Block, Some(b)) => format!("block >= {b:.2}"),
            _ => format!("warn >= {warn:.2}"),
        };
        let moved = match (self.before, self.after) {
            (Some(b), Some(a)) => format!(", {b:.3} -> {a:.3}"),
            _ => String::new(),
        };
        format!("{} {} {measure} {:.3} ({limit}{moved})", self.what, self.name, self.value)
    }
}

fn level(value: f64, warn: f64, block: Option<f64>) -> Level {
    match block {
        Some(b) if value >= b => Level::Block,
        _ if value >= warn => Level::Warn,
        _ => Level::Ok,
    }
}

/// The drift of `actual` against `reference` (the champion's profile) under thresholds `t`.
pub fn compare(reference_version: &str, reference: &Profile, actual: &Profile, t: &DriftSection) -> DriftReport {
    let mut shifts = Vec::new();
    let mut unmatched = Vec::new();
    let by_name = |list: &[FeatureSummary]| -> BTreeMap<String, FeatureSummary> {
        list.iter().map(|f| (f.name.clone(), f.clone())).collect()
    };
    let (ref_features, act_features) = (by_name(&reference.features), by_name(&actual.features));
    for (name, a) in &act_features {
        let Some(r) = ref_features.get(name) else {
            unmatched.push(name.clone());
            continue;
        };
        if let (Some(rd), Some(ad)) = (&r.distribution, &a.distribution) {
            if let Some(p) = psi(rd, ad) {
                shifts.push(Shift {
                    what: "feature".into(),
                    name: name.clone(),
                    value: p,
                    before: rd.mean(),
                    after: ad.mean(),
                    level: level(p, t.psi_warn, t.psi_block),
                });
            }
        }
        let change = (a.missing_rate - r.missing_rate).abs();
        shifts.push(Shift {
            what: "missing".into(),
            name: name.clone(),
            value: change,
            before: Some(r.missing_rate),
            after: Some(a.missing_rate),
            level: level(change, t.missing_warn, t.missing_block),
        });
    }
    unmatched.extend(ref_features.keys().filter(|k| !act_features.contains_key(*k)).cloned());
    let ref_labels = by_name(&reference.labels);
    for a in &actual.labels {
        let Some(r) = ref_labels.get(&a.name) else { continue };
        if let Some((change, before, after)) = label_change(r.distribution.as_ref(), a.distribution.as_ref()) {
            shifts.push(Shift {
                what: "label".into(),
                name: a.name.clone(),
                value: change,
                before: Some(before),
                after: Some(after),
                level: level(change, t.label_warn, t.label_block),
            });
        }
    }
    if let (Some(r), Some(a)) = (&reference.scores, &actual.scores) {
        if let Some(p) = psi(r, a) {
            shifts.push(Shift {
                what: "score".into(),
                name: "scores".into(),
                value: p,
                before: r.mean(),
                after: a.mean(),
                level: level(p, t.psi_warn, t.psi_block),
            });
        }
    }
    unmatched.sort();
    DriftReport { reference: reference_version.into(), shifts, unmatched }
}

/// The largest change of a class share (categorical labels; the reported rate is that class's),
/// or of the mean (numeric 0/1 labels).
fn label_change(r: Option<&Distribution>, a: Option<&Distribution>) -> Option<(f64, f64, f64)> {
    match (r?, a?) {
        (Distribution::Categorical { shares: r, .. }, Distribution::Categorical { shares: a, .. }) => r
            .keys()
            .chain(a.keys())
            .map(|k| {
                let (rb, ab) = (r.get(k).copied().unwrap_or(0.0), a.get(k).copied().unwrap_or(0.0));
                ((ab - rb).abs(), rb, ab)
            })
            .max_by(|x, y| x.0.total_cmp(&y.0).then(y.1.total_cmp(&x.1))),
        (Distribution::Numeric { mean: r, .. }, Distribution::Numeric { mean: a, .. }) => Some(((a - r).abs(), *r, *a)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution as _, Normal};

    fn normal(n: usize, mean: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = Normal::new(mean, 1.0).unwrap();
        (0..n).map(|_| d.sample(&mut rng)).collect()
    }

    #[test]
    fn psi_is_zero_on_the_same_data_small_on_a_resample_and_large_on_a_shift() {
        let a = Distribution::numeric(&normal(20_000, 0.0, 1)).unwrap();
        assert_eq!(psi(&a, &a), Some(0.0));
        let resample = Distribution::numeric(&normal(20_000, 0.0, 2)).unwrap();
        let p = psi(&a, &resample).unwrap();
        assert!(p < 0.01, "resample of the same population: PSI {p}");
        // A shift of one standard deviation: PSI about 1 by the textbook figures.
        let shifted = Distribution::numeric(&normal(20_000, 1.0, 3)).unwrap();
        let p = psi(&a, &shifted).unwrap();
        assert!(p > 0.5, "one-sd shift: PSI {p}");
        let small = Distribution::numeric(&normal(20_000, 0.2, 4)).unwrap();
        let ps = psi(&a, &small).unwrap();
        assert!(ps > 0.02 && ps < p, "0.2-sd shift: PSI {ps}");
    }

    #[test]
    fn discrete_numeric_columns_bin_by_value() {
        let r: Vec<f64> = (0..1000).map(|i| (i % 2) as f64).collect(); // half 0, half 1
        let a: Vec<f64> = (0..1000).map(|i| f64::from(i % 10 < 8)).collect(); // 80% ones
        let (rd, ad) = (Distribution::numeric(&r).unwrap(), Distribution::numeric(&a).unwrap());
        // Bins (-inf, 0] and (0, inf): 0.5/0.5 against 0.2/0.8.
        let expected = (0.2 - 0.5) * (0.2f64 / 0.5).ln() + (0.8 - 0.5) * (0.8f64 / 0.5).ln();
        assert!((psi(&rd, &ad).unwrap() - expected).abs() < 1e-9);
    }

    #[test]
    fn categorical_psi_covers_categories_on_either_side() {
        let r = Distribution::categorical([("basic", 50), ("premium", 50)]).unwrap();
        let a = Distribution::categorical([("basic", 50), ("premium", 40), ("family", 10)]).unwrap();
        let p = psi(&r, &a).unwrap();
        let expected = (0.4 - 0.5) * (0.4f64 / 0.5).ln() + (0.1 - EMPTY_BIN_SHARE) * (0.1 / EMPTY_BIN_SHARE).ln();
        assert!((p - expected).abs() < 1e-9, "{p} vs {expected}");
        assert_eq!(psi(&r, &Distribution::numeric(&[1.0]).unwrap()), None);
    }

    #[test]
    fn reservoir_is_seeded_and_bounded() {
        let mut a = Reservoir::new("t.c");
        let mut b = Reservoir::new("t.c");
        for i in 0..(3 * SAMPLE_SIZE) {
            a.push(i as f64);
            b.push(i as f64);
        }
        assert_eq!(a.sample.len(), SAMPLE_SIZE);
        assert_eq!(a.summary(), b.summary());
        let Some(Distribution::Numeric { quantiles, .. }) = a.summary() else { panic!() };
        // A uniform sample of 0..30000: its median near 15000.
        assert!((quantiles[QUANTILE_POINTS / 2] - 15_000.0).abs() < 600.0, "{}", quantiles[QUANTILE_POINTS / 2]);
    }

    fn feature(name: &str, values: &[f64], missing_rate: f64) -> FeatureSummary {
        FeatureSummary {
            name: name.into(),
            rows: values.len(),
            missing_rate,
            distribution: Distribution::numeric(values),
        }
    }

    #[test]
    fn compare_flags_the_shifted_feature_only_and_blocks_past_the_block_threshold() {
        let base = normal(5_000, 0.0, 7);
        let reference = Profile {
            features: vec![feature("c.a", &base, 0.0), feature("c.b", &base, 0.0), feature("c.gone", &base, 0.0)],
            labels: vec![FeatureSummary {
                name: "c.churned".into(),
                rows: 100,
                missing_rate: 0.0,
                distribution: Distribution::categorical([("yes", 20), ("no", 80)]),
            }],
            scores: Distribution::numeric(&base),
        };
        let moved = normal(5_000, 1.5, 8);
        let actual = Profile {
            features: vec![feature("c.a", &base, 0.0), feature("c.b", &moved, 0.2), feature("c.new", &base, 0.0)],
            labels: vec![FeatureSummary {
                name: "c.churned".into(),
                rows: 100,
                missing_rate: 0.0,
                distribution: Distribution::categorical([("yes", 30), ("no", 70)]),
            }],
            scores: Distribution::numeric(&base),
        };
        let t = DriftSection { psi_block: Some(0.5), ..DriftSection::default() };
        let report = compare("v1", &reference, &actual, &t);
        let flagged: Vec<(&str, &str, Level)> =
            report.at_least(Level::Warn).iter().map(|s| (s.what.as_str(), s.name.as_str(), s.level)).collect();
        assert_eq!(
            flagged,
            vec![
                ("feature", "c.b", Level::Block),
                ("missing", "c.b", Level::Warn),
                ("label", "c.churned", Level::Warn)
            ]
        );
        assert_eq!(report.unmatched, vec!["c.gone".to_string(), "c.new".to_string()]);
        let label = report.shifts.iter().find(|s| s.what == "label").unwrap();
        assert!((label.value - 0.1).abs() < 1e-12);
        assert!(report.warnings(&t)[0].starts_with("feature c.b PSI "), "{:?}", report.warnings(&t));
        // The same profile on both sides: nothing moves.
        let quiet = compare("v1", &reference, &reference, &t);
        assert!(quiet.at_least(Level::Warn).is_empty());
        assert!(quiet.shifts.iter().all(|s| s.value == 0.0), "{:?}", quiet.shifts);
    }
}
