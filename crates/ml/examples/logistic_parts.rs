//! Logistic regression fitted over partitions, as a Step Functions loop around a Distributed Map
//! would run it, against the one-table fit on the same rows.
//!
//! `cargo run --release -p marquee-ml --example logistic_parts -- [rows] [columns]` (default
//! 1,000,000 x 20, generated: standard-normal features, labels from a planted model). For each
//! partition count it reports the fit time with the partitions on this machine's threads; then,
//! stateless (the driver's state and every message through JSON, a fresh worker per partition
//! and pass, as Lambda children would run), the passes, the largest state and message sizes,
//! and the largest coefficient difference from the one-table model.

use marquee_ml::logistic::{
    ClassWeight, LogisticModel, LogisticParams, LogisticPart, NewtonDriver, PartCounts, PassSums,
};
use ndarray::{s, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("rows and columns are counts"));
    let (n, d) = (args.next().unwrap_or(1_000_000), args.next().unwrap_or(20));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let coef: Vec<f64> = (0..d).map(|j| ((j * 37) % 11) as f64 / 10.0 - 0.5).collect();
    let x = Array2::from_shape_simple_fn((n, d), || rng.sample::<f64, _>(StandardNormal));
    let y: Vec<bool> = x
        .outer_iter()
        .map(|row| {
            let z: f64 = row.iter().zip(&coef).map(|(a, b)| a * b).sum::<f64>() - 1.0;
            rng.gen::<f64>() < marquee_ml::logistic::sigmoid(z)
        })
        .collect();
    let params = LogisticParams { class_weight: ClassWeight::Balanced, ..Default::default() };
    let parts = |k: usize| -> Vec<LogisticPart> {
        (0..k)
            .map(|p| {
                let (a, b) = (p * n / k, (p + 1) * n / k);
                LogisticPart::new(x.slice(s![a..b, ..]), &y[a..b], None, a).expect("consistent rows")
            })
            .collect()
    };
    let single = params.fit_weighted(x.view(), &y, None).expect("fit");
    println!("{n} rows x {d} columns, balanced class weights, l2 1");
    println!("| partitions | fit on threads (median of 5) | passes (all rows + samples) | driver state | request | answer | max coefficient difference |");
    println!("|---|---|---|---|---|---|---|");
    for k in [1, 16, 64] {
        let cut = parts(k);
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                params.fit_parts(&cut).expect("fit");
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let (model, passes, sizes) = stateless(&params, d, &cut);
        println!(
            "| {k} | {:.1} ms | {} + {} | {} B | {} B | {} B | {:.1e} |",
            times[2] * 1e3,
            passes[0],
            passes[1],
            sizes[0],
            sizes[1],
            sizes[2],
            max_difference(&model, &single)
        );
    }
}

/// The fit with nothing kept between passes but the driver's JSON; returns the model, the passes
/// (on all rows, on the warm start's samples) and the largest driver state, request and answer in
/// bytes.
fn stateless(params: &LogisticParams, d: usize, parts: &[LogisticPart]) -> (LogisticModel, [usize; 2], [usize; 3]) {
    let counts: Vec<PartCounts> = parts.iter().map(LogisticPart::counts).collect();
    let mut state =
        serde_json::to_string(&NewtonDriver::new(params, d, &PartCounts::merge(&counts), None).expect("driver"))
            .expect("json");
    let (mut passes, mut sizes) = ([0; 2], [0; 3]);
    loop {
        let mut driver: NewtonDriver = serde_json::from_str(&state).expect("json");
        sizes[0] = sizes[0].max(state.len());
        let Some(request) = driver.request() else { return (driver.model().expect("done"), passes, sizes) };
        let request_json = serde_json::to_string(&request).expect("json");
        sizes[1] = sizes[1].max(request_json.len());
        let answers: Vec<PassSums> = parts
            .iter()
            .map(|part| {
                let request = serde_json::from_str(&request_json).expect("json");
                let answer = serde_json::to_string(&part.worker().pass(&request).expect("pass")).expect("json");
                sizes[2] = sizes[2].max(answer.len());
                serde_json::from_str(&answer).expect("json")
            })
            .collect();
        driver.feed(&answers).expect("feed");
        passes[usize::from(request.level > 0)] += 1;
        state = serde_json::to_string(&driver).expect("json");
    }
}

fn max_difference(a: &LogisticModel, b: &LogisticModel) -> f64 {
    let rel = |x: f64, y: f64| (x - y).abs() / y.abs().max(1e-3);
    a.coef.iter().zip(&b.coef).map(|(x, y)| rel(*x, *y)).fold(rel(a.intercept, b.intercept), f64::max)
}
