//! Binary logistic regression with L2 regularisation and class weights, fitted by Newton's
//! method on one table or over partitions of it ([`parts`]).

mod newton;
mod parts;
mod sparse;

pub use newton::{LevelCounts, NewtonDriver, PartCounts, PassRequest, PassSums, SAMPLE_LEVELS, WARM_START_STRIDE};
use parts::Tuning;
pub use parts::{LogisticPart, PartWorker};
pub(crate) use sparse::fit_sparse_logistic;

use crate::dense::{add_gram_upper, block_rows, first_non_finite, fmadd, padded_width, Width};
use crate::simd::{Kernel, Simd, Tiles};
use crate::{parallel, Fit, MlError, Predict, Result};
use linfa::dataset::DatasetBase;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, CowArray, Ix2};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// Every row weighs 1.
    #[default]
    None,
    /// Rows weigh n / (2 * n_class) so both classes weigh the same in total.
    Balanced,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticParams {
    /// L2 penalty strength on the coefficients (not the intercept), as in 0.5 * l2 * |w|^2 added to the
    /// (weighted) summed log loss.
    pub l2: f64,
    pub max_iter: usize,
    pub tol: f64,
    pub class_weight: ClassWeight,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self { l2: 1.0, max_iter: 100, tol: 1e-6, class_weight: ClassWeight::None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub coef: Array1<f64>,
    pub intercept: f64,
}

impl LogisticParams {
    /// As [`fit`](Self::fit), with per-row weights multiplied into the class weights.
    pub fn fit_weighted(&self, x: ArrayView2<f64>, y: &[bool], sample_weight: Option<&[f64]>) -> Result<LogisticModel> {
        self.solve(x, y, sample_weight, None)
    }

    /// As [`fit`](Self::fit), with Newton starting from `start` (its coefficients must match `x`'s
    /// columns): refitting on most of the same rows (cross-validation folds of a fitted set) from the
    /// whole set's optimum takes one or two Newton steps instead of four to six.
    pub fn fit_from(&self, x: ArrayView2<f64>, y: &[bool], start: &LogisticModel) -> Result<LogisticModel> {
        self.solve(x, y, None, Some(start))
    }

    fn solve(
        &self,
        x: ArrayView2<f64>,
        y: &[bool],
        sample_weight: Option<&[f64]>,
        start: Option<&LogisticModel>,
    ) -> Result<LogisticModel> {
        self.validate_params()?;
        self.fit_parts_from(&[LogisticPart::new(x.reborrow(), y, sample_weight, 0)?], start, Tuning::default())
    }

    pub(crate) fn validate_params(&self) -> Result<()> {
        let invalid = |name, reason: String| Err(MlError::InvalidParam { name, reason });
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return invalid("l2", format!("must be finite and non-negative, got {}", self.l2));
        }
        if self.max_iter == 0 {
            return invalid("max_iter", "must be at least 1".into());
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return invalid("tol", format!("must be finite and non-negative, got {}", self.tol));
        }
        Ok(())
    }
}

impl Fit for LogisticParams {
    type Data<'a> = (ArrayView2<'a, f64>, &'a [bool]);
    type Model = LogisticModel;

    /// Errors when y has a single class, lengths differ, or x has a non-finite value (found by
    /// the first pass over the rows rather than a pass of its own).
    ///
    /// Minimises the penalised weighted log loss by Newton's method (IRLS): with tens to hundreds of
    /// columns the (d+1)x(d+1) Hessian is cheap to form and solve, and Newton converges in a handful of
    /// passes over the rows where gradient methods need hundreds. A backtracking line search keeps every
    /// step a descent step. Hitting `max_iter` (e.g. separable data with `l2 == 0`) returns the current
    /// fit rather than an error.
    fn fit(&self, (x, y): (ArrayView2<'_, f64>, &[bool])) -> Result<LogisticModel> {
        self.fit_weighted(x, y, None)
    }
}

/// Lets logistic regression run inside linfa pipelines. Dataset weights, if any, become row weights.
impl linfa::traits::Fit<Array2<f64>, Array1<bool>, MlError> for LogisticParams {
    type Object = LogisticModel;

    fn fit(&self, dataset: &DatasetBase<Array2<f64>, Array1<bool>>) -> Result<LogisticModel> {
        let targets = dataset.targets().to_vec();
        let weights: Option<Vec<f64>> = dataset.weights().map(|w| w.iter().map(|&v| v as f64).collect());
        self.fit_weighted(dataset.records().view(), &targets, weights.as_deref())
    }
}

/// The rows of one partition (or of its warm-start sample) with their weights, and the passes
/// over them that answer a [`NewtonDriver`]'s requests. Parameters are `beta = [coef..., intercept]`.
pub(crate) struct RowPasses<'a> {
    /// The rows, in standard (row-major) layout: copied only if the caller's view is not.
    x: CowArray<'a, f64, Ix2>,
    /// Global index of the first row and the step between rows' global indices (for errors).
    global_rows: (usize, usize),
    y: Array1<f64>,
    w: Array1<f64>,
    d: usize,
    /// Linear predictor at `at`, and `exp(-|z|)`.
    z: Array1<f64>,
    e: Array1<f64>,
    /// Where the last moving pass left `z` and `e`, and the (unpenalised) loss there.
    at: Option<(Vec<f64>, f64)>,
    /// Row width of the blocks the Hessian is gathered in: `[x, 1]` padded to whole vectors.
    width: usize,
    simd: Simd,
    /// Threads for the passes over the rows (1 below [`PARALLEL_MIN_CELLS`]).
    pub(crate) threads: usize,
}

impl<'a> RowPasses<'a> {
    pub(crate) fn new(x: CowArray<'a, f64, Ix2>, global_rows: (usize, usize), y: Array1<f64>, w: Array1<f64>) -> Self {
        let (n, d) = x.dim();
        let width = padded_width(d + 1);
        let threads = if n.saturating_mul(d) < PARALLEL_MIN_CELLS { 1 } else { parallel::cores().min(MAX_THREADS) };
        let x = if x.is_standard_layout() { x } else { CowArray::from(x.as_standard_layout().into_owned()) };
        Self {
            x,
            global_rows,
            y,
            w,
            d,
            z: Array1::zeros(n),
            e: Array1::zeros(n),
            at: None,
            width,
            simd: Simd::detect(),
            threads,
        }
    }

    /// Loss (without the penalty) at `beta` and, with `derivatives`, the gradient and the
    /// Hessian's upper triangle there (without the penalty), each summed over the chunks in
    /// chunk order. Moves `z` and `e` to `beta` unless they are there already (a backtracking
    /// step's loss pass leaves them where the derivatives are wanted next).
    pub(crate) fn pass(&mut self, beta: &[f64], derivatives: bool) -> Result<PassSums> {
        let moving = self.at.as_ref().is_none_or(|(at, _)| at.as_slice() != beta);
        if !moving && !derivatives {
            let loss = self.at.as_ref().expect("not moving").1;
            return Ok(PassSums { loss, grad: Vec::new(), hessian: Vec::new() });
        }
        let partials = self.chunk_sums(moving.then_some(beta), derivatives);
        let loss =
            if moving { partials.iter().map(|p| p.data).sum::<f64>() } else { self.at.as_ref().expect("not moving").1 };
        self.at = Some((beta.to_vec(), loss));
        if !derivatives {
            return Ok(PassSums { loss, grad: Vec::new(), hessian: Vec::new() });
        }
        if !partials.iter().all(|p| p.finite) {
            let ((r, c), v) = first_non_finite(self.x.view()).expect("a non-finite value stopped the pass");
            return Err(MlError::InvalidInput(format!(
                "logistic: `x` has non-finite value {v} at row {}, column {c}",
                self.global_rows.0 + r * self.global_rows.1
            )));
        }
        let (d, width) = (self.d, self.width);
        let mut grad = vec![0.0; d + 1];
        let mut gram = vec![0.0; width * width];
        for part in &partials {
            grad.iter_mut().zip(&part.g).for_each(|(a, b)| *a += b);
            gram.iter_mut().zip(&part.gram).for_each(|(a, b)| *a += b);
        }
        let hessian = (0..=d).flat_map(|i| (i..=d).map(move |j| (i, j))).map(|(i, j)| gram[i * width + j]).collect();
        Ok(PassSums { loss, grad, hessian })
    }

    /// One pass over the rows in chunks (see [`chunk_pass`]), on `self.threads` threads.
    fn chunk_sums(&mut self, move_to: Option<&[f64]>, derivatives: bool) -> Vec<ChunkSums> {
        let (d, width, simd) = (self.d, self.width, self.simd);
        let x = self.x.as_slice().expect("standard layout");
        let (y, w) = (self.y.as_slice().expect("owned"), self.w.as_slice().expect("owned"));
        let (z, e) = (self.z.as_slice_mut().expect("owned"), self.e.as_slice_mut().expect("owned"));
        let moving = move_to.map(|beta| (&beta[..d], beta[d]));
        let input = PassInput { x, y, w, d, width, moving };
        over_chunks(self.threads, z, e, |rows, z, e| {
            let input = &input;
            if derivatives {
                simd.dispatch(ChunkPass::<true> { input, rows, z, e })
            } else {
                // A loss-only pass has no Gram kernel to widen.
                simd.narrowed().dispatch(ChunkPass::<false> { input, rows, z, e })
            }
        })
    }
}

/// What every chunk of a [`RowPasses::chunk_sums`] reads: the rows, targets and weights, and with
/// `moving` the coefficients and intercept to move `z` to.
struct PassInput<'a> {
    x: &'a [f64],
    y: &'a [f64],
    w: &'a [f64],
    d: usize,
    width: usize,
    moving: Option<(&'a [f64], f64)>,
}

/// One chunk's share of a pass: loss (when moving), gradient and Gram triangle (when forming
/// derivatives; else empty), and whether every value it gathered was finite.
struct ChunkSums {
    data: f64,
    g: Vec<f64>,
    gram: Vec<f64>,
    finite: bool,
}

/// A chunk of a [`RowPasses::chunk_sums`], compiled once per [`Simd`] level (`FMA`: the Gram kernel and
/// the row dot products use fused multiply-add; `tiles`: the Gram kernel's widest tile; the
/// rest of the arithmetic is the same at every level). Block by block: with `moving`, `z`,
/// `e = exp(-|z|)` and the loss at the new parameters; with `DERIVATIVES`, each row's residual
/// and Hessian weight, then the rows gathered (scaled) for the Gram kernel while they add to the
/// gradient. Each step runs over the whole block, so the exponential, logarithm, division and
/// square root run in vector lanes.
#[inline(always)]
fn chunk_pass<const FMA: bool, const DERIVATIVES: bool, T: Tiles>(
    tiles: T,
    input: &PassInput,
    rows: std::ops::Range<usize>,
    z: &mut [f64],
    e: &mut [f64],
) -> ChunkSums {
    let PassInput { x, y, w, d, width, moving } = *input;
    let (mut g, mut gram) = if DERIVATIVES { (vec![0.0; d + 1], vec![0.0; width * width]) } else { (vec![], vec![]) };
    let per_block = block_rows(width);
    let mut block = if DERIVATIVES { vec![0.0; per_block * width] } else { vec![] };
    let mut scratch = vec![0.0; per_block];
    let mut roots = if DERIVATIVES { vec![0.0; per_block] } else { vec![] };
    let mut data = [0.0; 4];
    let mut finite = true;
    let first = rows.start;
    for start in rows.step_by(per_block) {
        let n_block = per_block.min(z.len() - (start - first));
        let local = start - first..start - first + n_block;
        let (z, e) = (&mut z[local.clone()], &mut e[local]);
        let (y, w) = (&y[start..start + n_block], &w[start..start + n_block]);
        let row = |i: usize| &x[(start + i) * d..(start + i + 1) * d];
        let (scratch, roots) = (&mut scratch[..n_block], &mut roots[..if DERIVATIVES { n_block } else { 0 }]);
        if let Some((coef, intercept)) = moving {
            for (i, z) in z.iter_mut().enumerate() {
                *z = intercept + dot4::<FMA>(row(i), coef);
            }
            // softplus(z) - y z per row, with softplus(z) = max(z, 0) + ln(1 + e^-|z|).
            for ((((z, e), y), w), term) in z.iter().zip(e.iter_mut()).zip(y).zip(w).zip(scratch.iter_mut()) {
                *e = exp_non_positive(-z.abs());
                *term = w * (z.max(0.0) + ln_1p_unit(*e) - y * z);
            }
            add_in_lanes(scratch, &mut data);
        }
        if DERIVATIVES {
            // Residual w (p - y) and square root of the Hessian weight w p (1 - p) per row.
            for ((((z, e), y), w), (r, root)) in
                z.iter().zip(e.iter()).zip(y).zip(w).zip(scratch.iter_mut().zip(roots.iter_mut()))
            {
                let p = probability(*z, *e);
                *r = w * (p - y);
                *root = (w * p * (1.0 - p)).sqrt();
            }
            for (i, out) in block.chunks_exact_mut(width).take(n_block).enumerate() {
                let (r, root) = (scratch[i], roots[i]);
                for ((gj, oj), &xj) in g.iter_mut().zip(out.iter_mut()).zip(row(i)) {
                    *gj += r * xj;
                    *oj = xj * root;
                    finite &= xj.is_finite();
                }
                g[d] += r;
                out[d] = root;
            }
            add_gram_upper::<FMA, T>(tiles, &block[..n_block * width], Width::packed(width), &mut gram);
        }
    }
    ChunkSums { data: (data[0] + data[1]) + (data[2] + data[3]), g, gram, finite }
}

/// [`chunk_pass`] as a [`Kernel`].
struct ChunkPass<'a, 'x, const DERIVATIVES: bool> {
    input: &'a PassInput<'x>,
    rows: std::ops::Range<usize>,
    z: &'a mut [f64],
    e: &'a mut [f64],
}

impl<const DERIVATIVES: bool> Kernel for ChunkPass<'_, '_, DERIVATIVES> {
    type Output = ChunkSums;

    #[inline(always)]
    fn run<const FMA: bool, T: Tiles>(self, tiles: T) -> ChunkSums {
        chunk_pass::<FMA, DERIVATIVES, T>(tiles, self.input, self.rows, self.z, self.e)
    }
}

/// Adds `values` to four running sums, value `i` to sum `i % 4` (independent chains the compiler
/// keeps in one vector register; a single running sum could not be reordered).
#[inline(always)]
fn add_in_lanes(values: &[f64], sums: &mut [f64; 4]) {
    let quads = values.chunks_exact(4);
    for (lane, v) in quads.remainder().iter().enumerate() {
        sums[lane] += v;
    }
    for q in quads {
        for lane in 0..4 {
            sums[lane] += q[lane];
        }
    }
}

/// Below this many cells (`rows x columns`) the passes stay on the calling thread.
const PARALLEL_MIN_CELLS: usize = 100_000;
/// Threads per pass at most (the passes are memory-bound beyond a few cores).
const MAX_THREADS: usize = 8;

/// Rows per chunk of a pass: about 64 chunks, at least 1,024 rows each.
fn chunk_rows(n: usize) -> usize {
    n.div_ceil(64).max(1024)
}

/// Calls `f(rows, z, e)` for every chunk of rows (`z` and `e` the chunk's slices of the two
/// per-row arrays), with contiguous runs of chunks on up to `threads` threads, and returns the
/// results in chunk order. The caller adds them up in that order, so a fit gives the same
/// result on any number of threads.
fn over_chunks<R: Send>(
    threads: usize,
    z: &mut [f64],
    e: &mut [f64],
    f: impl Fn(std::ops::Range<usize>, &mut [f64], &mut [f64]) -> R + Sync,
) -> Vec<R> {
    let chunk = chunk_rows(z.len());
    let run = |first: usize, z: &mut [f64], e: &mut [f64]| -> Vec<R> {
        let chunks = z.chunks_mut(chunk).zip(e.chunks_mut(chunk)).enumerate();
        chunks.map(|(k, (z, e))| f(first + k * chunk..first + k * chunk + z.len(), z, e)).collect()
    };
    let n_chunks = z.len().div_ceil(chunk);
    if threads <= 1 || n_chunks <= 1 {
        return run(0, z, e);
    }
    let span = n_chunks.div_ceil(threads.min(n_chunks)) * chunk;
    let jobs = z.chunks_mut(span).zip(e.chunks_mut(span)).enumerate().collect();
    parallel::run_jobs(jobs, |(t, (z, e))| run(t * span, z, e)).into_iter().flatten().collect()
}

/// `a . b` with four partial sums in one 4-lane vector (fused multiply-add when `FMA`): a plain
/// fold is one chain of dependent adds, which the compiler may not reorder into vector lanes.
#[inline(always)]
fn dot4<const FMA: bool>(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4.remainder().iter().zip(b4.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a4.zip(b4) {
        let (x, y): (&[f64; 4], &[f64; 4]) = (x.try_into().expect("4 values"), y.try_into().expect("4 values"));
        for l in 0..4 {
            acc[l] = fmadd::<FMA>(x[l], y[l], acc[l]);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `sigmoid(z)` from `e = exp(-|z|)` (cached by a moving pass).
#[inline]
fn probability(z: f64, e: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// `exp(x)` for `x <= 0`, within an ulp of `f64::exp` (fdlibm's method: `x = k ln 2 + r`,
/// `|r| <= ln 2 / 2`, a rational approximation of `exp(r)`, scaled by `2^k` built in the exponent
/// bits). Branch-free, so a loop of it runs in vector lanes, where the library's `exp` is a call
/// per value (a tenth of a Telco fit). Below -708 it returns `exp(-708)` (~3e-308) instead of
/// a subnormal or 0: as `exp(-|z|)` that changes a loss term or probability by less than 1e-307.
#[inline(always)]
#[allow(clippy::excessive_precision)] // fdlibm's published digits, recognisable as such
fn exp_non_positive(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1; // trailing zero bits: k * LN2_HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const P: [f64; 5] = [
        1.666_666_666_666_660_190_37e-1,
        -2.777_777_777_701_559_338_42e-3,
        6.613_756_321_437_934_361_17e-5,
        -1.653_390_220_546_525_153_90e-6,
        4.138_136_797_057_238_460_39e-8,
    ];
    // Adding 1.5 * 2^52 rounds to an integer held in the low mantissa bits.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let x = x.max(-708.0);
    let shifted = x * std::f64::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let hi = x - k * LN2_HI;
    let lo = k * LN2_LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P[0] + rr * (P[1] + rr * (P[2] + rr * (P[3] + rr * P[4]))));
    let exp_r = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // 2^k: k sits in the low bits of `shifted` (two's complement); k + 1023 >= 2 here.
    let two_k = f64::from_bits((shifted.to_bits().wrapping_add(1023)) << 52);
    exp_r * two_k
}

/// `ln(1 + e)` for `e` in `[0, 1]`, within an ulp or two of `f64::ln_1p` (fdlibm's method: with
/// `1 + e = 2^k (1 + f)`, `k` 0 or 1 and `f` in `[sqrt(2)/2 - 1, sqrt(2) - 1]`, a polynomial in
/// `s = f / (2 + f)`). Branch-free, like [`exp_non_positive`], so it runs in vector lanes; `f`
/// is `e` itself when `k = 0`, so small `e` lose nothing to rounding `1 + e`.
#[inline(always)]
#[allow(clippy::excessive_precision)] // fdlibm's published digits
fn ln_1p_unit(e: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const LG: [f64; 7] = [
        6.666_666_666_666_735_130e-1,
        3.999_999_999_940_941_908e-1,
        2.857_142_874_366_239_149e-1,
        2.222_219_843_214_978_396e-1,
        1.818_357_216_161_805_012e-1,
        1.531_383_769_920_937_332e-1,
        1.479_819_860_511_658_591e-1,
    ];
    let halve = e > std::f64::consts::SQRT_2 - 1.0;
    let (f, k) = if halve { ((e - 1.0) * 0.5, 1.0) } else { (e, 0.0) };
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let half_f2 = 0.5 * f * f;
    k * LN2_HI - ((half_f2 - (s * (half_f2 + t1 + t2) + k * LN2_LO)) - f)
}

/// Logistic function `1 / (1 + e^-z)`, stable for large |z|.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    probability(z, (-z.abs()).exp())
}

impl LogisticModel {
    /// P(y = true | x) for one row.
    ///
    /// # Panics
    /// When `x` does not have one value per coefficient.
    pub fn predict_row(&self, x: ArrayView1<f64>) -> f64 {
        sigmoid(x.dot(&self.coef) + self.intercept)
    }
}

impl Predict for LogisticModel {
    type Input<'a> = ArrayView2<'a, f64>;
    type Output = Array1<f64>;

    /// P(y = true | x) per row.
    ///
    /// # Panics
    /// When `x` does not have one column per coefficient.
    fn predict(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        (x.dot(&self.coef) + self.intercept).mapv_into(sigmoid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics;
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Axis};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// Rows with standard-normal features and labels drawn from the planted logistic model.
    fn planted(n: usize, coef: &[f64], intercept: f64, seed: u64) -> (Array2<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = Array2::from_shape_simple_fn((n, coef.len()), || rng.sample::<f64, _>(StandardNormal));
        let y = x
            .outer_iter()
            .map(|row| {
                let z: f64 = row.iter().zip(coef).map(|(a, b)| a * b).sum::<f64>() + intercept;
                rng.gen::<f64>() < sigmoid(z)
            })
            .collect();
        (x, y)
    }

    /// Gradient of the penalised weighted loss (coefficients, then intercept), to check optimality.
    fn gradient(params: &LogisticParams, model: &LogisticModel, x: &Array2<f64>, y: &[bool]) -> Vec<f64> {
        let n = y.len() as f64;
        let n_pos = y.iter().filter(|&&t| t).count() as f64;
        let weights: Vec<f64> = match params.class_weight {
            ClassWeight::None => vec![1.0; y.len()],
            ClassWeight::Balanced => {
                y.iter().map(|&t| if t { n / (2.0 * n_pos) } else { n / (2.0 * (n - n_pos)) }).collect()
            }
        };
        let p = model.predict(x.view());
        let r: Array1<f64> = (0..y.len()).map(|i| weights[i] * (p[i] - if y[i] { 1.0 } else { 0.0 })).collect();
        let g = x.t().dot(&r) + &model.coef * params.l2;
        g.into_iter().chain([r.sum()]).collect()
    }

    #[test]
    fn fit_is_the_same_on_any_thread_count() {
        let coef = [0.8, -0.5, 0.3, 0.0, 1.2, -0.7, 0.1, 0.4];
        let (x, y) = planted(5_000, &coef, -0.3, 21);
        let params = LogisticParams { tol: 1e-8, ..Default::default() };
        let fit = |threads: usize| {
            let tuning = Tuning { threads: Some(threads), ..Default::default() };
            params.fit_parts_from(&[LogisticPart::new(x.view(), &y, None, 0).unwrap()], None, tuning).unwrap()
        };
        let one = fit(1);
        assert!(one.coef.iter().zip(&coef).all(|(a, b)| (a - b).abs() < 0.15), "{:?}", one.coef);
        for threads in [2, 3, 7] {
            assert_eq!(fit(threads), one, "{threads} threads");
        }
    }

    /// A warm start (a fit of every 16th row first) ends at the same optimum as a cold one.
    #[test]
    fn warm_start_reaches_the_cold_start_optimum() {
        let coef = [0.8, -0.5, 0.3, 1.1];
        let (x, y) = planted(40_000, &coef, -0.6, 31);
        let params = LogisticParams { tol: 1e-8, ..Default::default() };
        let fit = |warm_start_min_rows: usize| {
            let tuning = Tuning { warm_start_min_rows, ..Default::default() };
            params.fit_parts_from(&[LogisticPart::new(x.view(), &y, None, 0).unwrap()], None, tuning).unwrap()
        };
        let (warm, cold) = (fit(10_000), fit(usize::MAX));
        assert_ne!(warm, cold, "the warm start did not run (or changed nothing)");
        for (w, c) in warm.coef.iter().chain([&warm.intercept]).zip(cold.coef.iter().chain([&cold.intercept])) {
            assert!((w - c).abs() <= 1e-6 * (1.0 + c.abs()), "warm {w} vs cold {c}");
        }
    }

    /// Refitting a fold from the whole set's optimum ends where a cold fit of that fold does, and
    /// a start of the wrong width is refused.
    #[test]
    fn fit_from_a_start_reaches_the_cold_optimum() {
        let coef = [0.8, -0.5, 0.3, 1.1, 0.0, -0.9];
        let (x, y) = planted(3_000, &coef, -0.4, 41);
        let params = LogisticParams { tol: 1e-8, ..Default::default() };
        let whole = params.fit((x.view(), &y[..])).unwrap();
        let rows: Vec<usize> = (0..3_000).filter(|i| i % 5 != 2).collect();
        let (xf, yf) = (x.select(Axis(0), &rows), rows.iter().map(|&i| y[i]).collect::<Vec<_>>());
        let (warm, cold) =
            (params.fit_from(xf.view(), &yf, &whole).unwrap(), params.fit((xf.view(), &yf[..])).unwrap());
        assert_ne!(warm.coef, whole.coef, "the fold's fit did not move from the start");
        for (w, c) in warm.coef.iter().chain([&warm.intercept]).zip(cold.coef.iter().chain([&cold.intercept])) {
            assert!((w - c).abs() <= 1e-6 * (1.0 + c.abs()), "from the start {w} vs cold {c}");
        }
        let narrow = LogisticModel { coef: Array1::zeros(2), intercept: 0.0 };
        assert!(params.fit_from(xf.view(), &yf, &narrow).is_err());
    }

    #[test]
    fn exp_non_positive_matches_the_library_exp() {
        for k in 0..=200_000 {
            let x = -708.0 * f64::from(k) / 200_000.0;
            // Around each grid point too: the reduction's rounding boundaries are at multiples of ln 2 / 2.
            for x in [x, x * (1.0 - 1e-13), -(x.abs() + 1e-300).min(708.0)] {
                let (got, want) = (exp_non_positive(x), x.exp());
                assert!((got - want).abs() <= 2.0 * f64::EPSILON * want, "x = {x}: {got} vs {want}");
            }
        }
        assert_eq!(exp_non_positive(0.0), 1.0);
        assert_eq!(exp_non_positive(-0.0), 1.0);
        // Clamped far below: tiny, positive, finite.
        for x in [-708.5, -800.0, -1e300, f64::NEG_INFINITY] {
            let got = exp_non_positive(x);
            assert!(got > 0.0 && got <= 4e-308, "x = {x}: {got}");
        }
    }

    #[test]
    fn ln_1p_unit_matches_the_library_ln_1p() {
        for k in 0..=4000 {
            // e from 1e-20 to 1 on a log scale...
            let e = 10f64.powf(-20.0 + 20.0 * f64::from(k) / 4000.0);
            // ...linearly over [0, 1] and around the switch to halving at sqrt(2) - 1.
            let linear = f64::from(k) / 4000.0;
            let switch = std::f64::consts::SQRT_2 - 1.0 + (f64::from(k) - 2000.0) * 1e-12;
            for e in [e, linear, switch] {
                let (got, want) = (ln_1p_unit(e), e.ln_1p());
                assert!((got - want).abs() <= 2.0 * f64::EPSILON * want, "e = {e}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn recovers_planted_coefficients() {
        let coef = [1.0, -2.0, 0.5];
        let (x, y) = planted(20_000, &coef, -0.3, 1);
        let params = LogisticParams { l2: 1e-6, ..LogisticParams::default() };
        let model = params.fit((x.view(), &y)).unwrap();
        // Standard errors here are about 0.02-0.03.
        for (got, want) in model.coef.iter().zip(coef) {
            assert_abs_diff_eq!(*got, want, epsilon = 0.1);
        }
        assert_abs_diff_eq!(model.intercept, -0.3, epsilon = 0.1);
    }

    #[test]
    fn solution_is_stationary() {
        // Balanced weights and a real penalty: the gradient of the objective vanishes at the fit.
        let (x, y) = planted(3_000, &[0.7, -0.4, 0.0, 1.2], -1.5, 2);
        let params = LogisticParams { l2: 2.0, class_weight: ClassWeight::Balanced, ..Default::default() };
        let model = params.fit((x.view(), &y)).unwrap();
        for g in gradient(&params, &model, &x, &y) {
            assert!(g.abs() < 1e-6, "gradient component {g}");
        }
    }

    #[test]
    fn heavy_penalty_leaves_intercept_free() {
        // Coefficients shrink to ~0, while the unpenalised intercept still matches the base rate.
        let (x, y) = planted(2_000, &[1.0, 1.0], 0.8, 3);
        let model = LogisticParams { l2: 1e9, ..Default::default() }.fit((x.view(), &y)).unwrap();
        let rate = y.iter().filter(|&&t| t).count() as f64 / y.len() as f64;
        assert!(model.coef.iter().all(|c| c.abs() < 1e-4), "coef {}", model.coef);
        assert_abs_diff_eq!(sigmoid(model.intercept), rate, epsilon = 1e-3);
    }

    #[test]
    fn balanced_weights_raise_minority_recall() {
        // About 8% positives and a weak signal: unweighted, few rows reach p >= 0.5.
        let (x, y) = planted(10_000, &[0.8, -0.5], -2.8, 4);
        let recall = |class_weight| {
            let params = LogisticParams { class_weight, ..Default::default() };
            let p = params.fit((x.view(), &y)).unwrap().predict(x.view());
            metrics::cutoff_table(p.as_slice().unwrap(), &y, &[0.5])[0].recall
        };
        let (none, balanced) = (recall(ClassWeight::None), recall(ClassWeight::Balanced));
        assert!(balanced > none + 0.3, "recall none {none}, balanced {balanced}");
    }

    #[test]
    fn uniform_sample_weights_scale_like_the_penalty() {
        // Doubling every weight doubles the data term; doubling l2 too gives the same optimum.
        let (x, y) = planted(1_000, &[0.5, -1.0], 0.2, 5);
        let base = LogisticParams { l2: 3.0, ..Default::default() }.fit((x.view(), &y)).unwrap();
        let twice = LogisticParams { l2: 6.0, ..Default::default() }
            .fit_weighted(x.view(), &y, Some(&vec![2.0; 1_000]))
            .unwrap();
        assert_abs_diff_eq!(base.coef, twice.coef, epsilon = 1e-8);
        assert_abs_diff_eq!(base.intercept, twice.intercept, epsilon = 1e-8);
    }

    #[test]
    fn linfa_fit_trait_matches_inherent_fit() {
        let (x, y) = planted(500, &[0.5, -1.0], 0.2, 6);
        let params = LogisticParams::default();
        let dataset = DatasetBase::new(x.clone(), Array1::from(y.clone()));
        let via_linfa = linfa::traits::Fit::fit(&params, &dataset).unwrap();
        assert_eq!(via_linfa, params.fit((x.view(), &y)).unwrap());
    }

    #[test]
    fn separable_data_without_penalty_stays_finite() {
        let x = array![[-2.0], [-1.0], [1.0], [2.0]];
        let y = [false, false, true, true];
        let model = LogisticParams { l2: 0.0, max_iter: 50, ..Default::default() }.fit((x.view(), &y)).unwrap();
        let p = model.predict(x.view());
        assert!(p.iter().all(|v| v.is_finite()));
        assert!(p[0] < 0.01 && p[3] > 0.99);
    }

    #[test]
    fn duplicate_columns_without_penalty_still_fit() {
        // Singular Hessian: the ridge fallback must still produce a sensible model.
        let (x1, y) = planted(1_000, &[1.0], 0.0, 7);
        let x = ndarray::concatenate![Axis(1), x1, x1];
        let model = LogisticParams { l2: 0.0, ..Default::default() }.fit((x.view(), &y)).unwrap();
        assert_abs_diff_eq!(model.coef[0] + model.coef[1], 1.0, epsilon = 0.2);
        assert_abs_diff_eq!(model.predict_row(x.row(0)), model.predict(x.view())[0]);
    }

    #[test]
    fn invalid_input_is_an_error() {
        let x = array![[0.0], [1.0], [2.0]];
        let p = LogisticParams::default();
        assert!(matches!(p.fit((x.view(), &[true, true, true])), Err(MlError::InvalidInput(_))));
        assert!(matches!(p.fit((x.view(), &[true, false])), Err(MlError::InvalidInput(_))));
        let nan = array![[0.0], [f64::NAN], [2.0]];
        assert!(matches!(p.fit((nan.view(), &[true, false, true])), Err(MlError::InvalidInput(_))));
        let bad_l2 = LogisticParams { l2: -1.0, ..Default::default() };
        assert!(matches!(bad_l2.fit((x.view(), &[true, false, true])), Err(MlError::InvalidParam { name: "l2", .. })));
        let bad_iter = LogisticParams { max_iter: 0, ..Default::default() };
        assert!(matches!(
            bad_iter.fit((x.view(), &[true, false, true])),
            Err(MlError::InvalidParam { name: "max_iter", .. })
        ));
        assert!(p.fit_weighted(x.view(), &[true, false, true], Some(&[1.0, -1.0, 1.0])).is_err());
        assert!(p.fit_weighted(x.view(), &[true, false, true], Some(&[0.0, 1.0, 0.0])).is_err());
    }
}
