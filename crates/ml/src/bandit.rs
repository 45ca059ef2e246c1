//! Contextual bandits for placing an ad (or any item) in a slot: an engagement model over hashed
//! context x ad features and the greedy policy it implies.
//!
//! The engagement model is an L2 logistic regression on sparse features: every context token
//! (viewer attribute, title genre, break slot), every ad token (ad id, ad category) and every
//! context x ad cross is hashed into `2^hash_bits` columns (FNV-1a, stable across builds and
//! platforms, so a stored model scores the same everywhere), plus standardised numeric features
//! (e.g. a viewer-ad affinity). The crosses are what let it learn "this segment engages with this
//! ad category in this slot"; hashing keeps the width fixed whatever the number of ads.
//!
//! The policy scores every candidate ad for a context and puts `1 - exploration` on the best
//! (ties to the first) and `exploration / K` on each of the K candidates, so the logs it leaves
//! stay usable for off-policy evaluation ([`crate::ope`]).

use crate::logistic::{fit_sparse_logistic, sigmoid};
use crate::sparse::CsrMatrix;
use crate::{Fit, MlError, Result};
use serde::{Deserialize, Serialize};

/// One candidate impression: tokens of the context and of the ad, and numeric features.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub context: &'a [String],
    pub ad: &'a [String],
    pub numeric: &'a [f64],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngagementParams {
    /// Hashed columns: 2^hash_bits.
    pub hash_bits: u32,
    /// L2 penalty (C = 1 / l2 in liblinear's terms).
    pub l2: f32,
    /// Upper bound on Newton steps (each a few passes over the distinct rows).
    pub max_steps: usize,
}

impl Default for EngagementParams {
    /// 2^18 columns keep collisions rare for thousands of ads x hundreds of context tokens; l2 = 1
    /// is liblinear's default C = 1; Newton converges in well under 50 steps: fixed, not searched
    /// on any reported data.
    fn default() -> Self {
        Self { hash_bits: 18, l2: 1.0, max_steps: 50 }
    }
}

/// A fitted engagement model. Serialised with its non-zero weights only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "StoredModel", try_from = "StoredModel")]
pub struct EngagementModel {
    pub hash_bits: u32,
    /// (mean, scale) of each numeric feature on the training rows.
    pub numeric: Vec<(f64, f64)>,
    weights: Vec<f32>,
    pub bias: f32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredModel {
    hash_bits: u32,
    numeric: Vec<(f64, f64)>,
    /// (column, weight) of every non-zero weight.
    weights: Vec<(u32, f32)>,
    bias: f32,
}

impl From<EngagementModel> for StoredModel {
    fn from(m: EngagementModel) -> Self {
        let weights = m.weights.iter().enumerate().filter(|(_, w)| **w != 0.0).map(|(j, &w)| (j as u32, w)).collect();
        StoredModel { hash_bits: m.hash_bits, numeric: m.numeric, weights, bias: m.bias }
    }
}

impl TryFrom<StoredModel> for EngagementModel {
    type Error = MlError;
    fn try_from(s: StoredModel) -> Result<Self> {
        check_bits(s.hash_bits)?;
        let n_cols = (1usize << s.hash_bits) + s.numeric.len();
        let mut weights = vec![0.0; n_cols];
        for (j, w) in s.weights {
            *weights.get_mut(j as usize).ok_or_else(|| {
                MlError::InvalidInput(format!("engagement model: weight column {j} is beyond its {n_cols} columns"))
            })? = w;
        }
        Ok(EngagementModel { hash_bits: s.hash_bits, numeric: s.numeric, weights, bias: s.bias })
    }
}

fn check_bits(bits: u32) -> Result<()> {
    if (4..=24).contains(&bits) {
        Ok(())
    } else {
        Err(MlError::InvalidParam { name: "hash_bits", reason: format!("must be in 4..=24, got {bits}") })
    }
}

/// FNV-1a, 64 bits, over the parts with a separator byte between them.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0x1f;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The sparse row of one candidate: hashed tokens and crosses (value 1, collisions summed), then
/// the numerics scaled by `numeric`.
fn encode(bits: u32, numeric: &[(f64, f64)], c: &Candidate) -> Vec<(u32, f32)> {
    let mask = (1u64 << bits) - 1;
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(c.context.len() * (c.ad.len() + 1) + c.ad.len() + numeric.len());
    let mut put = |h: u64| out.push(((h & mask) as u32, 1.0));
    for t in c.context {
        put(fnv1a(&[b"c", t.as_bytes()]));
        for a in c.ad {
            put(fnv1a(&[b"x", t.as_bytes(), a.as_bytes()]));
        }
    }
    for a in c.ad {
        put(fnv1a(&[b"a", a.as_bytes()]));
    }
    out.sort_unstable_by_key(|e| e.0);
    out.dedup_by(|next, kept| {
        let same = next.0 == kept.0;
        if same {
            kept.1 += next.1;
        }
        same
    });
    let base = 1u32 << bits;
    for (j, (&v, &(mean, scale))) in c.numeric.iter().zip(numeric).enumerate() {
        out.push((base + j as u32, ((v - mean) / scale) as f32));
    }
    out
}

impl Fit for EngagementParams {
    type Data<'a> = (&'a [Candidate<'a>], &'a [bool]);
    type Model = EngagementModel;

    /// Errors on bad parameters, a label count that differs from the rows, a single class,
    /// numeric counts that differ between rows, or non-finite numerics.
    fn fit(&self, (rows, engaged): (&[Candidate], &[bool])) -> Result<EngagementModel> {
        self.fit_weighted(rows, engaged, None)
    }
}

impl EngagementParams {
    /// Fits on rows that each stand for `count[i]` logged impressions with the same candidate and
    /// outcome. The objective is the one of the impressions one by one, so the model is the same
    /// up to the solver's tolerance, at the cost of the distinct rows: a log of millions of
    /// impressions in a few thousand distinct contexts trains in milliseconds. Errors as
    /// [`Fit::fit`] does, and on a count of 0 or a count per row that is missing.
    pub fn fit_counted(&self, rows: &[Candidate], engaged: &[bool], count: &[u32]) -> Result<EngagementModel> {
        if count.len() != rows.len() {
            return Err(MlError::InvalidInput(format!("{} rows but {} counts", rows.len(), count.len())));
        }
        if let Some(i) = count.iter().position(|&c| c == 0) {
            return Err(MlError::InvalidInput(format!("row {i} stands for 0 impressions")));
        }
        let weight: Vec<f64> = count.iter().map(|&c| f64::from(c)).collect();
        self.fit_weighted(rows, engaged, Some(&weight))
    }

    fn fit_weighted(&self, rows: &[Candidate], engaged: &[bool], weight: Option<&[f64]>) -> Result<EngagementModel> {
        check_bits(self.hash_bits)?;
        if !(self.l2 > 0.0 && self.l2.is_finite()) {
            return Err(MlError::InvalidParam { name: "l2", reason: format!("must be positive, got {}", self.l2) });
        }
        if self.max_steps == 0 {
            return Err(MlError::InvalidParam { name: "max_steps", reason: "must be at least 1".into() });
        }
        if rows.len() != engaged.len() {
            return Err(MlError::InvalidInput(format!("{} impressions but {} labels", rows.len(), engaged.len())));
        }
        if !engaged.contains(&true) || !engaged.contains(&false) {
            return Err(MlError::InvalidInput(
                "the engagement model needs both engaged and not-engaged impressions".into(),
            ));
        }
        let k = rows[0].numeric.len();
        let mut sums = vec![(0.0f64, 0.0f64); k];
        let mut n = 0.0;
        for (i, r) in rows.iter().enumerate() {
            if r.numeric.len() != k {
                return Err(MlError::InvalidInput(format!(
                    "impression {i}: {} numeric features, expected {k}",
                    r.numeric.len()
                )));
            }
            let w = weight.map_or(1.0, |w| w[i]);
            n += w;
            for (j, &v) in r.numeric.iter().enumerate() {
                if !v.is_finite() {
                    return Err(MlError::InvalidInput(format!("impression {i}: numeric feature {j} is {v}")));
                }
                sums[j].0 += w * v;
                sums[j].1 += w * v * v;
            }
        }
        let numeric: Vec<(f64, f64)> = sums
            .into_iter()
            .map(|(s, s2)| {
                let mean = s / n;
                let sd = (s2 / n - mean * mean).max(0.0).sqrt();
                (mean, if sd > 1e-12 { sd } else { 1.0 })
            })
            .collect();
        let mut x = CsrMatrix::new((1usize << self.hash_bits) + k);
        for r in rows {
            x.push_row(&mut encode(self.hash_bits, &numeric, r));
        }
        let (weights, bias) = fit_sparse_logistic(&x, engaged, weight, 1.0 / f64::from(self.l2), self.max_steps);
        Ok(EngagementModel { hash_bits: self.hash_bits, numeric, weights, bias })
    }
}

impl EngagementModel {
    /// P(engaged) of one candidate. Numerics beyond the model's count are ignored, missing ones
    /// count as their training mean.
    pub fn predict(&self, c: &Candidate) -> f64 {
        let z: f64 = encode(self.hash_bits, &self.numeric, c)
            .into_iter()
            .map(|(j, v)| f64::from(v) * f64::from(self.weights[j as usize]))
            .sum();
        sigmoid(z + f64::from(self.bias))
    }

    /// Non-zero weights (for size reports and tests).
    pub fn non_zero_weights(&self) -> usize {
        self.weights.iter().filter(|w| **w != 0.0).count()
    }
}

/// Greedy with an exploration share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GreedyPolicy {
    /// Probability mass spread uniformly over all candidates, in [0, 1].
    pub exploration: f64,
}

impl GreedyPolicy {
    pub fn new(exploration: f64) -> Result<Self> {
        if (0.0..=1.0).contains(&exploration) {
            Ok(Self { exploration })
        } else {
            Err(MlError::InvalidParam { name: "exploration", reason: format!("must be in [0, 1], got {exploration}") })
        }
    }

    /// Index of the best score (the first on ties); None for no candidates.
    pub fn best(scores: &[f64]) -> Option<usize> {
        scores
            .iter()
            .enumerate()
            .fold(None, |best: Option<(usize, f64)>, (i, &s)| match best {
                Some((_, b)) if b >= s => best,
                _ => Some((i, s)),
            })
            .map(|(i, _)| i)
    }

    /// The probability of choosing each candidate given their expected engagement.
    pub fn probabilities(&self, scores: &[f64]) -> Vec<f64> {
        let k = scores.len();
        let mut p = vec![self.exploration / k as f64; k];
        if let Some(b) = Self::best(scores) {
            p[b] += 1.0 - self.exploration;
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_auc;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// One candidate's (context tokens, ad tokens, numerics).
    type Row = (Vec<String>, Vec<String>, Vec<f64>);

    /// Viewers of segment A engage with sports ads, segment B with film ads; nobody else much.
    fn planted(n: usize, seed: u64) -> (Vec<Row>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut rows, mut y) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let seg = if rng.gen::<bool>() { "A" } else { "B" };
            let cat = ["sports", "film", "food"][rng.gen_range(0..3)];
            let affinity: f64 = rng.gen();
            let p = match (seg, cat) {
                ("A", "sports") | ("B", "film") => 0.30,
                _ => 0.03,
            } + 0.1 * affinity;
            rows.push((s(&[&format!("segment={seg}")]), s(&[&format!("category={cat}")]), vec![affinity]));
            y.push(rng.gen::<f64>() < p);
        }
        (rows, y)
    }

    fn candidates(rows: &[(Vec<String>, Vec<String>, Vec<f64>)]) -> Vec<Candidate<'_>> {
        rows.iter().map(|(c, a, x)| Candidate { context: c, ad: a, numeric: x }).collect()
    }

    #[test]
    fn learns_a_planted_context_by_ad_interaction_and_the_greedy_choice() {
        let (train, y) = planted(6000, 1);
        let model = EngagementParams::default().fit((&candidates(&train), &y)).unwrap();
        let (test, yt) = planted(3000, 2);
        let p: Vec<f64> = candidates(&test).iter().map(|c| model.predict(c)).collect();
        let auc = roc_auc(&p, &yt).unwrap();
        // Main effects alone cannot separate the crossed pattern (about 0.55); the crosses can.
        assert!(auc > 0.70, "AUC {auc}");
        // The policy picks sports for A and film for B.
        for (seg, want) in [("A", "sports"), ("B", "film")] {
            let ctx = s(&[&format!("segment={seg}")]);
            let ads: Vec<Vec<String>> =
                ["sports", "film", "food"].iter().map(|c| s(&[&format!("category={c}")])).collect();
            let scores: Vec<f64> =
                ads.iter().map(|a| model.predict(&Candidate { context: &ctx, ad: a, numeric: &[0.5] })).collect();
            let best = GreedyPolicy::best(&scores).unwrap();
            assert_eq!(ads[best][0], format!("category={want}"), "segment {seg}: scores {scores:?}");
        }
        // Calibrated on the whole: mean prediction near the engagement rate.
        let rate = yt.iter().filter(|&&v| v).count() as f64 / yt.len() as f64;
        let mean = p.iter().sum::<f64>() / p.len() as f64;
        assert!((mean - rate).abs() < 0.02, "mean prediction {mean} vs rate {rate}");
    }

    #[test]
    fn counted_rows_fit_the_model_of_the_rows_one_by_one() {
        // Discrete contexts and ads only, so many impressions share a candidate and outcome.
        let (rows, y) = planted(20_000, 5);
        let rows: Vec<Row> = rows.into_iter().map(|(c, a, _)| (c, a, Vec::new())).collect();
        let one_by_one = EngagementParams::default().fit((&candidates(&rows), &y)).unwrap();
        let mut groups: Vec<(Row, bool, u32)> = Vec::new();
        for (r, &label) in rows.iter().zip(&y) {
            match groups.iter_mut().find(|(g, l, _)| g == r && *l == label) {
                Some(g) => g.2 += 1,
                None => groups.push((r.clone(), label, 1)),
            }
        }
        assert_eq!(groups.len(), 12, "2 segments x 3 categories x 2 outcomes");
        let distinct: Vec<Row> = groups.iter().map(|g| g.0.clone()).collect();
        let labels: Vec<bool> = groups.iter().map(|g| g.1).collect();
        let count: Vec<u32> = groups.iter().map(|g| g.2).collect();
        let counted = EngagementParams::default().fit_counted(&candidates(&distinct), &labels, &count).unwrap();
        for c in candidates(&distinct) {
            let (p, q) = (one_by_one.predict(&c), counted.predict(&c));
            assert!((p - q).abs() < 1e-3, "{:?} x {:?}: one by one {p}, counted {q}", c.context, c.ad);
        }
        let err = EngagementParams::default().fit_counted(&candidates(&distinct), &labels, &count[1..]).unwrap_err();
        assert!(err.to_string().contains("12 rows but 11 counts"), "{err}");
        let mut zero = count.clone();
        zero[3] = 0;
        let err = EngagementParams::default().fit_counted(&candidates(&distinct), &labels, &zero).unwrap_err();
        assert!(err.to_string().contains("row 3 stands for 0 impressions"), "{err}");
    }

    #[test]
    fn stored_model_round_trips_with_sparse_weights() {
        let (train, y) = planted(500, 3);
        let model = EngagementParams { hash_bits: 12, ..Default::default() }.fit((&candidates(&train), &y)).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        assert!(json.len() < 4000, "{} bytes: the zero weights of 4096 columns must not be stored", json.len());
        let back: EngagementModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);
        let bad = json.replace("\"hash_bits\":12", "\"hash_bits\":2");
        assert!(serde_json::from_str::<EngagementModel>(&bad).unwrap_err().to_string().contains("hash_bits"));
    }

    #[test]
    fn greedy_policy_spreads_its_exploration_share() {
        let p = GreedyPolicy::new(0.1).unwrap().probabilities(&[0.2, 0.5, 0.5, 0.1]);
        for (got, want) in p.iter().zip([0.025, 0.925, 0.025, 0.025]) {
            assert!((got - want).abs() < 1e-12, "{p:?}");
        }
        assert_eq!(GreedyPolicy::new(0.0).unwrap().probabilities(&[0.3]), vec![1.0]);
        assert!(GreedyPolicy::new(1.5).is_err());
        assert_eq!(GreedyPolicy::best(&[]), None);
    }

    #[test]
    fn bad_training_input_is_named() {
        let (train, mut y) = planted(50, 4);
        let rows = candidates(&train);
        let fit = |y: &[bool]| EngagementParams::default().fit((&rows, y)).unwrap_err().to_string();
        assert!(fit(&y[..10]).contains("50 impressions but 10 labels"));
        y.iter_mut().for_each(|v| *v = false);
        assert!(fit(&y).contains("both engaged and not-engaged"));
        let bits = EngagementParams { hash_bits: 30, ..Default::default() }.fit((&rows, &y)).unwrap_err();
        assert!(bits.to_string().contains("hash_bits"));
    }
}
