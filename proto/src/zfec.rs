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

use std::sync::OnceLock;

use crate::DecodeError;

struct Tables {
    exp: [u8; 510],
    log: [u8; 256],
    /// `mul[a][b] = a*b` in GF(2^8): 64 KiB, the fast path of the inner loop.
    mul: Vec<[u8; 256]>,
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
        Tables { exp, log, mul }
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

/// `dst ^= c * src`, the whole inner loop of encoding and decoding.
fn mul_add(dst: &mut [u8], src: &[u8], c: u8) {
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

/// A zfec code with fixed k and n.
#[derive(Clone, Debug)]
pub struct Zfec {
    k: usize,
    n: usize,
    /// The n x k systematic generator matrix, row-major.
    matrix: Vec<u8>,
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
        Ok(Self { k, n, matrix })
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
        if pieces.len() != self.k {
            return Err(DecodeError::Invalid(format!(
                "zfec encode needs {} pieces, got {}",
                self.k,
                pieces.len()
            )));
        }
        let len = pieces[0].len();
        if pieces.iter().any(|p| p.len() != len) {
            return Err(DecodeError::Invalid(
                "zfec pieces must have equal lengths".into(),
            ));
        }
        let mut out: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        for r in self.k..self.n {
            let mut block = vec![0u8; len];
            // Work in cache-sized stripes so every source stripe is reused while hot.
            const STRIPE: usize = 16 * 1024;
            for start in (0..len).step_by(STRIPE) {
                let end = (start + STRIPE).min(len);
                for (c, piece) in pieces.iter().enumerate() {
                    mul_add(
                        &mut block[start..end],
                        &piece[start..end],
                        self.matrix[r * self.k + c],
                    );
                }
            }
            out.push(block);
        }
        Ok(out)
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
        let mut out = Vec::with_capacity(self.k);
        for (c, known) in pieces.into_iter().enumerate() {
            if let Some(piece) = known {
                out.push(piece);
                continue;
            }
            let mut piece = vec![0u8; len];
            for (i, (_, block)) in shares.iter().enumerate() {
                mul_add(&mut piece, block, inv[c * self.k + i]);
            }
            out.push(piece);
        }
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
