#![allow(unsafe_code)]
//! Two SHA-256 compressions interleaved on the x86 SHA extensions (SHA-NI): the second
//! (and last) module of the workspace that may use `unsafe`.
//!
//! Why it exists: one SHA-256 stream on SHA-NI is bound by the latency of
//! `sha256rnds2` (each round pair waits for the previous one), not by its throughput.
//! Two independent streams in one loop fill those bubbles: on this project's AMD EPYC
//! VM, one stream runs at 1.7 GiB/s and two interleaved at 2.7–3.0 GiB/s together.
//! CHK files need about 4.5 bytes of SHA-256 per byte of file, most of it in pairs of
//! equal length (a segment's ciphertext under two tags, a segment's blocks).
//!
//! The rounds are the ones of Intel's reference code and of the `sha2` crate's
//! `x86_sha` backend, written for two states at once. Two streams need 16 of the 16
//! SSE registers (four state halves, four saved halves, eight message words), which
//! is why there is no three-way version: the SHA instructions have no VEX encoding
//! and cannot use the AVX-512 registers.
//!
//! Soundness rests on [`ShaNi`]: its field is private, and a value is only made after
//! `is_x86_feature_detected!` found SHA, SSE4.1 and SSSE3. The only memory accesses
//! are unaligned 16-byte loads and stores of `[u8; 64]` blocks and `[u32; 8]` states,
//! each in bounds by its type.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_loadu_si128, _mm_set_epi64x,
    _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi8,
    _mm_shuffle_epi32, _mm_storeu_si128,
};
use std::sync::OnceLock;

/// Proof that this CPU has SHA-NI (and the SSE levels the rounds use). Only made by
/// [`ShaNi::detect`].
#[derive(Clone, Copy, Debug)]
pub(super) struct ShaNi(());

impl ShaNi {
    /// `Some` if this CPU has the instructions (detected once per process).
    pub(super) fn detect() -> Option<Self> {
        static FOUND: OnceLock<bool> = OnceLock::new();
        #[cfg(target_arch = "x86_64")]
        let found = *FOUND.get_or_init(|| {
            std::arch::is_x86_feature_detected!("sha")
                && std::arch::is_x86_feature_detected!("sse4.1")
                && std::arch::is_x86_feature_detected!("ssse3")
        });
        #[cfg(not(target_arch = "x86_64"))]
        let found = *FOUND.get_or_init(|| false);
        found.then_some(Self(()))
    }

    /// Compresses `a` into `sa` and `b` into `sb`, block by block, in one loop. The two
    /// slices must have the same number of blocks (the extra ones are left alone; the
    /// caller passes equal lengths).
    pub(super) fn compress2(
        self,
        sa: &mut [u32; 8],
        sb: &mut [u32; 8],
        a: &[[u8; 64]],
        b: &[[u8; 64]],
    ) {
        debug_assert_eq!(a.len(), b.len());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self` exists only if `detect` found SHA, SSE4.1 and SSSE3.
        unsafe {
            compress2(sa, sb, a, b)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (sa, sb, a, b);
            unreachable!("no ShaNi value exists off x86_64")
        }
    }
}

#[cfg(target_arch = "x86_64")]
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// A block's 16 big-endian message words, four per register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
fn load_block(block: &[u8; 64]) -> [__m128i; 4] {
    let swap = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
    std::array::from_fn(|i| {
        // SAFETY: `block` is 64 bytes and `i < 4`, so bytes 16i..16i+16 are in bounds.
        let w = unsafe { _mm_loadu_si128(block.as_ptr().add(16 * i).cast::<__m128i>()) };
        _mm_shuffle_epi8(w, swap)
    })
}

/// The state as SHA-NI wants it: (ABEF, CDGH).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.1,ssse3")]
fn load_state(state: &[u32; 8]) -> (__m128i, __m128i) {
    // SAFETY: `state` is 32 bytes: two 16-byte loads at 0 and 16 are in bounds.
    let (dcba, hgfe) = unsafe {
        (
            _mm_loadu_si128(state.as_ptr().cast::<__m128i>()),
            _mm_loadu_si128(state.as_ptr().add(4).cast::<__m128i>()),
        )
    };
    let cdab = _mm_shuffle_epi32::<0xB1>(dcba);
    let efgh = _mm_shuffle_epi32::<0x1B>(hgfe);
    (
        _mm_alignr_epi8::<8>(cdab, efgh),
        _mm_blend_epi16::<0xF0>(efgh, cdab),
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.1,ssse3")]
fn store_state(state: &mut [u32; 8], abef: __m128i, cdgh: __m128i) {
    let feba = _mm_shuffle_epi32::<0x1B>(abef);
    let dchg = _mm_shuffle_epi32::<0xB1>(cdgh);
    let dcba = _mm_blend_epi16::<0xF0>(feba, dchg);
    let hgef = _mm_alignr_epi8::<8>(dchg, feba);
    // SAFETY: `state` is 32 bytes, borrowed mutably: two 16-byte stores at 0 and 16.
    unsafe {
        _mm_storeu_si128(state.as_mut_ptr().cast::<__m128i>(), dcba);
        _mm_storeu_si128(state.as_mut_ptr().add(4).cast::<__m128i>(), hgef);
    }
}

/// The next four message words from the previous sixteen (`w[i..i+4]`, cyclically).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,ssse3")]
fn schedule(w: &[__m128i; 4], i: usize) -> __m128i {
    let t = _mm_add_epi32(
        _mm_sha256msg1_epu32(w[i], w[(i + 1) % 4]),
        _mm_alignr_epi8::<4>(w[(i + 3) % 4], w[(i + 2) % 4]),
    );
    _mm_sha256msg2_epu32(t, w[(i + 3) % 4])
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse4.1,ssse3")]
fn compress2(sa: &mut [u32; 8], sb: &mut [u32; 8], a: &[[u8; 64]], b: &[[u8; 64]]) {
    let (mut abef_a, mut cdgh_a) = load_state(sa);
    let (mut abef_b, mut cdgh_b) = load_state(sb);
    for (block_a, block_b) in a.iter().zip(b) {
        let saved = (abef_a, cdgh_a, abef_b, cdgh_b);
        let mut wa = load_block(block_a);
        let mut wb = load_block(block_b);
        let mut round4 = |r: usize, xa: __m128i, xb: __m128i| {
            // SAFETY: `r < 16`, so K[4r..4r+4] is in bounds.
            let k = unsafe { _mm_loadu_si128(K.as_ptr().add(4 * r).cast::<__m128i>()) };
            let ta = _mm_add_epi32(xa, k);
            let tb = _mm_add_epi32(xb, k);
            cdgh_a = _mm_sha256rnds2_epu32(cdgh_a, abef_a, ta);
            cdgh_b = _mm_sha256rnds2_epu32(cdgh_b, abef_b, tb);
            abef_a = _mm_sha256rnds2_epu32(abef_a, cdgh_a, _mm_shuffle_epi32::<0x0E>(ta));
            abef_b = _mm_sha256rnds2_epu32(abef_b, cdgh_b, _mm_shuffle_epi32::<0x0E>(tb));
        };
        for i in 0..4 {
            round4(i, wa[i], wb[i]);
        }
        for group in 1..4 {
            for i in 0..4 {
                wa[i] = schedule(&wa, i);
                wb[i] = schedule(&wb, i);
                round4(4 * group + i, wa[i], wb[i]);
            }
        }
        abef_a = _mm_add_epi32(abef_a, saved.0);
        cdgh_a = _mm_add_epi32(cdgh_a, saved.1);
        abef_b = _mm_add_epi32(abef_b, saved.2);
        cdgh_b = _mm_add_epi32(cdgh_b, saved.3);
    }
    store_state(sa, abef_a, cdgh_a);
    store_state(sb, abef_b, cdgh_b);
}
