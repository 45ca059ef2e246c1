//! k-means fitted over partitions (k-means|| seeding, Lloyd's passes as sums per centre) against
//! the one-table fit on the same rows.
//!
//! `cargo run --release -p marquee-ml --example kmeans_parts -- [rows] [columns] [k]` (default
//! 1,000,000 x 5, k = 8; generated: 12 Gaussian blobs of unequal spread). For 1, 16 and 64
//! partitions it reports the fit time with the partitions on this machine's threads, the passes
//! over the rows, the largest request and answer in JSON, and the SSE against the one-table fit's.

use marquee_ml::kmeans::{KMeansDriver, KMeansParams, KMeansPart};
use marquee_ml::Fit;
use ndarray::{s, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("rows, columns and k are counts"));
    let (n, d, k) = (args.next().unwrap_or(1_000_000), args.next().unwrap_or(5), args.next().unwrap_or(8));
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let blobs: Vec<(Vec<f64>, f64)> =
        (0..12).map(|b| ((0..d).map(|_| rng.gen_range(-10.0..10.0)).collect(), 0.5 + (b % 4) as f64)).collect();
    let x = Array2::from_shape_fn((n, d), |(i, j)| {
        let (centre, spread) = &blobs[(i * 7 + i / 3) % blobs.len()];
        centre[j] + spread * rng.sample::<f64, _>(StandardNormal)
    });
    let params = KMeansParams { k, ..Default::default() };
    let t = Instant::now();
    let one_table = params.fit(x.view()).expect("fit");
    println!("{n} rows x {d} columns, k = {k}, n_init = {}", params.n_init);
    println!("one-table fit: {:.0} ms, SSE {:.6e}", t.elapsed().as_secs_f64() * 1e3, one_table.sse);
    println!("| partitions | fit on threads | passes | largest request | largest answer | SSE / one-table SSE |");
    println!("|---|---|---|---|---|---|");
    for parts_count in [1, 16, 64] {
        let parts: Vec<KMeansPart> = (0..parts_count)
            .map(|p| {
                let (a, b) = (p * n / parts_count, (p + 1) * n / parts_count);
                KMeansPart::new(x.slice(s![a..b, ..]), a).expect("finite rows")
            })
            .collect();
        let t = Instant::now();
        let model = params.fit_parts(&parts).expect("fit");
        let seconds = t.elapsed().as_secs_f64();
        // The passes again, to size the messages a Step Functions loop would carry.
        let mut driver = KMeansDriver::new(&params, d, n).expect("driver");
        let (mut passes, mut request_bytes, mut answer_bytes) = (0, 0, 0);
        while let Some(request) = driver.request() {
            request_bytes = request_bytes.max(serde_json::to_string(&request).expect("json").len());
            let answers: Vec<_> = parts.iter().map(|p| p.pass(&request).expect("pass")).collect();
            answer_bytes =
                answers.iter().map(|a| serde_json::to_string(a).expect("json").len()).fold(answer_bytes, usize::max);
            driver.feed(&answers).expect("feed");
            passes += 1;
        }
        assert_eq!(driver.model().expect("done"), model);
        println!(
            "| {parts_count} | {:.0} ms | {passes} | {request_bytes} B | {answer_bytes} B | {:.5} |",
            seconds * 1e3,
            model.sse / one_table.sse
        );
    }
}
