//! Newton's method as a resumable state machine over passes of the rows.
//!
//! The driver never sees a row: it asks for a pass (the loss, and optionally the gradient and
//! Hessian, at some parameters), and the rows' owners answer with their sums. On one machine the
//! answers come from [`RowPasses`](super::RowPasses) over the whole table; over partitions each
//! partition answers for its rows and the driver adds the answers up in partition order, so one
//! partition gives exactly the single-node fit. The driver serialises between passes, so an
//! orchestrator (threads here, a Step Functions loop around a Distributed Map on AWS) can run
//! each pass wherever the rows are.

use super::LogisticModel;
use super::LogisticParams;
use crate::dense::{cholesky_solve_augmented, padded_width, Width};
use crate::simd::{Narrow, PLAIN_HAS_FMA};
use crate::{MlError, Result};
use ndarray::{s, Array1, Array2};
use serde::{Deserialize, Serialize};

/// Rows from which the driver fits a sample of every [`WARM_START_STRIDE`]-th row first: that
/// optimum is within about `1 / sqrt(rows / stride)` of the full one, so Newton on all rows needs
/// two or three passes instead of five or six, for the price of about half a pass.
pub(crate) const WARM_START_MIN_ROWS: usize = 200_000;
pub const WARM_START_STRIDE: usize = 16;
/// Sample levels counted per partition: level `k` holds the rows whose global index is a multiple
/// of `16^k`, and `16^15` exceeds any row index.
pub const SAMPLE_LEVELS: usize = 16;

/// A pass the driver wants: at `beta` (`[coef..., intercept]`), over the rows of sample `level`
/// (see [`SAMPLE_LEVELS`]; their weights scaled by `16^level`), each row weighted by its class
/// weight (`class_weights`: positive, negative) times its sample weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRequest {
    pub level: usize,
    pub beta: Vec<f64>,
    pub derivatives: bool,
    pub class_weights: [f64; 2],
}

/// One partition's answer to a [`PassRequest`]: its summed weighted log loss (no penalty) and,
/// when asked for, gradient and the upper triangle of the Hessian, row by row (`d + 1` values
/// for coefficients and intercept; empty otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassSums {
    pub loss: f64,
    pub grad: Vec<f64>,
    pub hessian: Vec<f64>,
}

/// Rows, positives and the sample weight of each class among one sample level's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelCounts {
    pub rows: usize,
    pub positives: usize,
    pub positive_weight: f64,
    pub negative_weight: f64,
}

/// A partition's (or, merged, the table's) [`LevelCounts`] for every sample level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartCounts {
    pub levels: Vec<LevelCounts>,
}

impl PartCounts {
    /// The level-wise sums of `parts`, added in the order given.
    pub fn merge<'a>(parts: impl IntoIterator<Item = &'a PartCounts>) -> PartCounts {
        let mut levels = vec![LevelCounts::default(); SAMPLE_LEVELS];
        for part in parts {
            for (total, c) in levels.iter_mut().zip(&part.levels) {
                total.rows += c.rows;
                total.positives += c.positives;
                total.positive_weight += c.positive_weight;
                total.negative_weight += c.negative_weight;
            }
        }
        PartCounts { levels }
    }

    fn level(&self, k: usize) -> LevelCounts {
        self.levels.get(k).copied().unwrap_or_default()
    }
}

/// Where the solve stands: which pass it waits for, and what it needs to go on from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Phase {
    /// Fitting the next sample level for a start.
    WarmStart(Box<NewtonDriver>),
    /// Waiting for loss and derivatives at the start.
    Start {
        beta: Array1<f64>,
    },
    /// Waiting for the full step's loss (and derivatives, unless that step would end the solve).
    Full {
        beta: Array1<f64>,
        loss: f64,
        step: Array1<f64>,
        decrease: f64,
        with_derivatives: bool,
    },
    /// Waiting for the loss at `beta - t step` (the `tries`-th halving).
    Backtrack {
        beta: Array1<f64>,
        loss: f64,
        step: Array1<f64>,
        decrease: f64,
        t: f64,
        tries: usize,
    },
    /// Waiting for the derivatives at an accepted backtracking step (the loss is known).
    Derivatives {
        beta: Array1<f64>,
        loss: f64,
    },
    Done {
        beta: Array1<f64>,
    },
}

/// Newton's method (IRLS) with an Armijo backtracking line search, driven pass by pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewtonDriver {
    l2: f64,
    max_iter: usize,
    tol: f64,
    d: usize,
    level: usize,
    class_weights: [f64; 2],
    steps: usize,
    phase: Phase,
}

impl NewtonDriver {
    /// A solve of `d` coefficients over rows counted by `counts` (all partitions merged), from
    /// `start` when given, else from a fit of a sample when there are many rows, else from the
    /// weighted base rate. Errors when a class has no rows or no weight.
    pub fn new(params: &LogisticParams, d: usize, counts: &PartCounts, start: Option<&LogisticModel>) -> Result<Self> {
        Self::with_warm_start_rows(params, d, counts, start, WARM_START_MIN_ROWS)
    }

    pub(crate) fn with_warm_start_rows(
        params: &LogisticParams,
        d: usize,
        counts: &PartCounts,
        start: Option<&LogisticModel>,
        warm_start_min_rows: usize,
    ) -> Result<Self> {
        params.validate_params()?;
        let all = counts.level(0);
        let (n_pos, n_neg) = (all.positives, all.rows - all.positives);
        if n_pos == 0 || n_neg == 0 {
            return Err(MlError::InvalidInput(format!(
                "logistic: `y` needs both classes (got {n_pos} true, {n_neg} false)"
            )));
        }
        if all.positive_weight <= 0.0 || all.negative_weight <= 0.0 {
            return Err(MlError::InvalidInput(
                "logistic: `sample_weight` leaves a class with zero total weight".into(),
            ));
        }
        let n = all.rows as f64;
        let class_weights = match params.class_weight {
            super::ClassWeight::None => [1.0, 1.0],
            super::ClassWeight::Balanced => [n / (2.0 * n_pos as f64), n / (2.0 * n_neg as f64)],
        };
        if let Some(start) = start {
            if start.coef.len() != d {
                return Err(MlError::InvalidInput(format!(
                    "logistic: the start has {} coefficients for {d} columns",
                    start.coef.len()
                )));
            }
        }
        let start = start.map(|m| m.coef.iter().copied().chain([m.intercept]).collect());
        Ok(Self::at_level(params, d, counts, class_weights, 0, start, warm_start_min_rows))
    }

    fn at_level(
        params: &LogisticParams,
        d: usize,
        counts: &PartCounts,
        class_weights: [f64; 2],
        level: usize,
        start: Option<Array1<f64>>,
        warm_start_min_rows: usize,
    ) -> Self {
        let (here, sample) = (counts.level(level), counts.level(level + 1));
        let enough = 10 * (d + 1);
        let phase = match start {
            Some(beta) => Phase::Start { beta },
            None if here.rows >= warm_start_min_rows
                && level + 1 < SAMPLE_LEVELS
                && sample.positives >= enough
                && sample.rows - sample.positives >= enough =>
            {
                let inner = Self::at_level(params, d, counts, class_weights, level + 1, None, warm_start_min_rows);
                Phase::WarmStart(Box::new(inner))
            }
            None => {
                // The weighted base rate: the exact optimum when no feature helps.
                let positive = class_weights[0] * here.positive_weight;
                let negative = class_weights[1] * here.negative_weight;
                let rate = (positive / (positive + negative)).clamp(1e-12, 1.0 - 1e-12);
                let mut beta = Array1::zeros(d + 1);
                beta[d] = (rate / (1.0 - rate)).ln();
                Phase::Start { beta }
            }
        };
        let LogisticParams { l2, max_iter, tol, .. } = *params;
        Self { l2, max_iter, tol, d, level, class_weights, steps: 0, phase }
    }

    /// The pass to run next, or `None` when the solve has ended.
    pub fn request(&self) -> Option<PassRequest> {
        let (beta, derivatives) = match &self.phase {
            Phase::WarmStart(inner) => return inner.request(),
            Phase::Start { beta } | Phase::Derivatives { beta, .. } => (beta.clone(), true),
            Phase::Full { beta, step, with_derivatives, .. } => (beta - step, *with_derivatives),
            Phase::Backtrack { beta, step, t, .. } => (beta - &(step * *t), false),
            Phase::Done { .. } => return None,
        };
        Some(PassRequest { level: self.level, beta: beta.to_vec(), derivatives, class_weights: self.class_weights })
    }

    /// Takes every partition's answer to [`request`](Self::request), in partition order.
    pub fn feed(&mut self, answers: &[PassSums]) -> Result<()> {
        if let Phase::WarmStart(inner) = &mut self.phase {
            inner.feed(answers)?;
            if let Phase::Done { beta } = &inner.phase {
                self.phase = Phase::Start { beta: beta.clone() };
            }
            return Ok(());
        }
        let request = self.request().ok_or_else(|| MlError::InvalidInput("logistic: the solve has ended".into()))?;
        let beta = Array1::from(request.beta);
        let (loss, derivatives) = self.add_up(&beta, request.derivatives, answers)?;
        let phase = std::mem::replace(&mut self.phase, Phase::Done { beta: Array1::zeros(0) });
        self.phase = match phase {
            Phase::WarmStart(_) => unreachable!("fed above"),
            Phase::Start { .. } => self.step_from(beta, loss, derivatives.expect("asked for")),
            Phase::Derivatives { loss, .. } => self.step_from(beta, loss, derivatives.expect("asked for")),
            Phase::Full { beta: from, loss: from_loss, step, decrease, .. } => {
                if sufficient(from_loss, decrease, 1.0, loss) {
                    // The full step's own test: it moved within tolerance.
                    if converged(max_abs(&step), &beta, self.tol) {
                        Phase::Done { beta }
                    } else {
                        self.step_from(beta, loss, derivatives.expect("asked for unless converged"))
                    }
                } else {
                    Phase::Backtrack { beta: from, loss: from_loss, step, decrease, t: 0.5, tries: 1 }
                }
            }
            Phase::Backtrack { beta: from, loss: from_loss, step, decrease, t, tries } => {
                if sufficient(from_loss, decrease, t, loss) {
                    let moved = max_abs(&step) * t;
                    if moved <= self.tol * scale(&beta) {
                        Phase::Done { beta }
                    } else {
                        Phase::Derivatives { beta, loss }
                    }
                } else if tries + 1 >= MAX_HALVINGS {
                    Phase::Done { beta: from }
                } else {
                    Phase::Backtrack { beta: from, loss: from_loss, step, decrease, t: t * 0.5, tries: tries + 1 }
                }
            }
            Phase::Done { beta } => Phase::Done { beta },
        };
        Ok(())
    }

    /// The fitted model once the solve has ended.
    pub fn model(&self) -> Option<LogisticModel> {
        match &self.phase {
            Phase::Done { beta } => {
                Some(LogisticModel { coef: beta.slice(s![..self.d]).to_owned(), intercept: beta[self.d] })
            }
            _ => None,
        }
    }

    /// Newton steps taken so far (at this level).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// After the derivatives at `beta`: the next Newton step, or the end.
    fn step_from(&mut self, beta: Array1<f64>, loss: f64, (grad, hess): (Array1<f64>, Array2<f64>)) -> Phase {
        if self.steps >= self.max_iter {
            return Phase::Done { beta };
        }
        self.steps += 1;
        let step = solve_spd(hess, &grad);
        let decrease = grad.dot(&step);
        if decrease.is_nan() || decrease <= 0.0 {
            return Phase::Done { beta }; // no descent direction left at machine precision
        }
        // The full step nearly always passes, so its pass also forms the derivatives there: on
        // data larger than the caches every pass is bound by memory bandwidth, and this halves
        // the passes per step. When the full step would end the solve, its derivatives would
        // go unused: it asks for the loss alone.
        let with_derivatives = !converged(max_abs(&step), &(&beta - &step), self.tol);
        Phase::Full { beta, loss, step, decrease, with_derivatives }
    }

    /// The penalised loss at `beta` and, when asked for, gradient and Hessian (penalty
    /// included), from the partitions' sums added up in order.
    #[allow(clippy::type_complexity)]
    fn add_up(
        &self,
        beta: &Array1<f64>,
        derivatives: bool,
        answers: &[PassSums],
    ) -> Result<(f64, Option<(Array1<f64>, Array2<f64>)>)> {
        let d = self.d;
        let penalty = 0.5 * self.l2 * beta.slice(s![..d]).iter().map(|c| c * c).sum::<f64>();
        let loss = answers.iter().map(|a| a.loss).sum::<f64>() + penalty;
        if !derivatives {
            return Ok((loss, None));
        }
        let triangle = (d + 1) * (d + 2) / 2;
        let mut grad = Array1::zeros(d + 1);
        let mut upper = vec![0.0; triangle];
        for (p, answer) in answers.iter().enumerate() {
            if answer.grad.len() != d + 1 || answer.hessian.len() != triangle {
                return Err(MlError::InvalidInput(format!(
                    "logistic: partition {p} answered {} gradient and {} Hessian values for {d} columns",
                    answer.grad.len(),
                    answer.hessian.len()
                )));
            }
            grad.iter_mut().zip(&answer.grad).for_each(|(a, b)| *a += b);
            upper.iter_mut().zip(&answer.hessian).for_each(|(a, b)| *a += b);
        }
        // Row i of the upper triangle starts after the rows above it: i (d + 1) - i (i - 1) / 2.
        let at = |i: usize, j: usize| upper[i * (d + 1) - i * i.saturating_sub(1) / 2 + (j - i)];
        let mut hess = Array2::from_shape_fn((d + 1, d + 1), |(i, j)| at(i.min(j), i.max(j)));
        for j in 0..d {
            grad[j] += self.l2 * beta[j];
            hess[[j, j]] += self.l2;
        }
        Ok((loss, Some((grad, hess))))
    }
}

/// Backtracking halvings of a step before the solve gives up on it.
const MAX_HALVINGS: usize = 40;

/// Armijo condition, with rounding slack so a step at machine precision is not refused.
fn sufficient(loss: f64, decrease: f64, t: f64, trial_loss: f64) -> bool {
    trial_loss <= loss - 1e-4 * t * decrease + 1e-14 * loss.abs()
}

/// `max(1, |v|_inf)`: the scale the tolerance is relative to.
fn scale(v: &Array1<f64>) -> f64 {
    v.iter().fold(1.0f64, |m, x| m.max(x.abs()))
}

/// Largest absolute value of `v`.
fn max_abs(v: &Array1<f64>) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// Whether a full Newton step that moved the parameters by at most `moved` (to `next`) ends the
/// solve: it moved within tolerance, or, since near the optimum a full step squares the error
/// (observed constant ~2 here), `10 moved^2` is within tolerance and the next step would be too.
fn converged(moved: f64, next: &Array1<f64>, tol: f64) -> bool {
    let scale = scale(next);
    moved <= tol * scale || 10.0 * moved * moved <= tol * scale
}

/// Solves `a x = b` for symmetric positive (semi-)definite `a` by Cholesky after Jacobi scaling (so
/// features on very different scales do not ruin the factorisation). A singular `a` (collinear columns
/// with no penalty) gets a growing ridge until it factorises.
fn solve_spd(mut a: Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let p = b.len();
    let scale: Array1<f64> = a.diag().mapv(|v| if v > 0.0 { 1.0 / v.sqrt() } else { 1.0 });
    for i in 0..p {
        for j in 0..p {
            a[[i, j]] *= scale[i] * scale[j];
        }
    }
    let rhs = b * &scale;
    // `[a + ridge I | rhs]` in the layout of the dense Cholesky kernel (upper triangle).
    let width = padded_width(p + 1);
    let mut aug = vec![0.0; width * width];
    let mut x = vec![0.0; width];
    let mut ridge = 0.0;
    loop {
        aug.fill(0.0);
        for i in 0..p {
            for j in i..p {
                aug[i * width + j] = a[[i, j]];
            }
            aug[i * width + i] += ridge;
            aug[i * width + p] = rhs[i];
        }
        let min_pivot = cholesky_solve_augmented::<PLAIN_HAS_FMA, _>(Narrow, &mut aug, Width::packed(width), p, &mut x);
        // Numerically positive definite (a NaN pivot fails too).
        if min_pivot > 1e-12 * (1.0 + ridge) {
            return Array1::from_iter(x[..p].iter().zip(&scale).map(|(x, s)| x * s));
        }
        ridge = if ridge == 0.0 { 1e-10 } else { ridge * 100.0 };
        if ridge > 1e10 {
            return Array1::zeros(p);
        }
    }
}
