//! What one machine's memory allows ALS: the fit's peak memory per rating.
//!
//! `cargo run --release -p marquee-ml --example als_memory -- <ratings> [rank]` (rank 10 by
//! default): generates `ratings` planted ratings (100 per user on average, one item per 200
//! ratings, a rank-5 planted model plus noise), fits ALS (10 iterations) and prints the fit's
//! seconds, the process's peak resident memory (VmHWM) before and after the fit, and the fit's
//! bytes per rating. Run one size per process: the peak only grows.

use marquee_ml::als::{AlsParams, Rating};
use marquee_ml::Fit;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kb * 1024
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("counts"));
    let n = args.next().expect("usage: als_memory <ratings> [rank]");
    let rank = args.next().unwrap_or(10);
    let (users, items) = ((n / 100).max(1), (n / 200).max(1));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let planted = 5;
    let user_f: Vec<f32> = (0..users * planted).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let item_f: Vec<f32> = (0..items * planted).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let ratings: Vec<Rating> = (0..n)
        .map(|_| {
            let (u, i) = (rng.gen_range(0..users), rng.gen_range(0..items));
            let dot: f32 = (0..planted).map(|f| user_f[u * planted + f] * item_f[i * planted + f]).sum();
            let value = (3.0 + dot + rng.gen_range(-0.5..0.5)).clamp(1.0, 5.0);
            Rating { user: u as u32, item: i as u32, value }
        })
        .collect();
    let before = peak_rss_bytes();
    let t = Instant::now();
    let model = AlsParams { rank, ..Default::default() }.fit((&ratings, users, items)).expect("fit");
    let seconds = t.elapsed().as_secs_f64();
    let after = peak_rss_bytes();
    std::hint::black_box(&model);
    println!(
        "{n} ratings, {users} users x {items} items, rank {rank}: fit {seconds:.2} s; peak RSS {:.0} MiB before the fit (ratings {:.0} MiB), {:.0} MiB after; the fit's own {:.1} bytes per rating",
        before as f64 / 1048576.0,
        (n * std::mem::size_of::<Rating>()) as f64 / 1048576.0,
        after as f64 / 1048576.0,
        (after - before) as f64 / n as f64
    );
}
