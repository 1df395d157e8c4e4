#![allow(unsafe_code)]
//! SIMD kernels for zfec's inner loop, `dst ^= c * src` in GF(2^8): the only place in
//! the workspace that may use `unsafe`.
//!
//! The workspace denies `unsafe_code`; this module allows it because x86 SIMD
//! intrinsics that touch memory (unaligned loads and stores) are `unsafe` functions,
//! and calling a `#[target_feature]` function from code compiled without that feature
//! is `unsafe` too. Everything else in the crate stays safe code, and the unsafe here
//! is kept to those two kinds of operation, each with a `// SAFETY:` comment.
//!
//! The kernel is the split-nibble table lookup (as in ISA-L, gf-complete and
//! reed-solomon-erasure): multiplication by a constant `c` is linear over GF(2), so
//! `c * s = c * (s & 0x0f) ^ c * (s & 0xf0)`, and each half is a lookup in a 16-entry
//! table, which `pshufb` does for 16 (SSSE3) or 2 x 16 (AVX2) bytes at once.
//!
//! Soundness rests on [`Simd`]: its field is private, and a value naming an
//! instruction set is only made after `is_x86_feature_detected!` said the CPU has it.
//! The kernels work on whole 16- or 32-byte chunks and report how many bytes they
//! did; the caller finishes the tail with the scalar loop.

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m128i, __m256i, _mm_and_si128, _mm_loadu_si128, _mm_set1_epi8, _mm_shuffle_epi8,
    _mm_srli_epi64, _mm_storeu_si128, _mm_xor_si128, _mm256_and_si256, _mm256_broadcastsi128_si256,
    _mm256_loadu_si256, _mm256_set1_epi8, _mm256_shuffle_epi8, _mm256_srli_epi64,
    _mm256_storeu_si256, _mm256_xor_si256,
};

/// Which instruction set a [`Simd`] kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Level {
    /// 16 bytes per step with `pshufb` (x86_64 SSSE3).
    Ssse3,
    /// 32 bytes per step with `vpshufb` (x86_64 AVX2).
    Avx2,
}

/// A SIMD kernel the running CPU supports. Only made by [`Simd::new`], after runtime
/// detection, so holding one proves the instructions exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Simd {
    level: Level,
}

impl Simd {
    /// The kernel for `level`, if this CPU has the instructions.
    pub(super) fn new(level: Level) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        let present = match level {
            Level::Ssse3 => std::arch::is_x86_feature_detected!("ssse3"),
            Level::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
        };
        #[cfg(not(target_arch = "x86_64"))]
        let present = false;
        present.then_some(Self { level })
    }

    /// The fastest kernel this CPU supports (detected once), or `None` for scalar.
    pub(super) fn best() -> Option<Self> {
        static BEST: OnceLock<Option<Simd>> = OnceLock::new();
        *BEST.get_or_init(|| Self::new(Level::Avx2).or_else(|| Self::new(Level::Ssse3)))
    }

    /// The instruction set.
    pub(super) fn level(self) -> Level {
        self.level
    }

    /// `dst[i] ^= c * src[i]` for a prefix of `dst` and `src`, where `nibbles` holds
    /// `c * x` for x = 0..16 followed by `c * (x << 4)` for x = 0..16. Returns the
    /// length of the prefix done: the shorter length rounded down to whole vectors.
    pub(super) fn mul_add(self, dst: &mut [u8], src: &[u8], nibbles: &[u8; 32]) -> usize {
        #[cfg(target_arch = "x86_64")]
        match self.level {
            // SAFETY: `self` exists only if `Simd::new` detected AVX2 on this CPU.
            Level::Avx2 => unsafe { mul_add_avx2(dst, src, nibbles) },
            // SAFETY: `self` exists only if `Simd::new` detected SSSE3 on this CPU.
            Level::Ssse3 => unsafe { mul_add_ssse3(dst, src, nibbles) },
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (dst, src, nibbles);
            0
        }
    }

    /// `dst[i] ^= src[i]` (the c = 1 case) over the shorter length.
    pub(super) fn xor(self, dst: &mut [u8], src: &[u8]) {
        match self.level {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `self` exists only if `Simd::new` detected AVX2 on this CPU.
            Level::Avx2 => unsafe { xor_avx2(dst, src) },
            // The baseline SSE2 loop the compiler makes is as wide as SSSE3 would be.
            _ => xor_plain(dst, src),
        }
    }
}

fn xor_plain(dst: &mut [u8], src: &[u8]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d ^= s);
}

/// The plain XOR loop, compiled with AVX2 enabled so it is vectorised 32 bytes wide.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn xor_avx2(dst: &mut [u8], src: &[u8]) {
    xor_plain(dst, src);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mul_add_avx2(dst: &mut [u8], src: &[u8], nibbles: &[u8; 32]) -> usize {
    let len = dst.len().min(src.len());
    let done = len - len % 32;
    // SAFETY: `nibbles` is 32 bytes, so both 16-byte unaligned loads are in bounds.
    let (lo, hi) = unsafe {
        (
            _mm_loadu_si128(nibbles.as_ptr().cast::<__m128i>()),
            _mm_loadu_si128(nibbles.as_ptr().add(16).cast::<__m128i>()),
        )
    };
    let lo = _mm256_broadcastsi128_si256(lo);
    let hi = _mm256_broadcastsi128_si256(hi);
    let mask = _mm256_set1_epi8(0x0f);
    for (d, s) in dst[..done]
        .chunks_exact_mut(32)
        .zip(src[..done].chunks_exact(32))
    {
        // SAFETY: `d` and `s` are exactly 32 bytes (chunks_exact), so the unaligned
        // 32-byte loads and the store stay in bounds; `d` is borrowed mutably.
        unsafe {
            let sv = _mm256_loadu_si256(s.as_ptr().cast::<__m256i>());
            let dv = _mm256_loadu_si256(d.as_ptr().cast::<__m256i>());
            let l = _mm256_shuffle_epi8(lo, _mm256_and_si256(sv, mask));
            let h = _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi64::<4>(sv), mask));
            let out = _mm256_xor_si256(dv, _mm256_xor_si256(l, h));
            _mm256_storeu_si256(d.as_mut_ptr().cast::<__m256i>(), out);
        }
    }
    done
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
fn mul_add_ssse3(dst: &mut [u8], src: &[u8], nibbles: &[u8; 32]) -> usize {
    let len = dst.len().min(src.len());
    let done = len - len % 16;
    // SAFETY: `nibbles` is 32 bytes, so both 16-byte unaligned loads are in bounds.
    let (lo, hi) = unsafe {
        (
            _mm_loadu_si128(nibbles.as_ptr().cast::<__m128i>()),
            _mm_loadu_si128(nibbles.as_ptr().add(16).cast::<__m128i>()),
        )
    };
    let mask = _mm_set1_epi8(0x0f);
    for (d, s) in dst[..done]
        .chunks_exact_mut(16)
        .zip(src[..done].chunks_exact(16))
    {
        // SAFETY: `d` and `s` are exactly 16 bytes (chunks_exact), so the unaligned
        // 16-byte loads and the store stay in bounds; `d` is borrowed mutably.
        unsafe {
            let sv = _mm_loadu_si128(s.as_ptr().cast::<__m128i>());
            let dv = _mm_loadu_si128(d.as_ptr().cast::<__m128i>());
            let l = _mm_shuffle_epi8(lo, _mm_and_si128(sv, mask));
            let h = _mm_shuffle_epi8(hi, _mm_and_si128(_mm_srli_epi64::<4>(sv), mask));
            let out = _mm_xor_si128(dv, _mm_xor_si128(l, h));
            _mm_storeu_si128(d.as_mut_ptr().cast::<__m128i>(), out);
        }
    }
    done
}
