//! Run-time choice of instruction set for the hand-written kernels, in one place.
//!
//! The baseline x86-64 target lacks fused multiply-add and wide vectors, so the hot loops are
//! compiled once per [`Simd`] level and one is picked at run time. A model writes its loop once
//! as a [`Kernel`] and calls [`Simd::dispatch`]; the loop is inlined into a target-feature entry
//! per level. The x86-64 builds run the same operations in the same order, so they give the same
//! results; only the register width differs.
//!
//! Soundness: code compiled for AVX2/FMA or AVX-512 may only run on a CPU that has them. The
//! levels that need them carry a token ([`Avx2`], [`Avx512`]) with a private field, made only by
//! [`Simd::detect`] after checking the CPU, and the wide Gram tiles ([`Wide`]) hold an [`Avx512`]:
//! safe code cannot reach those instructions without the check.

/// Which instructions the kernels may use: fused multiply-add where the CPU has it (always on
/// aarch64), and on x86-64 256- or 512-bit vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    Plain,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512Fma(Avx512),
}

/// Proof that the CPU has AVX2 and FMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2(());

/// Proof that the CPU has AVX-512F, AVX2 and FMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx512(());

/// Whether the [`Simd::Plain`] build has fused multiply-add anyway: aarch64 always does, and
/// `mul_add` compiles to it there.
pub(crate) const PLAIN_HAS_FMA: bool = cfg!(target_arch = "aarch64");

/// The widest register tile the Gram and Cholesky kernels may use (see `Narrow`'s implementation in `dense`).
pub(crate) trait Tiles: Copy {
    /// Adds (or stores, or subtracts: `MODE`) one 4-row strip of `G^T G` (see `dense`).
    fn add_strip<const FMA: bool, const MODE: u8>(
        self,
        g: &[f64],
        width: crate::dense::Width,
        r0: usize,
        strip: &mut [f64],
    );
}

/// Tiles up to 4 x 8, for 16 vector registers (portable code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Narrow;

/// Tiles up to 4 x 32, for 32 512-bit registers: only with a detected [`Avx512`].
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wide(pub(crate) Avx512);

/// A loop compiled once per [`Simd`] level: `run` must be `#[inline(always)]`, so that each of
/// [`Simd::dispatch`]'s entries compiles it with its own target features.
pub(crate) trait Kernel {
    type Output;
    /// The loop, with fused multiply-add when `FMA` and Gram tiles up to `tiles`.
    fn run<const FMA: bool, T: Tiles>(self, tiles: T) -> Self::Output;
}

impl Simd {
    /// The best level this CPU runs, detected on first use.
    pub(crate) fn detect() -> Self {
        static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return if std::arch::is_x86_feature_detected!("avx512f") {
                    Self::Avx512Fma(Avx512(()))
                } else {
                    Self::Avx2Fma(Avx2(()))
                };
            }
            Self::Plain
        })
    }

    /// At most 256-bit vectors: for loops without a Gram kernel, where 512-bit builds would only
    /// add code.
    pub(crate) fn narrowed(self) -> Self {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Fma(_) => Self::Avx2Fma(Avx2(())),
            other => other,
        }
    }

    /// Every level this CPU can run, lowest first (for tests that compare them).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Self> {
        let mut levels = vec![Self::Plain];
        let best = Self::detect();
        if best.narrowed() != Self::Plain {
            levels.push(best.narrowed());
        }
        if best != best.narrowed() {
            levels.push(best);
        }
        levels
    }

    /// Runs `kernel` compiled for this level.
    #[inline]
    pub(crate) fn dispatch<K: Kernel>(self, kernel: K) -> K::Output {
        match self {
            Self::Plain => kernel.run::<PLAIN_HAS_FMA, Narrow>(Narrow),
            // SAFETY: an `Avx2` exists only where `detect` found AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma(_) => unsafe { run_avx2(kernel) },
            // SAFETY: an `Avx512` exists only where `detect` found AVX-512F, AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Fma(token) => unsafe { run_avx512(kernel, token) },
        }
    }
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<true, Narrow>(Narrow)
}

/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_avx512<K: Kernel>(kernel: K, token: Avx512) -> K::Output {
    kernel.run::<true, Wide>(Wide(token))
}
