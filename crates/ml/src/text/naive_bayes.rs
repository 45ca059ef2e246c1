//! Binary multinomial naive Bayes, and the NB log-count ratio that NB-LR and NBSVM scale by.

use super::{check_positive, check_xy, class_sums, sparse_dot};
use crate::logistic::sigmoid;
use crate::sparse::CsrMatrix;
use crate::{Fit, Predict, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NaiveBayesParams {
    pub alpha: f32,
}

impl Default for NaiveBayesParams {
    fn default() -> Self {
        Self { alpha: NB_ALPHA }
    }
}

/// Binary multinomial naive Bayes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NaiveBayesModel {
    pub log_prior_pos: f32,
    pub log_prior_neg: f32,
    pub log_prob_pos: Vec<f32>,
    pub log_prob_neg: Vec<f32>,
}

impl Fit for NaiveBayesParams {
    type Data<'a> = (&'a CsrMatrix, &'a [bool]);
    type Model = NaiveBayesModel;

    /// Errors when alpha <= 0, shapes disagree, a class is missing, or a feature is negative.
    fn fit(&self, (x, y): (&CsrMatrix, &[bool])) -> Result<NaiveBayesModel> {
        check_positive("alpha", self.alpha)?;
        check_xy(x, y)?;
        let (pos, neg) = class_sums(x, y, false);
        let alpha = f64::from(self.alpha);
        let log_probs = |counts: &[f64]| {
            let denom = (counts.iter().sum::<f64>() + alpha * counts.len() as f64).ln();
            counts.iter().map(|&c| ((c + alpha).ln() - denom) as f32).collect::<Vec<f32>>()
        };
        let n_pos = y.iter().filter(|&&b| b).count() as f64;
        let n = y.len() as f64;
        Ok(NaiveBayesModel {
            log_prior_pos: (n_pos / n).ln() as f32,
            log_prior_neg: ((n - n_pos) / n).ln() as f32,
            log_prob_pos: log_probs(&pos),
            log_prob_neg: log_probs(&neg),
        })
    }
}

impl Predict for NaiveBayesModel {
    type Input<'a> = &'a CsrMatrix;
    type Output = Vec<f64>;

    /// P(positive) per row.
    fn predict(&self, x: &CsrMatrix) -> Vec<f64> {
        (0..x.n_rows())
            .map(|i| {
                let (idx, val) = x.row(i);
                let lp = f64::from(self.log_prior_pos) + sparse_dot(idx, val, &self.log_prob_pos);
                let ln = f64::from(self.log_prior_neg) + sparse_dot(idx, val, &self.log_prob_neg);
                // log-sum-exp over the two classes, which is exactly a sigmoid of the gap.
                sigmoid(lp - ln)
            })
            .collect()
    }
}

/// Best measured default smoothing for multinomial NB (k-fold on rt-polarity and IMDB).
const NB_ALPHA: f32 = 1.0;

/// The NB log-count ratio (Wang & Manning 2012) per column: `ln((p_j + alpha) / |p + alpha|_1)
/// - ln((q_j + alpha) / |q + alpha|_1)`, from binarised occurrences `p` (positive rows) and `q`.
pub(crate) fn log_count_ratio(x: &CsrMatrix, y: &[bool], alpha: f32) -> Vec<f32> {
    let (p, q) = class_sums(x, y, true);
    let alpha = f64::from(alpha);
    let p_norm = p.iter().sum::<f64>() + alpha * p.len() as f64;
    let q_norm = q.iter().sum::<f64>() + alpha * q.len() as f64;
    p.iter().zip(&q).map(|(&pj, &qj)| (((pj + alpha) / p_norm) / ((qj + alpha) / q_norm)).ln() as f32).collect()
}
