//! L2 logistic regression on sparse rows with per-row weights, by truncated Newton (Newton-CG)
//! in the primal, as liblinear's `-s 0` solves it.
//!
//! The objective is `0.5 (|w|^2 + b^2) + C * sum_i weight_i * log(1 + exp(-y_i (w.x_i + b)))`:
//! the bias is a constant feature of value 1, regularised like liblinear's `-B 1`. A row with
//! weight `k` is exactly `k` copies of itself, so a log compressed into distinct rows with counts
//! fits the model of the log row by row. Each Newton step solves `H s = -g` by conjugate gradient
//! with Hessian-vector products (`H v = v + X' D X v`, never forming `H`), so a step costs a few
//! passes over the stored entries whatever the number of columns, and the step length comes from
//! a backtracking (Armijo) line search. The primal converges to the optimum whatever the weights;
//! dual coordinate descent slows down as `C * weight` grows, which counted rows make large.

use super::sigmoid;
use crate::sparse::CsrMatrix;

/// The solver stops when the gradient's norm falls below this share of its norm at zero.
const GRADIENT_TOLERANCE: f64 = 1e-6;
/// Conjugate-gradient iterations per Newton step at most.
const MAX_CG: usize = 100;

/// `log(1 + exp(-m))` without overflow.
fn log_loss_of_margin(m: f64) -> f64 {
    if m > 0.0 {
        (-m).exp().ln_1p()
    } else {
        -m + m.exp().ln_1p()
    }
}

struct Problem<'a> {
    x: &'a CsrMatrix,
    /// +1 / -1 per row.
    y: Vec<f64>,
    /// `C * weight` per row.
    cost: Vec<f64>,
}

impl Problem<'_> {
    /// `x_i . w + b` for every row; `wb` is `[w..., b]`.
    fn margins(&self, wb: &[f64]) -> Vec<f64> {
        let b = wb[self.x.n_cols];
        (0..self.x.n_rows())
            .map(|i| {
                let (idx, val) = self.x.row(i);
                idx.iter().zip(val).map(|(&j, &v)| wb[j as usize] * f64::from(v)).sum::<f64>() + b
            })
            .collect()
    }

    fn objective(&self, wb: &[f64], z: &[f64]) -> f64 {
        let penalty = 0.5 * wb.iter().map(|v| v * v).sum::<f64>();
        penalty + z.iter().zip(&self.y).zip(&self.cost).map(|((z, y), c)| c * log_loss_of_margin(y * z)).sum::<f64>()
    }

    /// `out = v + X' u` in the `[w..., b]` layout.
    fn add_transposed(&self, v: &[f64], u: &[f64], out: &mut [f64]) {
        out.copy_from_slice(v);
        let d = self.x.n_cols;
        for (i, &ui) in u.iter().enumerate() {
            if ui == 0.0 {
                continue;
            }
            let (idx, val) = self.x.row(i);
            for (&j, &xv) in idx.iter().zip(val) {
                out[j as usize] += ui * f64::from(xv);
            }
            out[d] += ui;
        }
    }
}

/// Fits `[w..., b]` on `x` (rows) and `y`, each row's loss weighted by `weight[i]` (1 when None)
/// and scaled by `c`; at most `max_steps` Newton steps.
///
/// Columns without a stored entry have weight 0 at the optimum (their gradient is the weight
/// itself), so the solver works on the used columns only: hashed features use a few thousand of
/// their 2^18 columns.
pub(crate) fn fit_sparse_logistic(
    x: &CsrMatrix,
    y: &[bool],
    weight: Option<&[f64]>,
    c: f64,
    max_steps: usize,
) -> (Vec<f32>, f32) {
    let mut used: Vec<u32> = x.indices.clone();
    used.sort_unstable();
    used.dedup();
    let mut compact_of = vec![u32::MAX; x.n_cols];
    for (k, &j) in used.iter().enumerate() {
        compact_of[j as usize] = k as u32;
    }
    // The map keeps the order of columns, so each row's indices stay sorted.
    let compact = CsrMatrix {
        n_cols: used.len(),
        indptr: x.indptr.clone(),
        indices: x.indices.iter().map(|&j| compact_of[j as usize]).collect(),
        data: x.data.clone(),
    };
    let (w_used, b) = fit_compact(&compact, y, weight, c, max_steps);
    let mut w = vec![0.0; x.n_cols];
    for (&j, v) in used.iter().zip(w_used) {
        w[j as usize] = v;
    }
    (w, b)
}

fn fit_compact(x: &CsrMatrix, y: &[bool], weight: Option<&[f64]>, c: f64, max_steps: usize) -> (Vec<f32>, f32) {
    let n = x.n_rows();
    let p = Problem {
        x,
        y: y.iter().map(|&l| if l { 1.0 } else { -1.0 }).collect(),
        cost: (0..n).map(|i| c * weight.map_or(1.0, |w| w[i])).collect(),
    };
    let d = x.n_cols + 1;
    let mut wb = vec![0.0; d];
    let mut z = p.margins(&wb);
    let mut f = p.objective(&wb, &z);
    let mut grad = vec![0.0; d];
    let mut g0 = None;
    for _ in 0..max_steps {
        // Gradient: w + X' (c_i (sigma(y_i z_i) - 1) y_i); curvature D_i = c_i s_i (1 - s_i).
        let (mut u, mut curvature) = (vec![0.0; n], vec![0.0; n]);
        for i in 0..n {
            let s = sigmoid(p.y[i] * z[i]);
            u[i] = p.cost[i] * (s - 1.0) * p.y[i];
            curvature[i] = p.cost[i] * s * (1.0 - s);
        }
        p.add_transposed(&wb, &u, &mut grad);
        let g_norm = norm(&grad);
        let g0 = *g0.get_or_insert(g_norm);
        if g_norm <= GRADIENT_TOLERANCE * g0 || g_norm == 0.0 {
            break;
        }
        let step = conjugate_gradient(&p, &curvature, &grad, g_norm);
        // Backtracking line search on the objective (Armijo, sufficient decrease 1e-2).
        let slope: f64 = grad.iter().zip(&step).map(|(g, s)| g * s).sum();
        let mut t = 1.0;
        let moved = loop {
            let next: Vec<f64> = wb.iter().zip(&step).map(|(w, s)| w + t * s).collect();
            let z_next = p.margins(&next);
            let f_next = p.objective(&next, &z_next);
            if f_next <= f + 1e-2 * t * slope {
                wb = next;
                z = z_next;
                f = f_next;
                break true;
            }
            t *= 0.5;
            if t < 1e-10 {
                break false;
            }
        };
        if !moved {
            break;
        }
    }
    let b = wb.pop().unwrap_or(0.0);
    (wb.into_iter().map(|v| v as f32).collect(), b as f32)
}

/// Approximately solves `H s = -g` (`H v = v + X' D X v`), stopping when the residual is below
/// `min(0.5, sqrt(|g|)) |g|` (the truncated Newton rule: loose far from the optimum, tight near it).
fn conjugate_gradient(p: &Problem, curvature: &[f64], grad: &[f64], g_norm: f64) -> Vec<f64> {
    let d = grad.len();
    let tolerance = 0.5f64.min(g_norm.sqrt()) * g_norm;
    let mut s = vec![0.0; d];
    let mut r: Vec<f64> = grad.iter().map(|g| -g).collect();
    let mut dir = r.clone();
    let mut rr: f64 = r.iter().map(|v| v * v).sum();
    let mut hd = vec![0.0; d];
    for _ in 0..MAX_CG {
        if rr.sqrt() <= tolerance {
            break;
        }
        let xd: Vec<f64> = p.margins(&dir).iter().zip(curvature).map(|(v, c)| v * c).collect();
        p.add_transposed(&dir, &xd, &mut hd);
        let alpha = rr / dir.iter().zip(&hd).map(|(a, b)| a * b).sum::<f64>();
        for k in 0..d {
            s[k] += alpha * dir[k];
            r[k] -= alpha * hd[k];
        }
        let rr_next: f64 = r.iter().map(|v| v * v).sum();
        let beta = rr_next / rr;
        rr = rr_next;
        for k in 0..d {
            dir[k] = r[k] + beta * dir[k];
        }
    }
    s
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[(u32, f32)]], n_cols: usize) -> CsrMatrix {
        let mut x = CsrMatrix::new(n_cols);
        for r in rows {
            x.push_row(&mut r.to_vec());
        }
        x
    }

    /// The gradient of the objective at the solver's answer is (near) zero.
    #[test]
    fn reaches_the_optimum_of_the_weighted_objective() {
        let x = matrix(&[&[(0, 1.0)], &[(0, 1.0)], &[(1, 1.0)], &[(0, 1.0), (1, 2.0)], &[(1, 0.5)]], 2);
        let y = [true, false, true, true, false];
        let weight = [3.0, 1.0, 2.0, 1.0, 5.0];
        let (w, b) = fit_sparse_logistic(&x, &y, Some(&weight), 0.7, 50);
        let wb: Vec<f64> = w.iter().map(|&v| f64::from(v)).chain([f64::from(b)]).collect();
        let mut grad = wb.clone();
        for i in 0..x.n_rows() {
            let (idx, val) = x.row(i);
            let yi = if y[i] { 1.0 } else { -1.0 };
            let z: f64 = idx.iter().zip(val).map(|(&j, &v)| wb[j as usize] * f64::from(v)).sum::<f64>() + wb[2];
            let u = 0.7 * weight[i] * (sigmoid(yi * z) - 1.0) * yi;
            for (&j, &v) in idx.iter().zip(val) {
                grad[j as usize] += u * f64::from(v);
            }
            grad[2] += u;
        }
        assert!(norm(&grad) < 1e-5, "gradient {grad:?} at {wb:?}");
    }

    /// Columns nobody uses keep weight 0 and the used ones land where they were.
    #[test]
    fn unused_columns_stay_zero() {
        let x = matrix(&[&[(3, 1.0)], &[(7, 1.0)], &[(3, 1.0), (7, 1.0)]], 10);
        let (w, _) = fit_sparse_logistic(&x, &[true, false, true], None, 1.0, 50);
        assert_eq!(w.len(), 10);
        assert!(w[3] > 0.1 && w[7] < -0.1, "{w:?}");
        assert!(w.iter().enumerate().all(|(j, &v)| j == 3 || j == 7 || v == 0.0), "{w:?}");
    }

    /// Weight k on a row is the row repeated k times.
    #[test]
    fn a_weighted_row_is_the_row_repeated() {
        let x = matrix(&[&[(0, 1.0)], &[(1, 1.0)], &[(0, 1.0), (1, 1.0)]], 2);
        let (counted, b_counted) = fit_sparse_logistic(&x, &[true, false, true], Some(&[4.0, 2.0, 1.0]), 1.0, 50);
        let repeated = matrix(
            &[&[(0, 1.0)], &[(0, 1.0)], &[(0, 1.0)], &[(0, 1.0)], &[(1, 1.0)], &[(1, 1.0)], &[(0, 1.0), (1, 1.0)]],
            2,
        );
        let y = [true, true, true, true, false, false, true];
        let (one_by_one, b_one) = fit_sparse_logistic(&repeated, &y, None, 1.0, 50);
        for (a, b) in counted.iter().chain([&b_counted]).zip(one_by_one.iter().chain([&b_one])) {
            assert!((a - b).abs() < 1e-5, "{counted:?} {b_counted} vs {one_by_one:?} {b_one}");
        }
    }
}
