//! Logistic regression over partitioned rows: each partition counts its rows once, then answers
//! the [`NewtonDriver`]'s passes with its sums, so the rows never meet in one place. The
//! single-node fit is the one-partition case of the same code, so one partition gives exactly
//! its model and several give it up to the rounding of adding their sums in partition order.

use super::newton::{
    LevelCounts, NewtonDriver, PartCounts, PassRequest, PassSums, SAMPLE_LEVELS, WARM_START_MIN_ROWS, WARM_START_STRIDE,
};
use super::{LogisticModel, LogisticParams, RowPasses};
use crate::{parallel, MlError, Result};
use ndarray::{Array1, ArrayView2, Axis, CowArray};

/// The rows of one partition: features, labels, optional per-row sample weights, and the global
/// index of its first row (partitions of a table are numbered consecutively; the warm-start
/// sample takes rows by global index, so it is the same however the table is cut).
#[derive(Debug, Clone)]
pub struct LogisticPart<'a> {
    x: ArrayView2<'a, f64>,
    y: &'a [bool],
    sample_weight: Option<&'a [f64]>,
    first_row: usize,
}

impl<'a> LogisticPart<'a> {
    /// Errors when `y` or `sample_weight` does not have one value per row, or a sample weight is
    /// negative or not finite.
    pub fn new(
        x: ArrayView2<'a, f64>,
        y: &'a [bool],
        sample_weight: Option<&'a [f64]>,
        first_row: usize,
    ) -> Result<Self> {
        let n = x.nrows();
        if y.len() != n {
            return Err(MlError::InvalidInput(format!("logistic: `x` has {n} rows but `y` has {} labels", y.len())));
        }
        if let Some(sw) = sample_weight {
            if sw.len() != n {
                return Err(MlError::InvalidInput(format!(
                    "logistic: `sample_weight` has {} values for {n} rows",
                    sw.len()
                )));
            }
            if let Some((i, v)) = sw.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= 0.0)) {
                return Err(MlError::InvalidInput(format!(
                    "logistic: `sample_weight` must be finite and non-negative, got {v} at row {}",
                    first_row + i
                )));
            }
        }
        Ok(Self { x, y, sample_weight, first_row })
    }

    pub fn rows(&self) -> usize {
        self.x.nrows()
    }

    /// Local indices of this partition's rows in sample `level`.
    fn level_rows(&self, level: usize) -> impl Iterator<Item = usize> {
        let stride = WARM_START_STRIDE.pow(level as u32);
        let first = (stride - self.first_row % stride) % stride;
        (first..self.rows()).step_by(stride)
    }

    /// What the driver needs to start: rows, positives and sample weight per class, per level.
    pub fn counts(&self) -> PartCounts {
        let levels = (0..SAMPLE_LEVELS)
            .map(|level| {
                let mut c = LevelCounts::default();
                for i in self.level_rows(level) {
                    let w = self.sample_weight.map_or(1.0, |sw| sw[i]);
                    c.rows += 1;
                    if self.y[i] {
                        c.positives += 1;
                        c.positive_weight += w;
                    } else {
                        c.negative_weight += w;
                    }
                }
                c
            })
            .collect();
        PartCounts { levels }
    }

    /// A worker answering passes over this partition; it keeps each level's rows and position
    /// between passes (a stateless worker, one per pass, gives the same answers).
    pub fn worker(&self) -> PartWorker<'a> {
        PartWorker { part: self.clone(), levels: Vec::new(), threads: None }
    }
}

/// Answers [`PassRequest`]s for one [`LogisticPart`].
pub struct PartWorker<'a> {
    part: LogisticPart<'a>,
    levels: Vec<Option<RowPasses<'a>>>,
    /// Overrides the thread count of the passes (tests).
    pub(crate) threads: Option<usize>,
}

impl PartWorker<'_> {
    /// The partition's sums for `request`. Errors on a non-finite feature value (naming its
    /// global row and column) or a request for a level out of range.
    pub fn pass(&mut self, request: &PassRequest) -> Result<PassSums> {
        let level = request.level;
        if level >= SAMPLE_LEVELS {
            return Err(MlError::InvalidInput(format!("logistic: no sample level {level}")));
        }
        if self.part.x.ncols() + 1 != request.beta.len() {
            return Err(MlError::InvalidInput(format!(
                "logistic: a pass with {} parameters over {} columns",
                request.beta.len(),
                self.part.x.ncols()
            )));
        }
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, || None);
        }
        let part = &self.part;
        let rows = self.levels[level].get_or_insert_with(|| {
            let [w_pos, w_neg] = request.class_weights;
            // A power of two (1 at level 0): scaling by it is exact, as scaling by 16 once per
            // level would be.
            let scale = (WARM_START_STRIDE as f64).powi(level as i32);
            let picks: Vec<usize> = part.level_rows(level).collect();
            let weight = |i: usize| {
                let class = if part.y[i] { w_pos } else { w_neg };
                part.sample_weight.map_or(class, |sw| class * sw[i]) * scale
            };
            let y: Array1<f64> = picks.iter().map(|&i| if part.y[i] { 1.0 } else { 0.0 }).collect();
            let w: Array1<f64> = picks.iter().map(|&i| weight(i)).collect();
            let x = if level == 0 { CowArray::from(part.x) } else { CowArray::from(part.x.select(Axis(0), &picks)) };
            let first = part.first_row + picks.first().copied().unwrap_or(0);
            RowPasses::new(x, (first, WARM_START_STRIDE.pow(level as u32)), y, w)
        });
        if let Some(threads) = self.threads {
            rows.threads = threads;
        }
        rows.pass(&request.beta, request.derivatives)
    }
}

impl LogisticParams {
    /// Fits on a table cut into `parts` (numbered consecutively from row 0, all with the same
    /// columns): the passes run on every partition in parallel and the driver adds their sums
    /// in partition order. One partition gives exactly [`fit_weighted`](Self::fit_weighted)'s
    /// model.
    pub fn fit_parts(&self, parts: &[LogisticPart]) -> Result<LogisticModel> {
        self.fit_parts_from(parts, None, Tuning::default())
    }

    pub(crate) fn fit_parts_from(
        &self,
        parts: &[LogisticPart],
        start: Option<&LogisticModel>,
        tuning: Tuning,
    ) -> Result<LogisticModel> {
        let (d, _) = crate::partitions::tile("logistic", parts.iter().map(|p| (p.x.ncols(), p.first_row, p.rows())))?;
        let counts = PartCounts::merge(&parallel::map(parts, LogisticPart::counts));
        let mut driver = NewtonDriver::with_warm_start_rows(self, d, &counts, start, tuning.warm_start_min_rows)?;
        let mut workers: Vec<PartWorker> = parts.iter().map(LogisticPart::worker).collect();
        workers.iter_mut().for_each(|w| w.threads = tuning.threads);
        while let Some(request) = driver.request() {
            let answers =
                parallel::map_mut(&mut workers, |w| w.pass(&request)).into_iter().collect::<Result<Vec<_>>>()?;
            driver.feed(&answers)?;
        }
        Ok(driver.model().expect("the loop ends when the solve does"))
    }
}

/// Knobs tests turn: when the warm start begins, and the threads per partition's pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub(crate) warm_start_min_rows: usize,
    pub(crate) threads: Option<usize>,
}

impl Default for Tuning {
    fn default() -> Self {
        Self { warm_start_min_rows: WARM_START_MIN_ROWS, threads: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logistic::ClassWeight;
    use ndarray::{s, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// Rows with standard-normal features, labels from a planted model, and uneven sample weights.
    fn table(n: usize, seed: u64) -> (Array2<f64>, Vec<bool>, Vec<f64>) {
        let coef = [0.9, -0.6, 0.3, 0.0, 1.1];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = Array2::from_shape_simple_fn((n, coef.len()), || rng.sample::<f64, _>(StandardNormal));
        let y = x
            .outer_iter()
            .map(|row| {
                let z: f64 = row.iter().zip(coef).map(|(a, b)| a * b).sum::<f64>() - 1.2;
                rng.gen::<f64>() < crate::logistic::sigmoid(z)
            })
            .collect();
        let w = (0..n).map(|_| rng.gen_range(0.5..2.0)).collect();
        (x, y, w)
    }

    /// `x`, `y`, `w` cut at `cuts` (row indices, ascending) into consecutive partitions.
    fn cut<'a>(x: &'a Array2<f64>, y: &'a [bool], w: &'a [f64], cuts: &[usize]) -> Vec<LogisticPart<'a>> {
        let bounds: Vec<usize> = [0].into_iter().chain(cuts.iter().copied()).chain([y.len()]).collect();
        bounds
            .windows(2)
            .map(|b| {
                LogisticPart::new(x.slice(s![b[0]..b[1], ..]), &y[b[0]..b[1]], Some(&w[b[0]..b[1]]), b[0]).unwrap()
            })
            .collect()
    }

    fn beta(m: &LogisticModel) -> Vec<f64> {
        m.coef.iter().copied().chain([m.intercept]).collect()
    }

    const PARAMS: LogisticParams =
        LogisticParams { l2: 2.0, max_iter: 100, tol: 1e-8, class_weight: ClassWeight::Balanced };
    /// Low enough that the 40,000-row tables below fit a warm start (two sample levels deep).
    const TUNING: Tuning = Tuning { warm_start_min_rows: 2_000, threads: None };

    /// The Step Functions shape: the driver's state goes through JSON between passes, and every
    /// partition answers with a fresh worker (no rows or position kept), its answer through
    /// JSON too.
    fn fit_stateless(parts: &[LogisticPart]) -> LogisticModel {
        let counts: Vec<PartCounts> = parts.iter().map(|p| json(&p.counts())).collect();
        let d = parts[0].x.ncols();
        let mut driver = NewtonDriver::with_warm_start_rows(
            &PARAMS,
            d,
            &PartCounts::merge(&counts),
            None,
            TUNING.warm_start_min_rows,
        )
        .unwrap();
        let mut passes = 0;
        loop {
            driver = json(&driver);
            let Some(request) = driver.request() else { break };
            let request = json(&request);
            let answers: Vec<PassSums> = parts.iter().map(|p| json(&p.worker().pass(&request).unwrap())).collect();
            driver.feed(&answers).unwrap();
            passes += 1;
        }
        assert!(passes >= 4, "{passes} passes");
        driver.model().unwrap()
    }

    fn json<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    #[test]
    fn one_partition_gives_the_single_node_model_bit_for_bit() {
        let (x, y, w) = table(40_000, 1);
        let single = PARAMS.fit_parts_from(&cut(&x, &y, &w, &[]), None, TUNING).unwrap();
        let defaults = PARAMS.fit_weighted(x.view(), &y, Some(&w)).unwrap();
        assert_eq!(PARAMS.fit_parts(&cut(&x, &y, &w, &[])).unwrap(), defaults);
        assert_eq!(fit_stateless(&cut(&x, &y, &w, &[])), single);
        // The warm start ran: a cold start ends elsewhere within tolerance.
        assert_ne!(single, defaults);
    }

    #[test]
    fn many_partitions_give_the_single_node_model_within_1e_6() {
        let (x, y, w) = table(40_000, 2);
        let single = beta(&PARAMS.fit_parts_from(&cut(&x, &y, &w, &[]), None, TUNING).unwrap());
        let sixteen: Vec<usize> = (1..16).map(|k| k * 2_500 + (k * 37) % 400).collect();
        // Uneven sizes, an empty partition, and partitions shorter than the sample stride.
        let layouts = [vec![7], vec![13_001, 13_001, 13_010, 29_999], sixteen];
        for cuts in &layouts {
            let parts = cut(&x, &y, &w, cuts);
            for (how, model) in [
                ("threads", PARAMS.fit_parts_from(&parts, None, TUNING).unwrap()),
                ("stateless", fit_stateless(&parts)),
            ] {
                for (a, b) in beta(&model).iter().zip(&single) {
                    assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{} parts ({how}): {a} vs {b}", parts.len());
                }
            }
        }
    }

    #[test]
    fn sample_levels_take_the_same_rows_however_the_table_is_cut() {
        let (x, y, w) = table(5_000, 3);
        let whole = PartCounts::merge(&[cut(&x, &y, &w, &[]).remove(0).counts()]);
        let parts = cut(&x, &y, &w, &[1, 15, 16, 17, 255, 4_097]);
        let merged = PartCounts::merge(&parts.iter().map(LogisticPart::counts).collect::<Vec<_>>());
        for (level, (a, b)) in whole.levels.iter().zip(&merged.levels).enumerate() {
            assert_eq!((a.rows, a.positives), (b.rows, b.positives), "level {level}");
            assert!((a.positive_weight - b.positive_weight).abs() < 1e-9, "level {level}");
        }
        assert_eq!(whole.levels[1].rows, 5_000usize.div_ceil(16));
        assert_eq!(whole.levels[3].rows, 2); // rows 0 and 4096
    }

    #[test]
    fn a_bad_value_is_reported_at_its_global_row() {
        let (mut x, y, w) = table(6_000, 4);
        x[[4_321, 2]] = f64::NAN;
        let parts = cut(&x, &y, &w, &[1_000, 4_000]);
        let err = PARAMS.fit_parts(&parts).unwrap_err().to_string();
        assert!(err.contains("row 4321, column 2"), "{err}");
        // In a warm-start sample too (row 4,320 is in every 16th).
        let (mut x, y, w) = table(6_000, 4);
        x[[4_320, 1]] = f64::INFINITY;
        let err = PARAMS.fit_parts_from(&cut(&x, &y, &w, &[1_000, 4_000]), None, TUNING).unwrap_err().to_string();
        assert!(err.contains("row 4320, column 1"), "{err}");
    }

    #[test]
    fn partitions_must_be_consecutive_and_alike() {
        let (x, y, w) = table(100, 5);
        let a = LogisticPart::new(x.slice(s![..50, ..]), &y[..50], Some(&w[..50]), 0).unwrap();
        let gap = LogisticPart::new(x.slice(s![50.., ..]), &y[50..], Some(&w[50..]), 51).unwrap();
        let err = PARAMS.fit_parts(&[a.clone(), gap]).unwrap_err().to_string();
        assert!(err.contains("partition 1 starts at row 51, not 50"), "{err}");
        let narrow = LogisticPart::new(x.slice(s![50.., ..2]), &y[50..], None, 50).unwrap();
        assert!(PARAMS.fit_parts(&[a, narrow]).unwrap_err().to_string().contains("partition 1 has 2 columns"));
        assert!(PARAMS.fit_parts(&[]).is_err());
        assert!(LogisticPart::new(x.view(), &y[1..], None, 0).is_err());
    }
}
