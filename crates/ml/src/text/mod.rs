//! Text features and classifiers for sentiment: tokenizer, n-grams, TF-IDF, multinomial naive
//! Bayes and an NB-weighted logistic regression (NBSVM-style log-count-ratio features).

mod naive_bayes;
mod nb_logistic;
mod tfidf;
mod tokenize;

pub use crate::logistic::sigmoid;
pub(crate) use naive_bayes::log_count_ratio;
pub use naive_bayes::{NaiveBayesModel, NaiveBayesParams};
pub use nb_logistic::{NbLogisticModel, NbLogisticParams};
pub(crate) use tfidf::FxMap;
pub use tfidf::{DocumentFrequencies, TfidfParams, TfidfVectorizer};
pub(crate) use tokenize::normalize;
pub use tokenize::{tokenize, NEGATION_PREFIX};

use crate::sparse::CsrMatrix;
use crate::{MlError, Result};

/// Shared checks for the binary classifiers: shapes, finite non-negative features, both classes.
pub(crate) fn check_xy(x: &CsrMatrix, y: &[bool]) -> Result<()> {
    if x.n_rows() != y.len() {
        return Err(MlError::InvalidInput(format!("x has {} rows but y has {} labels", x.n_rows(), y.len())));
    }
    if !y.contains(&true) || !y.contains(&false) {
        return Err(MlError::InvalidInput("y must contain both positive and negative examples".into()));
    }
    if x.data.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(MlError::InvalidInput("x must hold finite, non-negative feature values".into()));
    }
    if x.indices.iter().any(|&c| c as usize >= x.n_cols) {
        return Err(MlError::InvalidInput(format!("x has a column index >= n_cols ({})", x.n_cols)));
    }
    Ok(())
}

pub(crate) fn check_positive(name: &'static str, v: f32) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(MlError::InvalidParam { name, reason: format!("must be finite and > 0, got {v}") })
    }
}

/// Sum of `x` rows per class, with `binary` replacing every non-zero by 1.
pub(crate) fn class_sums(x: &CsrMatrix, y: &[bool], binary: bool) -> (Vec<f64>, Vec<f64>) {
    let mut pos = vec![0f64; x.n_cols];
    let mut neg = vec![0f64; x.n_cols];
    for (i, &label) in y.iter().enumerate() {
        let sums = if label { &mut pos } else { &mut neg };
        let (idx, val) = x.row(i);
        for (&c, &v) in idx.iter().zip(val) {
            sums[c as usize] += if binary { f64::from(u8::from(v != 0.0)) } else { f64::from(v) };
        }
    }
    (pos, neg)
}

/// Dot product of a sparse row with dense weights, ignoring columns beyond them.
pub(crate) fn sparse_dot(idx: &[u32], val: &[f32], w: &[f32]) -> f64 {
    idx.iter().zip(val).filter_map(|(&c, &v)| w.get(c as usize).map(|&wc| f64::from(v) * f64::from(wc))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Fit, Predict};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A small labelled fixture: sentences built from sentiment phrases and neutral filler.
    fn fixture(n: usize, seed: u64) -> (Vec<String>, Vec<bool>) {
        use rand::Rng;
        let pos = ["great", "wonderful acting", "loved it", "brilliant", "a joy", "moving story", "not bad"];
        let neg = ["terrible", "boring plot", "hated it", "awful", "a mess", "waste of time", "not good"];
        let filler = ["the", "movie", "film", "was", "and", "this", "director", "cast", "really", "scene"];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut docs = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            let label = rng.gen_bool(0.5);
            let mut words = Vec::new();
            for _ in 0..rng.gen_range(4..9) {
                words.push(filler[rng.gen_range(0..filler.len())]);
            }
            // One or two on-topic phrases, plus an off-topic one 30% of the time (label noise).
            for _ in 0..rng.gen_range(1..3) {
                let bank = if label { &pos } else { &neg };
                words.insert(rng.gen_range(0..words.len()), bank[rng.gen_range(0..bank.len())]);
            }
            if rng.gen_bool(0.3) {
                let bank = if label { &neg } else { &pos };
                words.insert(rng.gen_range(0..words.len()), bank[rng.gen_range(0..bank.len())]);
            }
            docs.push(words.join(" "));
            labels.push(label);
        }
        (docs, labels)
    }

    fn accuracy(p: &[f64], y: &[bool]) -> f64 {
        p.iter().zip(y).filter(|(p, y)| (**p > 0.5) == **y).count() as f64 / y.len() as f64
    }

    #[test]
    fn naive_bayes_beats_chance_on_fixture() {
        let (docs, y) = fixture(400, 1);
        let (test_docs, test_y) = fixture(200, 2);
        let v = TfidfParams::default().fit(&docs).unwrap();
        let model = NaiveBayesParams::default().fit((&v.transform_counts(&docs), &y)).unwrap();
        let p = model.predict(&v.transform_counts(&test_docs));
        assert!(p.iter().all(|p| (0.0..=1.0).contains(p)));
        let acc = accuracy(&p, &test_y);
        assert!(acc > 0.8, "NB accuracy {acc}");
    }

    #[test]
    fn nb_logistic_beats_chance_on_fixture() {
        let (docs, y) = fixture(400, 3);
        let (test_docs, test_y) = fixture(200, 4);
        let (v, x) = TfidfParams::default().fit_transform(&docs).unwrap();
        let params = NbLogisticParams::default();
        let model = params.fit((&x, &y)).unwrap();
        let p = model.predict(&v.transform(&test_docs));
        let acc = accuracy(&p, &test_y);
        assert!(acc > 0.8, "NB-LR accuracy {acc}");
        assert_eq!(model.r.len(), v.n_features());
        // "not good" should carry negative weight, "not bad" positive.
        let id = |t: &str| v.vocabulary[t] as usize;
        assert!(model.r[id("not good")] < 0.0 && model.r[id("not bad")] > 0.0);
        assert_eq!(params.fit((&x, &y)).unwrap(), model, "deterministic for a seed");
    }

    #[test]
    fn classifiers_reject_bad_input() {
        let (docs, y) = fixture(20, 5);
        let v = TfidfParams::default().fit(&docs).unwrap();
        let x = v.transform_counts(&docs);
        let name = |r: std::result::Result<(), MlError>| match r {
            Err(MlError::InvalidParam { name, .. }) => name,
            other => panic!("expected InvalidParam, got {other:?}"),
        };
        assert_eq!(name(NaiveBayesParams { alpha: 0.0 }.fit((&x, &y)).map(|_| ())), "alpha");
        let base = NbLogisticParams::default();
        assert_eq!(name(NbLogisticParams { alpha: -1.0, ..base.clone() }.fit((&x, &y)).map(|_| ())), "alpha");
        assert_eq!(name(NbLogisticParams { l2: 0.0, ..base.clone() }.fit((&x, &y)).map(|_| ())), "l2");
        assert_eq!(name(NbLogisticParams { epochs: 0, ..base.clone() }.fit((&x, &y)).map(|_| ())), "epochs");
        assert!(matches!(base.fit((&x, &y[1..])), Err(MlError::InvalidInput(_))));
        assert!(matches!(NaiveBayesParams::default().fit((&x, &vec![true; y.len()])), Err(MlError::InvalidInput(_))));
        let mut neg = x.clone();
        neg.data[0] = -1.0;
        assert!(matches!(base.fit((&neg, &y)), Err(MlError::InvalidInput(_))));
    }
}
