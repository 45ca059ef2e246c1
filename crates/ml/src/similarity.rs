//! Content-based item-item similarity: cosine over sparse item feature rows.

use crate::sparse::CsrMatrix;

/// For every row, the `top_k` most similar other rows by cosine similarity (best first), skipping
/// similarities <= 0. Rows need not be normalised.
///
/// Rows are L2-normalised once, then each row's dot products with all others are accumulated
/// through an inverted index (column -> rows), so the cost is proportional to the number of
/// co-occurring non-zeros rather than to n^2 dense dot products. Ties break by lower row id so
/// the output is deterministic.
pub fn top_k_cosine(items: &CsrMatrix, top_k: usize) -> Vec<Vec<(u32, f32)>> {
    let n = items.n_rows();
    if top_k == 0 {
        return vec![Vec::new(); n];
    }
    let mut rows = items.clone();
    rows.l2_normalize_rows();
    let index = rows.transpose();

    // Rows in blocks, a block per job: each job owns its accumulator (results in row order).
    let blocks: Vec<std::ops::Range<usize>> =
        (0..n).step_by(SIMILARITY_BLOCK).map(|a| a..(a + SIMILARITY_BLOCK).min(n)).collect();
    let (rows, index) = (&rows, &index);
    crate::parallel::map(&blocks, |block| {
        let mut scores = vec![0f32; n];
        let mut touched: Vec<u32> = Vec::new();
        let mut candidates: Vec<(u32, f32)> = Vec::new();
        let mut out = Vec::with_capacity(block.len());
        for i in block.clone() {
            let (cols, vals) = rows.row(i);
            for (&c, &v) in cols.iter().zip(vals) {
                let (others, other_vals) = index.row(c as usize);
                for (&j, &w) in others.iter().zip(other_vals) {
                    let s = &mut scores[j as usize];
                    if *s == 0.0 {
                        touched.push(j);
                    }
                    *s += v * w;
                }
            }
            candidates.clear();
            for &j in &touched {
                // Reading resets the accumulator; a row pushed twice (its partial sum passed
                // through exactly 0.0) is then seen as 0 the second time and skipped.
                let s = std::mem::take(&mut scores[j as usize]);
                if s > 0.0 && j as usize != i {
                    candidates.push((j, s.min(1.0)));
                }
            }
            touched.clear();
            out.push(top_n(&mut candidates, top_k));
        }
        out
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Rows per job of [`top_k_cosine`]: a few hundred keeps the per-job accumulator worth its allocation.
const SIMILARITY_BLOCK: usize = 256;

/// The `k` best (score desc, id asc) entries of `candidates`, sorted best first.
fn top_n(candidates: &mut [(u32, f32)], k: usize) -> Vec<(u32, f32)> {
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k - 1, order);
    }
    let len = k.min(candidates.len());
    let best = &mut candidates[..len];
    best.sort_unstable_by(order);
    best.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[(u32, f32)]], n_cols: usize) -> CsrMatrix {
        let mut m = CsrMatrix::new(n_cols);
        for r in rows {
            m.push_row(&mut r.to_vec());
        }
        m
    }

    #[test]
    fn similarity_hand_example() {
        // 0 and 1 point the same way (cos 1), 2 is at 45 degrees to them, 3 is orthogonal to
        // everything but 4 (which is its negative), 5 is empty.
        let m = matrix(&[&[(0, 1.0)], &[(0, 3.0)], &[(0, 1.0), (1, 1.0)], &[(2, 2.0)], &[(2, -1.0)], &[]], 3);
        let sims = top_k_cosine(&m, 5);
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert_eq!(sims.len(), 6);
        assert_eq!(sims[0].iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!((sims[0][0].1 - 1.0).abs() < 1e-6);
        assert!((sims[0][1].1 - s).abs() < 1e-6);
        assert_eq!(sims[2].iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 1]);
        assert!((sims[2][0].1 - s).abs() < 1e-6 && (sims[2][1].1 - s).abs() < 1e-6);
        assert!(sims[3].is_empty(), "negative similarity is skipped");
        assert!(sims[4].is_empty());
        assert!(sims[5].is_empty());
    }

    #[test]
    fn similarity_truncates_to_top_k_and_never_includes_self() {
        let m = matrix(&[&[(0, 1.0), (1, 0.1)], &[(0, 1.0)], &[(0, 1.0), (1, 1.0)], &[(1, 1.0)]], 2);
        let sims = top_k_cosine(&m, 2);
        for (i, row) in sims.iter().enumerate() {
            assert!(row.len() <= 2);
            assert!(row.iter().all(|&(j, _)| j as usize != i));
            assert!(row.windows(2).all(|w| w[0].1 >= w[1].1));
        }
        assert_eq!(sims[0].iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!(top_k_cosine(&m, 0).iter().all(Vec::is_empty));
    }

    #[test]
    fn similarity_matches_brute_force() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (n, d) = (60, 25);
        let mut m = CsrMatrix::new(d);
        for _ in 0..n {
            let mut row = Vec::new();
            for c in 0..d as u32 {
                if rng.gen_bool(0.15) {
                    row.push((c, rng.gen_range(0.1f32..2.0)));
                }
            }
            m.push_row(&mut row);
        }
        let mut norm = m.clone();
        norm.l2_normalize_rows();
        let dense: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                let mut v = vec![0.0; d];
                let (c, x) = norm.row(i);
                c.iter().zip(x).for_each(|(&c, &x)| v[c as usize] = x);
                v
            })
            .collect();
        let sims = top_k_cosine(&m, 4);
        for i in 0..n {
            let mut all: Vec<(u32, f32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (j as u32, dense[i].iter().zip(&dense[j]).map(|(a, b)| a * b).sum::<f32>()))
                .filter(|e| e.1 > 0.0)
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(4);
            assert_eq!(sims[i].len(), all.len());
            for (a, b) in sims[i].iter().zip(&all) {
                assert!((a.1 - b.1).abs() < 1e-5, "row {i}: {a:?} vs {b:?}");
            }
        }
    }
}
