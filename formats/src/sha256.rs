//! SHA-256 with two independent streams hashed at once ([`update_pair`]).
//!
//! Why not just the `sha2` crate: a single SHA-256 stream on SHA-NI is bound by
//! instruction latency, and CHK encoding and decoding hash most bytes twice or more
//! in streams of equal length (a segment under two tags, the blocks of a segment).
//! [`update_pair`] runs two such streams in one loop ([`shani`]) at about 1.7x the
//! throughput of one after the other. Single blocks still go through `sha2`'s own
//! compression function (SHA-NI where the CPU has it), and without SHA-NI a pair is
//! simply two single updates, so the digests never depend on the CPU.

mod shani;

use sha2::block_api::compress256;

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// An incremental SHA-256.
#[derive(Clone, Debug)]
pub struct Sha256 {
    state: [u32; 8],
    /// Bytes not yet compressed (fewer than 64).
    partial: [u8; 64],
    partial_len: usize,
    /// Bytes absorbed in all.
    len: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    /// A hasher with nothing absorbed.
    pub fn new() -> Self {
        Self {
            state: IV,
            partial: [0; 64],
            partial_len: 0,
            len: 0,
        }
    }

    /// `SHA256(data)`.
    pub fn digest(data: &[u8]) -> [u8; 32] {
        let mut h = Self::new();
        h.update(data);
        h.finalize()
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        let rest = self.fill(data);
        let (blocks, tail) = rest.as_chunks::<64>();
        compress256(&mut self.state, blocks);
        self.keep(tail);
    }

    /// Tops up the partial block from `data` (compressing it once full) and returns
    /// what is left of `data`: either nothing, or the rest with no partial block
    /// pending. The caller counts `data` in `len`.
    fn fill<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        if self.partial_len == 0 {
            return data;
        }
        let take = (64 - self.partial_len).min(data.len());
        self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
        self.partial_len += take;
        if self.partial_len == 64 {
            compress256(&mut self.state, &[self.partial]);
            self.partial_len = 0;
        }
        &data[take..]
    }

    /// Keeps `tail` (fewer than 64 bytes, with no partial block pending).
    fn keep(&mut self, tail: &[u8]) {
        debug_assert!(tail.len() < 64 && (tail.is_empty() || self.partial_len == 0));
        self.partial[self.partial_len..self.partial_len + tail.len()].copy_from_slice(tail);
        self.partial_len += tail.len();
    }

    /// The digest of everything absorbed.
    pub fn finalize(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        // Pad with 0x80 and zeros to 56 mod 64, then the length in bits.
        let zeros = (119 - self.partial_len) % 64;
        pad[1 + zeros..9 + zeros].copy_from_slice(&bits.to_be_bytes());
        self.update(&pad[..9 + zeros]);
        debug_assert_eq!(self.partial_len, 0);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

/// `a.update(da); b.update(db)`, with the common length of whole blocks of the two
/// compressed in one interleaved loop when the CPU has SHA-NI.
pub fn update_pair(a: &mut Sha256, da: &[u8], b: &mut Sha256, db: &[u8]) {
    let Some(shani) = shani::ShaNi::detect() else {
        a.update(da);
        b.update(db);
        return;
    };
    a.len += da.len() as u64;
    b.len += db.len() as u64;
    // A stream still holding a partial block after this has no data left, so it
    // takes no part in the interleaved loop.
    let (ra, rb) = (a.fill(da), b.fill(db));
    let (blocks_a, _) = ra.as_chunks::<64>();
    let (blocks_b, _) = rb.as_chunks::<64>();
    let both = blocks_a.len().min(blocks_b.len());
    shani.compress2(
        &mut a.state,
        &mut b.state,
        &blocks_a[..both],
        &blocks_b[..both],
    );
    for (h, rest) in [(a, &ra[64 * both..]), (b, &rb[64 * both..])] {
        let (blocks, tail) = rest.as_chunks::<64>();
        compress256(&mut h.state, blocks);
        h.keep(tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn reference(data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }

    fn bytes(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
            .collect()
    }

    #[test]
    fn matches_sha2_for_every_length_and_split() {
        for len in (0..300).chain([1000, 4096, 65_537]) {
            let data = bytes(len, 7);
            assert_eq!(Sha256::digest(&data), reference(&data), "len {len}");
            for split in [0, 1, 55, 56, 63, 64, 65, 200] {
                let split = split.min(len);
                let mut h = Sha256::new();
                h.update(&data[..split]);
                h.update(&data[split..]);
                assert_eq!(h.finalize(), reference(&data), "len {len} split {split}");
            }
        }
    }

    #[test]
    fn pairs_match_single_streams_whatever_the_offsets_and_lengths() {
        // Prefixes put each stream at a different offset within its partial block
        // (as tags do); lengths differ so one stream finishes alone.
        for (pre_a, pre_b) in [(0, 0), (33, 0), (0, 64), (33, 47), (63, 1), (10, 10)] {
            for (la, lb) in [(0, 0), (5, 900), (4096, 4096), (4097, 4000), (70_000, 3)] {
                let (pa, pb) = (bytes(pre_a, 1), bytes(pre_b, 2));
                let (da, db) = (bytes(la, 3), bytes(lb, 4));
                let (mut a, mut b) = (Sha256::new(), Sha256::new());
                a.update(&pa);
                b.update(&pb);
                update_pair(&mut a, &da, &mut b, &db);
                update_pair(&mut a, &db, &mut b, &da);
                let whole = |p: &[u8], x: &[u8], y: &[u8]| reference(&[p, x, y].concat());
                assert_eq!(a.finalize(), whole(&pa, &da, &db), "{pre_a} {la}");
                assert_eq!(b.finalize(), whole(&pb, &db, &da), "{pre_b} {lb}");
            }
        }
    }

    #[test]
    fn the_interleaved_kernel_matches_the_single_one() {
        let Some(shani) = shani::ShaNi::detect() else {
            return; // Nothing to compare on this CPU: update_pair never uses it.
        };
        let (da, db) = (bytes(64 * 37, 5), bytes(64 * 37, 6));
        let (blocks_a, _) = da.as_chunks::<64>();
        let (blocks_b, _) = db.as_chunks::<64>();
        let (mut sa, mut sb) = (IV, [1, 2, 3, 4, 5, 6, 7, 8]);
        let (mut ra, mut rb) = (sa, sb);
        shani.compress2(&mut sa, &mut sb, blocks_a, blocks_b);
        compress256(&mut ra, blocks_a);
        compress256(&mut rb, blocks_b);
        assert_eq!((sa, sb), (ra, rb));
    }
}
