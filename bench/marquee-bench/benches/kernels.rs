//! Micro-benchmarks of the marquee-ml kernels on the shared data (divan):
//! `CARGO_TARGET_DIR=/work/target-g cargo bench -p marquee-bench --bench kernels`
//! Skips a kernel whose input file is missing.

use marquee_ml::als::{AlsParams, RegScaling};
use marquee_ml::kmeans::KMeansParams;
use marquee_ml::logistic::LogisticParams;
use marquee_ml::text::{NbLogisticParams, TfidfParams};
use marquee_ml::Fit;
use std::path::PathBuf;

#[path = "../src/data.rs"]
#[allow(dead_code)]
mod data;

fn main() {
    divan::main();
}

/// The real datasets' folder, `MARQUEE_DATA_DIR`.
fn shared() -> PathBuf {
    PathBuf::from(std::env::var_os("MARQUEE_DATA_DIR").expect("set MARQUEE_DATA_DIR to the datasets' folder"))
}

#[divan::bench(sample_count = 10, args = [10, 50])]
fn als_ml100k_fold0(bencher: divan::Bencher, rank: usize) {
    let Ok((train, _, nu, ni)) = data::movielens_fold(&shared(), 0) else { return };
    let p = AlsParams { rank, iterations: 10, lambda: 0.1, seed: 42 };
    bencher.bench(|| p.fit_with_scaling(&train, nu, ni, RegScaling::Count).unwrap());
}

#[divan::bench(sample_count = 10, args = [2, 5, 10])]
fn kmeans_cdnow_n_init10(bencher: divan::Bencher, k: usize) {
    let Ok(x) = data::cdnow_z(&shared()) else { return };
    let p = KMeansParams { k, n_init: 10, ..Default::default() };
    bencher.bench(|| p.fit(x.view()).unwrap());
}

#[divan::bench(sample_count = 20)]
fn logistic_synthetic_100k_x20(bencher: divan::Bencher) {
    bench_logistic(bencher, 100_000, 20, 11);
}

/// Telco-fold-sized (5,634 x 40 after one-hot): a fit is a few passes of the Gram kernel over a
/// cache-resident matrix, so this measures the per-pass arithmetic.
#[divan::bench(sample_count = 50)]
fn logistic_synthetic_5600_x45(bencher: divan::Bencher) {
    bench_logistic(bencher, 5_600, 45, 8);
}

/// A default `LogisticParams` fit on `n x d` synthetic rows (the bench's planted model).
fn bench_logistic(bencher: divan::Bencher, n: usize, d: usize, seed: u64) {
    let (x, y) = data::synth_logistic(n, d, seed);
    let x = ndarray::Array2::from_shape_vec((n, d), x).unwrap();
    let y: Vec<bool> = y.iter().map(|&v| v > 0.5).collect();
    bencher.bench(|| LogisticParams::default().fit((x.view(), &y)).unwrap());
}

#[divan::bench(sample_count = 3)]
fn tfidf_nblr_imdb_5k(bencher: divan::Bencher) {
    let Ok((docs, y)) = data::imdb(&shared()) else { return };
    let (docs, y) = (&docs[..5000], &y[..5000]);
    bencher.bench(|| {
        let (_, x) = TfidfParams::default().fit_transform(docs).unwrap();
        NbLogisticParams::default().fit((&x, y)).unwrap()
    });
}
