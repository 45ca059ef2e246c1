//! Peak double-precision FMA throughput of one core, measured with independent FMA chains (so the
//! loop is throughput-bound, not latency-bound). Uses AVX-512F or AVX2+FMA when the CPU has them
//! (runtime detection), else plain scalar `mul_add`.

use serde_json::{json, Value};
use std::time::Instant;

const ITERS: usize = 20_000_000;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_avx2() -> f64 {
    use std::arch::x86_64::*;
    let m = _mm256_set1_pd(0.999_999_9);
    let a = _mm256_set1_pd(1e-9);
    let mut acc = [_mm256_set1_pd(1.0); 12];
    for _ in 0..ITERS {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_pd(*v, m, a);
        }
    }
    let mut out = [0.0f64; 4];
    let mut s = _mm256_setzero_pd();
    for v in acc {
        s = _mm256_add_pd(s, v);
    }
    _mm256_storeu_pd(out.as_mut_ptr(), s);
    out.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_avx512() -> f64 {
    use std::arch::x86_64::*;
    let m = _mm512_set1_pd(0.999_999_9);
    let a = _mm512_set1_pd(1e-9);
    let mut acc = [_mm512_set1_pd(1.0); 12];
    for _ in 0..ITERS {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_pd(*v, m, a);
        }
    }
    let mut s = _mm512_setzero_pd();
    for v in acc {
        s = _mm512_add_pd(s, v);
    }
    _mm512_reduce_add_pd(s)
}

fn measure(lanes: usize, f: impl Fn() -> f64) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    // 12 chains x lanes x 2 flops (multiply + add) per iteration.
    (ITERS * 12 * lanes * 2) as f64 / best / 1e9
}

pub fn report() -> Value {
    #[allow(unused_mut)]
    let mut out = json!({"task": "flops", "cores": std::thread::available_parallelism().map_or(1, |c| c.get())});
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            out["avx2_fma_gflops_1core"] = json!(measure(4, || unsafe { fma_avx2() }));
        }
        if is_x86_feature_detected!("avx512f") {
            out["avx512_fma_gflops_1core"] = json!(measure(8, || unsafe { fma_avx512() }));
        }
    }
    out
}
