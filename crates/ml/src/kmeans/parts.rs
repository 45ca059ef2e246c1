//! k-means over partitioned rows: k-means|| seeding (Bahmani et al., "Scalable k-means++",
//! VLDB 2012) and Lloyd's passes as sums per centre, driven pass by pass like the logistic
//! fit ([`crate::logistic::NewtonDriver`]). The driver never sees the rows: it asks every
//! partition for a pass and adds the answers up in partition order.
//!
//! The random draws of the seeding are a hash of (seed, restart, round, global row index), not a
//! stream consumed row by row, so they are the same however the table is cut: many partitions
//! give the one-partition model up to the rounding of adding their sums in another order.
//!
//! This is a different fit from [`KMeansParams`]'s one-table `fit` (greedy k-means++ from one
//! stream, cluster sums kept incrementally), which has no partitioned counterpart: on the same
//! data the two reach comparable SSE, not the same centres.

use super::{nearest, KMeansModel, KMeansParams};
use crate::{parallel, MlError, Result};
use ndarray::{Array2, ArrayView2, CowArray, Ix2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Rounds of k-means|| sampling, and rows each round samples in expectation per centre wanted:
/// the paper's recommendation (5 rounds of 2k) leaves about 10k + 1 candidates per restart.
pub const SEEDING_ROUNDS: usize = 5;
pub const OVERSAMPLING: f64 = 2.0;

/// The rows of one partition and the global index of its first row.
#[derive(Debug, Clone)]
pub struct KMeansPart<'a> {
    /// In standard layout (copied only when the caller's view is not), so rows are slices.
    x: CowArray<'a, f64, Ix2>,
    first_row: usize,
}

/// A pass the driver wants, for every restart still running (`centres[r]`: that restart's
/// centres or candidates, `d` values each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KMeansRequest {
    /// Seeding, round 0: each restart's row with the smallest draw (a uniform pick over all rows).
    First { seed: u64, restarts: Vec<usize> },
    /// Seeding: each restart's cost, the summed squared distance to its nearest candidate.
    Cost { centres: Vec<Vec<f64>> },
    /// Seeding: the rows whose draw falls below `oversampling * distance^2 / cost[r]`.
    Sample { seed: u64, round: usize, restarts: Vec<usize>, centres: Vec<Vec<f64>>, cost: Vec<f64>, oversampling: f64 },
    /// Seeding: how many rows sit nearest each candidate.
    Weigh { centres: Vec<Vec<f64>> },
    /// Lloyd: per centre the rows' sum and count, and the SSE, with every row at its nearest.
    Assign { centres: Vec<Vec<f64>> },
}

/// One partition's answer, per restart of the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KMeansAnswer {
    /// (draw, global row, values) of the partition's smallest draw; `None` for no rows.
    First(Vec<Option<(f64, usize, Vec<f64>)>>),
    Cost(Vec<f64>),
    Sample(Vec<Vec<(usize, Vec<f64>)>>),
    Weigh(Vec<Vec<f64>>),
    Assign(Vec<ClusterSums>),
}

/// Per centre: the sum of the rows nearest it (`d` values each) and their count; and the SSE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSums {
    pub sums: Vec<f64>,
    pub counts: Vec<u64>,
    pub sse: f64,
}

impl<'a> KMeansPart<'a> {
    /// Errors when a value is not finite (naming its global row and column).
    pub fn new(x: ArrayView2<'a, f64>, first_row: usize) -> Result<Self> {
        if let Some(((r, c), v)) = crate::dense::first_non_finite(x) {
            return Err(MlError::InvalidInput(format!(
                "k-means: `data` has non-finite value {v} at row {}, column {c}",
                first_row + r
            )));
        }
        let x = if x.is_standard_layout() {
            CowArray::from(x)
        } else {
            CowArray::from(x.as_standard_layout().into_owned())
        };
        Ok(Self { x, first_row })
    }

    /// (global index, values) of every row.
    fn rows_iter(&self) -> impl Iterator<Item = (usize, &[f64])> + '_ {
        let (d, first_row) = (self.x.ncols().max(1), self.first_row);
        let values: &[f64] = self.x.as_slice().expect("standard layout");
        values.chunks_exact(d).take(self.rows()).enumerate().map(move |(i, row)| (first_row + i, row))
    }

    pub fn rows(&self) -> usize {
        self.x.nrows()
    }

    /// This partition's answer to `request`.
    pub fn pass(&self, request: &KMeansRequest) -> Result<KMeansAnswer> {
        let d = self.x.ncols();
        let width_ok = |centres: &[Vec<f64>]| centres.iter().all(|c| !c.is_empty() && c.len() % d == 0);
        let rows = || self.rows_iter();
        Ok(match request {
            KMeansRequest::First { seed, restarts } => KMeansAnswer::First(
                restarts
                    .iter()
                    .map(|&r| {
                        rows()
                            .map(|(g, row)| (draw(*seed, r, 0, g), g, row))
                            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                            .map(|(u, g, row)| (u, g, row.to_vec()))
                    })
                    .collect(),
            ),
            KMeansRequest::Cost { centres } if width_ok(centres) => KMeansAnswer::Cost(
                centres.iter().map(|c| rows().map(|(_, row)| nearest(row, c, d).1).sum::<f64>()).collect(),
            ),
            KMeansRequest::Sample { seed, round, restarts, centres, cost, oversampling }
                if width_ok(centres) && restarts.len() == centres.len() && cost.len() == centres.len() =>
            {
                KMeansAnswer::Sample(
                    restarts
                        .iter()
                        .zip(centres)
                        .zip(cost)
                        .map(|((&r, c), &phi)| {
                            rows()
                                .filter(|&(g, row)| {
                                    let p = if phi > 0.0 { oversampling * nearest(row, c, d).1 / phi } else { 0.0 };
                                    draw(*seed, r, *round, g) < p
                                })
                                .map(|(g, row)| (g, row.to_vec()))
                                .collect()
                        })
                        .collect(),
                )
            }
            KMeansRequest::Weigh { centres } if width_ok(centres) => KMeansAnswer::Weigh(
                centres
                    .iter()
                    .map(|c| {
                        let mut weights = vec![0.0; c.len() / d];
                        rows().for_each(|(_, row)| weights[nearest(row, c, d).0] += 1.0);
                        weights
                    })
                    .collect(),
            ),
            KMeansRequest::Assign { centres } if width_ok(centres) => KMeansAnswer::Assign(
                centres
                    .iter()
                    .map(|c| {
                        let k = c.len() / d;
                        let mut out = ClusterSums { sums: vec![0.0; k * d], counts: vec![0; k], sse: 0.0 };
                        for (_, row) in rows() {
                            let (j, dist) = nearest(row, c, d);
                            out.sums[j * d..(j + 1) * d].iter_mut().zip(row).for_each(|(s, v)| *s += v);
                            out.counts[j] += 1;
                            out.sse += dist;
                        }
                        out
                    })
                    .collect(),
            ),
            _ => return Err(MlError::InvalidInput(format!("k-means: a malformed request for {d} columns"))),
        })
    }
}

/// A uniform draw in [0, 1) from (seed, restart, round, global row): splitmix64 over the four.
fn draw(seed: u64, restart: usize, round: usize, row: usize) -> f64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let h = mix(mix(mix(mix(seed) ^ restart as u64) ^ round as u64) ^ row as u64);
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Where one restart stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Restart {
    /// Seeding: the candidates so far (`d` values each). Lloyd: the centres of the next pass.
    centres: Vec<f64>,
    /// Lloyd: SSE of the last pass's centres (none before the first), passes run, and whether it
    /// has stopped.
    sse: Option<f64>,
    iterations: usize,
    done: bool,
    /// The centres whose SSE is `sse` (the model if this restart ends here).
    scored: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Stage {
    First,
    Cost(usize),
    Sample(usize),
    Weigh,
    Lloyd,
    Done,
}

/// k-means|| seeding then Lloyd's passes for every restart in lockstep, driven pass by pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansDriver {
    params: KMeansParams,
    d: usize,
    stage: Stage,
    restarts: Vec<Restart>,
    /// The last cost pass's totals (for the sampling pass that follows it).
    cost: Vec<f64>,
}

impl KMeansDriver {
    /// A fit of `d` columns over `rows` rows in all. Errors on invalid parameters, or when `k`
    /// exceeds the rows.
    pub fn new(params: &KMeansParams, d: usize, rows: usize) -> Result<Self> {
        params.validate_counts(rows, d)?;
        let restart = Restart { centres: Vec::new(), sse: None, iterations: 0, done: false, scored: Vec::new() };
        Ok(Self {
            params: params.clone(),
            d,
            stage: Stage::First,
            restarts: vec![restart; params.n_init],
            cost: vec![],
        })
    }

    /// The pass to run next, or `None` when the fit has ended.
    pub fn request(&self) -> Option<KMeansRequest> {
        let seed = self.params.seed;
        let all: Vec<usize> = (0..self.restarts.len()).collect();
        let centres = || self.restarts.iter().map(|r| r.centres.clone()).collect();
        Some(match self.stage {
            Stage::First => KMeansRequest::First { seed, restarts: all },
            Stage::Cost(_) => KMeansRequest::Cost { centres: centres() },
            Stage::Sample(round) => KMeansRequest::Sample {
                seed,
                round,
                restarts: all,
                centres: centres(),
                cost: self.cost.clone(),
                oversampling: OVERSAMPLING * self.params.k as f64,
            },
            Stage::Weigh => KMeansRequest::Weigh { centres: centres() },
            Stage::Lloyd => KMeansRequest::Assign {
                centres: self.restarts.iter().filter(|r| !r.done).map(|r| r.centres.clone()).collect(),
            },
            Stage::Done => return None,
        })
    }

    /// Takes every partition's answer to [`request`](Self::request), in partition order.
    pub fn feed(&mut self, answers: &[KMeansAnswer]) -> Result<()> {
        let malformed = || MlError::InvalidInput("k-means: an answer does not match the request".into());
        let n = self.restarts.len();
        match self.stage {
            Stage::First => {
                let mut best: Vec<Option<(f64, usize, Vec<f64>)>> = vec![None; n];
                for answer in answers {
                    let KMeansAnswer::First(firsts) = answer else { return Err(malformed()) };
                    for (b, first) in best.iter_mut().zip(firsts.iter().flatten()) {
                        if b.as_ref().is_none_or(|b| (first.0, first.1) < (b.0, b.1)) {
                            *b = Some(first.clone());
                        }
                    }
                }
                for (restart, first) in self.restarts.iter_mut().zip(best) {
                    restart.centres = first.ok_or_else(malformed)?.2;
                }
                self.stage = Stage::Cost(1);
            }
            Stage::Cost(round) => {
                self.cost = vec![0.0; n];
                for answer in answers {
                    let KMeansAnswer::Cost(cost) = answer else { return Err(malformed()) };
                    self.cost.iter_mut().zip(cost).for_each(|(a, b)| *a += b);
                }
                self.stage = Stage::Sample(round);
            }
            Stage::Sample(round) => {
                for answer in answers {
                    let KMeansAnswer::Sample(sampled) = answer else { return Err(malformed()) };
                    if sampled.len() != n {
                        return Err(malformed());
                    }
                    for (restart, rows) in self.restarts.iter_mut().zip(sampled) {
                        rows.iter().for_each(|(_, row)| restart.centres.extend_from_slice(row));
                    }
                }
                self.stage = if round < SEEDING_ROUNDS { Stage::Cost(round + 1) } else { Stage::Weigh };
            }
            Stage::Weigh => {
                let mut weights: Vec<Vec<f64>> =
                    self.restarts.iter().map(|r| vec![0.0; r.centres.len() / self.d]).collect();
                for answer in answers {
                    let KMeansAnswer::Weigh(w) = answer else { return Err(malformed()) };
                    for (total, w) in weights.iter_mut().zip(w) {
                        total.iter_mut().zip(w).for_each(|(a, b)| *a += b);
                    }
                }
                let (params, d) = (&self.params, self.d);
                for (r, (restart, weights)) in self.restarts.iter_mut().zip(&weights).enumerate() {
                    restart.centres = recluster(params, d, r, &restart.centres, weights);
                }
                self.stage = Stage::Lloyd;
            }
            Stage::Lloyd => {
                let active: Vec<usize> = (0..n).filter(|&r| !self.restarts[r].done).collect();
                let mut totals: Vec<ClusterSums> = active
                    .iter()
                    .map(|_| ClusterSums {
                        sums: vec![0.0; self.params.k * self.d],
                        counts: vec![0; self.params.k],
                        sse: 0.0,
                    })
                    .collect();
                for answer in answers {
                    let KMeansAnswer::Assign(parts) = answer else { return Err(malformed()) };
                    if parts.len() != active.len() {
                        return Err(malformed());
                    }
                    for (t, p) in totals.iter_mut().zip(parts) {
                        t.sums.iter_mut().zip(&p.sums).for_each(|(a, b)| *a += b);
                        t.counts.iter_mut().zip(&p.counts).for_each(|(a, b)| *a += b);
                        t.sse += p.sse;
                    }
                }
                let (tol, max_iter, d) = (self.params.tol, self.params.max_iter, self.d);
                for (&r, total) in active.iter().zip(totals) {
                    let restart = &mut self.restarts[r];
                    let prev = restart.sse.replace(total.sse);
                    restart.scored = restart.centres.clone();
                    restart.iterations += 1;
                    let mut next = restart.centres.clone();
                    for (j, &count) in total.counts.iter().enumerate() {
                        if count > 0 {
                            let inv = 1.0 / count as f64;
                            next[j * d..(j + 1) * d]
                                .iter_mut()
                                .zip(&total.sums[j * d..(j + 1) * d])
                                .for_each(|(c, s)| *c = s * inv);
                        }
                    }
                    let converged = prev.is_some_and(|prev| prev - total.sse <= tol * prev);
                    restart.done = converged || restart.iterations >= max_iter || next == restart.centres;
                    restart.centres = next;
                }
                if self.restarts.iter().all(|r| r.done) {
                    self.stage = Stage::Done;
                }
            }
            Stage::Done => return Err(MlError::InvalidInput("k-means: the fit has ended".into())),
        }
        Ok(())
    }

    /// The best restart's model (lowest SSE, ties to the lower restart) once the fit has ended;
    /// its SSE is that of its centroids, every row at its nearest.
    pub fn model(&self) -> Option<KMeansModel> {
        if self.stage != Stage::Done {
            return None;
        }
        let sse = |r: usize| self.restarts[r].sse.expect("a finished restart has run a pass");
        let best = (0..self.restarts.len()).fold(0, |b, r| if sse(r) < sse(b) { r } else { b });
        let restart = &self.restarts[best];
        let centroids = Array2::from_shape_vec((self.params.k, self.d), restart.scored.clone()).expect("k * d values");
        Some(KMeansModel { centroids, sse: sse(best), iterations: restart.iterations })
    }
}

/// k centres from the weighted candidates: k-means++ draws (weight times squared distance), then
/// weighted Lloyd on the candidates (with fewer distinct candidates than k, some centres repeat).
fn recluster(params: &KMeansParams, d: usize, restart: usize, candidates: &[f64], weights: &[f64]) -> Vec<f64> {
    let m = weights.len();
    let row = |i: usize| &candidates[i * d..(i + 1) * d];
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    rng.set_stream(restart as u64);
    let pick = |rng: &mut ChaCha8Rng, mass: &[f64]| {
        let total: f64 = mass.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return rng.gen_range(0..m);
        }
        let mut left = rng.gen::<f64>() * total;
        mass.iter()
            .position(|&w| {
                left -= w;
                left < 0.0
            })
            .unwrap_or_else(|| mass.iter().rposition(|&w| w > 0.0).unwrap_or(m - 1))
    };
    let mut centres: Vec<f64> = row(pick(&mut rng, weights)).to_vec();
    let mut closest: Vec<f64> = (0..m).map(|i| super::sq_dist(row(i), &centres[..d])).collect();
    for _ in 1..params.k {
        let mass: Vec<f64> = closest.iter().zip(weights).map(|(c, w)| c * w).collect();
        let chosen = pick(&mut rng, &mass);
        centres.extend_from_slice(row(chosen));
        let c = &centres[centres.len() - d..];
        closest.iter_mut().enumerate().for_each(|(i, v)| *v = v.min(super::sq_dist(row(i), c)));
    }
    for _ in 0..params.max_iter {
        let mut sums = vec![0.0; params.k * d];
        let mut mass = vec![0.0; params.k];
        for (i, &w) in weights.iter().enumerate() {
            let j = nearest(row(i), &centres, d).0;
            sums[j * d..(j + 1) * d].iter_mut().zip(row(i)).for_each(|(s, v)| *s += w * v);
            mass[j] += w;
        }
        let mut next = centres.clone();
        for j in 0..params.k {
            if mass[j] > 0.0 {
                next[j * d..(j + 1) * d].iter_mut().zip(&sums[j * d..(j + 1) * d]).for_each(|(c, s)| *c = s / mass[j]);
            }
        }
        if next == centres {
            break;
        }
        centres = next;
    }
    centres
}

impl KMeansParams {
    /// Fits on a table cut into `parts` (numbered consecutively from row 0, all with the same
    /// columns), the partitions answering each pass on the machine's cores.
    pub fn fit_parts(&self, parts: &[KMeansPart]) -> Result<KMeansModel> {
        let (d, rows) = crate::partitions::tile("k-means", parts.iter().map(|p| (p.x.ncols(), p.first_row, p.rows())))?;
        let mut driver = KMeansDriver::new(self, d, rows)?;
        while let Some(request) = driver.request() {
            let answers = parallel::map(parts, |part| part.pass(&request)).into_iter().collect::<Result<Vec<_>>>()?;
            driver.feed(&answers)?;
        }
        Ok(driver.model().expect("the loop ends when the fit does"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{metrics, Fit, Predict};
    use ndarray::s;
    use rand_distr::{Distribution, Normal};

    /// `per` rows around each of five centres in 3 dimensions (unit noise), shuffled; and labels.
    fn planted(per: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
        let centres = [[0.0, 0.0, 0.0], [8.0, 0.0, 1.0], [0.0, 9.0, -2.0], [7.0, 7.0, 6.0], [-6.0, 3.0, 5.0]];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let mut rows: Vec<(usize, [f64; 3])> = (0..centres.len() * per)
            .map(|i| {
                let c = centres[i % centres.len()];
                (i % centres.len(), [0, 1, 2].map(|j| c[j] + noise.sample(&mut rng)))
            })
            .collect();
        for i in (1..rows.len()).rev() {
            rows.swap(i, rng.gen_range(0..=i));
        }
        let x = Array2::from_shape_fn((rows.len(), 3), |(i, j)| rows[i].1[j]);
        (x, rows.iter().map(|r| r.0).collect())
    }

    fn cut<'a>(x: &'a Array2<f64>, cuts: &[usize]) -> Vec<KMeansPart<'a>> {
        let bounds: Vec<usize> = [0].into_iter().chain(cuts.iter().copied()).chain([x.nrows()]).collect();
        bounds.windows(2).map(|b| KMeansPart::new(x.slice(s![b[0]..b[1], ..]), b[0]).unwrap()).collect()
    }

    const PARAMS: KMeansParams = KMeansParams { k: 5, n_init: 4, max_iter: 100, tol: 1e-4, seed: 42 };

    /// The Step Functions shape: driver state and every message through JSON between passes.
    fn fit_stateless(parts: &[KMeansPart], rows: usize) -> KMeansModel {
        fn json<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
            serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
        }
        let mut driver = KMeansDriver::new(&PARAMS, 3, rows).unwrap();
        loop {
            driver = json(&driver);
            let Some(request) = driver.request() else { return driver.model().unwrap() };
            let request = json(&request);
            let answers: Vec<KMeansAnswer> = parts.iter().map(|p| json(&p.pass(&request).unwrap())).collect();
            driver.feed(&answers).unwrap();
        }
    }

    #[test]
    fn finds_planted_clusters_as_well_as_the_one_table_fit() {
        let (x, labels) = planted(800, 1);
        let parts = PARAMS.fit_parts(&cut(&x, &[])).unwrap();
        let one_table = PARAMS.fit(x.view()).unwrap();
        // Purity: the rows in the planted majority of their cluster.
        let confusion = metrics::confusion_matrix(&labels, &parts.predict(x.view()), 5);
        let purity = confusion.columns().into_iter().map(|c| *c.iter().max().unwrap()).sum::<usize>() as f64 / 4_000.0;
        assert!(purity > 0.97, "purity {purity}");
        assert!(parts.sse <= one_table.sse * 1.001, "partitioned SSE {} vs one-table {}", parts.sse, one_table.sse);
        // The reported SSE is that of the returned centroids.
        let sse: f64 = x
            .outer_iter()
            .map(|row| {
                let flat = parts.centroids.as_slice().unwrap();
                nearest(row.as_slice().unwrap(), flat, 3).1
            })
            .sum();
        assert!((sse - parts.sse).abs() <= 1e-9 * sse);
    }

    #[test]
    fn any_cut_gives_the_one_partition_model() {
        let (x, _) = planted(600, 2);
        let whole = PARAMS.fit_parts(&cut(&x, &[])).unwrap();
        assert_eq!(fit_stateless(&cut(&x, &[]), x.nrows()), whole);
        let sixteen: Vec<usize> = (1..16).map(|k| k * 187 + k % 5).collect();
        for cuts in [vec![1], vec![1_000, 1_000, 2_999], sixteen] {
            let parts = cut(&x, &cuts);
            for model in [PARAMS.fit_parts(&parts).unwrap(), fit_stateless(&parts, x.nrows())] {
                assert!(
                    (model.sse - whole.sse).abs() <= 1e-9 * whole.sse,
                    "{} parts: SSE {} vs {}",
                    parts.len(),
                    model.sse,
                    whole.sse
                );
                for (a, b) in model.centroids.iter().zip(&whole.centroids) {
                    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{} parts: {a} vs {b}", parts.len());
                }
            }
        }
    }

    #[test]
    fn bad_input_is_named() {
        let (mut x, _) = planted(20, 3);
        x[[57, 1]] = f64::NAN;
        let err = KMeansPart::new(x.slice(s![50.., ..]), 50).unwrap_err().to_string();
        assert!(err.contains("row 57, column 1"), "{err}");
        let (x, _) = planted(20, 3);
        let gap =
            [KMeansPart::new(x.slice(s![..50, ..]), 0).unwrap(), KMeansPart::new(x.slice(s![50.., ..]), 60).unwrap()];
        assert!(PARAMS.fit_parts(&gap).unwrap_err().to_string().contains("partition 1 starts at row 60, not 50"));
        let few = KMeansParams { k: 101, ..PARAMS };
        assert!(matches!(few.fit_parts(&cut(&x, &[40])), Err(MlError::InvalidParam { name: "k", .. })));
        let mut driver = KMeansDriver::new(&PARAMS, 3, 100).unwrap();
        assert!(driver.feed(&[KMeansAnswer::Cost(vec![1.0])]).is_err(), "an answer to another request");
    }
}
