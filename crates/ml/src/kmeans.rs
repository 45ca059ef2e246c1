//! k-means with k-means++ initialisation, several seeded restarts, best SSE kept.

use crate::dense::Simd;
use crate::{MlError, Result};
use linfa::dataset::DatasetBase;
use linfa::traits::Fit;
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
    /// Errors when k == 0, k > rows, n_init == 0, or data has a non-finite value (also max_iter == 0, a
    /// negative or non-finite tol, or no columns).
    ///
    /// Each restart draws from its own ChaCha stream of `seed`, so the result depends only on the
    /// parameters and data, not on restart order or thread count. `iterations` is the best restart's.
    pub fn fit(&self, data: ArrayView2<f64>) -> Result<KMeansModel> {
        self.validate(data)?;
        let points = Points::centred(data);
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
        let sse = points.rows().map(|x| nearest(x, &centers, points.d).1).sum();
        for c in centers.chunks_exact_mut(points.d) {
            c.iter_mut().zip(&points.mean).for_each(|(v, m)| *v += m);
        }
        let centroids = Array2::from_shape_vec((self.k, points.d), centers).expect("k * d centroid values");
        Ok(KMeansModel { centroids, sse, iterations })
    }

    /// Runs every restart; returns (SSE, centres, iterations) of the best. `D` is the column count, or 0
    /// for "not specialised".
    ///
    /// Restarts are independent, so large fits spread them over the available cores; ties go to the
    /// lowest restart index, so the result does not depend on the thread count.
    fn restarts<const D: usize>(&self, points: &Points) -> (f64, Vec<f64>, usize) {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let work = points.n.saturating_mul(points.d).saturating_mul(self.k).saturating_mul(self.n_init);
        let threads = if work < PARALLEL_MIN_WORK { 1 } else { cores.min(self.n_init) };
        self.restarts_on::<D>(points, threads)
    }

    fn restarts_on<const D: usize>(&self, points: &Points, threads: usize) -> (f64, Vec<f64>, usize) {
        let simd = Simd::detect();
        let run_share = |t: usize| match simd {
            Simd::Plain => self.run_share::<D>(points, t, threads),
            // SAFETY: `detect` chose this variant only on a CPU with AVX2 (and FMA, unused here).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2Fma => unsafe { self.run_share_avx2::<D>(points, t, threads) },
        };
        let shares: Vec<_> = if threads == 1 {
            vec![run_share(0)]
        } else {
            let run_share = &run_share;
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads).map(|t| scope.spawn(move || run_share(t))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
            })
        };
        let (sse, _, centers, iterations) = shares
            .into_iter()
            .flatten()
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .expect("n_init >= 1 was validated");
        (sse, centers, iterations)
    }

    /// Restarts `t, t + threads, ...`; returns (SSE, restart, centres, iterations) of their best.
    #[inline(always)]
    fn run_share<const D: usize>(
        &self,
        points: &Points,
        t: usize,
        threads: usize,
    ) -> Option<(f64, usize, Vec<f64>, usize)> {
        let mut run = Run::new(points.n, points.d, self.k);
        let mut best: Option<(f64, usize, Vec<f64>, usize)> = None;
        for restart in (t..self.n_init).step_by(threads) {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(restart as u64);
            run.init_plus_plus::<D>(points, &mut rng);
            let (sse, iterations) = run.lloyd::<D>(points, self.max_iter, self.tol);
            let better = match &best {
                Some(b) => sse < b.0,
                None => true,
            };
            if better {
                best = Some((sse, restart, run.centers.clone(), iterations));
            }
        }
        best
    }

    /// [`run_share`](Self::run_share) compiled for AVX2: the four-row blocks then fill one 256-bit
    /// register instead of two 128-bit ones. No FMA and no reordering, so the arithmetic, and the
    /// result, are the same as the baseline build's.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_share_avx2<const D: usize>(
        &self,
        points: &Points,
        t: usize,
        threads: usize,
    ) -> Option<(f64, usize, Vec<f64>, usize)> {
        self.run_share::<D>(points, t, threads)
    }

    fn validate(&self, data: ArrayView2<f64>) -> Result<()> {
        let invalid = |name, reason: String| Err(MlError::InvalidParam { name, reason });
        if self.k == 0 {
            return invalid("k", "must be at least 1".into());
        }
        if self.k > data.nrows() {
            return invalid("k", format!("{} exceeds the number of rows ({})", self.k, data.nrows()));
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
        if data.ncols() == 0 {
            return Err(MlError::InvalidInput("k-means: `data` has no columns".into()));
        }
        if let Some(((r, c), v)) = data.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(MlError::InvalidInput(format!(
                "k-means: `data` has non-finite value {v} at row {r}, column {c}"
            )));
        }
        Ok(())
    }
}

/// Lets k-means run inside linfa pipelines; targets are ignored.
impl<T> Fit<Array2<f64>, T, MlError> for KMeansParams {
    type Object = KMeansModel;

    fn fit(&self, dataset: &DatasetBase<Array2<f64>, T>) -> Result<KMeansModel> {
        KMeansParams::fit(self, dataset.records().view())
    }
}

/// Below this many `rows * cols * k * n_init`, restarts run on the calling thread: spawning would cost
/// more than it saves.
const PARALLEL_MIN_WORK: usize = 2_000_000;

/// Rows in a flat row-major buffer, centred on the column means: centring changes no distance but keeps
/// the `sum |x|^2 - |sum x|^2 / n` form of the SSE free of cancellation.
struct Points {
    flat: Vec<f64>,
    /// The same rows in blocks of four, dimension-major within a block (`blocked[b * d + dim][lane]` is
    /// row `4b + lane`, zero-padded), so the nearest-centre search scores four rows per SIMD-friendly pass.
    blocked: Vec<[f64; 4]>,
    sq_norms: Vec<f64>,
    mean: Vec<f64>,
    n: usize,
    d: usize,
}

impl Points {
    fn centred(data: ArrayView2<f64>) -> Self {
        let (n, d) = data.dim();
        let mean: Vec<f64> = data.mean_axis(ndarray::Axis(0)).expect("rows >= k >= 1").to_vec();
        let mut flat = Vec::with_capacity(n * d);
        for row in data.outer_iter() {
            flat.extend(row.iter().zip(&mean).map(|(v, m)| v - m));
        }
        let sq_norms = flat.chunks_exact(d).map(|x| dot(x, x)).collect();
        let mut blocked = vec![[0.0; 4]; n.div_ceil(4) * d];
        for (i, x) in flat.chunks_exact(d).enumerate() {
            for (dim, &v) in x.iter().enumerate() {
                blocked[(i / 4) * d + dim][i % 4] = v;
            }
        }
        Self { flat, blocked, sq_norms, mean, n, d }
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.flat[i * self.d..(i + 1) * self.d]
    }

    fn rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.flat.chunks_exact(self.d)
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

/// `init + a.b`, accumulated left to right from `init` (the same order as [`nearest4`], so both searches
/// agree exactly), with the length known at compile time when `D > 0`.
#[inline(always)]
fn dot_from<const D: usize>(init: f64, a: &[f64], b: &[f64]) -> f64 {
    if D == 0 {
        return a.iter().zip(b).fold(init, |acc, (x, y)| acc + x * y);
    }
    let (a, b): (&[f64; D], &[f64; D]) = (a.try_into().unwrap(), b.try_into().unwrap());
    let mut acc = init;
    for i in 0..D {
        acc += a[i] * b[i];
    }
    acc
}

/// Squared distances from the rows of block `b` (rows `4b..4b + 4`; lanes past the last row are
/// meaningless) to `c`, each summed over the dimensions in order. With `D > 0` the four rows go
/// through [`Points::blocked`] side by side: four independent sums instead of one long chain of
/// dependent adds.
#[inline(always)]
fn sq_dist4<const D: usize>(pts: &Points, b: usize, c: &[f64]) -> [f64; 4] {
    if D == 0 {
        return std::array::from_fn(|lane| {
            let i = 4 * b + lane;
            if i < pts.n {
                sq_dist(pts.row(i), c)
            } else {
                0.0
            }
        });
    }
    let block: &[[f64; 4]; D] = pts.blocked[b * D..(b + 1) * D].try_into().unwrap();
    let c: &[f64; D] = c.try_into().unwrap();
    let mut acc = [0.0; 4];
    for dim in 0..D {
        for lane in 0..4 {
            let t = block[dim][lane] - c[dim];
            acc[lane] += t * t;
        }
    }
    acc
}

/// Index of the nearest centre given `-2 c` and `|c|^2` per centre: it minimises `|c|^2 - 2 x.c`, which
/// ranks centres like `|x - c|^2` with a third fewer operations. The search is branch-free because a
/// row's nearest centre is unpredictable and mispredictions would cost more than the arithmetic.
#[inline]
fn nearest_n<const D: usize>(x: &[f64], neg2_centers: &[f64], center_sq_norms: &[f64], d: usize) -> usize {
    let (mut best, mut best_v) = (0, f64::INFINITY);
    for (j, (c, &norm)) in neg2_centers.chunks_exact(d).zip(center_sq_norms).enumerate() {
        let v = dot_from::<D>(norm, x, c);
        let closer = v < best_v;
        best_v = if closer { v } else { best_v };
        best = if closer { j } else { best };
    }
    best
}

/// [`nearest_n`] for the four rows of one block of [`Points::blocked`]; needs `D > 0`.
#[inline(always)]
fn nearest4<const D: usize>(block: &[[f64; 4]], neg2_centers: &[f64], center_sq_norms: &[f64]) -> [usize; 4] {
    let block: &[[f64; 4]; D] = block.try_into().unwrap();
    let mut best_v = [f64::INFINITY; 4];
    let mut best = [0usize; 4];
    for (j, (c, &norm)) in neg2_centers.chunks_exact(D).zip(center_sq_norms).enumerate() {
        let c: &[f64; D] = c.try_into().unwrap();
        let mut acc = [norm; 4];
        for dim in 0..D {
            for lane in 0..4 {
                acc[lane] += block[dim][lane] * c[dim];
            }
        }
        for lane in 0..4 {
            let closer = acc[lane] < best_v[lane];
            best_v[lane] = if closer { acc[lane] } else { best_v[lane] };
            best[lane] = if closer { j } else { best[lane] };
        }
    }
    best
}

/// Index of the nearest centre and its squared distance (exact distances; for scoring, not the hot loop).
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

/// Buffers for one restart, allocated once per `fit` and reused across restarts.
///
/// Lloyd's algorithm with incrementally maintained cluster sums: a pass touches a cluster's sums only for
/// rows that change cluster, and the SSE of the assignment under its means comes from the sums in O(k d).
/// (Triangle-inequality pruning, Hamerly's or Elkan's, was measured slower at k <= 10 and d = 5: its
/// branches mispredict more than they save.)
struct Run {
    k: usize,
    d: usize,
    centers: Vec<f64>,
    neg2_centers: Vec<f64>,
    center_sq_norms: Vec<f64>,
    /// Per-cluster sum of member rows, member count and sum of member squared norms.
    sums: Vec<f64>,
    counts: Vec<usize>,
    sq_sums: Vec<f64>,
    assign: Vec<usize>,
    /// k-means++ scratch: squared distance to the nearest chosen centre and its running sums.
    closest: Vec<f64>,
    cumulative: Vec<f64>,
}

impl Run {
    fn new(n: usize, d: usize, k: usize) -> Self {
        Self {
            k,
            d,
            centers: vec![0.0; k * d],
            neg2_centers: vec![0.0; k * d],
            center_sq_norms: vec![0.0; k],
            sums: vec![0.0; k * d],
            counts: vec![0; k],
            sq_sums: vec![0.0; k],
            assign: vec![0; n],
            closest: vec![0.0; n],
            cumulative: vec![0.0; n],
        }
    }

    /// Greedy k-means++ (as in scikit-learn): each new centre is the best of `2 + ln k` candidates drawn
    /// with probability proportional to squared distance, which avoids most poor seedings.
    ///
    /// Two passes over the rows per centre whatever the candidate count: one scores every candidate,
    /// one moves the chosen centre into the distances (and their running sum). On data larger than
    /// the caches the passes are bound by memory bandwidth, so their number is what counts.
    #[inline(always)]
    fn init_plus_plus<const D: usize>(&mut self, pts: &Points, rng: &mut ChaCha8Rng) {
        let (n, d) = (pts.n, self.d);
        let n_trials = 2 + (self.k as f64).ln() as usize;
        let first = rng.gen_range(0..n);
        self.centers[..d].copy_from_slice(pts.row(first));
        self.closest.fill(f64::INFINITY);
        let mut acc = self.move_closest::<D>(pts, first);
        let mut candidates = Vec::with_capacity(n_trials);
        let mut potentials = vec![0.0; n_trials];
        for j in 1..self.k {
            candidates.clear();
            for _ in 0..n_trials {
                candidates.push(if acc > 0.0 {
                    let r = rng.gen::<f64>() * acc;
                    self.cumulative.partition_point(|&v| v <= r).min(n - 1)
                } else {
                    // Every row sits on a centre already (duplicates): any row will do.
                    rng.gen_range(0..n)
                });
            }
            potentials.fill(0.0);
            for (b, closest) in self.closest.chunks(4).enumerate() {
                for (p, &cand) in potentials.iter_mut().zip(&candidates) {
                    let dist = sq_dist4::<D>(pts, b, pts.row(cand));
                    for (&c, &dist) in closest.iter().zip(&dist) {
                        *p += c.min(dist);
                    }
                }
            }
            // Lowest potential wins; ties go to the earlier draw.
            let best = (0..n_trials).fold(0, |b, t| if potentials[t] < potentials[b] { t } else { b });
            acc = self.move_closest::<D>(pts, candidates[best]);
            self.centers[j * d..(j + 1) * d].copy_from_slice(pts.row(candidates[best]));
        }
    }

    /// Lowers each row's distance to its nearest chosen centre by the new centre, row `chosen`;
    /// refreshes the running sums and returns the total.
    #[inline(always)]
    fn move_closest<const D: usize>(&mut self, pts: &Points, chosen: usize) -> f64 {
        let mut acc = 0.0;
        for (b, (closest, cumulative)) in self.closest.chunks_mut(4).zip(self.cumulative.chunks_mut(4)).enumerate() {
            let dist = sq_dist4::<D>(pts, b, pts.row(chosen));
            for ((c, cum), &dist) in closest.iter_mut().zip(cumulative).zip(&dist) {
                *c = c.min(dist);
                acc += *c;
                *cum = acc;
            }
        }
        acc
    }

    /// Lloyd iterations from the current centres. Returns (SSE of the final assignment under its means,
    /// iterations run).
    #[inline(always)]
    fn lloyd<const D: usize>(&mut self, pts: &Points, max_iter: usize, tol: f64) -> (f64, usize) {
        self.sums.fill(0.0);
        self.counts.fill(0);
        self.sq_sums.fill(0.0);
        self.prepare_centers();
        if D == 0 {
            for (i, x) in pts.rows().enumerate() {
                let j = nearest_n::<D>(x, &self.neg2_centers, &self.center_sq_norms, self.d);
                self.assign[i] = j;
                self.add(j, x, pts.sq_norms[i]);
            }
        } else {
            for (b, block) in pts.blocked.chunks_exact(D).enumerate() {
                let nearest = nearest4::<D>(block, &self.neg2_centers, &self.center_sq_norms);
                for (i, &j) in (4 * b..pts.n.min(4 * b + 4)).zip(&nearest) {
                    self.assign[i] = j;
                    self.add(j, pts.row(i), pts.sq_norms[i]);
                }
            }
        }
        let mut prev_sse = f64::INFINITY;
        let mut iterations = 0;
        loop {
            iterations += 1;
            self.relocate_empty(pts);
            self.update_centers();
            let sse = self.assignment_sse();
            let converged = prev_sse.is_finite() && prev_sse - sse <= tol * prev_sse;
            if converged || iterations >= max_iter {
                return (sse, iterations);
            }
            prev_sse = sse;
            if self.reassign::<D>(pts) == 0 {
                return (sse, iterations);
            }
        }
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

    /// Moves every row to its nearest centre. Returns how many rows changed cluster.
    #[inline(always)]
    fn reassign<const D: usize>(&mut self, pts: &Points) -> usize {
        if D == 0 {
            return self.reassign_rows::<D>(pts);
        }
        let mut changed = 0;
        for (b, block) in pts.blocked.chunks_exact(D).enumerate() {
            let nearest = nearest4::<D>(block, &self.neg2_centers, &self.center_sq_norms);
            for (lane, &j) in nearest.iter().enumerate() {
                let i = 4 * b + lane;
                if i >= pts.n {
                    break;
                }
                let a = self.assign[i];
                if j != a {
                    let x = pts.row(i);
                    self.remove(a, x, pts.sq_norms[i]);
                    self.add(j, x, pts.sq_norms[i]);
                    self.assign[i] = j;
                    changed += 1;
                }
            }
        }
        changed
    }

    /// [`reassign`](Self::reassign) one row at a time, for dimensions without a specialisation.
    #[inline(always)]
    fn reassign_rows<const D: usize>(&mut self, pts: &Points) -> usize {
        let mut changed = 0;
        for (i, x) in pts.rows().enumerate() {
            let j = nearest_n::<D>(x, &self.neg2_centers, &self.center_sq_norms, self.d);
            let a = self.assign[i];
            if j != a {
                self.remove(a, x, pts.sq_norms[i]);
                self.add(j, x, pts.sq_norms[i]);
                self.assign[i] = j;
                changed += 1;
            }
        }
        changed
    }

    #[inline]
    fn add(&mut self, j: usize, x: &[f64], sq_norm: f64) {
        self.sums[j * self.d..(j + 1) * self.d].iter_mut().zip(x).for_each(|(s, v)| *s += v);
        self.counts[j] += 1;
        self.sq_sums[j] += sq_norm;
    }

    #[inline]
    fn remove(&mut self, j: usize, x: &[f64], sq_norm: f64) {
        self.sums[j * self.d..(j + 1) * self.d].iter_mut().zip(x).for_each(|(s, v)| *s -= v);
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
        let mut far: Vec<(f64, usize)> =
            pts.rows().enumerate().map(|(i, x)| (sq_dist(x, &self.centers[self.assign[i] * d..][..d]), i)).collect();
        far.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut donors = far.into_iter().map(|(_, i)| i);
        for j in 0..self.k {
            if self.counts[j] > 0 {
                continue;
            }
            let Some(i) = donors.by_ref().find(|&i| self.counts[self.assign[i]] > 1) else {
                return; // fewer distinct rows than clusters; leave the centre where it is
            };
            let x = pts.row(i);
            self.remove(self.assign[i], x, pts.sq_norms[i]);
            self.add(j, x, pts.sq_norms[i]);
            self.assign[i] = j;
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
        for ((c, m), norm) in self
            .centers
            .chunks_exact(self.d)
            .zip(self.neg2_centers.chunks_exact_mut(self.d))
            .zip(&mut self.center_sq_norms)
        {
            m.iter_mut().zip(c).for_each(|(m, v)| *m = -2.0 * v);
            *norm = dot(c, c);
        }
    }
}

impl KMeansModel {
    /// Index of the nearest centroid for each row.
    ///
    /// # Panics
    /// When `data` and the centroids have different column counts.
    pub fn predict(&self, data: ArrayView2<f64>) -> Vec<usize> {
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
        use linfa::traits::Fit as _;
        use linfa::DatasetBase;
        let (data, _) = planted(
            &[&[0.0, 0.0, 0.0], &[4.0, 0.0, 1.0], &[0.0, 4.0, -1.0], &[4.0, 4.0, 0.0], &[2.0, 2.0, 4.0]],
            300,
            1.2,
            3,
        );
        for k in [3, 5, 8] {
            let ours = KMeansParams { k, n_init: 10, ..KMeansParams::default() }.fit(data.view()).unwrap();
            let theirs = linfa_clustering::KMeans::params(k)
                .n_runs(10)
                .tolerance(1e-4)
                .max_n_iterations(300)
                .fit(&DatasetBase::from(data.clone()))
                .unwrap();
            let theirs = KMeansModel { centroids: theirs.centroids().clone(), sse: 0.0, iterations: 0 };
            let theirs_sse = metrics::sse(data.view(), theirs.centroids.view(), &theirs.predict(data.view()));
            assert!(ours.sse <= theirs_sse * 1.01, "k={k}: ours {} vs linfa {theirs_sse}", ours.sse);
        }
    }

    #[test]
    fn result_does_not_depend_on_thread_count() {
        let (data, _) = planted(&[&[0.0, 0.0, 0.0], &[3.0, 0.0, 1.0], &[0.0, 3.0, -1.0]], 300, 2.0, 4);
        let params = KMeansParams { k: 6, n_init: 7, seed: 3, ..KMeansParams::default() };
        let points = Points::centred(data.view());
        let one = params.restarts_on::<3>(&points, 1);
        for threads in [2, 3, 7] {
            assert_eq!(params.restarts_on::<3>(&points, threads), one, "threads {threads}");
        }
        // The generic (unspecialised) path agrees with the specialised one.
        assert_eq!(params.restarts_on::<0>(&points, 1), one);
    }

    #[test]
    fn linfa_fit_trait_matches_inherent_fit() {
        let (data, _) = planted(&[&[0.0, 0.0], &[5.0, 5.0]], 50, 1.0, 2);
        let params = KMeansParams { k: 2, ..KMeansParams::default() };
        let via_linfa = Fit::fit(&params, &linfa::DatasetBase::from(data.clone())).unwrap();
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
        let pts = Points::centred(data.view()); // mean 6
        let mut run = Run::new(6, 1, 3);
        run.centers.copy_from_slice(&[-5.0, 5.0, 94.0]);
        let (sse, _) = run.lloyd::<0>(&pts, 100, 0.0);
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

    /// Benchmark shape: k = 2..10, 10 restarts each, on 23,570 x 5. Run with
    /// `cargo test --release -p marquee-ml -- --ignored kmeans_timing --nocapture`.
    #[test]
    #[ignore]
    fn kmeans_timing() {
        let centres: Vec<Vec<f64>> =
            (0..7).map(|c| (0..5).map(|j| ((c * 5 + j) * 37 % 11) as f64 - 5.0).collect()).collect();
        let refs: Vec<&[f64]> = centres.iter().map(|c| c.as_slice()).collect();
        let (mut data, _) = planted(&refs, 3368, 1.5, 11);
        data = data.slice(ndarray::s![..23_570, ..]).to_owned();
        let start = std::time::Instant::now();
        let mut total_iter = 0;
        for k in 2..=10 {
            let model = KMeansParams { k, n_init: 10, ..KMeansParams::default() }.fit(data.view()).unwrap();
            total_iter += model.iterations;
            println!("k={k} sse={:.1} iterations(best)={}", model.sse, model.iterations);
        }
        println!("k-means k=2..10 x 10 inits on {:?}: {:?} ({total_iter})", data.dim(), start.elapsed());
    }
}
