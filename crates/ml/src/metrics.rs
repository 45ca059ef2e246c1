//! Evaluation metrics: classification (AUC, ROC, cutoff table, accuracy, macro-F1, confusion),
//! regression (RMSE), ranking (precision@k, NDCG@k) and clustering (SSE, silhouette).

use crate::MlError;
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// One point of a ROC curve: classifying `score >= threshold` as positive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub fpr: f64,
    pub tpr: f64,
}

/// Confusion counts and rates at one probability cutoff (`score >= cutoff` is positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CutoffRow {
    pub cutoff: f64,
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    pub fn_: usize,
    /// tp / (tp + fp); 1.0 when nothing is predicted positive (no false alarms).
    pub precision: f64,
    pub recall: f64,
    pub false_positive_rate: f64,
    pub accuracy: f64,
}

/// DeLong's placement values of one score vector: per positive, the share of negatives scored
/// below it (ties half); per negative, the share of positives scored above it (ties half).
fn placements(scores: &[f64], labels: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let n_pos = labels.iter().filter(|&&l| l).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    let (mut v10, mut v01) = (Vec::new(), Vec::new());
    // Walk groups of tied scores in ascending order, counting each class below the group.
    let (mut pos_below, mut neg_below) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            j += 1;
        }
        let group = &order[i..j];
        let pos_tied = group.iter().filter(|&&k| labels[k]).count() as f64;
        let neg_tied = group.len() as f64 - pos_tied;
        for &k in group {
            if labels[k] {
                v10.push((neg_below + 0.5 * neg_tied) / n_neg);
            } else {
                v01.push((n_pos - pos_below - pos_tied + 0.5 * pos_tied) / n_pos);
            }
        }
        pos_below += pos_tied;
        neg_below += neg_tied;
        i = j;
    }
    (v10, v01)
}

/// The difference of two AUCs on the same rows and labels, `auc(a) - auc(b)`, with its standard
/// error by DeLong, DeLong & Clarke-Pearson (1988), which accounts for the two scores being
/// correlated. Errors as [`roc_auc`] does.
pub fn auc_difference(a: &[f64], b: &[f64], labels: &[bool]) -> crate::Result<(f64, f64)> {
    let (auc_a, auc_b) = (roc_auc(a, labels)?, roc_auc(b, labels)?);
    if a.len() != b.len() {
        return Err(MlError::InvalidInput(format!("auc_difference: {} and {} scores", a.len(), b.len())));
    }
    let ((a10, a01), (b10, b01)) = (placements(a, labels), placements(b, labels));
    // Placements come in score order per vector: pair them back by row before the covariance.
    let by_row = |scores: &[f64], v10: Vec<f64>, v01: Vec<f64>| {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&x, &y| scores[x].total_cmp(&scores[y]));
        let mut out = vec![0.0; scores.len()];
        let (mut p, mut q) = (v10.into_iter(), v01.into_iter());
        for k in order {
            out[k] = if labels[k] { p.next() } else { q.next() }.expect("one placement per row");
        }
        out
    };
    let (pa, pb) = (by_row(a, a10, a01), by_row(b, b10, b01));
    let variance_of = |class: bool| {
        let d: Vec<f64> = (0..labels.len()).filter(|&k| labels[k] == class).map(|k| pa[k] - pb[k]).collect();
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)) / n
    };
    let se = (variance_of(true) + variance_of(false)).max(0.0).sqrt();
    Ok((auc_a - auc_b, se))
}

/// Mean log loss of probabilities `p` against `labels` (probabilities clipped to [1e-15, 1 - 1e-15]).
pub fn log_loss(p: &[f64], labels: &[bool]) -> f64 {
    let total: f64 = p
        .iter()
        .zip(labels)
        .map(|(&pi, &y)| {
            let pi = pi.clamp(1e-15, 1.0 - 1e-15);
            -if y { pi.ln() } else { (1.0 - pi).ln() }
        })
        .sum();
    total / p.len().max(1) as f64
}

/// Area under the ROC curve (Mann-Whitney U with average ranks for ties). Errors when a class is absent.
///
/// A positive/negative pair with equal scores earns half credit, so the result does not depend on how
/// ties happen to be ordered. Also errors on length mismatch or a NaN score.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> crate::Result<f64> {
    if scores.len() != labels.len() {
        return Err(MlError::InvalidInput(format!(
            "roc_auc: `scores` has {} values but `labels` has {}",
            scores.len(),
            labels.len()
        )));
    }
    if scores.iter().any(|s| s.is_nan()) {
        return Err(MlError::InvalidInput("roc_auc: `scores` contains NaN".into()));
    }
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(MlError::InvalidInput(format!(
            "roc_auc: `labels` needs both classes (got {n_pos} positive, {n_neg} negative)"
        )));
    }
    let order = sorted_indices(scores, false);
    // Walk groups of equal scores; each group shares the average of the 1-based ranks it spans.
    let mut rank_sum_pos = 0.0;
    let mut start = 0;
    while start < order.len() {
        let score = scores[order[start]];
        let mut end = start;
        while end < order.len() && scores[order[end]] == score {
            end += 1;
        }
        let avg_rank = (start + 1 + end) as f64 / 2.0;
        let pos_in_group = order[start..end].iter().filter(|&&i| labels[i]).count();
        rank_sum_pos += avg_rank * pos_in_group as f64;
        start = end;
    }
    let (n_pos, n_neg) = (n_pos as f64, n_neg as f64);
    let u = rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0;
    Ok(u / (n_pos * n_neg))
}

/// Indices of `scores` sorted ascending (or descending), NaN-safe via `total_cmp`.
fn sorted_indices(scores: &[f64], descending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    if descending {
        order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    } else {
        order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    }
    order
}

/// `num / den`, or `empty` when `den` is zero (a rate over an empty class).
fn ratio(num: usize, den: usize, empty: f64) -> f64 {
    if den == 0 {
        empty
    } else {
        num as f64 / den as f64
    }
}

/// ROC curve from the highest threshold to the lowest; ties collapse to one point. Starts at (0,0), ends at (1,1).
///
/// The first point has threshold `+inf` (nothing predicted positive). A rate over an absent class is 0.
/// Pairs beyond the shorter slice are ignored.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Vec<RocPoint> {
    let n = scores.len().min(labels.len());
    let (scores, labels) = (&scores[..n], &labels[..n]);
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = n - n_pos;
    let order = sorted_indices(scores, true);
    let mut points = vec![RocPoint { threshold: f64::INFINITY, fpr: 0.0, tpr: 0.0 }];
    let (mut tp, mut fp) = (0, 0);
    let mut start = 0;
    while start < n {
        let threshold = scores[order[start]];
        let mut end = start;
        while end < n && scores[order[end]].total_cmp(&threshold).is_eq() {
            if labels[order[end]] {
                tp += 1;
            } else {
                fp += 1;
            }
            end += 1;
        }
        points.push(RocPoint { threshold, fpr: ratio(fp, n_neg, 0.0), tpr: ratio(tp, n_pos, 0.0) });
        start = end;
    }
    points
}

/// Confusion numbers at each cutoff.
///
/// Rates over an empty denominator are 0, except precision which is 1 (see [`CutoffRow`]).
/// Pairs beyond the shorter slice are ignored.
pub fn cutoff_table(scores: &[f64], labels: &[bool], cutoffs: &[f64]) -> Vec<CutoffRow> {
    let n = scores.len().min(labels.len());
    let (scores, labels) = (&scores[..n], &labels[..n]);
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = n - n_pos;
    cutoffs
        .iter()
        .map(|&cutoff| {
            let (mut tp, mut fp) = (0, 0);
            for (&s, &l) in scores.iter().zip(labels) {
                if s >= cutoff {
                    if l {
                        tp += 1;
                    } else {
                        fp += 1;
                    }
                }
            }
            let (fn_, tn) = (n_pos - tp, n_neg - fp);
            CutoffRow {
                cutoff,
                tp,
                fp,
                tn,
                fn_,
                precision: ratio(tp, tp + fp, 1.0),
                recall: ratio(tp, n_pos, 0.0),
                false_positive_rate: ratio(fp, n_neg, 0.0),
                accuracy: ratio(tp + tn, n, 0.0),
            }
        })
        .collect()
}

/// Root mean squared error. Errors on length mismatch or empty input.
pub fn rmse(predicted: &[f64], actual: &[f64]) -> crate::Result<f64> {
    if predicted.len() != actual.len() {
        return Err(MlError::InvalidInput(format!(
            "rmse: `predicted` has {} values but `actual` has {}",
            predicted.len(),
            actual.len()
        )));
    }
    if predicted.is_empty() {
        return Err(MlError::InvalidInput("rmse: `predicted` and `actual` are empty".into()));
    }
    let sum_sq: f64 = predicted.iter().zip(actual).map(|(p, a)| (p - a) * (p - a)).sum();
    Ok((sum_sq / predicted.len() as f64).sqrt())
}

/// Relevance (0 or 1) of each of the first `k` recommendations; a repeated item only counts the first
/// time, so a list padded with duplicates cannot score above a clean one.
fn hits_at_k<'a>(recommended: &'a [u32], relevant: &'a HashSet<u32>, k: usize) -> impl Iterator<Item = bool> + 'a {
    let mut seen = HashSet::new();
    recommended.iter().take(k).map(move |item| relevant.contains(item) && seen.insert(*item))
}

/// Share of the first `k` recommended items that are relevant (divides by k, as is conventional).
///
/// A list shorter than `k` is not rewarded for being short. Returns 0.0 for `k == 0`.
pub fn precision_at_k(recommended: &[u32], relevant: &HashSet<u32>, k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let hits = hits_at_k(recommended, relevant, k).filter(|&h| h).count();
    hits as f64 / k as f64
}

/// NDCG@k with binary relevance: DCG = sum rel_i / log2(i + 2), normalised by the ideal DCG.
///
/// The ideal ranking puts min(k, |relevant|) hits first. Returns 0.0 when `k == 0` or nothing is relevant.
pub fn ndcg_at_k(recommended: &[u32], relevant: &HashSet<u32>, k: usize) -> f64 {
    if k == 0 || relevant.is_empty() {
        return 0.0;
    }
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 =
        hits_at_k(recommended, relevant, k).enumerate().filter(|&(_, hit)| hit).map(|(i, _)| discount(i)).sum();
    let ideal: f64 = (0..k.min(relevant.len())).map(discount).sum();
    dcg / ideal
}

/// Sum of squared distances of each row to its assigned centroid.
///
/// # Panics
/// When `assignment` is shorter than the rows, names a missing centroid, or the column counts differ.
pub fn sse(data: ArrayView2<f64>, centroids: ArrayView2<f64>, assignment: &[usize]) -> f64 {
    assert_eq!(data.ncols(), centroids.ncols(), "sse: `data` and `centroids` column counts differ");
    assert!(assignment.len() >= data.nrows(), "sse: `assignment` is shorter than `data`");
    data.outer_iter()
        .zip(assignment)
        .map(|(row, &c)| {
            let centroid = centroids.row(c);
            row.iter().zip(centroid.iter()).map(|(x, m)| (x - m) * (x - m)).sum::<f64>()
        })
        .sum()
}

/// Mean silhouette coefficient. For more than `max_points` rows, a seeded random sample of rows is scored
/// (against all rows). Returns 0.0 when there are fewer than 2 clusters.
///
/// Sampling keeps the cost at O(sample * n) distances, which matters when choosing k on large data.
/// A row alone in its cluster scores 0 (as in scikit-learn). `max_points == 0` means no sampling.
/// Labels may be any `usize` values. Pairs beyond the shorter of rows and `assignment` are ignored.
pub fn silhouette(data: ArrayView2<f64>, assignment: &[usize], max_points: usize, seed: u64) -> f64 {
    let n = data.nrows().min(assignment.len());
    // Dense cluster ids 0..n_clusters, whatever the label values.
    let mut ids: HashMap<usize, usize> = HashMap::new();
    let labels: Vec<usize> = assignment[..n]
        .iter()
        .map(|&a| {
            let next = ids.len();
            *ids.entry(a).or_insert(next)
        })
        .collect();
    let n_clusters = ids.len();
    if n_clusters < 2 {
        return 0.0;
    }
    let mut sizes = vec![0usize; n_clusters];
    for &l in &labels {
        sizes[l] += 1;
    }
    let rows = data.slice(ndarray::s![..n, ..]);
    let rows = rows.as_standard_layout();
    let flat = rows.as_slice().expect("standard layout is contiguous");
    let d = data.ncols();
    let row = |i: usize| &flat[i * d..(i + 1) * d];

    let sample: Vec<usize> = if max_points == 0 || n <= max_points {
        (0..n).collect()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rand::seq::index::sample(&mut rng, n, max_points).into_vec()
    };

    let mut dist_sums = vec![0.0; n_clusters];
    let mut total = 0.0;
    for &i in &sample {
        let own = labels[i];
        if sizes[own] < 2 {
            continue;
        }
        dist_sums.iter_mut().for_each(|s| *s = 0.0);
        let xi = row(i);
        for (j, &lj) in labels.iter().enumerate() {
            let dist2: f64 = xi.iter().zip(row(j)).map(|(a, b)| (a - b) * (a - b)).sum();
            dist_sums[lj] += dist2.sqrt();
        }
        let a = dist_sums[own] / (sizes[own] - 1) as f64;
        let b =
            (0..n_clusters).filter(|&c| c != own).map(|c| dist_sums[c] / sizes[c] as f64).fold(f64::INFINITY, f64::min);
        let denom = a.max(b);
        if denom > 0.0 {
            total += (b - a) / denom;
        }
    }
    total / sample.len() as f64
}

/// `matrix[[actual, predicted]]` counts.
///
/// Pairs with a label `>= n_classes` are skipped, as are pairs beyond the shorter slice.
pub fn confusion_matrix(actual: &[usize], predicted: &[usize], n_classes: usize) -> Array2<usize> {
    let mut m = Array2::zeros((n_classes, n_classes));
    for (&a, &p) in actual.iter().zip(predicted) {
        if a < n_classes && p < n_classes {
            m[[a, p]] += 1;
        }
    }
    m
}

/// Share of positions where `predicted` equals `actual`; 0.0 for empty input.
pub fn accuracy(actual: &[usize], predicted: &[usize]) -> f64 {
    let n = actual.len().min(predicted.len());
    let correct = actual.iter().zip(predicted).filter(|(a, p)| a == p).count();
    ratio(correct, n, 0.0)
}

/// Unweighted mean of per-class F1 over the classes that occur in `actual` or `predicted`.
///
/// Skipping classes absent from both keeps a fixed `n_classes` from diluting the score. Labels `>= n_classes`
/// are skipped. Returns 0.0 when no class occurs.
pub fn macro_f1(actual: &[usize], predicted: &[usize], n_classes: usize) -> f64 {
    let m = confusion_matrix(actual, predicted, n_classes);
    let (mut sum, mut count) = (0.0, 0);
    for c in 0..n_classes {
        let tp = m[[c, c]];
        let actual_c: usize = m.row(c).sum();
        let predicted_c: usize = m.column(c).sum();
        if actual_c + predicted_c == 0 {
            continue;
        }
        // F1 = 2tp / (2tp + fp + fn) = 2tp / (|actual c| + |predicted c|)
        sum += 2.0 * tp as f64 / (actual_c + predicted_c) as f64;
        count += 1;
    }
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_difference_matches_its_aucs_and_delong_se() {
        // Hand check: identical scores differ by 0 with SE 0.
        let y = [true, false, true, false, true, false];
        let a = [0.9, 0.1, 0.8, 0.4, 0.3, 0.35];
        let (d, se) = auc_difference(&a, &a, &y).unwrap();
        assert_eq!((d, se), (0.0, 0.0));
        // Against the AUCs and a bootstrap of the difference on generated scores.
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 2000;
        let y: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.3)).collect();
        let signal: Vec<f64> = y.iter().map(|&l| if l { 1.0 } else { 0.0 } + rng.gen_range(-1.5..1.5)).collect();
        let a: Vec<f64> = signal.iter().map(|s| s + rng.gen_range(-0.5..0.5)).collect();
        let b: Vec<f64> = signal.iter().map(|s| s + rng.gen_range(-1.0..1.0)).collect();
        let (d, se) = auc_difference(&a, &b, &y).unwrap();
        assert!((d - (roc_auc(&a, &y).unwrap() - roc_auc(&b, &y).unwrap())).abs() < 1e-12);
        let boot: Vec<f64> = (0..300)
            .map(|_| {
                let idx: Vec<usize> = (0..n).map(|_| rng.gen_range(0..n)).collect();
                let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
                let yy: Vec<bool> = idx.iter().map(|&i| y[i]).collect();
                roc_auc(&pick(&a), &yy).unwrap() - roc_auc(&pick(&b), &yy).unwrap()
            })
            .collect();
        let m = boot.iter().sum::<f64>() / boot.len() as f64;
        let boot_se = (boot.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (boot.len() - 1) as f64).sqrt();
        assert!((se / boot_se - 1.0).abs() < 0.2, "DeLong {se} vs bootstrap {boot_se}");
    }
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    const T: bool = true;
    const F: bool = false;

    #[test]
    fn roc_auc_without_ties() {
        // Positives 0.35, 0.8 vs negatives 0.1, 0.4: 0.35 beats 0.1 only, 0.8 beats both -> 3/4.
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[F, F, T, T]).unwrap();
        assert_abs_diff_eq!(auc, 0.75, epsilon = 1e-12);
    }

    #[test]
    fn roc_auc_ties_across_classes_get_half_credit() {
        // Positives 0.5, 0.9 vs negatives 0.5, 0.2: (0.5 vs 0.5) = 0.5, (0.5 vs 0.2) = 1, 0.9 beats both = 2
        // -> 3.5 / 4. Ranks: 0.2 -> 1, the two 0.5s -> 2.5, 0.9 -> 4; U = (2.5 + 4) - 3 = 3.5.
        let auc = roc_auc(&[0.5, 0.5, 0.2, 0.9], &[T, F, F, T]).unwrap();
        assert_abs_diff_eq!(auc, 0.875, epsilon = 1e-12);
        // All scores tied: every pair is half credit.
        let auc = roc_auc(&[0.3; 5], &[T, F, F, T, F]).unwrap();
        assert_abs_diff_eq!(auc, 0.5, epsilon = 1e-12);
    }

    #[test]
    fn roc_auc_errors() {
        assert!(roc_auc(&[0.1, 0.2], &[T, T]).is_err());
        assert!(roc_auc(&[0.1, 0.2], &[F, F]).is_err());
        assert!(roc_auc(&[], &[]).is_err());
        assert!(roc_auc(&[0.1], &[T, F]).is_err());
        assert!(roc_auc(&[0.1, f64::NAN], &[T, F]).is_err());
    }

    #[test]
    fn roc_curve_points_by_hand() {
        // Descending: 0.8 (T) -> (0, .5); 0.4 (F) -> (.5, .5); 0.35 (T) -> (.5, 1); 0.1 (F) -> (1, 1).
        let curve = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[F, F, T, T]);
        let got: Vec<(f64, f64, f64)> = curve.iter().map(|p| (p.threshold, p.fpr, p.tpr)).collect();
        assert_eq!(
            got,
            vec![(f64::INFINITY, 0.0, 0.0), (0.8, 0.0, 0.5), (0.4, 0.5, 0.5), (0.35, 0.5, 1.0), (0.1, 1.0, 1.0)]
        );
    }

    #[test]
    fn roc_curve_collapses_ties_and_matches_auc() {
        let (scores, labels) = ([0.5, 0.5, 0.2, 0.9], [T, F, F, T]);
        let curve = roc_curve(&scores, &labels);
        assert_eq!(curve.len(), 4); // start, 0.9, 0.5 (both rows), 0.2
        assert_eq!((curve[2].fpr, curve[2].tpr), (0.5, 1.0));
        let last = curve.last().unwrap();
        assert_eq!((last.fpr, last.tpr), (1.0, 1.0));
        let area: f64 = curve.windows(2).map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0).sum();
        assert_abs_diff_eq!(area, roc_auc(&scores, &labels).unwrap(), epsilon = 1e-12);
    }

    #[test]
    fn cutoff_table_counts_by_hand() {
        let scores = [0.1, 0.4, 0.35, 0.8];
        let labels = [F, F, T, T];
        let rows = cutoff_table(&scores, &labels, &[0.0, 0.35, 0.4, 0.9]);
        let counts: Vec<_> = rows.iter().map(|r| (r.tp, r.fp, r.tn, r.fn_)).collect();
        // >= 0.0: all positive. >= 0.35: 0.35 T, 0.4 F, 0.8 T. >= 0.4: 0.4 F, 0.8 T. >= 0.9: none.
        assert_eq!(counts, vec![(2, 2, 0, 0), (2, 1, 1, 0), (1, 1, 1, 1), (0, 0, 2, 2)]);
        let r = &rows[1];
        assert_abs_diff_eq!(r.precision, 2.0 / 3.0, epsilon = 1e-12);
        assert_abs_diff_eq!(r.recall, 1.0, epsilon = 1e-12);
        assert_abs_diff_eq!(r.false_positive_rate, 0.5, epsilon = 1e-12);
        assert_abs_diff_eq!(r.accuracy, 0.75, epsilon = 1e-12);
        // Nothing predicted positive: no false alarms, so precision is 1.
        assert_eq!((rows[3].precision, rows[3].recall, rows[3].false_positive_rate), (1.0, 0.0, 0.0));
        assert_eq!(rows[3].accuracy, 0.5);
    }

    #[test]
    fn rmse_by_hand() {
        // Errors 0, -2, 3 -> squares 0, 4, 9 -> sqrt(13 / 3).
        let r = rmse(&[1.0, 2.0, 3.0], &[1.0, 4.0, 0.0]).unwrap();
        assert_abs_diff_eq!(r, (13.0f64 / 3.0).sqrt(), epsilon = 1e-12);
        assert_abs_diff_eq!(r, 2.081_665_999_466_133, epsilon = 1e-12);
        assert!(rmse(&[], &[]).is_err());
        assert!(rmse(&[1.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn precision_at_k_by_hand() {
        let relevant: HashSet<u32> = [1, 3, 6].into_iter().collect();
        let rec = [1, 2, 3, 4, 5];
        assert_abs_diff_eq!(precision_at_k(&rec, &relevant, 3), 2.0 / 3.0, epsilon = 1e-12);
        assert_abs_diff_eq!(precision_at_k(&rec, &relevant, 5), 0.4, epsilon = 1e-12);
        // Short list: still divided by k.
        assert_abs_diff_eq!(precision_at_k(&rec, &relevant, 10), 0.2, epsilon = 1e-12);
        assert_eq!(precision_at_k(&rec, &relevant, 0), 0.0);
        // Duplicates count once.
        assert_abs_diff_eq!(precision_at_k(&[1, 1, 1], &relevant, 3), 1.0 / 3.0, epsilon = 1e-12);
    }

    #[test]
    fn ndcg_at_k_by_hand() {
        let relevant: HashSet<u32> = [1, 3, 6].into_iter().collect();
        // Hits at positions 0 and 2: DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5.
        // Ideal (3 hits first): 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.630930 + 0.5 = 2.130930.
        // NDCG = 1.5 / 2.130930 = 0.703918.
        let got = ndcg_at_k(&[1, 2, 3, 4, 5], &relevant, 5);
        assert_abs_diff_eq!(got, 0.703_918_089_034_134_7, epsilon = 1e-12);
        // k = 2: DCG = 1 (hit at 0); ideal = 1 + 1/log2(3) = 1.630930 -> 0.613147.
        let got = ndcg_at_k(&[1, 2, 3, 4, 5], &relevant, 2);
        assert_abs_diff_eq!(got, 1.0 / (1.0 + 1.0 / 3f64.log2()), epsilon = 1e-12);
        // Perfect ordering scores 1; nothing relevant scores 0.
        assert_abs_diff_eq!(ndcg_at_k(&[6, 3, 1, 9], &relevant, 4), 1.0, epsilon = 1e-12);
        assert_eq!(ndcg_at_k(&[1, 2], &HashSet::new(), 2), 0.0);
        assert_eq!(ndcg_at_k(&[1, 2], &relevant, 0), 0.0);
        assert!(ndcg_at_k(&[1, 1, 1], &relevant, 3) <= 1.0);
    }

    #[test]
    fn sse_by_hand() {
        let data = array![[0.0, 0.0], [2.0, 0.0], [10.0, 10.0]];
        let centroids = array![[1.0, 0.0], [10.0, 10.0]];
        // 1 + 1 + 0
        assert_abs_diff_eq!(sse(data.view(), centroids.view(), &[0, 0, 1]), 2.0, epsilon = 1e-12);
    }

    #[test]
    fn silhouette_by_hand_1d() {
        // Points 0, 1 | 5, 6. Every a = 1. b: for 0 -> (5+6)/2 = 5.5, for 1 -> (4+5)/2 = 4.5 (symmetric
        // for 5 and 6). s = 4.5/5.5 = 9/11 and 3.5/4.5 = 7/9 twice each -> mean (9/11 + 7/9) / 2 = 79/99.
        let data = array![[0.0], [1.0], [5.0], [6.0]];
        let s = silhouette(data.view(), &[0, 0, 1, 1], 100, 0);
        assert_abs_diff_eq!(s, 79.0 / 99.0, epsilon = 1e-12);
        // Arbitrary label values give the same answer.
        assert_abs_diff_eq!(silhouette(data.view(), &[7, 7, 99, 99], 0, 0), 79.0 / 99.0, epsilon = 1e-12);
        assert_eq!(silhouette(data.view(), &[3, 3, 3, 3], 100, 0), 0.0);
    }

    #[test]
    fn silhouette_well_separated_sampled() {
        // Two tight clusters 1000 apart, 600 rows: near 1, sampled and seeded.
        let n = 600;
        let data = Array2::from_shape_fn((n, 2), |(i, j)| {
            let base = if i % 2 == 0 { 0.0 } else { 1000.0 };
            base + ((i * 7 + j * 13) % 10) as f64 * 0.1
        });
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let s1 = silhouette(data.view(), &labels, 100, 42);
        let s2 = silhouette(data.view(), &labels, 100, 42);
        assert_eq!(s1, s2);
        assert!(s1 > 0.99, "silhouette {s1}");
        let full = silhouette(data.view(), &labels, 0, 0);
        assert_abs_diff_eq!(s1, full, epsilon = 1e-3);
    }

    #[test]
    fn classification_metrics_by_hand() {
        let actual = [0, 0, 1, 1, 2];
        let predicted = [0, 1, 1, 1, 0];
        assert_eq!(confusion_matrix(&actual, &predicted, 3), array![[1, 1, 0], [0, 2, 0], [1, 0, 0]]);
        // Correct at 0, 2, 3.
        assert_abs_diff_eq!(accuracy(&actual, &predicted), 0.6, epsilon = 1e-12);
        // Class 0: tp 1, fp 1, fn 1 -> 2/4 = 0.5. Class 1: tp 2, fp 1, fn 0 -> 4/5 = 0.8.
        // Class 2: tp 0 -> 0. Class 3 absent from both -> skipped. Mean (0.5 + 0.8 + 0) / 3.
        assert_abs_diff_eq!(macro_f1(&actual, &predicted, 4), 1.3 / 3.0, epsilon = 1e-12);
        assert_eq!(accuracy(&[], &[]), 0.0);
        assert_eq!(macro_f1(&[], &[], 2), 0.0);
    }
}
