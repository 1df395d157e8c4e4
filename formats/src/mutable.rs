//! Mutable file shares (SDMF and MDMF, `allmydata/mutable/layout.py`): parse, verify
//! against a cap, and decode a version.
//!
//! A version is identified by its signed prefix (version byte, seqnum, root hash, and
//! for SDMF the salt, then k, N, segment size, data length). A share is trusted only
//! after: its verification key hashes to the cap's fingerprint; the RSA-PSS signature
//! over the prefix verifies; its block hash tree root chains through the share hash
//! chain to the prefix's root hash; and each block matches its leaf.

use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use sha2::Sha256;
use swamp_proto::DecodeError;

use crate::hashtree::{HashTree, roundup_pow2, verify_leaf};
use crate::zfec::Zfec;
use crate::{aes, hashutil};

/// A parsed mutable share (not yet verified).
#[derive(Clone, Debug)]
pub struct MutableShare {
    /// 0 SDMF, 1 MDMF.
    pub version: u8,
    /// Sequence number.
    pub seqnum: u64,
    /// Share hash tree root.
    pub root_hash: [u8; 32],
    /// SDMF only: the one segment's salt.
    pub sdmf_salt: Option<[u8; 16]>,
    /// k.
    pub needed: u8,
    /// N.
    pub total: u8,
    /// Segment size.
    pub segment_size: u64,
    /// Plaintext length.
    pub data_length: u64,
    /// The signed prefix.
    pub prefix: Vec<u8>,
    /// Verification key, SPKI DER.
    pub verification_key: Vec<u8>,
    /// RSA-PSS signature over the prefix.
    pub signature: Vec<u8>,
    /// Share hash chain (without this share's own leaf).
    pub share_hash_chain: Vec<(usize, [u8; 32])>,
    /// Block hash tree, flat.
    pub block_tree: Vec<[u8; 32]>,
    /// Per segment: (salt, block).
    pub blocks: Vec<([u8; 16], Vec<u8>)>,
    /// The private key, encrypted with the write key.
    pub encrypted_private_key: Vec<u8>,
}

fn bad(why: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(format!("mutable share: {}", why.into()))
}

fn be(bytes: &[u8], at: usize, len: usize) -> Result<u64, DecodeError> {
    let field = bytes
        .get(at..at + len)
        .ok_or_else(|| bad("truncated header"))?;
    Ok(field.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn section(bytes: &[u8], from: u64, to: u64) -> Result<&[u8], DecodeError> {
    bytes
        .get(from as usize..to as usize)
        .ok_or_else(|| bad("a section lies outside the share"))
}

fn hashes(s: &[u8]) -> Vec<[u8; 32]> {
    s.chunks_exact(32)
        .map(|c| c.try_into().expect("invariant: 32-byte chunks"))
        .collect()
}

fn chain(s: &[u8]) -> Vec<(usize, [u8; 32])> {
    s.chunks_exact(34)
        .map(|c| {
            (
                usize::from(u16::from_be_bytes([c[0], c[1]])),
                c[2..].try_into().expect("32"),
            )
        })
        .collect()
}

/// The length of the checkstring of a share whose version byte is `version`: the
/// prefix up to and including the root hash, plus the salt for SDMF (`>BQ32s16s`, 57
/// bytes; MDMF `>BQ32s`, 41 bytes). Tahoe's publisher tests it before overwriting a share.
pub fn checkstring_len(version: u8) -> usize {
    if version == 0 { 57 } else { 41 }
}

/// The (seqnum, root hash) a checkstring names, if it is long enough to name one.
pub fn parse_checkstring(checkstring: &[u8]) -> Option<(u64, [u8; 32])> {
    let seqnum = u64::from_be_bytes(checkstring.get(1..9)?.try_into().ok()?);
    let root_hash = checkstring.get(9..41)?.try_into().ok()?;
    Some((seqnum, root_hash))
}

/// Checks that `key` is the cap's (by `fingerprint`) and that `signature` is its
/// RSA-PSS signature over `prefix`.
fn verify_prefix(
    key: &[u8],
    signature: &[u8],
    prefix: &[u8],
    fingerprint: &[u8; 32],
) -> Result<(), DecodeError> {
    if &hashutil::ssk_pubkey_fingerprint_hash(key) != fingerprint {
        return Err(bad("verification key does not match the cap's fingerprint"));
    }
    let key = rsa::PublicKey::from_public_key_der(key)
        .map_err(|e| bad(format!("verification key: {e}")))?;
    let signature =
        rsa::pss::Signature::try_from(signature).map_err(|_| bad("malformed signature"))?;
    rsa::pss::VerifyingKey::<Sha256>::new(key)
        .verify(prefix, &signature)
        .map_err(|_| bad("signature does not verify"))
}

/// Room allowed in a share for its keys and signature (an RSA key of 2048 bits, as
/// Tahoe makes, needs under 2 KiB for all three; this allows far larger keys).
const MAX_KEYS_LEN: u64 = 32 * 1024;
/// Room allowed for a share hash chain (N is at most 255: 9 levels, and the sibling).
const MAX_CHAIN_LEN: u64 = 16 * 34;

/// The length of a share (its header's end-of-file offset), from the share's first
/// bytes, once they prove it is the cap's: the verification key in them must match
/// `fingerprint` and sign the prefix. The offsets are not signed, so the length is
/// then checked against what the signed sizes (k, segment size, data length) allow:
/// a reader fetches the rest of a share only after this, never sized by a server's
/// say-so.
///
/// # Errors
/// [`DecodeError::Invalid`] if the header or the key and signature are not all in
/// `first`, do not verify, or the length is more than the signed sizes allow.
pub fn signed_share_len(first: &[u8], fingerprint: &[u8; 32]) -> Result<u64, DecodeError> {
    let b = first;
    // (header length, prefix length, k, segment size, data length, key, signature, eof)
    let (header, prefix, needed, num_segments, data_length, key, sig, eof) = match b.first() {
        Some(0) => {
            let (o_sig, o_chain) = (be(b, 75, 4)?, be(b, 79, 4)?);
            // SDMF has one segment, or none for an empty file.
            let (segment_size, data_length) = (be(b, 59, 8)?, be(b, 67, 8)?);
            let segments = u64::from(segment_size != 0);
            (
                107,
                75,
                be(b, 57, 1)?,
                segments,
                data_length,
                (107, o_sig),
                (o_sig, o_chain),
                be(b, 99, 8)?,
            )
        }
        Some(1) => {
            let o = |i: usize| be(b, 59 + 8 * i, 8);
            let (segment_size, data_length) = (be(b, 43, 8)?, be(b, 51, 8)?);
            let segments = match (segment_size, data_length) {
                (_, 0) => 0,
                (0, _) => return Err(bad("segment size 0 for a non-empty file")),
                _ => data_length.div_ceil(segment_size),
            };
            (
                123,
                59,
                be(b, 41, 1)?,
                segments,
                data_length,
                (o(3)?, o(4)?),
                (o(2)?, o(3)?),
                o(7)?,
            )
        }
        _ => return Err(bad("unknown version byte")),
    };
    verify_prefix(
        section(b, key.0, key.1)?,
        section(b, sig.0, sig.1)?,
        section(b, 0, prefix)?,
        fingerprint,
    )?;
    if needed == 0 {
        return Err(bad("k is 0"));
    }
    let max = (|| {
        let tree = num_segments
            .max(1)
            .checked_next_power_of_two()?
            .checked_mul(64)?
            .checked_sub(32)?;
        let blocks = data_length
            .div_ceil(needed)
            .checked_add(num_segments.checked_mul(17)?)?;
        (header + MAX_KEYS_LEN + MAX_CHAIN_LEN)
            .checked_add(tree)?
            .checked_add(blocks)
    })()
    .ok_or_else(|| bad("the signed sizes overflow"))?;
    if eof > max {
        return Err(bad(format!(
            "the header says the share is {eof} bytes; its signed sizes allow at most {max}"
        )));
    }
    Ok(eof)
}

impl MutableShare {
    /// This share's checkstring (see [`checkstring_len`]).
    pub fn checkstring(&self) -> &[u8] {
        &self.prefix[..checkstring_len(self.version)]
    }

    /// Parses a share's data (the container's data region).
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a malformed share.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        match bytes.first() {
            Some(0) => Self::parse_sdmf(bytes),
            Some(1) => Self::parse_mdmf(bytes),
            _ => Err(bad("unknown version byte")),
        }
    }

    fn parse_sdmf(b: &[u8]) -> Result<Self, DecodeError> {
        let needed = be(b, 57, 1)? as u8;
        let total = be(b, 58, 1)? as u8;
        let (o_sig, o_chain, o_tree, o_data) =
            (be(b, 75, 4)?, be(b, 79, 4)?, be(b, 83, 4)?, be(b, 87, 4)?);
        let (o_privkey, o_eof) = (be(b, 91, 8)?, be(b, 99, 8)?);
        let data_length = be(b, 67, 8)?;
        let salt: [u8; 16] = b
            .get(41..57)
            .ok_or_else(|| bad("truncated"))?
            .try_into()
            .expect("16");
        Ok(Self {
            version: 0,
            seqnum: be(b, 1, 8)?,
            root_hash: b
                .get(9..41)
                .ok_or_else(|| bad("truncated"))?
                .try_into()
                .expect("32"),
            sdmf_salt: Some(salt),
            needed,
            total,
            segment_size: be(b, 59, 8)?,
            data_length,
            prefix: b[..75].to_vec(),
            verification_key: section(b, 107, o_sig)?.to_vec(),
            signature: section(b, o_sig, o_chain)?.to_vec(),
            share_hash_chain: chain(section(b, o_chain, o_tree)?),
            block_tree: hashes(section(b, o_tree, o_data)?),
            // An empty file has no segment at all (Tahoe publishes zero segments
            // and an empty block hash tree).
            blocks: match be(b, 59, 8)? {
                0 => Vec::new(),
                _ => vec![(salt, section(b, o_data, o_privkey)?.to_vec())],
            },
            encrypted_private_key: section(b, o_privkey, o_eof)?.to_vec(),
        })
    }

    fn parse_mdmf(b: &[u8]) -> Result<Self, DecodeError> {
        let needed = be(b, 41, 1)? as u8;
        let total = be(b, 42, 1)? as u8;
        let segment_size = be(b, 43, 8)?;
        let data_length = be(b, 51, 8)?;
        let o = |i: usize| be(b, 59 + 8 * i, 8);
        let (o_privkey, o_chain, o_sig, o_key, o_key_end, o_data, o_tree, o_eof) =
            (o(0)?, o(1)?, o(2)?, o(3)?, o(4)?, o(5)?, o(6)?, o(7)?);
        if needed == 0 || segment_size % u64::from(needed) != 0 {
            return Err(bad("bad encoding parameters"));
        }
        // An empty file has no segments (Tahoe's publisher), whatever its segment size.
        let num_segments = match (segment_size, data_length) {
            (_, 0) => 0,
            (0, _) => return Err(bad("segment size 0 for a non-empty file")),
            _ => data_length.div_ceil(segment_size),
        };
        let block_size = segment_size / u64::from(needed);
        let tail = match data_length.checked_rem(segment_size).unwrap_or(0) {
            0 if data_length > 0 => segment_size,
            t => t,
        };
        let tail_block = tail.div_ceil(u64::from(needed));
        let data = section(b, o_data, o_tree)?;
        let mut blocks = Vec::new();
        let mut at = 0usize;
        for seg in 0..num_segments {
            let len = if seg + 1 == num_segments {
                tail_block
            } else {
                block_size
            } as usize;
            // Sizes come from the header: the arithmetic is checked, never trusted.
            let end = at
                .checked_add(16)
                .and_then(|x| x.checked_add(len))
                .filter(|&end| end <= data.len())
                .ok_or_else(|| bad("share data too short"))?;
            let salt: [u8; 16] = data[at..at + 16].try_into().expect("16");
            blocks.push((salt, data[at + 16..end].to_vec()));
            at = end;
        }
        Ok(Self {
            version: 1,
            seqnum: be(b, 1, 8)?,
            root_hash: b
                .get(9..41)
                .ok_or_else(|| bad("truncated"))?
                .try_into()
                .expect("32"),
            sdmf_salt: None,
            needed,
            total,
            segment_size,
            data_length,
            prefix: b[..59].to_vec(),
            verification_key: section(b, o_key, o_key_end)?.to_vec(),
            signature: section(b, o_sig, o_key)?.to_vec(),
            share_hash_chain: chain(section(b, o_chain, o_sig)?),
            block_tree: hashes(section(b, o_tree, o_eof)?),
            blocks,
            encrypted_private_key: section(b, o_privkey, o_chain)?.to_vec(),
        })
    }

    /// Checks the verification key against `fingerprint` and the signature over the
    /// prefix, not the blocks: what Tahoe's checker trusts a share by when it does not
    /// verify.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] saying which check failed.
    pub fn verify_signature(&self, fingerprint: &[u8; 32]) -> Result<(), DecodeError> {
        verify_prefix(
            &self.verification_key,
            &self.signature,
            &self.prefix,
            fingerprint,
        )
    }

    /// Checks the verification key against `fingerprint`, the signature, and that this
    /// share's blocks chain up to the signed root hash.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] saying which check failed.
    pub fn verify(&self, shnum: usize, fingerprint: &[u8; 32]) -> Result<(), DecodeError> {
        verify_prefix(
            &self.verification_key,
            &self.signature,
            &self.prefix,
            fingerprint,
        )?;
        let leaves: Vec<[u8; 32]> = self
            .blocks
            .iter()
            .map(|(salt, block)| {
                if self.version == 1 {
                    let mut salted = salt.to_vec();
                    salted.extend_from_slice(block);
                    hashutil::block_hash(&salted)
                } else {
                    hashutil::block_hash(block)
                }
            })
            .collect();
        let block_root = HashTree::new(&leaves).root();
        if self.block_tree.first() != Some(&block_root) {
            return Err(bad("blocks do not match the block hash tree"));
        }
        let nodes = 2 * roundup_pow2(usize::from(self.total)) - 1;
        if !verify_leaf(
            nodes,
            shnum,
            &block_root,
            &self.share_hash_chain,
            &self.root_hash,
        ) {
            return Err(bad(
                "share hash chain does not lead to the signed root hash",
            ));
        }
        Ok(())
    }
}

/// Decodes one version from k verified shares of it.
///
/// # Errors
/// [`DecodeError::Invalid`] for fewer than k shares or inconsistent ones.
pub fn decode(
    readkey: &[u8; 16],
    shares: &[(usize, &MutableShare)],
) -> Result<Vec<u8>, DecodeError> {
    let first = shares.first().ok_or_else(|| bad("no shares"))?.1;
    let k = usize::from(first.needed);
    if shares.len() < k {
        return Err(bad(format!("{} shares of the {k} needed", shares.len())));
    }
    if shares.iter().any(|(_, s)| s.prefix != first.prefix) {
        return Err(bad("shares of different versions"));
    }
    let code = Zfec::new(k, usize::from(first.total))?;
    // The signed data length sizes the result only as far as the blocks in hand can
    // fill it: a signer's absurd length is not an allocation.
    let held: usize = shares[..k]
        .iter()
        .map(|(_, s)| s.blocks.iter().map(|(_, b)| b.len()).sum::<usize>())
        .sum();
    let data_length = usize::try_from(first.data_length).unwrap_or(usize::MAX);
    let mut plaintext = Vec::with_capacity(data_length.min(held));
    let segment_size = usize::try_from(first.segment_size).unwrap_or(usize::MAX);
    for seg in 0..first.blocks.len() {
        let blocks: Vec<(usize, &[u8])> = shares[..k]
            .iter()
            .map(|(n, s)| {
                s.blocks
                    .get(seg)
                    .map(|(_, block)| (*n, block.as_slice()))
                    .ok_or_else(|| bad("shares of different lengths"))
            })
            .collect::<Result<_, _>>()?;
        let mut segment = code.decode(&blocks)?.concat();
        let remaining = data_length.saturating_sub(plaintext.len());
        segment.truncate(remaining.min(segment_size));
        let salt = first.sdmf_salt.unwrap_or(shares[0].1.blocks[seg].0);
        aes::aes128_ctr(
            &hashutil::ssk_readkey_data_hash(&salt, readkey),
            0,
            &mut segment,
        );
        plaintext.extend_from_slice(&segment);
    }
    // A signer's length the segments cannot fill is a broken file, not a short one.
    if plaintext.len() as u64 != first.data_length {
        return Err(bad(format!(
            "the segments hold {} bytes of the {} the signed header names",
            plaintext.len(),
            first.data_length
        )));
    }
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An MDMF header naming the largest sizes there are (a segment of 2^64 - 1
    /// bytes, k = 1) is a clean error, not an overflow.
    #[test]
    fn absurd_mdmf_sizes_are_an_error_not_an_overflow() {
        let mut share = vec![0u8; 200];
        share[0] = 1;
        share[41] = 1; // k
        share[42] = 1; // N
        share[43..51].copy_from_slice(&u64::MAX.to_be_bytes()); // segment size
        share[51..59].copy_from_slice(&u64::MAX.to_be_bytes()); // data length
        for (i, offset) in [123u64, 123, 123, 123, 123, 123, 200, 200]
            .iter()
            .enumerate()
        {
            share[59 + 8 * i..67 + 8 * i].copy_from_slice(&offset.to_be_bytes());
        }
        let err = MutableShare::parse(&share).unwrap_err();
        assert!(err.to_string().contains("too short"), "{err}");
        assert!(signed_share_len(&share, &[0; 32]).is_err());
    }
}
