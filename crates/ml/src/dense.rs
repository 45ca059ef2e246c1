//! Small dense kernels shared by the models: a register-blocked Gram matrix (`X^T X`) and a
//! Cholesky solve, each compiled with fused multiply-add where the CPU has it (see [`crate::simd`]).
//!
//! Why by hand: the systems are small (tens of columns) and many (one per ALS user or item, one
//! per Newton step), where a BLAS call's set-up and its full (not triangular) product cost more
//! than the arithmetic; ndarray's products do not use FMA on the baseline x86-64 target.

#[cfg(target_arch = "x86_64")]
use crate::simd::Wide;
use crate::simd::{Narrow, Tiles};

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

/// `cols` rounded up to whole 4-lane vectors: the row width of a gathered block, and the columns
/// the kernels compute.
pub(crate) fn padded_width(cols: usize) -> usize {
    cols.div_ceil(4) * 4
}

/// `cols` rounded up to whole cache lines of f64: the row stride of a [`LineBuf`], so that every
/// row starts on a line and a 512-bit load at a multiple of 8 columns never straddles two.
pub(crate) fn line_stride(cols: usize) -> usize {
    cols.div_ceil(8) * 8
}

/// Eight f64 on one cache line, and aligned as one: a `Vec` of plain f64 (or of `[f64; 8]`) starts
/// 16 bytes into a line, so every other 256-bit load of it and every 512-bit one straddles two.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(64))]
pub(crate) struct Lanes(pub(crate) [f64; 8]);

impl Lanes {
    pub(crate) const ZERO: Self = Self([0.0; 8]);
}

const _: () = assert!(std::mem::size_of::<Lanes>() == 64 && std::mem::align_of::<Lanes>() == 64);

impl std::ops::Deref for Lanes {
    type Target = [f64; 8];

    fn deref(&self) -> &[f64; 8] {
        &self.0
    }
}

impl std::ops::DerefMut for Lanes {
    fn deref_mut(&mut self) -> &mut [f64; 8] {
        &mut self.0
    }
}

/// A zeroed f64 buffer that starts on a cache line (scratch for the kernels, read as a slice).
pub(crate) struct LineBuf(Vec<Lanes>);

impl LineBuf {
    /// At least `len` zeros (rounded up to whole lines).
    pub(crate) fn zeroed(len: usize) -> Self {
        Self(vec![Lanes::ZERO; len.div_ceil(8)])
    }
}

impl std::ops::Deref for LineBuf {
    type Target = [f64];

    fn deref(&self) -> &[f64] {
        // SAFETY: `Lanes` is `repr(C)` around `[f64; 8]` with size 64 (asserted above): no padding,
        // so the lines are `8 * len` contiguous, initialised f64.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<f64>(), self.0.len() * 8) }
    }
}

impl std::ops::DerefMut for LineBuf {
    fn deref_mut(&mut self) -> &mut [f64] {
        // SAFETY: as in `deref`; the borrow of `self` makes it unique.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<f64>(), self.0.len() * 8) }
    }
}

/// Rows gathered per block: about 16 KiB, so a block stays in L1 while the Gram kernel sweeps it
/// once per strip.
pub(crate) fn block_rows(width: usize) -> usize {
    (2048 / width).max(16)
}

/// `a * b + c`, fused when `FMA` (one rounding), else a multiply and an add.
#[inline(always)]
pub(crate) fn fmadd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The layout of a row-major buffer the kernels work on: rows `stride` values apart, of which
/// the first `cols` (a multiple of 4) are computed; the values between are never touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Width {
    pub(crate) stride: usize,
    pub(crate) cols: usize,
}

impl Width {
    /// Rows of `cols` values back to back.
    pub(crate) fn packed(cols: usize) -> Self {
        Self { stride: cols, cols }
    }
}

/// What a tile does with its sums: the strip's entries become them, or take them added or
/// subtracted (a `u8` for want of enum const generics).
const STORE: u8 = 0;
const ADD: u8 = 1;
const SUBTRACT: u8 = 2;

/// The Gram kernel: adds the upper block-triangle of `G^T G` to `gram` (`cols x cols` of rows
/// `stride` apart), for `g` holding rows `stride` apart: one [`Tiles::add_strip`] per 4 rows. The strips'
/// diagonal 4 x 4 blocks are computed whole, so their entries below the diagonal get their
/// (symmetric) values too; entries further below are left alone.
#[inline(always)]
pub(crate) fn add_gram_upper<const FMA: bool, T: Tiles>(tiles: T, g: &[f64], width: Width, gram: &mut [f64]) {
    gram_upper::<FMA, T, ADD>(tiles, g, width, gram);
}

/// [`add_gram_upper`] into a `gram` of any content: its upper block-triangle is overwritten, so a
/// first block of rows needs no zeroed buffer (zeroing a rank-50 system cost a thirtieth of an ALS
/// fit). The sums are the same: `0 + s` is `s`.
#[inline(always)]
pub(crate) fn set_gram_upper<const FMA: bool, T: Tiles>(tiles: T, g: &[f64], width: Width, gram: &mut [f64]) {
    gram_upper::<FMA, T, STORE>(tiles, g, width, gram);
}

#[inline(always)]
fn gram_upper<const FMA: bool, T: Tiles, const MODE: u8>(tiles: T, g: &[f64], width: Width, gram: &mut [f64]) {
    let Width { stride, cols } = width;
    for r0 in (0..cols).step_by(4) {
        tiles.add_strip::<FMA, MODE>(g, width, r0, &mut gram[r0 * stride..(r0 + 3) * stride + cols]);
    }
}

/// Adds (or stores, or subtracts: `MODE`) `sum over g's rows of row[r0 + r] * row[c]` to
/// `strip[r * stride + c]`, for the strip's four rows `r` and the columns `c` in `r0..cols`, in
/// tiles of 4 rows by up to 8 columns (or up to 32 with [`Wide`]), each accumulated in registers
/// over all of `g`'s rows. Fully unrolled fixed-size loops, so the compiler keeps a tile in vector
/// registers. Every entry sums the same products in the same order whatever the tiling, so the
/// tile width changes no result.
impl Tiles for Narrow {
    #[inline(always)]
    fn add_strip<const FMA: bool, const MODE: u8>(self, g: &[f64], width: Width, r0: usize, strip: &mut [f64]) {
        let (stride, cols) = (width.stride, width.cols);
        let mut c0 = r0;
        while c0 + 8 <= cols {
            add_tile::<8, FMA, MODE>(g, stride, r0, c0, strip);
            c0 += 8;
        }
        if c0 < cols {
            add_tile::<4, FMA, MODE>(g, stride, r0, c0, strip);
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Tiles for Wide {
    /// Always fused (AVX-512 implies FMA).
    #[inline(always)]
    fn add_strip<const FMA: bool, const MODE: u8>(self, g: &[f64], width: Width, r0: usize, strip: &mut [f64]) {
        // SAFETY: a `Wide` holds an `Avx512`, made only where the CPU has AVX-512F, AVX2 and FMA.
        unsafe { add_strip_avx512::<MODE>(g, width, r0, strip) }
    }
}

#[inline(always)]
fn add_tile<const C: usize, const FMA: bool, const MODE: u8>(
    g: &[f64],
    stride: usize,
    r0: usize,
    c0: usize,
    strip: &mut [f64],
) {
    let mut acc = [[0.0f64; C]; 4];
    for row in g.chunks_exact(stride) {
        let x: &[f64; C] = row[c0..c0 + C].try_into().expect("tile inside the row");
        let s: &[f64; 4] = row[r0..r0 + 4].try_into().expect("strip inside the row");
        for r in 0..4 {
            for c in 0..C {
                acc[r][c] = fmadd::<FMA>(s[r], x[c], acc[r][c]);
            }
        }
    }
    for (r, acc_row) in acc.iter().enumerate() {
        let out = &mut strip[r * stride + c0..r * stride + c0 + C];
        for (o, &v) in out.iter_mut().zip(acc_row) {
            *o = match MODE {
                STORE => v,
                ADD => *o + v,
                _ => *o - v,
            };
        }
    }
}

/// [`Narrow`]'s strip with 512-bit registers (32 of them). Each FMA has a latency of 4 cycles and two
/// issue per cycle, so a tile needs 8 independent vector sums to run at full rate: 4 x 16 has
/// them, but a 4 x 8 or 4 x 4 tile has only 4 and takes as long per row as 4 x 16. So the columns
/// that 16-wide tiles would leave over (4, 8 or 12) join one 16 in a 4 x 20, 24 or 28 tile, and
/// 4 x 32 tiles cover the rest with fewer loads than two 4 x 16 (8 per 16 FMAs instead of 12): at
/// rank 50, 102 FMA-cycles per gathered row instead of 124. Written with intrinsics: the portable tile loop of more than 64
/// sums is not kept in registers by the compiler.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn add_strip_avx512<const MODE: u8>(g: &[f64], width: Width, r0: usize, strip: &mut [f64]) {
    let Width { stride, cols } = width;
    let w = cols - r0;
    let last = if w <= 16 { w } else { 16 + w % 16 };
    let mut c0 = r0;
    while c0 + 32 <= cols - last {
        add_tile_avx512::<4, 0, MODE>(g, stride, r0, c0, strip);
        c0 += 32;
    }
    if c0 < cols - last {
        add_tile_avx512::<2, 0, MODE>(g, stride, r0, c0, strip);
        c0 += 16;
    }
    match last {
        4 => add_tile_avx512::<0, 1, MODE>(g, stride, r0, c0, strip),
        8 => add_tile_avx512::<1, 0, MODE>(g, stride, r0, c0, strip),
        12 => add_tile_avx512::<1, 1, MODE>(g, stride, r0, c0, strip),
        16 => add_tile_avx512::<2, 0, MODE>(g, stride, r0, c0, strip),
        20 => add_tile_avx512::<2, 1, MODE>(g, stride, r0, c0, strip),
        24 => add_tile_avx512::<3, 0, MODE>(g, stride, r0, c0, strip),
        _ => add_tile_avx512::<3, 1, MODE>(g, stride, r0, c0, strip),
    }
}

/// One tile of [`add_strip_avx512`]: 4 rows by `8 Z + 4 Y` columns (`Y` 0 or 1), `Z` 512-bit and
/// `Y` 256-bit sums per row; each lane sums the same fused products in the same order as
/// [`add_tile`], so the results are bit for bit those of the 256-bit build.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn add_tile_avx512<const Z: usize, const Y: usize, const MODE: u8>(
    g: &[f64],
    stride: usize,
    r0: usize,
    c0: usize,
    strip: &mut [f64],
) {
    use std::arch::x86_64::*;
    let c_end = c0 + 8 * Z + 4 * Y;
    assert!(Y <= 1 && r0 + 4 <= stride && c_end <= stride && strip.len() >= 3 * stride + c_end);
    let mut wide = [[_mm512_setzero_pd(); Z]; 4];
    let mut narrow = [[_mm256_setzero_pd(); Y]; 4];
    for row in g.chunks_exact(stride) {
        // SAFETY (all loads): `row` has `stride` values and `r0 + 4`, `c_end` <= `stride`.
        let p = row.as_ptr();
        let x: [__m512d; Z] = std::array::from_fn(|j| _mm512_loadu_pd(p.add(c0 + 8 * j)));
        let x4: [__m256d; Y] = std::array::from_fn(|_| _mm256_loadu_pd(p.add(c0 + 8 * Z)));
        for r in 0..4 {
            let s = *p.add(r0 + r);
            for j in 0..Z {
                wide[r][j] = _mm512_fmadd_pd(_mm512_set1_pd(s), x[j], wide[r][j]);
            }
            for j in 0..Y {
                narrow[r][j] = _mm256_fmadd_pd(_mm256_set1_pd(s), x4[j], narrow[r][j]);
            }
        }
    }
    for r in 0..4 {
        // SAFETY (all stores): `strip` holds `3 * stride + c_end` values (asserted above).
        let out = strip.as_mut_ptr().add(r * stride + c0);
        for (j, &sum) in wide[r].iter().enumerate() {
            let at = out.add(8 * j);
            let v = match MODE {
                STORE => sum,
                ADD => _mm512_add_pd(_mm512_loadu_pd(at), sum),
                _ => _mm512_sub_pd(_mm512_loadu_pd(at), sum),
            };
            _mm512_storeu_pd(at, v);
        }
        for &sum in &narrow[r] {
            let at = out.add(8 * Z);
            let v = match MODE {
                STORE => sum,
                ADD => _mm256_add_pd(_mm256_loadu_pd(at), sum),
                _ => _mm256_sub_pd(_mm256_loadu_pd(at), sum),
            };
            _mm256_storeu_pd(at, v);
        }
    }
}

/// Solves `A x = b` for symmetric positive (semi-)definite `A` (`d x d`), given as the upper
/// triangle of rows `0..d` of the row-major buffer `a` (rows `width.stride` apart, as
/// [`add_gram_upper`] leaves it), with `b` in column `d` and zeros in columns `d + 1..width.cols`
/// (`width.cols` a multiple of 4, at least `d + 1`). `a` receives the Cholesky factor `U`
/// (`A = U^T U`) and, in column `d`, `y` with `U^T y = b`; `x` (at least `width.cols` long)
/// receives the solution in `0..d`. Non-positive pivots (rank-deficient rows with lambda = 0) are
/// floored so the result stays finite; the smallest pivot before flooring is returned, for callers
/// that would rather regularise and retry.
///
/// Four rows at a time (a blocked, "up-looking" Cholesky): rows `i0..i0 + 4` first take the
/// updates from all finished rows above at once, `a_i -= sum_{p < i0} u_p[i] u_p`, through the
/// Gram kernel's register tiles (four rows share each load of `u_p`, and each entry is loaded and
/// stored once instead of once per update, which bounds a right-looking Cholesky's rank-1
/// updates); then the four rows are finished one by one, each passing its update to the rows
/// below it in the block. Work on a row starts at column `i0`, so the entries left of the
/// diagonal in the 4 x 4 diagonal block are scratch, never read as part of `U`.
#[inline(always)]
pub(crate) fn cholesky_solve_augmented<const FMA: bool, T: Tiles>(
    tiles: T,
    a: &mut [f64],
    width: Width,
    d: usize,
    x: &mut [f64],
) -> f64 {
    let [min_pivot] = cholesky_solve_interleaved::<FMA, T, 1>(tiles, [a], width, d, [x]);
    min_pivot
}

/// [`cholesky_solve_augmented`] for `N` independent systems of the same size, step by step in
/// turn: each pivot is a chain of dependent operations (square root, division, scaling, the update
/// of the next row's diagonal), ~40 cycles with nothing else to do, as is each step of the
/// backward solve; with the other systems' steps in between, the CPU overlaps the chains. Each
/// system gets exactly the operations it would get alone. Returns each system's smallest pivot.
#[inline(always)]
pub(crate) fn cholesky_solve_interleaved<const FMA: bool, T: Tiles, const N: usize>(
    tiles: T,
    mut a: [&mut [f64]; N],
    width: Width,
    d: usize,
    mut x: [&mut [f64]; N],
) -> [f64; N] {
    let Width { stride, cols } = width;
    debug_assert!(
        cols.is_multiple_of(4)
            && cols > d
            && stride >= cols
            && a.iter().all(|a| a.len() >= (cols - 1) * stride + cols)
            && x.iter().all(|x| x.len() >= cols)
    );
    let mut min_pivot = [f64::INFINITY; N];
    for i0 in (0..d).step_by(4) {
        if i0 > 0 {
            for a in a.iter_mut() {
                let (done, rest) = a.split_at_mut(i0 * stride);
                tiles.add_strip::<FMA, SUBTRACT>(done, width, i0, &mut rest[..3 * stride + cols]);
            }
        }
        let rows = 4.min(d - i0);
        for r in 0..rows {
            let i = i0 + r;
            for (a, min_pivot) in a.iter_mut().zip(&mut min_pivot) {
                let strip = &mut a[i0 * stride..(i0 + 3) * stride + cols];
                let (upto, below) = strip.split_at_mut(((r + 1) * stride).min(strip.len()));
                let row = &mut upto[r * stride..r * stride + cols];
                // A NaN pivot sticks, as `f64::min` would drop it.
                if row[i].is_nan() || row[i] < *min_pivot {
                    *min_pivot = row[i];
                }
                let pivot = row[i].max(1e-12).sqrt();
                row[i] = pivot;
                let inv = 1.0 / pivot;
                row[i + 1..].iter_mut().for_each(|v| *v *= inv);
                for (r2, other) in (r + 1..rows).zip(below.chunks_mut(stride)) {
                    let s = -row[i0 + r2];
                    for (v, &u) in other[i0..cols].iter_mut().zip(&row[i0..]) {
                        *v = fmadd::<FMA>(s, u, *v);
                    }
                }
            }
        }
    }
    // Backward: U x = y. Each row's dot product runs in four lanes from the first whole vector
    // on (a fixed order, so the same result on every run and thread); `x` is zero from `d` on,
    // where the row holds `y` and padding.
    for x in x.iter_mut() {
        x[..cols].fill(0.0);
    }
    for i in (0..d).rev() {
        for (a, x) in a.iter().zip(x.iter_mut()) {
            let u = &a[i * stride..i * stride + cols];
            let aligned = (i + 4) & !3;
            let head = u[i + 1..aligned].iter().zip(&x[i + 1..aligned]).fold(0.0, |s, (&u, &x)| fmadd::<FMA>(u, x, s));
            let mut lanes = [0.0; 4];
            for (u, x) in u[aligned..].chunks_exact(4).zip(x[aligned..cols].chunks_exact(4)) {
                for l in 0..4 {
                    lanes[l] = fmadd::<FMA>(u[l], x[l], lanes[l]);
                }
            }
            let dot = head + ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]));
            x[i] = (u[d] - dot) / u[i];
        }
    }
    min_pivot
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{Kernel, Simd, PLAIN_HAS_FMA};

    /// [`add_gram_upper`] (or [`set_gram_upper`] when `overwrite`) at a level, as the models run it.
    struct Gram<'a>(&'a [f64], Width, &'a mut [f64], bool);

    impl Kernel for Gram<'_> {
        type Output = ();
        #[inline(always)]
        fn run<const FMA: bool, T: Tiles>(self, tiles: T) {
            let Gram(g, width, gram, overwrite) = self;
            if overwrite {
                set_gram_upper::<FMA, T>(tiles, g, width, gram)
            } else {
                add_gram_upper::<FMA, T>(tiles, g, width, gram)
            }
        }
    }

    /// [`cholesky_solve_augmented`] at a level.
    struct Solve<'a>(&'a mut [f64], Width, usize, &'a mut [f64]);

    impl Kernel for Solve<'_> {
        type Output = f64;
        #[inline(always)]
        fn run<const FMA: bool, T: Tiles>(self, tiles: T) -> f64 {
            let Solve(a, width, d, x) = self;
            cholesky_solve_augmented::<FMA, T>(tiles, a, width, d, x)
        }
    }

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
    fn gram_kernel_matches_the_plain_product_on_its_upper_triangle() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (rows, cols) in [(1, 4), (7, 12), (33, 44), (20, 52), (9, 72)] {
            let g: Vec<f64> = (0..rows * cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut want = vec![0.0; cols * cols];
            for i in 0..cols {
                for j in i..cols {
                    want[i * cols + j] = (0..rows).map(|r| g[r * cols + i] * g[r * cols + j]).sum();
                }
            }
            // Packed rows, and rows on whole cache lines with NaN between them: the kernel reads
            // and writes only the first `cols` of each row.
            for stride in [cols, line_stride(cols) + 8] {
                let width = Width { stride, cols };
                let strided: Vec<f64> = (0..rows * stride)
                    .map(|at| if at % stride < cols { g[at / stride * cols + at % stride] } else { f64::NAN })
                    .collect();
                for simd in Simd::available() {
                    // The first call overwrites the garbage in `gram`'s upper triangle, the second
                    // adds to it.
                    let mut gram: Vec<f64> =
                        (0..cols * stride).map(|at| if at % stride < cols { 1e300 } else { f64::NAN }).collect();
                    simd.dispatch(Gram(&strided, width, &mut gram, true));
                    simd.dispatch(Gram(&strided, width, &mut gram, false));
                    for i in 0..cols {
                        for j in i..cols {
                            let (got, want) = (gram[i * stride + j], 2.0 * want[i * cols + j]);
                            assert!(
                                (got - want).abs() < 1e-12,
                                "{simd:?} {rows}x{cols}/{stride} [{i},{j}]: {got} vs {want}"
                            );
                        }
                        assert!(gram[i * stride + cols..(i + 1) * stride].iter().all(|v| v.is_nan()));
                    }
                }
            }
        }
    }

    /// `[A | b]` in the layout [`cholesky_solve_augmented`] takes, for `A = X^T X + I` with a
    /// random `rows x d` `X` and `b = A x_true`; the entries below the diagonal are garbage, as
    /// the solver must not read them.
    fn ridge_system(rng: &mut ChaCha8Rng, rows: usize, d: usize, x_true: &[f64]) -> (Vec<f64>, usize) {
        let width = padded_width(d + 1);
        let x: Vec<f64> = (0..rows * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let a = |i: usize, j: usize| {
            (0..rows).map(|r| x[r * d + i] * x[r * d + j]).sum::<f64>() + f64::from(u8::from(i == j))
        };
        let mut aug: Vec<f64> = (0..width * width).map(|_| rng.gen_range(-1e3..1e3)).collect();
        for i in 0..width {
            for j in i..width {
                aug[i * width + j] = match (i < d, j) {
                    (true, j) if j < d => a(i, j),
                    (true, j) if j == d => (0..d).map(|l| a(i, l) * x_true[l]).sum(),
                    _ => 0.0,
                };
            }
        }
        (aug, width)
    }

    #[test]
    fn cholesky_solves_small_system() {
        // A = [[4, 2], [2, 3]], b = [2, 1] -> x = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 0.0, f64::NAN, 3.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let mut x = vec![0.0; 4];
        cholesky_solve_augmented::<false, _>(Narrow, &mut a, Width::packed(4), 2, &mut x);
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        // The factor: U = [[2, 1], [0, sqrt 2]].
        assert_eq!((a[0], a[1]), (2.0, 1.0));
        assert!((a[5] - 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn cholesky_solves_ridge_systems_at_every_level_and_size() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for d in [1, 3, 4, 5, 11, 13, 21, 31, 51, 70] {
            let x_true: Vec<f64> = (0..d).map(|i| i as f64 - 6.0).collect();
            let (aug, cols) = ridge_system(&mut rng, 2 * d + 5, d, &x_true);
            // The same system on rows of whole cache lines, NaN between them (never read).
            let stride = line_stride(cols) + 8;
            let strided: Vec<f64> = (0..cols * stride)
                .map(|at| if at % stride < cols { aug[at / stride * cols + at % stride] } else { f64::NAN })
                .collect();
            let mut solutions = vec![];
            for simd in Simd::available() {
                let (mut u, mut x) = (aug.clone(), vec![f64::NAN; cols]);
                simd.dispatch(Solve(&mut u, Width::packed(cols), d, &mut x));
                for (got, want) in x[..d].iter().zip(&x_true) {
                    assert!((got - want).abs() < 1e-8, "{simd:?} d={d}: {got} vs {want}");
                }
                let (mut u, mut x_strided) = (strided.clone(), vec![f64::NAN; cols]);
                simd.dispatch(Solve(&mut u, Width { stride, cols }, d, &mut x_strided));
                assert_eq!(x[..d], x_strided[..d], "{simd:?} d={d}: strided layout");
                solutions.push((simd, x));
            }
            // The vector builds apply the same operations in the same order: identical bits.
            for pair in solutions.windows(2).filter(|p| p[0].0 != Simd::Plain || PLAIN_HAS_FMA) {
                assert_eq!(pair[0].1[..d], pair[1].1[..d], "{:?} vs {:?}, d={d}", pair[0].0, pair[1].0);
            }
        }
    }

    #[test]
    fn interleaved_solves_equal_separate_ones_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for d in [1, 5, 11, 51] {
            let systems: Vec<(Vec<f64>, usize, Vec<f64>)> = (0..3)
                .map(|s| {
                    let x_true: Vec<f64> = (0..d).map(|i| (i + s) as f64 * 0.5 - 3.0).collect();
                    let (aug, cols) = ridge_system(&mut rng, d + 3 * s + 1, d, &x_true);
                    (aug, cols, x_true)
                })
                .collect();
            let cols = systems[0].1;
            let alone: Vec<Vec<f64>> = systems
                .iter()
                .map(|(aug, _, _)| {
                    let (mut u, mut x) = (aug.clone(), vec![f64::NAN; cols]);
                    cholesky_solve_augmented::<true, _>(Narrow, &mut u, Width::packed(cols), d, &mut x);
                    x
                })
                .collect();
            let mut u: Vec<Vec<f64>> = systems.iter().map(|(aug, _, _)| aug.clone()).collect();
            let mut x = vec![vec![f64::NAN; cols]; 3];
            let [u0, u1, u2] = &mut u[..] else { unreachable!() };
            let [x0, x1, x2] = &mut x[..] else { unreachable!() };
            cholesky_solve_interleaved::<true, _, 3>(
                Narrow,
                [&mut u0[..], &mut u1[..], &mut u2[..]],
                Width::packed(cols),
                d,
                [&mut x0[..], &mut x1[..], &mut x2[..]],
            );
            for (s, (together, alone)) in x.iter().zip(&alone).enumerate() {
                assert_eq!(together[..d], alone[..d], "d={d}, system {s}");
                for (got, want) in together[..d].iter().zip(&systems[s].2) {
                    assert!((got - want).abs() < 1e-8, "d={d}, system {s}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn cholesky_floors_non_positive_pivots() {
        // A singular A (rank 1, lambda = 0): the solve stays finite.
        let (d, width) = (3, 4);
        let mut a = vec![0.0; width * width];
        for i in 0..d {
            for j in i..d {
                a[i * width + j] = 1.0;
            }
            a[i * width + d] = 1.0;
        }
        let mut x = vec![0.0; width];
        cholesky_solve_augmented::<false, _>(Narrow, &mut a, Width::packed(width), d, &mut x);
        assert!(x[..d].iter().all(|v| v.is_finite()), "{x:?}");
    }
}
