//! Erasure coding byte-identical to zfec 1.6 (Tahoe's codec), for any 1 <= k <= n <= 256,
//! decoding from any k shares in any order.
//!
//! zfec is a systematic Reed-Solomon code over GF(2^8) with the polynomial
//! x^8+x^4+x^3+x^2+1 (0x11d) and generator 2. Its n x k generator matrix starts from a
//! Vandermonde-like matrix whose row 0 is [1, 0, ..., 0] and whose row r >= 1 holds
//! 2^((r-1)*c) in column c; the top k x k block is inverted and multiplied in, so the
//! first k shares are the input pieces themselves and shares k..n are parity. Decoding
//! inverts the k rows of the shares at hand.
//!
//! Known answers from Python zfec are in `tests/fixtures/zfec.txt`.
//!
//! The inner loop, `dst ^= c * src`, runs on a SIMD kernel where the CPU has one (AVX2
//! or SSSE3 on x86_64, detected at run time; see [`Kernel`]) and on a scalar table
//! lookup everywhere else and for the last few bytes.

use std::sync::OnceLock;

use swamp_proto::DecodeError;

mod simd;

struct Tables {
    exp: [u8; 510],
    log: [u8; 256],
    /// `mul[a][b] = a*b` in GF(2^8): 64 KiB, the scalar inner loop.
    mul: Vec<[u8; 256]>,
    /// `nibbles[c]` = `c*x` for x in 0..16, then `c*(x<<4)` for x in 0..16: the SIMD
    /// kernels' two 16-entry lookup tables (8 KiB in all).
    nibbles: Vec<[u8; 32]>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut exp = [0u8; 510];
        let mut log = [0u8; 256];
        let mut x: u16 = 1;
        for (i, slot) in exp.iter_mut().enumerate().take(255) {
            *slot = x as u8;
            log[x as usize] = i as u8;
            x <<= 1;
            if x & 0x100 != 0 {
                x ^= 0x11d;
            }
        }
        for i in 255..510 {
            exp[i] = exp[i - 255];
        }
        let mut mul = vec![[0u8; 256]; 256];
        for a in 1..256usize {
            for b in 1..256usize {
                mul[a][b] = exp[log[a] as usize + log[b] as usize];
            }
        }
        let nibbles = mul
            .iter()
            .map(|row| {
                let mut t = [0u8; 32];
                for x in 0..16 {
                    t[x] = row[x];
                    t[16 + x] = row[x << 4];
                }
                t
            })
            .collect();
        Tables {
            exp,
            log,
            mul,
            nibbles,
        }
    })
}

fn gf_mul(a: u8, b: u8) -> u8 {
    tables().mul[a as usize][b as usize]
}

fn gf_inv(a: u8) -> u8 {
    let t = tables();
    t.exp[255 - t.log[a as usize] as usize]
}

/// Inverts a k x k matrix (row-major) by Gauss-Jordan; `None` if singular.
fn invert(mut m: Vec<u8>, k: usize) -> Option<Vec<u8>> {
    let mut inv = vec![0u8; k * k];
    for i in 0..k {
        inv[i * k + i] = 1;
    }
    for col in 0..k {
        let pivot = (col..k).find(|&r| m[r * k + col] != 0)?;
        if pivot != col {
            for c in 0..k {
                m.swap(pivot * k + c, col * k + c);
                inv.swap(pivot * k + c, col * k + c);
            }
        }
        let scale = gf_inv(m[col * k + col]);
        for c in 0..k {
            m[col * k + c] = gf_mul(m[col * k + c], scale);
            inv[col * k + c] = gf_mul(inv[col * k + c], scale);
        }
        for r in 0..k {
            let factor = m[r * k + col];
            if r == col || factor == 0 {
                continue;
            }
            for c in 0..k {
                m[r * k + c] ^= gf_mul(factor, m[col * k + c]);
                inv[r * k + c] ^= gf_mul(factor, inv[col * k + c]);
            }
        }
    }
    Some(inv)
}

/// `dst ^= c * src` with the scalar table lookup.
fn mul_add_scalar(dst: &mut [u8], src: &[u8], c: u8) {
    match c {
        0 => {}
        1 => dst.iter_mut().zip(src).for_each(|(d, s)| *d ^= s),
        _ => {
            let row = &tables().mul[c as usize];
            dst.iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d ^= row[*s as usize]);
        }
    }
}

/// `dst ^= c * src`, the whole inner loop of encoding and decoding: the SIMD kernel
/// for whole vectors, if there is one, and the scalar loop for the rest.
fn mul_add(dst: &mut [u8], src: &[u8], c: u8, kernel: Option<simd::Simd>) {
    let Some(kernel) = kernel else {
        return mul_add_scalar(dst, src, c);
    };
    match c {
        0 => {}
        1 => kernel.xor(dst, src),
        _ => {
            let done = kernel.mul_add(dst, src, &tables().nibbles[c as usize]);
            mul_add_scalar(&mut dst[done..], &src[done..], c);
        }
    }
}

/// Bytes per stripe when combining k sources: small enough that the k source stripes
/// and one output stripe stay in L1 cache (32 KiB) while every output takes its turn,
/// big enough that each kernel call has work to do.
fn stripe_len(k: usize) -> usize {
    (32 * 1024 / (k + 1)).clamp(2048, 16 * 1024) & !63
}

/// The implementation of zfec's inner loop. [`Zfec::new`] picks the fastest one the
/// CPU supports; [`Zfec::with_kernel`] picks another (for benchmarks and checks). All
/// give the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kernel {
    /// A 256-byte multiplication table row per coefficient, one byte at a time.
    Scalar,
    /// x86_64 SSSE3: split-nibble `pshufb`, 16 bytes per step.
    Ssse3,
    /// x86_64 AVX2: split-nibble `vpshufb`, 32 bytes per step.
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU supports (detected once per process).
    pub fn best() -> Self {
        Self::from_simd(simd::Simd::best())
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        self == Self::Scalar || self.to_simd().is_some()
    }

    fn to_simd(self) -> Option<simd::Simd> {
        match self {
            Self::Scalar => None,
            Self::Ssse3 => simd::Simd::new(simd::Level::Ssse3),
            Self::Avx2 => simd::Simd::new(simd::Level::Avx2),
        }
    }

    fn from_simd(simd: Option<simd::Simd>) -> Self {
        match simd.map(simd::Simd::level) {
            None => Self::Scalar,
            Some(simd::Level::Ssse3) => Self::Ssse3,
            Some(simd::Level::Avx2) => Self::Avx2,
        }
    }
}

/// A zfec code with fixed k and n.
#[derive(Clone, Debug)]
pub struct Zfec {
    k: usize,
    n: usize,
    /// The n x k systematic generator matrix, row-major.
    matrix: Vec<u8>,
    /// The SIMD kernel of the inner loop, or `None` for the scalar one.
    kernel: Option<simd::Simd>,
}

impl Zfec {
    /// The code for `k` of `n`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] unless 1 <= k <= n <= 256.
    pub fn new(k: usize, n: usize) -> Result<Self, DecodeError> {
        if k == 0 || k > n || n > 256 {
            return Err(DecodeError::Invalid(format!(
                "zfec needs 1 <= k <= n <= 256, got k={k} n={n}"
            )));
        }
        let t = tables();
        let mut vdm = vec![0u8; n * k];
        vdm[0] = 1;
        for row in 0..n - 1 {
            for col in 0..k {
                vdm[(row + 1) * k + col] = t.exp[(row * col) % 255];
            }
        }
        let top_inv =
            invert(vdm[..k * k].to_vec(), k).expect("invariant: zfec's top matrix is invertible");
        let mut matrix = vec![0u8; n * k];
        for i in 0..k {
            matrix[i * k + i] = 1;
        }
        for r in k..n {
            for c in 0..k {
                let mut acc = 0u8;
                for j in 0..k {
                    acc ^= gf_mul(vdm[r * k + j], top_inv[j * k + c]);
                }
                matrix[r * k + c] = acc;
            }
        }
        Ok(Self {
            k,
            n,
            matrix,
            kernel: simd::Simd::best(),
        })
    }

    /// The same code running on `kernel`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if this CPU does not support `kernel`.
    pub fn with_kernel(mut self, kernel: Kernel) -> Result<Self, DecodeError> {
        if !kernel.is_supported() {
            return Err(DecodeError::Invalid(format!(
                "this CPU cannot run the zfec kernel {kernel:?}"
            )));
        }
        self.kernel = kernel.to_simd();
        Ok(self)
    }

    /// The kernel this code runs on.
    pub fn kernel(&self) -> Kernel {
        Kernel::from_simd(self.kernel)
    }

    /// k.
    pub fn k(&self) -> usize {
        self.k
    }

    /// n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Encodes k equal-length pieces into the n shares (the first k are the pieces).
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for the wrong number of pieces or unequal lengths.
    pub fn encode(&self, pieces: &[&[u8]]) -> Result<Vec<Vec<u8>>, DecodeError> {
        let len = pieces.first().map_or(0, |p| p.len());
        let mut parity = vec![vec![0u8; len]; self.n - self.k];
        let mut outputs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        self.encode_parity(pieces, &mut outputs)?;
        Ok(pieces.iter().map(|p| p.to_vec()).chain(parity).collect())
    }

    /// Computes the n - k parity shares of k equal-length pieces into `parity` (the
    /// shares k..n, each as long as a piece; their contents are overwritten), so a
    /// caller can have them land where they are sent from, with no copy.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for the wrong number of pieces or outputs, or unequal
    /// lengths.
    pub fn encode_parity(
        &self,
        pieces: &[&[u8]],
        parity: &mut [&mut [u8]],
    ) -> Result<(), DecodeError> {
        if pieces.len() != self.k || parity.len() != self.n - self.k {
            return Err(DecodeError::Invalid(format!(
                "zfec encode needs {} pieces and {} outputs, got {} and {}",
                self.k,
                self.n - self.k,
                pieces.len(),
                parity.len()
            )));
        }
        let len = pieces[0].len();
        if pieces.iter().any(|p| p.len() != len) || parity.iter().any(|p| p.len() != len) {
            return Err(DecodeError::Invalid(
                "zfec pieces must have equal lengths".into(),
            ));
        }
        parity.iter_mut().for_each(|block| block.fill(0));
        let stripe = stripe_len(self.k);
        for start in (0..len).step_by(stripe) {
            let end = (start + stripe).min(len);
            for (r, block) in (self.k..self.n).zip(parity.iter_mut()) {
                let row = &self.matrix[r * self.k..(r + 1) * self.k];
                for (piece, &c) in pieces.iter().zip(row) {
                    mul_add(&mut block[start..end], &piece[start..end], c, self.kernel);
                }
            }
        }
        Ok(())
    }

    /// Recovers the k pieces from any k distinct shares `(share number, block)`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for fewer or more than k shares, duplicate or
    /// out-of-range share numbers, or unequal lengths.
    pub fn decode(&self, shares: &[(usize, &[u8])]) -> Result<Vec<Vec<u8>>, DecodeError> {
        if shares.len() != self.k {
            return Err(DecodeError::Invalid(format!(
                "zfec decode needs exactly {} shares, got {}",
                self.k,
                shares.len()
            )));
        }
        let len = shares[0].1.len();
        let mut seen = [false; 256];
        for (n, block) in shares {
            if *n >= self.n || std::mem::replace(&mut seen[*n], true) {
                return Err(DecodeError::Invalid(format!(
                    "share number {n} is out of range or repeated"
                )));
            }
            if block.len() != len {
                return Err(DecodeError::Invalid(
                    "zfec shares must have equal lengths".into(),
                ));
            }
        }
        // Primary shares are the pieces themselves: the common case needs no algebra.
        let mut pieces: Vec<Option<Vec<u8>>> = vec![None; self.k];
        for (n, block) in shares {
            if *n < self.k {
                pieces[*n] = Some(block.to_vec());
            }
        }
        if pieces.iter().all(Option::is_some) {
            return Ok(pieces
                .into_iter()
                .map(|p| p.expect("invariant: checked"))
                .collect());
        }
        let mut sub = vec![0u8; self.k * self.k];
        for (i, (n, _)) in shares.iter().enumerate() {
            sub[i * self.k..(i + 1) * self.k]
                .copy_from_slice(&self.matrix[n * self.k..(n + 1) * self.k]);
        }
        let inv = invert(sub, self.k)
            .ok_or_else(|| DecodeError::Invalid("zfec shares do not determine the data".into()))?;
        // Rebuild the missing pieces stripe by stripe, as in `encode`.
        let mut missing: Vec<(usize, Vec<u8>)> = (0..self.k)
            .filter(|&c| pieces[c].is_none())
            .map(|c| (c, vec![0u8; len]))
            .collect();
        let stripe = stripe_len(self.k);
        for start in (0..len).step_by(stripe) {
            let end = (start + stripe).min(len);
            for (c, piece) in &mut missing {
                let row = &inv[*c * self.k..(*c + 1) * self.k];
                for ((_, block), &coef) in shares.iter().zip(row) {
                    mul_add(
                        &mut piece[start..end],
                        &block[start..end],
                        coef,
                        self.kernel,
                    );
                }
            }
        }
        let mut missing = missing.into_iter().map(|(_, piece)| piece);
        let out = pieces
            .into_iter()
            .map(|known| {
                known.unwrap_or_else(|| missing.next().expect("invariant: one per missing piece"))
            })
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systematic_and_recoverable_from_any_k() {
        let code = Zfec::new(3, 7).unwrap();
        let pieces: Vec<Vec<u8>> = (0..3)
            .map(|c| (0..50).map(|j| (c * 31 + j * 7) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let shares = code.encode(&refs).unwrap();
        assert_eq!(&shares[..3], &pieces[..]);
        for a in 0..7 {
            for b in 0..7 {
                for c in 0..7 {
                    if a == b || b == c || a == c {
                        continue;
                    }
                    let picked = [
                        (b, shares[b].as_slice()),
                        (c, shares[c].as_slice()),
                        (a, shares[a].as_slice()),
                    ];
                    assert_eq!(code.decode(&picked).unwrap(), pieces, "{a} {b} {c}");
                }
            }
        }
    }

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn byte(&mut self) -> u8 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.byte()).collect()
        }
    }

    #[test]
    fn simd_kernels_match_scalar_for_every_coefficient() {
        let levels = [simd::Level::Ssse3, simd::Level::Avx2];
        let kernels: Vec<simd::Simd> = levels.into_iter().filter_map(simd::Simd::new).collect();
        if kernels.is_empty() {
            eprintln!("no SIMD zfec kernel on this CPU: nothing to compare");
            return;
        }
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let lengths: Vec<usize> = (0..=100)
            .chain([255, 1000, 4099, 16384, 65536 + 45])
            .collect();
        for kernel in kernels {
            let width = match kernel.level() {
                simd::Level::Ssse3 => 16,
                simd::Level::Avx2 => 32,
            };
            for c in 0..=255u8 {
                let nibbles = &tables().nibbles[c as usize];
                for &len in &lengths {
                    // Unaligned starts for both slices, different from each other.
                    let (d_off, s_off) = (len % 7, (len * 3 + c as usize) % 5);
                    let src_buf = rng.bytes(len + s_off);
                    let dst_buf = rng.bytes(len + d_off);
                    let src = &src_buf[s_off..];
                    let mut want = dst_buf.clone();
                    mul_add_scalar(&mut want[d_off..], src, c);

                    // The vector part alone must do every whole vector, correctly.
                    let mut got = dst_buf.clone();
                    let done = kernel.mul_add(&mut got[d_off..], src, nibbles);
                    assert_eq!(done, len - len % width, "{kernel:?} c={c} len={len}");
                    assert_eq!(
                        got[d_off..d_off + done],
                        want[d_off..d_off + done],
                        "{kernel:?} c={c} len={len} vector part"
                    );
                    assert_eq!(got[..d_off], dst_buf[..d_off], "wrote before dst");

                    // The whole SIMD path (vectors, then the scalar tail).
                    let mut got = dst_buf.clone();
                    mul_add(&mut got[d_off..], src, c, Some(kernel));
                    assert_eq!(
                        got, want,
                        "{kernel:?} c={c} len={len} offsets {d_off} {s_off}"
                    );

                    if c == 1 {
                        let mut got = dst_buf.clone();
                        kernel.xor(&mut got[d_off..], src);
                        assert_eq!(got, want, "{kernel:?} xor len={len}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_supported_kernel_encodes_and_decodes_alike() {
        let mut rng = Rng(42);
        let pieces: Vec<Vec<u8>> = (0..3).map(|_| rng.bytes(1000 + 17)).collect();
        let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        let scalar = Zfec::new(3, 10)
            .unwrap()
            .with_kernel(Kernel::Scalar)
            .unwrap();
        assert_eq!(scalar.kernel(), Kernel::Scalar);
        let want = scalar.encode(&refs).unwrap();
        for kernel in [Kernel::Ssse3, Kernel::Avx2] {
            let Ok(code) = Zfec::new(3, 10).unwrap().with_kernel(kernel) else {
                assert!(!kernel.is_supported());
                continue;
            };
            assert_eq!(code.kernel(), kernel);
            assert_eq!(code.encode(&refs).unwrap(), want, "{kernel:?}");
            let picked: Vec<(usize, &[u8])> =
                [9, 4, 7].iter().map(|&i| (i, want[i].as_slice())).collect();
            assert_eq!(code.decode(&picked).unwrap(), pieces, "{kernel:?}");
        }
        assert!(Kernel::best().is_supported());
        assert_eq!(Zfec::new(2, 3).unwrap().kernel(), Kernel::best());
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(Zfec::new(0, 1).is_err());
        assert!(Zfec::new(4, 3).is_err());
        assert!(Zfec::new(2, 257).is_err());
        let code = Zfec::new(2, 3).unwrap();
        assert!(code.decode(&[(0, b"ab"), (0, b"ab")]).is_err());
        assert!(code.decode(&[(0, b"ab")]).is_err());
        assert!(code.decode(&[(0, b"ab"), (3, b"ab")]).is_err());
    }
}
