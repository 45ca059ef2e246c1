//! k-means with k-means++ initialisation, several seeded restarts, best SSE kept; over
//! partitioned rows, k-means|| and Lloyd's passes as sums ([`parts`]).

mod parts;
pub use parts::{ClusterSums, KMeansAnswer, KMeansDriver, KMeansPart, KMeansRequest, OVERSAMPLING, SEEDING_ROUNDS};

use crate::dense::{first_non_finite, fmadd, Lanes};
use crate::simd::{Kernel, Simd, Tiles};
use crate::{parallel, Fit, MlError, Predict, Result};
use linfa::dataset::DatasetBase;
use ndarray::{Array2, ArrayView2};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansParams {
    pub k: usize,
    pub n_init: usize,
    pub max_iter: usize,
    /// Stop when the relative SSE improvement of an iteration falls below this.
    pub tol: f64,
    pub seed: u64,
}

impl Default for KMeansParams {
    fn default() -> Self {
        Self { k: 8, n_init: 10, max_iter: 300, tol: 1e-4, seed: 42 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansModel {
    pub centroids: Array2<f64>,
    /// SSE of the training data under the final centroids.
    pub sse: f64,
    pub iterations: usize,
}

impl KMeansParams {
    /// Runs every restart; returns (SSE, centres, iterations) of the best. `D` is the column count, or 0
    /// for "not specialised".
    ///
    /// Restarts are independent, so large fits spread them over the available cores; ties go to the
    /// lowest restart index, so the result does not depend on the thread count.
    fn restarts<const D: usize>(&self, points: &Points) -> (f64, Vec<f64>, usize) {
        let cores = parallel::cores();
        let work = points.n.saturating_mul(points.d).saturating_mul(self.k).saturating_mul(self.n_init);
        let threads = if work < PARALLEL_MIN_WORK { 1 } else { cores.min(self.n_init) };
        self.restarts_on::<D>(points, threads)
    }

    fn restarts_on<const D: usize>(&self, points: &Points, threads: usize) -> (f64, Vec<f64>, usize) {
        // With AVX2 a block's eight rows fill two 256-bit registers and each score term is one
        // fused multiply-add; with AVX-512 a block is one register (the same operations in the
        // same order, so the same result).
        let simd = Simd::detect();
        let run_share = |t: usize| simd.dispatch(RunShare::<D> { params: self, points, t, threads });
        let shares = parallel::run_jobs((0..threads).collect(), run_share);
        let (sse, _, centers, iterations) = shares
            .into_iter()
            .flatten()
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .expect("n_init >= 1 was validated");
        (sse, centers, iterations)
    }

    /// Restarts `t, t + threads, ...`, up to [`LOCKSTEP_RUNS`] at a time in lockstep (each pass
    /// over the rows serves every run of the group); returns (SSE, restart, centres, iterations)
    /// of their best.
    #[inline(always)]
    fn run_share<const D: usize, const FMA: bool>(
        &self,
        points: &Points,
        t: usize,
        threads: usize,
    ) -> Option<(f64, usize, Vec<f64>, usize)> {
        let mine: Vec<usize> = (t..self.n_init).step_by(threads).collect();
        let mut best: Option<(f64, usize, Vec<f64>, usize)> = None;
        let mut runs: Vec<Run> = Vec::new();
        for group in mine.chunks(LOCKSTEP_RUNS) {
            runs.truncate(group.len());
            while runs.len() < group.len() {
                runs.push(Run::new(points.n, points.d, self.k));
            }
            for (run, &restart) in runs.iter_mut().zip(group) {
                run.restart = restart;
                run.rng = ChaCha8Rng::seed_from_u64(self.seed);
                run.rng.set_stream(restart as u64);
            }
            seed_plus_plus::<D, FMA>(&mut runs, points);
            lloyd::<D, FMA>(&mut runs, points, self.max_iter, self.tol);
            for run in &runs {
                if best.as_ref().is_none_or(|b| run.sse < b.0) {
                    best = Some((run.sse, run.restart, run.centers.clone(), run.iterations));
                }
            }
        }
        best
    }

    fn validate(&self, data: ArrayView2<f64>) -> Result<()> {
        self.validate_counts(data.nrows(), data.ncols())
    }

    /// Checks the parameters against a table of `rows` x `cols`.
    fn validate_counts(&self, rows: usize, cols: usize) -> Result<()> {
        let invalid = |name, reason: String| Err(MlError::InvalidParam { name, reason });
        if self.k == 0 {
            return invalid("k", "must be at least 1".into());
        }
        if self.k > rows {
            return invalid("k", format!("{} exceeds the number of rows ({rows})", self.k));
        }
        if self.n_init == 0 {
            return invalid("n_init", "must be at least 1".into());
        }
        if self.max_iter == 0 {
            return invalid("max_iter", "must be at least 1".into());
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return invalid("tol", format!("must be finite and non-negative, got {}", self.tol));
        }
        if cols == 0 {
            return Err(MlError::InvalidInput("k-means: `data` has no columns".into()));
        }
        Ok(())
    }
}

impl Fit for KMeansParams {
    type Data<'a> = ArrayView2<'a, f64>;
    type Model = KMeansModel;

    /// Errors when k == 0, k > rows, n_init == 0, or data has a non-finite value (also max_iter == 0, a
    /// negative or non-finite tol, or no columns).
    ///
    /// Each restart draws from its own ChaCha stream of `seed`, so the result depends only on the
    /// parameters and data, not on restart order or thread count. `iterations` is the best restart's.
    fn fit(&self, data: ArrayView2<'_, f64>) -> Result<KMeansModel> {
        self.validate(data)?;
        let points = Points::centred(data)?;
        // Monomorphise the hot loops for common dimensions (CDNOW's RFM features, the 16-column benchmark).
        let best = match points.d {
            1 => self.restarts::<1>(&points),
            2 => self.restarts::<2>(&points),
            3 => self.restarts::<3>(&points),
            4 => self.restarts::<4>(&points),
            5 => self.restarts::<5>(&points),
            6 => self.restarts::<6>(&points),
            7 => self.restarts::<7>(&points),
            8 => self.restarts::<8>(&points),
            10 => self.restarts::<10>(&points),
            12 => self.restarts::<12>(&points),
            16 => self.restarts::<16>(&points),
            _ => self.restarts::<0>(&points),
        };
        let (_, mut centers, iterations) = best;
        // Exact SSE under the final centroids, each row at its nearest one (the running value is
        // maintained incrementally and is the SSE before the last reassignment).
        let sse = points.nearest_sse(&centers, self.k);
        for c in centers.chunks_exact_mut(points.d) {
            c.iter_mut().zip(&points.mean).for_each(|(v, m)| *v += m);
        }
        let centroids = Array2::from_shape_vec((self.k, points.d), centers).expect("k * d centroid values");
        Ok(KMeansModel { centroids, sse, iterations })
    }
}

/// [`KMeansParams::run_share`] as a [`Kernel`].
struct RunShare<'a, const D: usize> {
    params: &'a KMeansParams,
    points: &'a Points,
    t: usize,
    threads: usize,
}

impl<const D: usize> Kernel for RunShare<'_, D> {
    type Output = Option<(f64, usize, Vec<f64>, usize)>;

    #[inline(always)]
    fn run<const FMA: bool, T: Tiles>(self, _: T) -> Self::Output {
        self.params.run_share::<D, FMA>(self.points, self.t, self.threads)
    }
}

/// Lets k-means run inside linfa pipelines; targets are ignored.
impl<T> linfa::traits::Fit<Array2<f64>, T, MlError> for KMeansParams {
    type Object = KMeansModel;

    fn fit(&self, dataset: &DatasetBase<Array2<f64>, T>) -> Result<KMeansModel> {
        Fit::fit(self, dataset.records().view())
    }
}

/// Below this many `rows * cols * k * n_init`, restarts run on the calling thread: spawning would cost
/// more than it saves.
const PARALLEL_MIN_WORK: usize = 2_000_000;

/// Column means of `data`, checking in the same pass that every value is finite.
fn finite_column_means(data: ArrayView2<f64>) -> Result<Vec<f64>> {
    let (n, d) = data.dim();
    let mut sums = vec![0.0; d];
    let mut finite = true;
    for row in data.outer_iter() {
        for (s, &v) in sums.iter_mut().zip(row.iter()) {
            *s += v;
            finite &= v.is_finite();
        }
    }
    if !finite {
        let ((r, c), v) = first_non_finite(data).expect("a non-finite value was seen");
        return Err(MlError::InvalidInput(format!("k-means: `data` has non-finite value {v} at row {r}, column {c}")));
    }
    Ok(sums.into_iter().map(|s| s / n as f64).collect())
}

/// Restarts run side by side in one pass over the rows. On data larger than the caches every pass
/// is bound by memory bandwidth, so a group of runs costs little more than one; each run holds
/// `12 n` bytes of its own state, which caps the group.
const LOCKSTEP_RUNS: usize = 8;

/// Rows per entry of a run's running sums of k-means++ weights: a draw finds its chunk by binary
/// search and its row by a scan, so the sums need not be kept per row.
const SAMPLE_CHUNK: usize = 256;

/// Rows per block of [`Points::blocked`]: one 512-bit vector of f64 (two 256-bit ones).
const LANES: usize = 8;
// One column of a block (or one value per row of it) is a [`Lanes`]: a cache line, aligned as one,
// so the kernels' vector loads never straddle two lines.
const _: () = assert!(LANES == std::mem::size_of::<Lanes>() / 8);

/// The rows, centred on the column means (centring changes no distance but keeps the
/// `sum |x|^2 - |sum x|^2 / n` form of the SSE free of cancellation), in blocks of [`LANES`] rows,
/// dimension-major within a block: `blocked[b * d + dim][lane]` is row `4b + lane`, zero-padded, so
/// the distance kernels score a block's rows side by side in vector registers.
struct Points {
    blocked: Vec<Lanes>,
    /// `|x|^2` of each row, by block (`sq_norms[b][lane]`, zero-padded).
    sq_norms: Vec<Lanes>,
    mean: Vec<f64>,
    n: usize,
    d: usize,
}

impl Points {
    /// Errors when `data` holds a non-finite value (checked in the same pass as the means).
    fn centred(data: ArrayView2<f64>) -> Result<Self> {
        let (n, d) = data.dim();
        let mean = finite_column_means(data)?;
        let n_blocks = n.div_ceil(LANES);
        let mut blocked = vec![Lanes::ZERO; n_blocks * d];
        let mut sq_norms = vec![Lanes::ZERO; n_blocks];
        let fill = |first_block: usize, blocked: &mut [Lanes], sq_norms: &mut [Lanes]| {
            for (b, (block, sq)) in blocked.chunks_exact_mut(d).zip(sq_norms).enumerate() {
                for lane in 0..LANES {
                    let i = LANES * (first_block + b) + lane;
                    if i >= n {
                        break;
                    }
                    let mut sum = 0.0;
                    for ((col, v), m) in block.iter_mut().zip(data.row(i)).zip(&mean) {
                        let x = v - m;
                        col[lane] = x;
                        sum += x * x;
                    }
                    sq[lane] = sum;
                }
            }
        };
        // A copy of the data: worth both cores when large (each block is the same on any split).
        let threads = if n * d >= PARALLEL_MIN_WORK { parallel::cores() } else { 1 };
        let per = n_blocks.div_ceil(threads).max(1);
        let jobs = blocked.chunks_mut(per * d).zip(sq_norms.chunks_mut(per)).enumerate().collect();
        parallel::run_jobs(jobs, |(t, (blocked, sq_norms))| fill(t * per, blocked, sq_norms));
        Ok(Self { blocked, sq_norms, mean, n, d })
    }

    fn n_blocks(&self) -> usize {
        self.n.div_ceil(LANES)
    }

    /// Block `b`: rows `LANES b..LANES (b + 1)` (lanes past the last row are zero).
    #[inline(always)]
    fn block(&self, b: usize) -> &[Lanes] {
        &self.blocked[b * self.d..(b + 1) * self.d]
    }

    /// Rows of block `b` that exist ([`LANES`] except perhaps in the last block).
    #[inline(always)]
    fn lanes(&self, b: usize) -> usize {
        (self.n - LANES * b).min(LANES)
    }

    fn row_into(&self, i: usize, out: &mut [f64]) {
        out.iter_mut().zip(self.block(i / LANES)).for_each(|(o, v)| *o = v[i % LANES]);
    }

    /// SSE with every row at its nearest centre (exact distances). Summed over a fixed split of
    /// the rows, the parts added in order, so it is the same on any number of threads.
    fn nearest_sse(&self, centers: &[f64], k: usize) -> f64 {
        let part = |blocks: std::ops::Range<usize>| {
            let mut sse = 0.0;
            for b in blocks {
                let mut best = [f64::INFINITY; LANES];
                for c in centers.chunks_exact(self.d).take(k) {
                    let dist = block_sq_dists(self.block(b), c);
                    best.iter_mut().zip(dist.iter()).for_each(|(m, &v)| *m = if v < *m { v } else { *m });
                }
                for &v in &best[..self.lanes(b)] {
                    sse += v;
                }
            }
            sse
        };
        const PARTS: usize = 16;
        let per = self.n_blocks().div_ceil(PARTS).max(1);
        let ranges: Vec<_> = (0..self.n_blocks()).step_by(per).map(|b| b..(b + per).min(self.n_blocks())).collect();
        let threads = if self.n * self.d * k >= PARALLEL_MIN_WORK { parallel::cores().min(ranges.len()) } else { 1 };
        let per_thread = ranges.len().div_ceil(threads.max(1)).max(1);
        let jobs = ranges.chunks(per_thread).collect();
        let sums = parallel::run_jobs(jobs, |mine| mine.iter().map(|r| part(r.clone())).collect::<Vec<f64>>());
        sums.iter().flatten().sum()
    }
}

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[inline(always)]
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Exact squared distances from the rows of a block to `c` (for the final SSE).
#[inline(always)]
fn block_sq_dists(block: &[Lanes], c: &[f64]) -> Lanes {
    let mut acc = [0.0; LANES];
    for (col, &cv) in block.iter().zip(c) {
        for lane in 0..LANES {
            let t = col[lane] - cv;
            acc[lane] += t * t;
        }
    }
    Lanes(acc)
}

/// Scores of the rows of a block against every centre, given `-2 c` and `|c|^2` per centre:
/// `out[j][lane] = |c_j|^2 - 2 x.c_j`. That ranks centres like `|x - c_j|^2` with one multiply-add
/// per value (fused where the CPU has FMA), and `|x|^2` plus it is the squared distance. Centres go
/// four at a time, in four named accumulators (so each stays one vector register and the adds of
/// the four overlap).
#[inline(always)]
fn block_scores<const D: usize, const FMA: bool>(
    block: &[Lanes],
    neg2_centers: &[f64],
    center_sq_norms: &[f64],
    out: &mut [Lanes],
) {
    let d = block.len();
    let cols = if D == 0 { d } else { D };
    let block = &block[..cols];
    let mut groups = neg2_centers.chunks_exact(4 * cols);
    let mut outs = out.chunks_exact_mut(4);
    let mut norms = center_sq_norms.chunks_exact(4);
    for ((g, o), n) in groups.by_ref().zip(outs.by_ref()).zip(norms.by_ref()) {
        let (mut a0, mut a1, mut a2, mut a3) = ([n[0]; LANES], [n[1]; LANES], [n[2]; LANES], [n[3]; LANES]);
        for (dim, x) in block.iter().enumerate() {
            add_product::<FMA>(&mut a0, x, g[dim]);
            add_product::<FMA>(&mut a1, x, g[cols + dim]);
            add_product::<FMA>(&mut a2, x, g[2 * cols + dim]);
            add_product::<FMA>(&mut a3, x, g[3 * cols + dim]);
        }
        o.copy_from_slice(&[Lanes(a0), Lanes(a1), Lanes(a2), Lanes(a3)]);
    }
    for ((c, o), &n) in groups.remainder().chunks_exact(cols).zip(outs.into_remainder()).zip(norms.remainder()) {
        let mut a = [n; LANES];
        for (x, &cv) in block.iter().zip(c) {
            add_product::<FMA>(&mut a, x, cv);
        }
        *o = Lanes(a);
    }
}

/// `acc += x c`, lane by lane.
#[inline(always)]
fn add_product<const FMA: bool>(acc: &mut [f64; LANES], x: &[f64; LANES], c: f64) {
    for lane in 0..LANES {
        acc[lane] = fmadd::<FMA>(x[lane], c, acc[lane]);
    }
}

/// Per lane, the index of the lowest score (the first on ties). Branch-free, because a row's
/// nearest centre is unpredictable and mispredictions would cost more than the arithmetic.
#[inline(always)]
fn lane_argmin(scores: &[Lanes]) -> [u32; LANES] {
    let mut best_v = [f64::INFINITY; LANES];
    // Indices as u64, the scores' lane width, so a compare's mask selects both; and u64 -> u32
    // narrows in vector registers, where f64 -> u32 (saturating) went lane by lane.
    let mut best = [0u64; LANES];
    for (j, s) in scores.iter().enumerate() {
        let j = j as u64;
        for lane in 0..LANES {
            let closer = s[lane] < best_v[lane];
            best_v[lane] = if closer { s[lane] } else { best_v[lane] };
            best[lane] = if closer { j } else { best[lane] };
        }
    }
    best.map(|j| j as u32)
}

/// Squared distance from a score of [`block_scores`] and the row's `|x|^2`; never below zero (the
/// expansion can round a tiny distance negative).
#[inline(always)]
fn distance(score: f64, sq_norm: f64) -> f64 {
    let v = score + sq_norm;
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

/// `-2 c` and `|c|^2` for each centre (rows of `d` values) of `centers`.
fn prepare_centers(centers: &[f64], d: usize, neg2_centers: &mut [f64], center_sq_norms: &mut [f64]) {
    for ((c, m), norm) in centers.chunks_exact(d).zip(neg2_centers.chunks_exact_mut(d)).zip(center_sq_norms) {
        m.iter_mut().zip(c).for_each(|(m, v)| *m = -2.0 * v);
        *norm = dot(c, c);
    }
}

/// Index of the nearest centre and its squared distance (exact distances; for prediction).
fn nearest(x: &[f64], centers: &[f64], d: usize) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (j, c) in centers.chunks_exact(d).enumerate() {
        let dist = sq_dist(x, c);
        if dist < best.1 {
            best = (j, dist);
        }
    }
    best
}

/// One restart's state, reused by the next restart of the same thread.
///
/// Lloyd's algorithm with incrementally maintained cluster sums: a pass touches a cluster's sums only for
/// rows that change cluster, and the SSE of the assignment under its means comes from the sums in O(k d).
/// (Triangle-inequality pruning, Hamerly's or Elkan's, was measured slower at k <= 10 and d = 5: its
/// branches mispredict more than they save.)
struct Run {
    restart: usize,
    rng: ChaCha8Rng,
    k: usize,
    d: usize,
    centers: Vec<f64>,
    neg2_centers: Vec<f64>,
    center_sq_norms: Vec<f64>,
    /// Per-cluster sum of member rows, member count and sum of member squared norms.
    sums: Vec<f64>,
    counts: Vec<usize>,
    sq_sums: Vec<f64>,
    assign: Vec<u32>,
    /// k-means++: squared distance of each row to its nearest chosen centre, by block like
    /// [`Points::blocked`] (lanes past the last row stay 0), and the running sum of those distances
    /// at the end of every [`SAMPLE_CHUNK`] rows.
    closest: Vec<Lanes>,
    chunk_totals: Vec<f64>,
    /// Scores of one block against every centre (scratch for the nearest-centre search).
    scores: Vec<Lanes>,
    /// k-means++: potentials of this round's candidates (partial sums by lane).
    potentials: Vec<Lanes>,
    /// Lloyd: SSE of the last assignment, iterations run, and whether the run has stopped.
    sse: f64,
    iterations: usize,
    done: bool,
}

impl Run {
    fn new(n: usize, d: usize, k: usize) -> Self {
        let n_trials = 2 + (k as f64).ln() as usize;
        Self {
            restart: 0,
            rng: ChaCha8Rng::seed_from_u64(0),
            k,
            d,
            centers: vec![0.0; k * d],
            neg2_centers: vec![0.0; k * d],
            center_sq_norms: vec![0.0; k],
            sums: vec![0.0; k * d],
            counts: vec![0; k],
            sq_sums: vec![0.0; k],
            assign: vec![0; n],
            closest: vec![Lanes::ZERO; n.div_ceil(LANES)],
            chunk_totals: vec![0.0; n.div_ceil(SAMPLE_CHUNK)],
            scores: vec![Lanes::ZERO; k],
            potentials: vec![Lanes::ZERO; n_trials],
            sse: f64::INFINITY,
            iterations: 0,
            done: false,
        }
    }

    /// A row drawn with probability proportional to `closest`: the chunk by binary search of the
    /// running sums, the row by a scan of the chunk.
    fn draw_weighted(&mut self, n: usize) -> usize {
        let total = *self.chunk_totals.last().expect("n >= 1");
        if total.is_nan() || total <= 0.0 {
            // Every row sits on a centre already (duplicates): any row will do.
            return self.rng.gen_range(0..n);
        }
        let r = self.rng.gen::<f64>() * total;
        let chunk = self.chunk_totals.partition_point(|&v| v <= r).min(self.chunk_totals.len() - 1);
        let mut left = r - if chunk == 0 { 0.0 } else { self.chunk_totals[chunk - 1] };
        let rows = chunk * SAMPLE_CHUNK..((chunk + 1) * SAMPLE_CHUNK).min(n);
        let weight = |i: usize| self.closest[i / LANES][i % LANES];
        for i in rows.clone() {
            left -= weight(i);
            if left < 0.0 {
                return i;
            }
        }
        // Rounding left a sliver past the chunk's last weight: take its last row that has any.
        rows.clone().rev().find(|&i| weight(i) > 0.0).unwrap_or(rows.end - 1)
    }

    /// SSE of the current assignment under its cluster means: sum over clusters of
    /// `sum |x|^2 - |sum x|^2 / count`.
    fn assignment_sse(&self) -> f64 {
        let d = self.d;
        (0..self.k)
            .filter(|&j| self.counts[j] > 0)
            .map(|j| {
                let s = &self.sums[j * d..(j + 1) * d];
                self.sq_sums[j] - dot(s, s) / self.counts[j] as f64
            })
            .sum::<f64>()
            .max(0.0)
    }

    /// Adds lane `lane` of `block` (a row with squared norm `sq_norm`) to cluster `j`.
    #[inline(always)]
    fn add(&mut self, j: usize, block: &[Lanes], lane: usize, sq_norm: f64) {
        self.sums[j * self.d..(j + 1) * self.d].iter_mut().zip(block).for_each(|(s, v)| *s += v[lane]);
        self.counts[j] += 1;
        self.sq_sums[j] += sq_norm;
    }

    #[inline(always)]
    fn remove(&mut self, j: usize, block: &[Lanes], lane: usize, sq_norm: f64) {
        self.sums[j * self.d..(j + 1) * self.d].iter_mut().zip(block).for_each(|(s, v)| *s -= v[lane]);
        self.counts[j] -= 1;
        self.sq_sums[j] -= sq_norm;
    }

    /// Gives each empty cluster the row farthest from its centre (taken from a cluster that keeps at
    /// least one row), so no centroid is wasted.
    fn relocate_empty(&mut self, pts: &Points) {
        if self.counts.iter().all(|&c| c > 0) {
            return;
        }
        let d = self.d;
        let mut x = vec![0.0; d];
        let mut far: Vec<(f64, usize)> = (0..pts.n)
            .map(|i| {
                pts.row_into(i, &mut x);
                (sq_dist(&x, &self.centers[self.assign[i] as usize * d..][..d]), i)
            })
            .collect();
        far.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut donors = far.into_iter().map(|(_, i)| i);
        for j in 0..self.k {
            if self.counts[j] > 0 {
                continue;
            }
            let Some(i) = donors.by_ref().find(|&i| self.counts[self.assign[i] as usize] > 1) else {
                return; // fewer distinct rows than clusters; leave the centre where it is
            };
            let (block, lane) = (pts.block(i / LANES), i % LANES);
            self.remove(self.assign[i] as usize, block, lane, pts.sq_norms[i / LANES][i % LANES]);
            self.add(j, block, lane, pts.sq_norms[i / LANES][i % LANES]);
            self.assign[i] = j as u32;
        }
    }

    /// Moves each non-empty cluster's centre to its members' mean.
    fn update_centers(&mut self) {
        let d = self.d;
        for j in 0..self.k {
            if self.counts[j] == 0 {
                continue;
            }
            let inv = 1.0 / self.counts[j] as f64;
            let c = &mut self.centers[j * d..(j + 1) * d];
            c.iter_mut().zip(&self.sums[j * d..(j + 1) * d]).for_each(|(c, s)| *c = s * inv);
        }
        self.prepare_centers();
    }

    /// Refreshes `-2 c` and `|c|^2` for the nearest-centre search.
    fn prepare_centers(&mut self) {
        prepare_centers(&self.centers, self.d, &mut self.neg2_centers, &mut self.center_sq_norms);
    }

    /// Nearest centre of each row of a block.
    #[inline(always)]
    fn nearest_in_block<const D: usize, const FMA: bool>(&mut self, block: &[Lanes]) -> [u32; LANES] {
        block_scores::<D, FMA>(block, &self.neg2_centers, &self.center_sq_norms, &mut self.scores);
        lane_argmin(&self.scores)
    }
}

/// Blocks ahead of the one being scored that a pass asks the caches for (the rows, their norms
/// and each run's entries for them): the hardware prefetchers stop at every 4 KiB page, four
/// blocks of 16 columns, so on data larger than the caches a pass would otherwise wait at each.
const PREFETCH_BLOCKS: usize = 8;

/// What of each run a pass reads besides the rows.
#[derive(Clone, Copy)]
enum RunEntries {
    /// k-means++: the distances to the nearest chosen centre.
    Closest,
    /// Lloyd: the assignments.
    Assign,
}

/// Asks the caches for block `b + PREFETCH_BLOCKS` and what the pass reads of each run for it.
#[inline(always)]
fn prefetch_ahead(pts: &Points, runs: &[Run], b: usize, entries: RunEntries) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let ahead = b + PREFETCH_BLOCKS;
        if ahead >= pts.n_blocks() {
            return;
        }
        let lines = pts.block(ahead).iter().chain([&pts.sq_norms[ahead]]).map(|l| l.as_ptr().cast());
        // Runs that have converged sit out Lloyd's passes: their entries would be wasted traffic.
        // (`done` is left over from the last group during seeding, where every run takes part.)
        let in_pass = |run: &&Run| matches!(entries, RunEntries::Closest) || !run.done;
        let run_lines = runs.iter().filter(in_pass).map(|run| match entries {
            RunEntries::Closest => run.closest[ahead].as_ptr().cast(),
            RunEntries::Assign => run.assign[LANES * ahead..].as_ptr().cast(),
        });
        for line in lines.chain(run_lines) {
            // SAFETY: SSE is part of every x86-64 CPU, and a prefetch reads and changes no memory.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (pts, runs, b, entries);
}

/// Greedy k-means++ (as in scikit-learn) for every run at once: each new centre is the best of
/// `2 + ln k` candidates drawn with probability proportional to squared distance, which avoids most
/// poor seedings.
///
/// Two passes over the rows per centre (one for the last), whatever the candidate and run counts:
/// one scores every run's candidates, one moves each run's chosen centre into its distances.
#[inline(always)]
fn seed_plus_plus<const D: usize, const FMA: bool>(runs: &mut [Run], pts: &Points) {
    let (n, d) = (pts.n, pts.d);
    let k = runs[0].k;
    for run in runs.iter_mut() {
        let first = run.rng.gen_range(0..n);
        pts.row_into(first, &mut run.centers[..d]);
        run.closest.fill(Lanes([f64::INFINITY; LANES]));
        if let Some(last) = run.closest.last_mut() {
            last[pts.lanes(pts.n_blocks() - 1)..].fill(0.0); // no rows there: weight 0
        }
    }
    move_closest::<D, FMA>(runs, pts, 0);
    let n_trials = runs[0].potentials.len();
    let mut candidates = Centers::new(runs.len() * n_trials, d);
    for j in 1..k {
        for (run, rows) in runs.iter_mut().zip(candidates.rows.chunks_exact_mut(n_trials * d)) {
            for row_values in rows.chunks_exact_mut(d) {
                let row = run.draw_weighted(n);
                pts.row_into(row, row_values);
            }
            run.potentials.fill(Lanes::ZERO);
        }
        candidates.prepare();
        for (b, sq_norms) in pts.sq_norms.iter().enumerate() {
            prefetch_ahead(pts, runs, b, RunEntries::Closest);
            candidates.score::<D, FMA>(pts.block(b));
            for (run, scores) in runs.iter_mut().zip(candidates.scores.chunks_exact(n_trials)) {
                let closest = &run.closest[b];
                for (p, score) in run.potentials.iter_mut().zip(scores) {
                    // Lane by lane, so it stays in vector registers; padding lanes add min(d, 0) = 0.
                    for lane in 0..LANES {
                        let dist = distance(score[lane], sq_norms[lane]);
                        p[lane] += if dist < closest[lane] { dist } else { closest[lane] };
                    }
                }
            }
        }
        for (run, rows) in runs.iter_mut().zip(candidates.rows.chunks_exact(n_trials * d)) {
            // Lowest potential wins; ties go to the earlier draw.
            let p: Vec<f64> = run.potentials.iter().map(|p| p.iter().sum::<f64>()).collect();
            let best = (0..p.len()).fold(0, |b, t| if p[t] < p[b] { t } else { b });
            run.centers[j * d..(j + 1) * d].copy_from_slice(&rows[best * d..(best + 1) * d]);
        }
        if j + 1 < k {
            // (After the last centre no more draws follow: Lloyd's first pass takes over.)
            move_closest::<D, FMA>(runs, pts, j);
        }
    }
}

/// Centres gathered from several runs (rows of `d` values) with what [`block_scores`] needs, and the
/// scores of one block against them.
struct Centers {
    rows: Vec<f64>,
    neg2: Vec<f64>,
    sq_norms: Vec<f64>,
    scores: Vec<Lanes>,
    d: usize,
}

impl Centers {
    fn new(count: usize, d: usize) -> Self {
        Self {
            rows: vec![0.0; count * d],
            neg2: vec![0.0; count * d],
            sq_norms: vec![0.0; count],
            scores: vec![Lanes::ZERO; count],
            d,
        }
    }

    fn prepare(&mut self) {
        prepare_centers(&self.rows, self.d, &mut self.neg2, &mut self.sq_norms);
    }

    #[inline(always)]
    fn score<const D: usize, const FMA: bool>(&mut self, block: &[Lanes]) {
        block_scores::<D, FMA>(block, &self.neg2, &self.sq_norms, &mut self.scores);
    }
}

/// Lowers each row's distance to its run's nearest chosen centre by the run's centre `j`, and
/// refreshes the running sums.
#[inline(always)]
fn move_closest<const D: usize, const FMA: bool>(runs: &mut [Run], pts: &Points, j: usize) {
    let d = pts.d;
    let mut chosen = Centers::new(runs.len(), d);
    for (run, row) in runs.iter().zip(chosen.rows.chunks_exact_mut(d)) {
        row.copy_from_slice(&run.centers[j * d..(j + 1) * d]);
    }
    chosen.prepare();
    let mut totals = vec![0.0; runs.len()];
    let mut chunk_sums = vec![Lanes::ZERO; runs.len()];
    for (b, sq_norms) in pts.sq_norms.iter().enumerate() {
        prefetch_ahead(pts, runs, b, RunEntries::Closest);
        chosen.score::<D, FMA>(pts.block(b));
        // A chunk ends with this block (chunks are whole blocks), or the rows do.
        let chunk_end = (LANES * b + LANES).is_multiple_of(SAMPLE_CHUNK) || b + 1 == pts.n_blocks();
        for (((run, total), sums), score) in runs.iter_mut().zip(&mut totals).zip(&mut chunk_sums).zip(&chosen.scores) {
            let closest = &mut run.closest[b];
            for lane in 0..LANES {
                let dist = distance(score[lane], sq_norms[lane]);
                closest[lane] = if dist < closest[lane] { dist } else { closest[lane] };
                sums[lane] += closest[lane];
            }
            if chunk_end {
                *total += sums.iter().sum::<f64>();
                *sums = Lanes::ZERO;
                run.chunk_totals[LANES * b / SAMPLE_CHUNK] = *total;
            }
        }
    }
}

/// Lloyd iterations from every run's current centres, the runs side by side in each pass over the
/// rows; a run that has converged drops out of the passes. Leaves in each run the SSE of its final
/// assignment under its means and the iterations it ran.
#[inline(always)]
fn lloyd<const D: usize, const FMA: bool>(runs: &mut [Run], pts: &Points, max_iter: usize, tol: f64) {
    for run in runs.iter_mut() {
        run.sums.fill(0.0);
        run.counts.fill(0);
        run.sq_sums.fill(0.0);
        run.prepare_centers();
        run.iterations = 0;
        run.done = false;
    }
    for b in 0..pts.n_blocks() {
        prefetch_ahead(pts, runs, b, RunEntries::Assign);
        let (block, lanes) = (pts.block(b), pts.lanes(b));
        for run in runs.iter_mut() {
            let nearest = run.nearest_in_block::<D, FMA>(block);
            for (lane, &j) in nearest[..lanes].iter().enumerate() {
                run.assign[LANES * b + lane] = j;
                run.add(j as usize, block, lane, pts.sq_norms[b][lane]);
            }
        }
    }
    let mut prev_sse = vec![f64::INFINITY; runs.len()];
    let mut changed = vec![0usize; runs.len()];
    loop {
        for (run, prev) in runs.iter_mut().zip(&mut prev_sse) {
            if run.done {
                continue;
            }
            run.iterations += 1;
            run.relocate_empty(pts);
            run.update_centers();
            run.sse = run.assignment_sse();
            let converged = prev.is_finite() && *prev - run.sse <= tol * *prev;
            run.done = converged || run.iterations >= max_iter;
            *prev = run.sse;
        }
        if runs.iter().all(|r| r.done) {
            return;
        }
        changed.fill(0);
        for b in 0..pts.n_blocks() {
            prefetch_ahead(pts, runs, b, RunEntries::Assign);
            let (block, lanes) = (pts.block(b), pts.lanes(b));
            for (run, changed) in runs.iter_mut().zip(&mut changed) {
                if run.done {
                    continue;
                }
                let nearest = run.nearest_in_block::<D, FMA>(block);
                // Most blocks keep every row's cluster after the first passes: one vector compare
                // skips them (a lane-by-lane test reloaded `assign` for every row).
                let assigned = &run.assign[LANES * b..LANES * b + lanes];
                if nearest[..lanes].iter().zip(assigned).fold(true, |same, (j, a)| same & (j == a)) {
                    continue;
                }
                for (lane, &j) in nearest[..lanes].iter().enumerate() {
                    let i = LANES * b + lane;
                    let a = run.assign[i];
                    if j != a {
                        run.remove(a as usize, block, lane, pts.sq_norms[i / LANES][i % LANES]);
                        run.add(j as usize, block, lane, pts.sq_norms[i / LANES][i % LANES]);
                        run.assign[i] = j;
                        *changed += 1;
                    }
                }
            }
        }
        for (run, &changed) in runs.iter_mut().zip(&changed) {
            // Nothing moved: the centres are already the means, so this is the fixed point.
            run.done |= changed == 0;
        }
    }
}

impl Predict for KMeansModel {
    type Input<'a> = ArrayView2<'a, f64>;
    type Output = Vec<usize>;

    /// Index of the nearest centroid for each row.
    ///
    /// # Panics
    /// When `data` and the centroids have different column counts.
    fn predict(&self, data: ArrayView2<'_, f64>) -> Vec<usize> {
        assert_eq!(
            data.ncols(),
            self.centroids.ncols(),
            "k-means predict: `data` column count differs from the centroids'"
        );
        let d = self.centroids.ncols();
        let centroids = self.centroids.as_standard_layout();
        let flat = centroids.as_slice().expect("standard layout is contiguous");
        let mut row = vec![0.0; d];
        data.outer_iter()
            .map(|x| {
                row.iter_mut().zip(x.iter()).for_each(|(r, v)| *r = *v);
                nearest(&row, flat, d).0
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics;
    use ndarray::{array, Array2};
    use rand_distr::{Distribution, Normal};

    /// `per` rows around each centre with unit-variance Gaussian noise; returns data and planted labels.
    fn planted(centres: &[&[f64]], per: usize, sd: f64, seed: u64) -> (Array2<f64>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let noise = Normal::new(0.0, sd).unwrap();
        let d = centres[0].len();
        let mut data = Array2::zeros((centres.len() * per, d));
        let mut labels = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for r in 0..per {
                let mut row = data.row_mut(c * per + r);
                row.iter_mut().zip(centre.iter()).for_each(|(v, m)| *v = m + noise.sample(&mut rng));
                labels.push(c);
            }
        }
        (data, labels)
    }

    #[test]
    fn separates_three_planted_clusters() {
        let (data, truth) = planted(&[&[0.0, 0.0], &[10.0, 10.0], &[-10.0, 10.0]], 100, 1.0, 7);
        let params = KMeansParams { k: 3, ..KMeansParams::default() };
        let model = params.fit(data.view()).unwrap();
        let predicted = model.predict(data.view());
        // Purity 100%: each planted cluster maps to exactly one predicted label, all distinct.
        let mut mapping = [usize::MAX; 3];
        for (&t, &p) in truth.iter().zip(&predicted) {
            if mapping[t] == usize::MAX {
                mapping[t] = p;
            }
            assert_eq!(mapping[t], p, "planted cluster {t} split");
        }
        assert!(mapping[0] != mapping[1] && mapping[1] != mapping[2] && mapping[0] != mapping[2]);
        let recomputed = metrics::sse(data.view(), model.centroids.view(), &predicted);
        approx::assert_relative_eq!(model.sse, recomputed, max_relative = 1e-9);
        assert!(model.iterations >= 1);
    }

    #[test]
    fn sse_is_deterministic_for_a_seed() {
        let (data, _) = planted(&[&[0.0, 0.0, 0.0], &[3.0, 0.0, 1.0], &[0.0, 3.0, -1.0]], 200, 1.5, 1);
        let params = KMeansParams { k: 5, n_init: 4, seed: 9, ..KMeansParams::default() };
        let a = params.fit(data.view()).unwrap();
        let b = params.fit(data.view()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn sse_no_worse_than_linfa_clustering() {
        use linfa::DatasetBase;
        let (data, _) = planted(
            &[&[0.0, 0.0, 0.0], &[4.0, 0.0, 1.0], &[0.0, 4.0, -1.0], &[4.0, 4.0, 0.0], &[2.0, 2.0, 4.0]],
            300,
            1.2,
            3,
        );
        for k in [3, 5, 8] {
            let ours = KMeansParams { k, n_init: 10, ..KMeansParams::default() }.fit(data.view()).unwrap();
            let params = linfa_clustering::KMeans::params(k).n_runs(10).tolerance(1e-4).max_n_iterations(300);
            let theirs = linfa::traits::Fit::fit(&params, &DatasetBase::from(data.clone())).unwrap();
            let theirs = KMeansModel { centroids: theirs.centroids().clone(), sse: 0.0, iterations: 0 };
            let theirs_sse = metrics::sse(data.view(), theirs.centroids.view(), &theirs.predict(data.view()));
            assert!(ours.sse <= theirs_sse * 1.01, "k={k}: ours {} vs linfa {theirs_sse}", ours.sse);
        }
    }

    #[test]
    fn result_does_not_depend_on_thread_count() {
        let (data, _) = planted(&[&[0.0, 0.0, 0.0], &[3.0, 0.0, 1.0], &[0.0, 3.0, -1.0]], 300, 2.0, 4);
        // 11 restarts: one thread runs them in lockstep groups of 8 and 3, eleven threads one each.
        let params = KMeansParams { k: 6, n_init: 11, seed: 3, ..KMeansParams::default() };
        let points = Points::centred(data.view()).unwrap();
        let one = params.restarts_on::<3>(&points, 1);
        for threads in [2, 3, 7, 11] {
            assert_eq!(params.restarts_on::<3>(&points, threads), one, "threads {threads}");
        }
        // The generic (unspecialised) path agrees with the specialised one.
        assert_eq!(params.restarts_on::<0>(&points, 1), one);
    }

    /// The AVX-512 build runs the AVX2 build's operations in the same order: the same result.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx512_and_avx2_builds_agree() {
        let simd = Simd::detect();
        if simd == simd.narrowed() {
            return; // nothing to compare on this CPU
        }
        let (data, _) = planted(&[&[0.0; 5], &[3.0, 0.0, 1.0, 2.0, -1.0], &[0.0, 3.0, -1.0, 1.0, 1.0]], 333, 2.0, 5);
        let params = KMeansParams { k: 7, n_init: 3, seed: 8, ..KMeansParams::default() };
        let points = Points::centred(data.view()).unwrap();
        let run = |simd: Simd| simd.dispatch(RunShare::<5> { params: &params, points: &points, t: 0, threads: 1 });
        assert_eq!(run(simd), run(simd.narrowed()));
    }

    #[test]
    fn linfa_fit_trait_matches_inherent_fit() {
        let (data, _) = planted(&[&[0.0, 0.0], &[5.0, 5.0]], 50, 1.0, 2);
        let params = KMeansParams { k: 2, ..KMeansParams::default() };
        let via_linfa = linfa::traits::Fit::fit(&params, &linfa::DatasetBase::from(data.clone())).unwrap();
        assert_eq!(via_linfa, params.fit(data.view()).unwrap());
    }

    #[test]
    fn invalid_input_is_an_error() {
        let data = array![[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]];
        let with = |k, n_init| KMeansParams { k, n_init, ..KMeansParams::default() };
        assert!(matches!(with(0, 1).fit(data.view()), Err(MlError::InvalidParam { name: "k", .. })));
        assert!(matches!(with(4, 1).fit(data.view()), Err(MlError::InvalidParam { name: "k", .. })));
        assert!(matches!(with(2, 0).fit(data.view()), Err(MlError::InvalidParam { name: "n_init", .. })));
        let bad = array![[0.0, 1.0], [f64::NAN, 0.0], [2.0, 2.0]];
        assert!(matches!(with(2, 1).fit(bad.view()), Err(MlError::InvalidInput(_))));
        let inf = array![[0.0, f64::INFINITY], [1.0, 0.0]];
        assert!(with(1, 1).fit(inf.view()).is_err());
        assert!(with(1, 1).fit(Array2::<f64>::zeros((0, 2)).view()).is_err());
    }

    #[test]
    fn duplicate_rows_and_k_equal_n() {
        // Only two distinct rows but k = 3: must not panic; SSE is 0 at best.
        let data = array![[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0]];
        let model = KMeansParams { k: 3, ..KMeansParams::default() }.fit(data.view()).unwrap();
        assert!(model.centroids.iter().all(|v| v.is_finite()));
        assert_eq!(model.sse, 0.0);
        // k = n: every row its own centroid.
        let data = array![[0.0], [3.0], [7.0]];
        let model = KMeansParams { k: 3, ..KMeansParams::default() }.fit(data.view()).unwrap();
        approx::assert_abs_diff_eq!(model.sse, 0.0, epsilon = 1e-12);
    }

    #[test]
    fn empty_cluster_is_reseeded_with_farthest_row() {
        // Centres at 1, 11 and 100 leave the third cluster empty; it must take a row and end non-empty.
        let data = array![[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]];
        let pts = Points::centred(data.view()).unwrap(); // mean 6
        let mut runs = vec![Run::new(6, 1, 3)];
        runs[0].centers.copy_from_slice(&[-5.0, 5.0, 94.0]);
        lloyd::<0, false>(&mut runs, &pts, 100, 0.0);
        let (run, sse) = (&runs[0], runs[0].sse);
        assert!(run.counts.iter().all(|&c| c > 0), "counts {:?}", run.counts);
        // Two clusters alone would give 4.0; a third non-empty one must do better.
        assert!(sse < 4.0, "sse {sse}");
    }

    #[test]
    fn one_cluster_is_the_mean() {
        let data = array![[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]];
        let model = KMeansParams { k: 1, ..KMeansParams::default() }.fit(data.view()).unwrap();
        approx::assert_abs_diff_eq!(model.centroids, array![[1.0, 2.0]], epsilon = 1e-12);
        // 4 rows, each at squared distance 1 + 4 = 5.
        approx::assert_abs_diff_eq!(model.sse, 20.0, epsilon = 1e-9);
    }
}
