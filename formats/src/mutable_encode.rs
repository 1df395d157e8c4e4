//! Encoding a version of a mutable file into its N shares, byte for byte as Tahoe's
//! publisher lays them out (`mutable/publish.py`, `mutable/layout.py`).
//!
//! Per segment: a fresh 16-byte salt, AES-128-CTR under
//! `ssk_readkey_data_hash(salt, readkey)`, split into k zero-padded pieces, zfec to N
//! blocks. Per share: a block hash tree over the blocks (each salted with its segment's
//! salt for MDMF); the share hash tree over the N block-tree roots gives the root hash
//! that the signed prefix carries. SDMF is one segment with one salt (the IV in the
//! header); MDMF cuts 128 KiB segments and stores each salt before its block.
//!
//! The only randomness is the salts and the RSA-PSS signature, both taken from the
//! caller ([`encode_with_salts`] takes explicit salts, so a test can reproduce a real
//! Tahoe share exactly except for its signature).

use rsa::rand_core::CryptoRng;
use swamp_proto::DecodeError;

use crate::cap::MutableFormat;
use crate::hashtree::HashTree;
use crate::mutable_key::MutableKey;
use crate::zfec::Zfec;
use crate::{aes, hashutil};

/// Tahoe's MDMF segment size before rounding up to a multiple of k
/// (`DEFAULT_MUTABLE_MAX_SEGMENT_SIZE`).
pub const MDMF_SEGMENT_SIZE: u64 = 128 * 1024;
/// Bytes before the verification key in an SDMF share (signed prefix + offsets).
pub const SDMF_HEADER_LEN: usize = 107;
/// Bytes before the encrypted private key in an MDMF share (signed prefix + offsets).
pub const MDMF_HEADER_LEN: usize = 123;
/// Where MDMF share data starts: after the header and the room Tahoe reserves for the
/// private key (1220), signature (260), verification key (292) and share hash chain
/// (34 * 8), whatever their actual lengths.
pub const MDMF_SHARE_DATA_OFFSET: usize = MDMF_HEADER_LEN + 1220 + 260 + 292 + 34 * 8;

/// Encoding parameters of a mutable file: its format, k and N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MutableParams {
    format: MutableFormat,
    needed: u8,
    total: u8,
}

fn bad(why: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(format!("mutable encode: {}", why.into()))
}

impl MutableParams {
    /// `needed`-of-`total` shares in `format`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] unless 1 <= needed <= total (share counts are one byte
    /// in the signed prefix).
    pub fn new(format: MutableFormat, needed: u8, total: u8) -> Result<Self, DecodeError> {
        if needed == 0 || needed > total {
            return Err(bad(format!("need 1 <= k <= N, got k={needed} N={total}")));
        }
        Ok(Self {
            format,
            needed,
            total,
        })
    }

    /// SDMF or MDMF.
    pub fn format(&self) -> MutableFormat {
        self.format
    }

    /// k.
    pub fn needed(&self) -> u8 {
        self.needed
    }

    /// N.
    pub fn total(&self) -> u8 {
        self.total
    }

    /// The segment size Tahoe signs for `data_length` bytes: SDMF's one segment is the
    /// whole file, MDMF's is 128 KiB, both rounded up to a multiple of k (so an empty
    /// SDMF file has segment size 0).
    pub fn segment_size(&self, data_length: u64) -> u64 {
        let k = u64::from(self.needed);
        let raw = match self.format {
            MutableFormat::Sdmf => data_length,
            MutableFormat::Mdmf => MDMF_SEGMENT_SIZE,
        };
        raw.div_ceil(k) * k
    }

    /// How many segments (and so salts) `data_length` bytes make: 0 for an empty file.
    pub fn num_segments(&self, data_length: u64) -> usize {
        match self.segment_size(data_length) {
            0 => 0,
            size => data_length.div_ceil(size) as usize,
        }
    }
}

/// One version of a mutable file, encoded.
#[derive(Clone, Debug)]
pub struct EncodedVersion {
    /// Format, k and N.
    pub params: MutableParams,
    /// Its sequence number.
    pub seqnum: u64,
    /// The share hash tree root, which with the seqnum names the version.
    pub root_hash: [u8; 32],
    /// The share data (a mutable container's data region), indexed by share number.
    pub shares: Vec<Vec<u8>>,
}

impl EncodedVersion {
    /// The checkstring every share of this version starts with (see
    /// [`crate::mutable::checkstring_len`]): what a later writer tests for.
    pub fn checkstring(&self) -> &[u8] {
        let len = match self.params.format {
            MutableFormat::Sdmf => 57,
            MutableFormat::Mdmf => 41,
        };
        self.shares.first().map_or(&[], |share| &share[..len])
    }
}

/// Encodes `data` as version `seqnum`, drawing a fresh salt per segment (SDMF: one,
/// even for an empty file) and the signature's randomness from `rng`.
///
/// # Errors
/// [`DecodeError::Invalid`] if the file cannot be laid out (an SDMF share past 4 GiB)
/// or the random source fails.
pub fn encode<R: CryptoRng + ?Sized>(
    key: &MutableKey,
    params: MutableParams,
    seqnum: u64,
    data: &[u8],
    rng: &mut R,
) -> Result<EncodedVersion, DecodeError> {
    let count = match params.format {
        MutableFormat::Sdmf => 1,
        MutableFormat::Mdmf => params.num_segments(data.len() as u64),
    };
    let salts: Vec<[u8; 16]> = (0..count)
        .map(|_| {
            let mut salt = [0u8; 16];
            rng.fill_bytes(&mut salt);
            salt
        })
        .collect();
    encode_with_salts(key, params, seqnum, data, &salts, rng)
}

/// [`encode`] with the salts given: exactly one for SDMF, one per segment for MDMF.
///
/// # Errors
/// As [`encode`], and for the wrong number of salts.
pub fn encode_with_salts<R: CryptoRng + ?Sized>(
    key: &MutableKey,
    params: MutableParams,
    seqnum: u64,
    data: &[u8],
    salts: &[[u8; 16]],
    rng: &mut R,
) -> Result<EncodedVersion, DecodeError> {
    let data_length = data.len() as u64;
    let segment_size = params.segment_size(data_length);
    let segments = params.num_segments(data_length);
    let wanted_salts = match params.format {
        MutableFormat::Sdmf => 1,
        MutableFormat::Mdmf => segments,
    };
    if salts.len() != wanted_salts {
        return Err(bad(format!(
            "{} salts given, {wanted_salts} needed",
            salts.len()
        )));
    }
    let readkey = hashutil::ssk_readkey_hash(&key.writekey());
    let k = usize::from(params.needed);
    let n = usize::from(params.total);
    let code = Zfec::new(k, n)?;

    // blocks[share][segment], each with its segment's salt.
    let mut blocks: Vec<Vec<([u8; 16], Vec<u8>)>> = vec![Vec::with_capacity(segments); n];
    for (index, chunk) in data.chunks(segment_size.max(1) as usize).enumerate() {
        let salt = salts[index];
        let mut crypttext = chunk.to_vec();
        aes::aes128_ctr(
            &hashutil::ssk_readkey_data_hash(&salt, &readkey),
            0,
            &mut crypttext,
        );
        let piece_size = crypttext.len().div_ceil(k);
        crypttext.resize(piece_size * k, 0);
        let pieces: Vec<&[u8]> = crypttext.chunks(piece_size).collect();
        for (share, block) in code.encode(&pieces)?.into_iter().enumerate() {
            blocks[share].push((salt, block));
        }
    }

    let block_trees: Vec<HashTree> = blocks
        .iter()
        .map(|share_blocks| {
            let leaves: Vec<[u8; 32]> = share_blocks
                .iter()
                .map(|(salt, block)| match params.format {
                    MutableFormat::Sdmf => hashutil::block_hash(block),
                    MutableFormat::Mdmf => hashutil::block_hash(&[&salt[..], block].concat()),
                })
                .collect();
            HashTree::new(&leaves)
        })
        .collect();
    let roots: Vec<[u8; 32]> = block_trees.iter().map(HashTree::root).collect();
    let share_tree = HashTree::new(&roots);
    let root_hash = share_tree.root();

    let prefix = signed_prefix(params, seqnum, &root_hash, salts, segment_size, data_length);
    let signature = key.sign(rng, &prefix)?;
    let encrypted_key = key.encrypted_private_key();

    let mut shares = Vec::with_capacity(n);
    for (shnum, (share_blocks, block_tree)) in blocks.iter().zip(&block_trees).enumerate() {
        let chain: Vec<u8> = share_tree
            .needed_hashes(shnum, false)
            .into_iter()
            .flat_map(|i| {
                let mut entry = (i as u16).to_be_bytes().to_vec();
                entry.extend_from_slice(&share_tree.nodes()[i]);
                entry
            })
            .collect();
        let parts = ShareParts {
            prefix: &prefix,
            verification_key: key.verification_key_der(),
            signature: &signature,
            share_hash_chain: &chain,
            block_hash_tree: &block_tree.nodes().concat(),
            encrypted_private_key: &encrypted_key,
        };
        shares.push(match params.format {
            MutableFormat::Sdmf => parts.sdmf(
                &share_blocks
                    .iter()
                    .flat_map(|(_, b)| b.clone())
                    .collect::<Vec<u8>>(),
            )?,
            MutableFormat::Mdmf => parts.mdmf(
                &share_blocks
                    .iter()
                    .flat_map(|(s, b)| [&s[..], b].concat())
                    .collect::<Vec<u8>>(),
            )?,
        });
    }
    Ok(EncodedVersion {
        params,
        seqnum,
        root_hash,
        shares,
    })
}

/// The bytes the signature covers: `>BQ32s16sBBQQ` (SDMF, with the salt) or
/// `>BQ32sBBQQ` (MDMF).
fn signed_prefix(
    params: MutableParams,
    seqnum: u64,
    root_hash: &[u8; 32],
    salts: &[[u8; 16]],
    segment_size: u64,
    data_length: u64,
) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(75);
    prefix.push(match params.format {
        MutableFormat::Sdmf => 0,
        MutableFormat::Mdmf => 1,
    });
    prefix.extend_from_slice(&seqnum.to_be_bytes());
    prefix.extend_from_slice(root_hash);
    if params.format == MutableFormat::Sdmf {
        prefix.extend_from_slice(&salts[0]);
    }
    prefix.extend_from_slice(&[params.needed, params.total]);
    prefix.extend_from_slice(&segment_size.to_be_bytes());
    prefix.extend_from_slice(&data_length.to_be_bytes());
    prefix
}

/// Everything in a share besides its data, ready to be laid out.
struct ShareParts<'a> {
    prefix: &'a [u8],
    verification_key: &'a [u8],
    signature: &'a [u8],
    share_hash_chain: &'a [u8],
    block_hash_tree: &'a [u8],
    encrypted_private_key: &'a [u8],
}

impl ShareParts<'_> {
    /// SDMF: prefix, six offsets (four u32, two u64), then verification key,
    /// signature, share hash chain, block hash tree, share data, encrypted key.
    fn sdmf(&self, share_data: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let signature = SDMF_HEADER_LEN + self.verification_key.len();
        let chain = signature + self.signature.len();
        let tree = chain + self.share_hash_chain.len();
        let data = tree + self.block_hash_tree.len();
        let key = data + share_data.len();
        let eof = key + self.encrypted_private_key.len();
        let small = |offset: usize| {
            u32::try_from(offset).map_err(|_| bad("an SDMF share cannot exceed 4 GiB"))
        };
        let mut share = Vec::with_capacity(eof);
        share.extend_from_slice(self.prefix);
        for offset in [signature, chain, tree, data] {
            share.extend_from_slice(&small(offset)?.to_be_bytes());
        }
        for offset in [key, eof] {
            share.extend_from_slice(&(offset as u64).to_be_bytes());
        }
        for part in [
            self.verification_key,
            self.signature,
            self.share_hash_chain,
            self.block_hash_tree,
            share_data,
            self.encrypted_private_key,
        ] {
            share.extend_from_slice(part);
        }
        Ok(share)
    }

    /// MDMF: prefix, eight u64 offsets, then encrypted key, share hash chain,
    /// signature and verification key packed from byte 123; the share data at the
    /// fixed [`MDMF_SHARE_DATA_OFFSET`] (the gap before it stays zero); the block hash
    /// tree last.
    fn mdmf(&self, share_data: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let key = MDMF_HEADER_LEN;
        let chain = key + self.encrypted_private_key.len();
        let signature = chain + self.share_hash_chain.len();
        let verification_key = signature + self.signature.len();
        let verification_key_end = verification_key + self.verification_key.len();
        if verification_key_end > MDMF_SHARE_DATA_OFFSET {
            return Err(bad("keys and hash chain overflow the room MDMF reserves"));
        }
        let data = MDMF_SHARE_DATA_OFFSET;
        let tree = data + share_data.len();
        let eof = tree + self.block_hash_tree.len();
        let mut share = Vec::with_capacity(eof);
        share.extend_from_slice(self.prefix);
        for offset in [
            key,
            chain,
            signature,
            verification_key,
            verification_key_end,
            data,
            tree,
            eof,
        ] {
            share.extend_from_slice(&(offset as u64).to_be_bytes());
        }
        for part in [
            self.encrypted_private_key,
            self.share_hash_chain,
            self.signature,
            self.verification_key,
        ] {
            share.extend_from_slice(part);
        }
        share.resize(data, 0);
        share.extend_from_slice(share_data);
        share.extend_from_slice(self.block_hash_tree);
        Ok(share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_sizes_follow_tahoe() {
        let sdmf = MutableParams::new(MutableFormat::Sdmf, 3, 10).unwrap();
        let mdmf = MutableParams::new(MutableFormat::Mdmf, 3, 10).unwrap();
        assert_eq!(sdmf.segment_size(0), 0);
        assert_eq!(sdmf.num_segments(0), 0);
        assert_eq!(sdmf.segment_size(1000), 1002);
        assert_eq!(sdmf.num_segments(1000), 1);
        assert_eq!(mdmf.segment_size(0), 131_073);
        assert_eq!(mdmf.num_segments(0), 0);
        assert_eq!(mdmf.segment_size(10), 131_073);
        assert_eq!(mdmf.num_segments(131_073), 1);
        assert_eq!(mdmf.num_segments(131_074), 2);
        assert_eq!(MDMF_SHARE_DATA_OFFSET, 2167);
        assert!(MutableParams::new(MutableFormat::Sdmf, 0, 1).is_err());
        assert!(MutableParams::new(MutableFormat::Sdmf, 4, 3).is_err());
    }

    #[test]
    fn wrong_salt_count_is_refused() {
        let mut rng = rand::rng();
        let key = MutableKey::generate(&mut rng).unwrap();
        let mdmf = MutableParams::new(MutableFormat::Mdmf, 2, 3).unwrap();
        assert!(encode_with_salts(&key, mdmf, 1, &[0; 10], &[], &mut rng).is_err());
        let sdmf = MutableParams::new(MutableFormat::Sdmf, 2, 3).unwrap();
        assert!(encode_with_salts(&key, sdmf, 1, b"", &[], &mut rng).is_err());
    }
}
