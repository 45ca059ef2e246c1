//! Calibration: Platt scaling of margins into probabilities, and the reliability curve and
//! expected calibration error that show how far predicted probabilities are from observed rates.

use crate::logistic::sigmoid;
use crate::{MlError, Predict, Result};
use serde::{Deserialize, Serialize};

/// Platt scaling (Platt 1999): P(positive) = sigmoid(a * margin + b), fitted by Newton's method
/// on margins the model did not train on (e.g. cross-fitted), with Platt's smoothed targets.
/// SVM margins shrink with less data and more regularisation, so a fixed sigmoid(margin) would
/// widen the neutral band on small training sets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Default for Platt {
    /// The identity calibration: sigmoid(margin).
    fn default() -> Self {
        Self { a: 1.0, b: 0.0 }
    }
}

impl Platt {
    /// Errors when lengths differ or a class is missing.
    pub fn fit(margins: &[f64], y: &[bool]) -> Result<Platt> {
        if margins.len() != y.len() || !y.contains(&true) || !y.contains(&false) {
            return Err(MlError::InvalidInput("platt: need one label per margin and both classes".into()));
        }
        let n_pos = y.iter().filter(|&&v| v).count() as f64;
        let n_neg = y.len() as f64 - n_pos;
        let (t_pos, t_neg) = ((n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0));
        let (mut a, mut b) = (1.0, 0.0);
        for _ in 0..100 {
            // Gradient and Hessian of the cross-entropy in (a, b), plus a tiny ridge for stability.
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
            for (&m, &label) in margins.iter().zip(y) {
                let p = sigmoid(a * m + b);
                let d = p - if label { t_pos } else { t_neg };
                let w = (p * (1.0 - p)).max(1e-12);
                ga += d * m;
                gb += d;
                haa += w * m * m;
                hab += w * m;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det <= 0.0 {
                break;
            }
            let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
            a -= da;
            b -= db;
            if da.abs() + db.abs() < 1e-9 {
                break;
            }
        }
        Ok(Platt { a, b })
    }
}

impl Predict for Platt {
    type Input<'a> = f64;
    type Output = f64;

    fn predict(&self, margin: f64) -> f64 {
        sigmoid(self.a * margin + self.b)
    }
}

/// One bin of a reliability curve: rows whose predicted probability falls in `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub rows: usize,
    /// Mean predicted probability of the bin's rows.
    pub predicted: f64,
    /// Share of the bin's rows that are positive.
    pub observed: f64,
}

/// The reliability curve over `bins` equal-width probability bins (empty bins left out).
pub fn reliability_curve(p: &[f64], y: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let bins = bins.max(1);
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for (&pi, &yi) in p.iter().zip(y) {
        let b = ((pi.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += pi;
        sums[b].2 += usize::from(yi);
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(b, &(rows, sum, pos))| ReliabilityBin {
            lo: b as f64 / bins as f64,
            hi: (b + 1) as f64 / bins as f64,
            rows,
            predicted: sum / rows as f64,
            observed: pos as f64 / rows as f64,
        })
        .collect()
}

/// Expected calibration error: the row-weighted mean |predicted - observed| over the curve's bins.
pub fn expected_calibration_error(curve: &[ReliabilityBin]) -> f64 {
    let n: usize = curve.iter().map(|b| b.rows).sum();
    curve.iter().map(|b| b.rows as f64 * (b.predicted - b.observed).abs()).sum::<f64>() / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn platt_recovers_a_planted_calibration() {
        // Labels drawn with P = sigmoid(2m - 0.5): the fit should land near a = 2, b = -0.5.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let margins: Vec<f64> = (0..20_000).map(|_| rng.gen_range(-3.0..3.0)).collect();
        let y: Vec<bool> = margins.iter().map(|&m| rng.gen_bool(sigmoid(2.0 * m - 0.5))).collect();
        let p = Platt::fit(&margins, &y).unwrap();
        assert!((p.a - 2.0).abs() < 0.1 && (p.b + 0.5).abs() < 0.1, "{p:?}");
        assert!(p.predict(10.0) > 0.99 && p.predict(-10.0) < 0.01);
        assert!(Platt::fit(&margins, &y[1..]).is_err());
        assert!(Platt::fit(&[1.0], &[true]).is_err());
    }

    #[test]
    fn reliability_of_calibrated_and_skewed_probabilities() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p: Vec<f64> = (0..50_000).map(|_| rng.gen_range(0.0..1.0)).collect();
        let y: Vec<bool> = p.iter().map(|&pi| rng.gen_bool(pi)).collect();
        let curve = reliability_curve(&p, &y, 10);
        assert_eq!(curve.len(), 10);
        assert_eq!(curve.iter().map(|b| b.rows).sum::<usize>(), p.len());
        assert!(expected_calibration_error(&curve) < 0.01);
        // Overstated probabilities (as balanced class weights give) show a gap.
        let skewed: Vec<f64> = p.iter().map(|&pi| pi.sqrt()).collect();
        assert!(expected_calibration_error(&reliability_curve(&skewed, &y, 10)) > 0.1);
        // Hand-computed: two bins.
        let c = reliability_curve(&[0.1, 0.2, 0.9], &[false, true, true], 2);
        assert_eq!(c.len(), 2);
        assert!((c[0].predicted - 0.15).abs() < 1e-12 && (c[0].observed - 0.5).abs() < 1e-12);
        assert!((expected_calibration_error(&c) - (2.0 * 0.35 + 0.1) / 3.0).abs() < 1e-12);
    }
}
