//! Linear SVMs for sparse text features: an L2-regularised, squared-hinge linear SVM by dual
//! coordinate descent, and NBSVM (Wang & Manning 2012) on top of it.
//!
//! Both predict margins; their `predict_proba` is `sigmoid(margin)`, a monotone score
//! rather than a calibrated probability: use [`Platt`] on held-out margins for probabilities.

use crate::logistic::sigmoid;
use crate::sparse::CsrMatrix;
use crate::text::{check_positive, check_xy, log_count_ratio, sparse_dot};
pub use crate::calibration::Platt;
use crate::{Fit, MlError, Predict, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearSvmParams {
    /// Cost of a margin violation (liblinear's C); larger = weaker regularisation.
    pub c: f32,
    /// Upper bound on passes over the data; stops earlier once the projected gradient is small.
    pub max_epochs: usize,
    pub seed: u64,
}

impl Default for LinearSvmParams {
    /// liblinear's defaults (C = 1); 50 passes are far more than text data needs to converge.
    fn default() -> Self {
        Self { c: 1.0, max_epochs: 50, seed: 42 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearSvmModel {
    pub weights: Vec<f32>,
    pub bias: f32,
}

impl LinearSvmParams {
    fn validate(&self) -> Result<()> {
        check_positive("c", self.c)?;
        if self.max_epochs == 0 {
            return Err(MlError::InvalidParam { name: "max_epochs", reason: "must be at least 1".into() });
        }
        Ok(())
    }

    /// Dual coordinate descent for the L2-loss SVM (Hsieh et al. 2008, liblinear `-s 1`): each
    /// step moves one dual variable in closed form and updates `w` sparsely, O(nnz) per epoch.
    /// The bias is a constant feature of value 1 (regularised, as liblinear's `-B 1`).
    fn solve(&self, x: &CsrMatrix, y: &[bool]) -> (Vec<f32>, f32) {
        let n = x.n_rows();
        let c = f64::from(self.c);
        let diag = 0.5 / c; // the squared hinge adds alpha^2 / (4C) to the dual
        let qd: Vec<f64> = (0..n)
            .map(|i| {
                let sq: f64 = x.row(i).1.iter().map(|&v| f64::from(v).powi(2)).sum();
                1.0 + diag + sq
            })
            .collect();
        let mut w = vec![0f64; x.n_cols];
        let mut b = 0f64;
        let mut alpha = vec![0f64; n];
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        for _ in 0..self.max_epochs {
            order.shuffle(&mut rng);
            let mut pg_max = 0f64;
            for &i in &order {
                let yi = if y[i] { 1.0 } else { -1.0 };
                let (idx, val) = x.row(i);
                let wx: f64 = idx.iter().zip(val).map(|(&j, &v)| w[j as usize] * f64::from(v)).sum::<f64>() + b;
                let g = yi * wx - 1.0 + diag * alpha[i];
                // Projected gradient: alpha >= 0 is the only bound of the L2-loss dual.
                let pg = if alpha[i] == 0.0 { g.min(0.0) } else { g };
                pg_max = pg_max.max(pg.abs());
                if pg != 0.0 {
                    let old = alpha[i];
                    alpha[i] = (old - g / qd[i]).max(0.0);
                    let delta = (alpha[i] - old) * yi;
                    for (&j, &v) in idx.iter().zip(val) {
                        w[j as usize] += delta * f64::from(v);
                    }
                    b += delta;
                }
            }
            if pg_max < 1e-3 {
                break;
            }
        }
        (w.into_iter().map(|v| v as f32).collect(), b as f32)
    }
}

impl Fit for LinearSvmParams {
    type Data<'a> = (&'a CsrMatrix, &'a [bool]);
    type Model = LinearSvmModel;

    /// Errors when c <= 0, max_epochs == 0, shapes disagree, a class is missing, or a feature
    /// is negative / non-finite.
    fn fit(&self, (x, y): (&CsrMatrix, &[bool])) -> Result<LinearSvmModel> {
        self.validate()?;
        check_xy(x, y)?;
        let (weights, bias) = self.solve(x, y);
        Ok(LinearSvmModel { weights, bias })
    }
}

impl LinearSvmModel {
    /// `sigmoid(margin)` per row: see the module note on calibration.
    pub fn predict_proba(&self, x: &CsrMatrix) -> Vec<f64> {
        self.predict(x).into_iter().map(sigmoid).collect()
    }
}

impl Predict for LinearSvmModel {
    type Input<'a> = &'a CsrMatrix;
    type Output = Vec<f64>;

    /// Signed margin per row (> 0: positive); columns beyond the weights are ignored.
    fn predict(&self, x: &CsrMatrix) -> Vec<f64> {
        (0..x.n_rows())
            .map(|i| {
                let (idx, val) = x.row(i);
                sparse_dot(idx, val, &self.weights) + f64::from(self.bias)
            })
            .collect()
    }
}

/// NBSVM (Wang & Manning 2012): binarised n-gram occurrences scaled by the naive Bayes log-count
/// ratio r, a linear SVM on them, and the weights interpolated towards their mean magnitude,
/// `w' = (1 - beta) * mean|w| + beta * w`, which keeps NB's trust in every feature where the SVM
/// alone would overfit the rare ones. Strong on short texts (sentences, posts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NbSvmParams {
    /// Smoothing of the log-count ratio.
    pub alpha: f32,
    /// Interpolation weight of the SVM solution (1 = plain SVM on NB-scaled features).
    pub beta: f32,
    pub svm: LinearSvmParams,
}

impl Default for NbSvmParams {
    /// The paper's values (alpha 1, beta 0.25, C 1), not tuned here.
    fn default() -> Self {
        Self { alpha: 1.0, beta: 0.25, svm: LinearSvmParams::default() }
    }
}

/// Weights already interpolated and folded with r: `margin = sum_j w_j [x_j > 0] + bias`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NbSvmModel {
    pub weights: Vec<f32>,
    pub bias: f32,
}

impl NbSvmModel {
    /// `sigmoid(margin)` per row: see the module note on calibration.
    pub fn predict_proba(&self, x: &CsrMatrix) -> Vec<f64> {
        self.predict(x).into_iter().map(sigmoid).collect()
    }
}

impl Predict for NbSvmModel {
    type Input<'a> = &'a CsrMatrix;
    type Output = Vec<f64>;

    /// Signed margin per row of counts (> 0: positive); unknown columns are ignored.
    fn predict(&self, x: &CsrMatrix) -> Vec<f64> {
        (0..x.n_rows())
            .map(|i| {
                let (idx, val) = x.row(i);
                let m: f64 = idx
                    .iter()
                    .zip(val)
                    .filter(|(_, &v)| v != 0.0)
                    .filter_map(|(&j, _)| self.weights.get(j as usize).map(|&w| f64::from(w)))
                    .sum();
                m + f64::from(self.bias)
            })
            .collect()
    }
}

impl Fit for NbSvmParams {
    type Data<'a> = (&'a CsrMatrix, &'a [bool]);
    type Model = NbSvmModel;

    /// `x` holds term counts (any non-negative values; only non-zero matters). Errors as
    /// [`LinearSvmParams::fit`], and when alpha <= 0 or beta is outside [0, 1].
    fn fit(&self, (x, y): (&CsrMatrix, &[bool])) -> Result<NbSvmModel> {
        check_positive("alpha", self.alpha)?;
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(MlError::InvalidParam {
                name: "beta",
                reason: format!("must be in [0, 1], got {}", self.beta),
            });
        }
        self.svm.validate()?;
        check_xy(x, y)?;
        let r = log_count_ratio(x, y, self.alpha);
        let mut z = x.clone();
        for (v, &j) in z.data.iter_mut().zip(&x.indices) {
            *v = r[j as usize];
        }
        let (w, bias) = self.svm.solve(&z, y);
        let beta = f64::from(self.beta);
        let mean = w.iter().map(|v| f64::from(v.abs())).sum::<f64>() / w.len().max(1) as f64;
        let weights = w
            .iter()
            .zip(&r)
            .map(|(&wj, &rj)| (((1.0 - beta) * mean + beta * f64::from(wj)) * f64::from(rj)) as f32)
            .collect();
        Ok(NbSvmModel { weights, bias })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::TfidfParams;
    use rand::Rng;

    /// Planted corpus: each document mixes neutral filler with 1-2 phrases of its class and,
    /// 25% of the time, one of the other class.
    fn planted(n: usize, seed: u64) -> (Vec<String>, Vec<bool>) {
        let pos = ["superb", "loved it", "not bad", "a delight", "moving"];
        let neg = ["dreadful", "hated it", "not good", "a chore", "tedious"];
        let filler = ["the", "film", "plot", "cast", "was", "and", "its", "story"];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let label = rng.gen_bool(0.5);
                let mut words: Vec<&str> =
                    (0..rng.gen_range(3..8)).map(|_| filler[rng.gen_range(0..filler.len())]).collect();
                for _ in 0..rng.gen_range(1..3) {
                    let bank = if label { &pos } else { &neg };
                    words.insert(rng.gen_range(0..words.len()), bank[rng.gen_range(0..5)]);
                }
                if rng.gen_bool(0.25) {
                    let bank = if label { &neg } else { &pos };
                    words.insert(rng.gen_range(0..words.len()), bank[rng.gen_range(0..5)]);
                }
                (words.join(" "), label)
            })
            .unzip()
    }

    fn accuracy(margins: &[f64], y: &[bool]) -> f64 {
        let hits = margins.iter().zip(y).filter(|(m, y)| (**m > 0.0) == **y);
        hits.count() as f64 / y.len() as f64
    }

    #[test]
    fn linear_svm_separates_a_planted_corpus() {
        let (docs, y) = planted(400, 1);
        let (test, test_y) = planted(200, 2);
        let (v, x) = TfidfParams::default().fit_transform(&docs).unwrap();
        let model = LinearSvmParams::default().fit((&x, &y)).unwrap();
        let acc = accuracy(&model.predict(&v.transform(&test)), &test_y);
        assert!(acc > 0.85, "SVM accuracy {acc}");
        let p = model.predict_proba(&v.transform(&test));
        assert!(p.iter().all(|p| (0.0..=1.0).contains(p)));
        assert_eq!(LinearSvmParams::default().fit((&x, &y)).unwrap(), model, "deterministic");
    }

    #[test]
    fn nbsvm_separates_a_planted_corpus_and_reads_negation() {
        let (docs, y) = planted(400, 3);
        let (test, test_y) = planted(200, 4);
        let v = TfidfParams::default().fit(&docs).unwrap();
        let params = NbSvmParams::default();
        let model = params.fit((&v.transform_counts(&docs), &y)).unwrap();
        let acc = accuracy(&model.predict(&v.transform_counts(&test)), &test_y);
        assert!(acc > 0.85, "NBSVM accuracy {acc}");
        let w = |t: &str| model.weights[v.vocabulary[t] as usize];
        assert!(w("superb") > 0.0 && w("dreadful") < 0.0);
        assert!(w("not good") < 0.0 && w("not bad") > 0.0);
        // Only occurrence matters, not counts.
        let once = v.transform_counts(&["superb film"]);
        let mut thrice = once.clone();
        thrice.data.iter_mut().for_each(|c| *c *= 3.0);
        assert_eq!(model.predict(&once), model.predict(&thrice));
        assert_eq!(params.fit((&v.transform_counts(&docs), &y)).unwrap(), model, "deterministic");
        // beta = 1 is the plain SVM on NB-scaled features: a different, still good model.
        let plain = NbSvmParams { beta: 1.0, ..params.clone() };
        let plain = plain.fit((&v.transform_counts(&docs), &y)).unwrap();
        assert_ne!(plain, model);
    }

    #[test]
    fn svms_reject_bad_params_and_input() {
        let (docs, y) = planted(30, 5);
        let v = TfidfParams::default().fit(&docs).unwrap();
        let x = v.transform_counts(&docs);
        let name = |r: Result<()>| match r {
            Err(MlError::InvalidParam { name, .. }) => name,
            other => panic!("expected InvalidParam, got {other:?}"),
        };
        let svm = LinearSvmParams::default();
        let bad_c = LinearSvmParams { c: 0.0, ..svm.clone() };
        assert_eq!(name(bad_c.fit((&x, &y)).map(|_| ())), "c");
        let bad_epochs = LinearSvmParams { max_epochs: 0, ..svm.clone() };
        assert_eq!(name(bad_epochs.fit((&x, &y)).map(|_| ())), "max_epochs");
        let nb = NbSvmParams::default();
        let bad_beta = NbSvmParams { beta: 1.5, ..nb.clone() };
        assert_eq!(name(bad_beta.fit((&x, &y)).map(|_| ())), "beta");
        let bad_alpha = NbSvmParams { alpha: 0.0, ..nb.clone() };
        assert_eq!(name(bad_alpha.fit((&x, &y)).map(|_| ())), "alpha");
        assert!(matches!(nb.fit((&x, &y[1..])), Err(MlError::InvalidInput(_))));
        assert!(matches!(svm.fit((&x, &vec![true; y.len()])), Err(MlError::InvalidInput(_))));
    }
}
