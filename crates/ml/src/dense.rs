//! Small dense kernels shared by the models: a register-blocked Gram matrix (`X^T X`) and a
//! Cholesky solve, each compiled with fused multiply-add where the CPU has it.
//!
//! Why by hand: the systems are small (tens of columns) and many (one per ALS user or item, one
//! per Newton step), where a BLAS call's set-up and its full (not triangular) product cost more
//! than the arithmetic; ndarray's products do not use FMA on the baseline x86-64 target.

/// Row, column and value of the first non-finite value of `x` in row order, if any. Scans a
/// contiguous array in vectorisable blocks (a value-by-value search with indices costs more than
/// some fits it guards).
pub(crate) fn first_non_finite(x: ndarray::ArrayView2<f64>) -> Option<((usize, usize), f64)> {
    const BLOCK: usize = 4096;
    let Some(values) = x.as_slice() else {
        return x.indexed_iter().find(|(_, v)| !v.is_finite()).map(|(at, &v)| (at, v));
    };
    let cols = x.ncols().max(1);
    let (b, block) =
        values.chunks(BLOCK).enumerate().find(|(_, block)| block.iter().fold(false, |bad, v| bad | !v.is_finite()))?;
    let i = b * BLOCK + block.iter().position(|v| !v.is_finite()).expect("the block has one");
    Some(((i / cols, i % cols), values[i]))
}

/// `cols` rounded up to whole 4-lane vectors: the row width of a gathered block.
pub(crate) fn padded_width(cols: usize) -> usize {
    cols.div_ceil(4) * 4
}

/// Rows gathered per block: about 16 KiB, so a block stays in L1 while the Gram kernel sweeps it
/// once per strip.
pub(crate) fn block_rows(width: usize) -> usize {
    (2048 / width).max(16)
}

/// Which instructions the kernels may use: fused multiply-add where the CPU has it (chosen at
/// run time on x86-64, where the baseline target lacks it; always on aarch64), and on x86-64
/// 256- or 512-bit vectors (k-means has a 512-bit build; the other kernels measured no faster
/// with one and run their AVX2 build). The x86-64 builds run the same operations in the same
/// order, so they give the same results; only the register width differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    Plain,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512Fma,
}

/// Whether the [`Simd::Plain`] build has fused multiply-add anyway: aarch64 always does, and
/// `mul_add` compiles to it there.
pub(crate) const PLAIN_HAS_FMA: bool = cfg!(target_arch = "aarch64");

impl Simd {
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return if std::arch::is_x86_feature_detected!("avx512f") { Self::Avx512Fma } else { Self::Avx2Fma };
        }
        Self::Plain
    }

    /// Every level this CPU can run, lowest first (for tests that compare them).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Self> {
        let mut levels = vec![Self::Plain];
        #[cfg(target_arch = "x86_64")]
        {
            let best = Self::detect();
            if best != Self::Plain {
                levels.push(Self::Avx2Fma);
            }
            if best == Self::Avx512Fma {
                levels.push(Self::Avx512Fma);
            }
        }
        levels
    }

    /// [`add_gram_lower`] at this level, as the models run it (they compile their whole loops
    /// per level instead; the tests check every build of the kernel through this).
    #[cfg(test)]
    pub(crate) fn add_gram(self, g: &[f64], width: usize, gram: &mut [f64]) {
        match self {
            Self::Plain => add_gram_lower::<PLAIN_HAS_FMA, NARROW_TILES>(g, width, gram),
            // SAFETY: `detect` returned these variants only after checking that the CPU has AVX2
            // and FMA (and AVX-512F for the second).
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma => unsafe { add_gram_avx2_fma(g, width, gram) },
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Fma => unsafe { add_gram_avx512(g, width, gram) },
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_gram_avx2_fma(g: &[f64], width: usize, gram: &mut [f64]) {
    add_gram_lower::<true, NARROW_TILES>(g, width, gram)
}

#[cfg(all(test, target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn add_gram_avx512(g: &[f64], width: usize, gram: &mut [f64]) {
    add_gram_lower::<true, WIDE_TILES>(g, width, gram)
}

/// Widest tile of [`add_gram_lower`] for 256-bit registers (a 4 x 8 tile fills 8 of 16) and for
/// 512-bit ones (a 4 x 16 tile fills 8 of 32).
pub(crate) const NARROW_TILES: usize = 8;
pub(crate) const WIDE_TILES: usize = 16;

/// `a * b + c`, fused when `FMA` (one rounding), else a multiply and an add.
#[inline(always)]
pub(crate) fn fmadd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The Gram kernel: adds the lower block-triangle of `G^T G` to `gram` (`width x width`,
/// row-major), for `g` holding rows of `width` values (`width` a multiple of 4). For each 4-row
/// strip `r0..r0+4`, the columns `0..r0+4` in tiles of 4 x `MAX_TILE` (16 or 8), then 4 x 8 and
/// 4 x 4 for what is left, each tile accumulated in registers over all of `g`'s rows. Fully
/// unrolled fixed-size loops, so the compiler keeps a tile in vector registers. Every entry sums
/// the same products in the same order whatever the tiling, so `MAX_TILE` changes no result.
#[inline(always)]
pub(crate) fn add_gram_lower<const FMA: bool, const MAX_TILE: usize>(g: &[f64], width: usize, gram: &mut [f64]) {
    for r0 in (0..width).step_by(4) {
        let cols = r0 + 4;
        let mut c0 = 0;
        if MAX_TILE >= 16 {
            while c0 + 16 <= cols {
                add_tile::<16, FMA>(g, width, r0, c0, gram);
                c0 += 16;
            }
        }
        while c0 + 8 <= cols {
            add_tile::<8, FMA>(g, width, r0, c0, gram);
            c0 += 8;
        }
        if c0 < cols {
            add_tile::<4, FMA>(g, width, r0, c0, gram);
        }
    }
}

#[inline(always)]
fn add_tile<const C: usize, const FMA: bool>(g: &[f64], width: usize, r0: usize, c0: usize, gram: &mut [f64]) {
    let mut acc = [[0.0f64; C]; 4];
    for row in g.chunks_exact(width) {
        let x: &[f64; C] = row[c0..c0 + C].try_into().expect("tile inside the row");
        let s: &[f64; 4] = row[r0..r0 + 4].try_into().expect("strip inside the row");
        for r in 0..4 {
            for c in 0..C {
                acc[r][c] = fmadd::<FMA>(s[r], x[c], acc[r][c]);
            }
        }
    }
    for (r, acc_row) in acc.iter().enumerate() {
        let out = &mut gram[(r0 + r) * width + c0..(r0 + r) * width + c0 + C];
        for (o, &v) in out.iter_mut().zip(acc_row) {
            *o += v;
        }
    }
}

/// Solves `A x = b` in place for symmetric positive (semi-)definite `A`, given as the upper
/// triangle of a row-major `d x d` buffer, which receives `U` with `A = U^T U`; `b` receives `x`.
/// Non-positive pivots (rank-deficient rows with lambda = 0) are floored so the result stays
/// finite. Right-looking, so every inner loop is a contiguous `y -= s x` that vectorises (a
/// left-looking Cholesky's dot products do not, without reordering the sums).
#[inline(always)]
pub(crate) fn cholesky_solve_upper<const FMA: bool>(a: &mut [f64], b: &mut [f64], d: usize) {
    for j in 0..d {
        let (upto_j, below) = a.split_at_mut((j + 1) * d);
        let u_j = &mut upto_j[j * d..];
        let pivot = u_j[j].max(1e-12).sqrt();
        u_j[j] = pivot;
        let inv = 1.0 / pivot;
        u_j[j + 1..].iter_mut().for_each(|v| *v *= inv);
        for (i, a_i) in (j + 1..d).zip(below.chunks_exact_mut(d)) {
            let s = -u_j[i];
            for (x, &u) in a_i[i..].iter_mut().zip(&u_j[i..]) {
                *x = fmadd::<FMA>(s, u, *x);
            }
        }
    }
    // Forward: U^T y = b, column by column.
    for i in 0..d {
        let y = b[i] / a[i * d + i];
        b[i] = y;
        for (x, &u) in b[i + 1..].iter_mut().zip(&a[i * d + i + 1..(i + 1) * d]) {
            *x = fmadd::<FMA>(-y, u, *x);
        }
    }
    // Backward: U x = y.
    for i in (0..d).rev() {
        let s =
            a[i * d + i + 1..(i + 1) * d].iter().zip(&b[i + 1..]).fold(0.0, |acc, (&u, &x)| fmadd::<FMA>(u, x, acc));
        b[i] = (b[i] - s) / a[i * d + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_non_finite_names_row_and_column() {
        let mut x = ndarray::Array2::<f64>::zeros((3000, 7));
        assert_eq!(first_non_finite(x.view()), None);
        x[[2500, 3]] = f64::INFINITY;
        x[[2999, 6]] = f64::NAN;
        assert_eq!(first_non_finite(x.view()), Some(((2500, 3), f64::INFINITY)));
        // A strided view takes the general path and agrees.
        assert_eq!(first_non_finite(x.t()), Some(((3, 2500), f64::INFINITY)));
    }
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn gram_kernel_matches_the_plain_product_on_its_lower_triangle() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (rows, width) in [(1, 4), (7, 12), (33, 44), (20, 52)] {
            let g: Vec<f64> = (0..rows * width).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut want = vec![0.0; width * width];
            for i in 0..width {
                for j in 0..=i {
                    want[i * width + j] = (0..rows).map(|r| g[r * width + i] * g[r * width + j]).sum();
                }
            }
            for simd in Simd::available() {
                // Two calls add up: the kernel accumulates into `gram`.
                let mut gram = vec![0.0; width * width];
                simd.add_gram(&g, width, &mut gram);
                simd.add_gram(&g, width, &mut gram);
                for i in 0..width {
                    for j in 0..=i {
                        let (got, want) = (gram[i * width + j], 2.0 * want[i * width + j]);
                        assert!((got - want).abs() < 1e-12, "{simd:?} {rows}x{width} [{i},{j}]: {got} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn cholesky_solves_small_system() {
        // A = [[4, 2], [2, 3]], b = [2, 1] -> x = [0.5, 0].
        let mut a = vec![4.0, 2.0, 0.0, 3.0];
        let mut b = vec![2.0, 1.0];
        cholesky_solve_upper::<false>(&mut a, &mut b, 2);
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12);
    }

    #[test]
    fn cholesky_solves_a_ridge_system_with_and_without_fma() {
        // A = X^T X + I for a random 40 x 13 X, b = A x_true: both variants recover x_true.
        let d = 13;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x: Vec<f64> = (0..40 * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let x_true: Vec<f64> = (0..d).map(|i| i as f64 - 6.0).collect();
        let mut a = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                a[i * d + j] = (0..40).map(|r| x[r * d + i] * x[r * d + j]).sum::<f64>() + f64::from(u8::from(i == j));
            }
        }
        let b: Vec<f64> = (0..d).map(|i| (0..d).map(|j| a[i * d + j] * x_true[j]).sum()).collect();
        for fma in [false, true] {
            let (mut u, mut sol) = (a.clone(), b.clone());
            if fma {
                cholesky_solve_upper::<true>(&mut u, &mut sol, d);
            } else {
                cholesky_solve_upper::<false>(&mut u, &mut sol, d);
            }
            for (got, want) in sol.iter().zip(&x_true) {
                assert!((got - want).abs() < 1e-9, "fma={fma}: {got} vs {want}");
            }
        }
    }
}
