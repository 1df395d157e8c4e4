//! Immutable (CHK) file encoding as Tahoe's uploader does it (`immutable/encode.py`,
//! `immutable/layout.py`): the key, the storage index, every share's bytes, the URI
//! extension block and the cap.
//!
//! Pipeline: the whole file is encrypted as one AES-128-CTR stream; it is cut into
//! segments of `segment_size` bytes (the last one zero-padded to a multiple of k);
//! each segment is split into k pieces and zfec-encoded into N blocks. Each share holds
//! its blocks, the (unused, zero) plaintext hash tree, the ciphertext segment hash
//! tree, its block hash tree, the share hash chain to the share-tree root, and the
//! URI extension block (UEB), in layout version 1 (or 2 when a size reaches 2^32).

use crate::cap::ChkCap;
use crate::hashtree::{HashTree, roundup_pow2};
use crate::hashutil::{self, netstring};
use crate::zfec::Zfec;
use crate::{DecodeError, StorageIndex, aes};

/// Tahoe's default largest segment: 1 MiB.
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 1024 * 1024;
/// Files up to this size become `URI:LIT` caps and are never uploaded.
pub const LIT_MAX: usize = 55;

/// Encoding parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Shares needed (k).
    pub needed: u16,
    /// Shares made (N).
    pub total: u16,
    /// Largest segment.
    pub max_segment_size: u64,
}

fn next_multiple(x: u64, k: u64) -> u64 {
    x.div_ceil(k) * k
}

impl Params {
    /// The segment size Tahoe uses for a file of `size` bytes.
    pub fn segment_size(&self, size: u64) -> u64 {
        next_multiple(
            self.max_segment_size.min(size).max(1),
            u64::from(self.needed),
        )
    }
}

/// The convergent key of `plaintext` (same file, same secret, same parameters: same
/// key, so the same shares).
pub fn convergent_key(plaintext: &[u8], params: &Params, convergence_secret: &[u8]) -> [u8; 16] {
    hashutil::convergence_hash(
        params.needed,
        params.total,
        params.segment_size(plaintext.len() as u64),
        plaintext,
        convergence_secret,
    )
}

/// Everything an upload needs.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The cap.
    pub cap: ChkCap,
    /// The storage index.
    pub storage_index: StorageIndex,
    /// Share `i` is `shares[i]`: the exact bytes to upload (its allocated size).
    pub shares: Vec<Vec<u8>>,
    /// The URI extension block.
    pub ueb: Vec<u8>,
}

/// Packs a URI extension block: keys sorted, each `key:` then a netstring of the value.
pub fn pack_ueb(fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut sorted: Vec<&(&str, Vec<u8>)> = fields.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let mut out = Vec::new();
    for (key, value) in sorted {
        out.extend_from_slice(key.as_bytes());
        out.push(b':');
        out.extend_from_slice(&netstring(value));
    }
    out
}

/// Where each section of a share starts (layout v1 or v2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    /// 1 (u32 fields) or 2 (u64 fields).
    pub version: u32,
    /// Block size.
    pub block_size: u64,
    /// Share data size (all blocks).
    pub data_size: u64,
    /// Start of the blocks.
    pub data: u64,
    /// Start of the (unused) plaintext hash tree.
    pub plaintext_hash_tree: u64,
    /// Start of the ciphertext hash tree.
    pub crypttext_hash_tree: u64,
    /// Start of the block hash tree.
    pub block_hashes: u64,
    /// Start of the share hash chain.
    pub share_hashes: u64,
    /// Start of the UEB length field.
    pub uri_extension: u64,
}

impl Offsets {
    /// Lays out a share.
    pub fn new(block_size: u64, data_size: u64, num_segments: u64, num_share_hashes: u64) -> Self {
        let tree = (2 * roundup_pow2(num_segments as usize) as u64 - 1) * 32;
        let layout = |version: u32, header: u64| {
            let data = header;
            let plaintext_hash_tree = data + data_size;
            let crypttext_hash_tree = plaintext_hash_tree + tree;
            let block_hashes = crypttext_hash_tree + tree;
            let share_hashes = block_hashes + tree;
            let uri_extension = share_hashes + num_share_hashes * 34;
            Self {
                version,
                block_size,
                data_size,
                data,
                plaintext_hash_tree,
                crypttext_hash_tree,
                block_hashes,
                share_hashes,
                uri_extension,
            }
        };
        let v1 = layout(1, 0x24);
        if block_size >= 1 << 32 || data_size >= 1 << 32 || v1.uri_extension >= 1 << 32 {
            layout(2, 0x44)
        } else {
            v1
        }
    }

    /// The header bytes.
    pub fn header(&self) -> Vec<u8> {
        let fields = [
            self.block_size,
            self.data_size,
            self.data,
            self.plaintext_hash_tree,
            self.crypttext_hash_tree,
            self.block_hashes,
            self.share_hashes,
            self.uri_extension,
        ];
        let mut out = self.version.to_be_bytes().to_vec();
        for f in fields {
            if self.version == 1 {
                out.extend_from_slice(&(f as u32).to_be_bytes());
            } else {
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        out
    }

    /// Width of the UEB length field.
    pub fn length_field(&self) -> u64 {
        if self.version == 1 { 4 } else { 8 }
    }
}

/// Encodes `plaintext` (longer than [`LIT_MAX`]) under `key`.
///
/// # Errors
/// [`DecodeError::Invalid`] for bad parameters or a LIT-sized file.
pub fn encode(plaintext: &[u8], key: [u8; 16], params: &Params) -> Result<Encoded, DecodeError> {
    let size = plaintext.len() as u64;
    if plaintext.len() <= LIT_MAX {
        return Err(DecodeError::Invalid(format!(
            "files of at most {LIT_MAX} bytes are LIT caps, not uploads"
        )));
    }
    let (k, n) = (usize::from(params.needed), usize::from(params.total));
    let code = Zfec::new(k, n)?;
    let segment_size = params.segment_size(size);
    let num_segments = size.div_ceil(segment_size);
    let tail_size = match size % segment_size {
        0 => segment_size,
        t => t,
    };
    let padded_tail = next_multiple(tail_size, k as u64);

    let mut ciphertext = plaintext.to_vec();
    aes::aes128_ctr(&key, 0, &mut ciphertext);
    let crypttext_hash = hashutil::crypttext_hash(&ciphertext);

    let mut segment_hashes = Vec::with_capacity(num_segments as usize);
    let mut blocks: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut block_hashes: Vec<Vec<[u8; 32]>> = vec![Vec::new(); n];
    for (i, segment) in ciphertext.chunks(segment_size as usize).enumerate() {
        segment_hashes.push(hashutil::crypttext_segment_hash(segment));
        let padded_len = if i as u64 + 1 == num_segments {
            padded_tail
        } else {
            segment_size
        } as usize;
        let mut padded = segment.to_vec();
        padded.resize(padded_len, 0);
        let piece = padded_len / k;
        let pieces: Vec<&[u8]> = padded.chunks(piece).collect();
        for (shnum, block) in code.encode(&pieces)?.into_iter().enumerate() {
            block_hashes[shnum].push(hashutil::block_hash(&block));
            blocks[shnum].extend_from_slice(&block);
        }
    }
    let crypttext_tree = HashTree::new(&segment_hashes);
    let block_trees: Vec<HashTree> = block_hashes.iter().map(|h| HashTree::new(h)).collect();
    let share_tree = HashTree::new(&block_trees.iter().map(HashTree::root).collect::<Vec<_>>());

    let block_size = segment_size / k as u64;
    let decimal = |x: u64| x.to_string().into_bytes();
    let ueb = pack_ueb(&[
        ("codec_name", b"crs".to_vec()),
        (
            "codec_params",
            format!("{segment_size}-{k}-{n}").into_bytes(),
        ),
        ("crypttext_hash", crypttext_hash.to_vec()),
        ("crypttext_root_hash", crypttext_tree.root().to_vec()),
        ("needed_shares", decimal(k as u64)),
        ("num_segments", decimal(num_segments)),
        ("segment_size", decimal(segment_size)),
        ("share_root_hash", share_tree.root().to_vec()),
        ("size", decimal(size)),
        (
            "tail_codec_params",
            format!("{padded_tail}-{k}-{n}").into_bytes(),
        ),
        ("total_shares", decimal(n as u64)),
    ]);
    let ueb_hash = hashutil::uri_extension_hash(&ueb);

    let num_share_hashes = share_tree.needed_hashes(0, true).len() as u64;
    let zero_tree = vec![0u8; crypttext_tree.nodes().len() * 32];
    let mut shares = Vec::with_capacity(n);
    for (shnum, data) in blocks.into_iter().enumerate() {
        let offsets = Offsets::new(
            block_size,
            data.len() as u64,
            num_segments,
            num_share_hashes,
        );
        let mut share = offsets.header();
        share.extend_from_slice(&data);
        share.extend_from_slice(&zero_tree);
        for node in crypttext_tree.nodes() {
            share.extend_from_slice(node);
        }
        for node in block_trees[shnum].nodes() {
            share.extend_from_slice(node);
        }
        for index in share_hash_order(share_tree.nodes().len(), shnum) {
            share.extend_from_slice(&(index as u16).to_be_bytes());
            share.extend_from_slice(&share_tree.nodes()[index]);
        }
        if offsets.version == 1 {
            share.extend_from_slice(&(ueb.len() as u32).to_be_bytes());
        } else {
            share.extend_from_slice(&(ueb.len() as u64).to_be_bytes());
        }
        share.extend_from_slice(&ueb);
        debug_assert_eq!(
            share.len() as u64,
            offsets.uri_extension + offsets.length_field() + ueb.len() as u64
        );
        shares.push(share);
    }
    let cap = ChkCap {
        key,
        ueb_hash,
        needed: params.needed,
        total: params.total,
        size,
    };
    Ok(Encoded {
        storage_index: cap.storage_index(),
        cap,
        shares,
        ueb,
    })
}

/// The order Tahoe writes share `shnum`'s hash chain entries in, for a share hash
/// tree of `node_count` nodes. Tahoe builds the chain as a CPython `set` (the path's
/// siblings from the leaf up, then the leaf) and writes it in the set's iteration
/// order, which for small integers depends on the table's size and on collisions.
pub fn share_hash_order(node_count: usize, shnum: usize) -> Vec<usize> {
    let mut here = node_count / 2 + shnum;
    let leaf = here;
    let mut inserted = Vec::new();
    while here != 0 {
        inserted.push(if here % 2 == 1 { here + 1 } else { here - 1 });
        here = (here - 1) / 2;
    }
    inserted.push(leaf);
    cpython_small_int_set_order(inserted)
}

/// Iteration order of a CPython 3 `set` of small non-negative ints built by adding
/// `values` in order (the hash of such an int is itself).
///
/// CPython's table starts with 8 slots. An int goes to slot `v & mask`; on collision
/// it probes the next 9 slots linearly when they exist (else none), then jumps with
/// `i = (5i + 1 + perturb) & mask`, `perturb >>= 5`. After an insertion that makes
/// `fill * 5 >= mask * 3`, the table grows to the smallest power of two above
/// `4 * used` and the entries are re-inserted in slot order.
pub fn cpython_small_int_set_order(values: impl IntoIterator<Item = usize>) -> Vec<usize> {
    fn insert(table: &mut [Option<usize>], v: usize) {
        let mask = table.len() - 1;
        let mut perturb = v;
        let mut i = v & mask;
        loop {
            let probes = if i + 9 <= mask { 9 } else { 0 };
            if let Some(slot) = table[i..=i + probes].iter_mut().find(|s| s.is_none()) {
                *slot = Some(v);
                return;
            }
            perturb >>= 5;
            i = (i * 5 + 1 + perturb) & mask;
        }
    }
    let mut table: Vec<Option<usize>> = vec![None; 8];
    let mut used = 0usize;
    for v in values {
        if table.contains(&Some(v)) {
            continue;
        }
        insert(&mut table, v);
        used += 1;
        if used * 5 >= (table.len() - 1) * 3 {
            let mut size = 8;
            while size <= used * 4 {
                size <<= 1;
            }
            let old: Vec<usize> = table.iter().flatten().copied().collect();
            table = vec![None; size];
            for x in old {
                insert(&mut table, x);
            }
        }
    }
    table.into_iter().flatten().collect()
}

/// The URI extension block's fields a reader needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ueb {
    /// Segment size.
    pub segment_size: u64,
    /// Number of segments.
    pub num_segments: u64,
    /// k.
    pub needed: u16,
    /// N.
    pub total: u16,
    /// File size.
    pub size: u64,
    /// Padded tail segment size.
    pub tail_segment_size: u64,
    /// Root of the ciphertext segment tree.
    pub crypttext_root_hash: [u8; 32],
    /// Root of the share hash tree.
    pub share_root_hash: [u8; 32],
    /// Hash of the whole ciphertext.
    pub crypttext_hash: [u8; 32],
}

/// Parses a URI extension block.
///
/// # Errors
/// [`DecodeError::Invalid`] naming the bad or missing field.
pub fn parse_ueb(bytes: &[u8]) -> Result<Ueb, DecodeError> {
    let bad = |why: String| DecodeError::Invalid(format!("URI extension block: {why}"));
    let mut fields = std::collections::BTreeMap::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let colon = rest
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad("key without ':'".into()))?;
        let key = std::str::from_utf8(&rest[..colon])
            .map_err(|_| bad("key is not text".into()))?
            .to_string();
        rest = &rest[colon + 1..];
        let len_end = rest
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad(format!("{key}: bad netstring")))?;
        let len: usize = std::str::from_utf8(&rest[..len_end])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("{key}: bad netstring length")))?;
        let value = rest
            .get(len_end + 1..len_end + 1 + len)
            .ok_or_else(|| bad(format!("{key}: truncated")))?;
        if rest.get(len_end + 1 + len) != Some(&b',') {
            return Err(bad(format!("{key}: netstring not closed")));
        }
        fields.insert(key, value.to_vec());
        rest = &rest[len_end + 2 + len..];
    }
    let text = |k: &str| -> Result<String, DecodeError> {
        let v = fields.get(k).ok_or_else(|| bad(format!("missing {k}")))?;
        String::from_utf8(v.clone()).map_err(|_| bad(format!("{k} is not text")))
    };
    let num = |k: &str| -> Result<u64, DecodeError> {
        text(k)?
            .parse()
            .map_err(|_| bad(format!("{k} is not a number")))
    };
    let hash = |k: &str| -> Result<[u8; 32], DecodeError> {
        fields
            .get(k)
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
            .ok_or_else(|| bad(format!("{k} is not a 32-byte hash")))
    };
    let tail = text("tail_codec_params")?;
    let tail_segment_size = tail
        .split('-')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad tail_codec_params".into()))?;
    Ok(Ueb {
        segment_size: num("segment_size")?,
        num_segments: num("num_segments")?,
        needed: u16::try_from(num("needed_shares")?).map_err(|_| bad("needed_shares".into()))?,
        total: u16::try_from(num("total_shares")?).map_err(|_| bad("total_shares".into()))?,
        size: num("size")?,
        tail_segment_size,
        crypttext_root_hash: hash("crypttext_root_hash")?,
        share_root_hash: hash("share_root_hash")?,
        crypttext_hash: hash("crypttext_hash")?,
    })
}

/// One share's sections, parsed (not yet verified).
#[derive(Clone, Debug)]
pub struct ShareParts<'a> {
    /// The offsets header.
    pub offsets: Offsets,
    /// All blocks.
    pub data: &'a [u8],
    /// The ciphertext segment tree, flat.
    pub crypttext_tree: Vec<[u8; 32]>,
    /// The block hash tree, flat.
    pub block_tree: Vec<[u8; 32]>,
    /// The share hash chain.
    pub share_hashes: Vec<(usize, [u8; 32])>,
    /// The UEB bytes.
    pub ueb: &'a [u8],
}

/// Splits a share's bytes into its sections.
///
/// # Errors
/// [`DecodeError::Invalid`] for a malformed share.
pub fn parse_share(bytes: &[u8]) -> Result<ShareParts<'_>, DecodeError> {
    let bad = |why: &str| DecodeError::Invalid(format!("immutable share: {why}"));
    let u32_at = |at: usize| -> Result<u64, DecodeError> {
        Ok(u64::from(u32::from_be_bytes(
            bytes
                .get(at..at + 4)
                .ok_or_else(|| bad("truncated header"))?
                .try_into()
                .expect("4"),
        )))
    };
    let u64_at = |at: usize| -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(
            bytes
                .get(at..at + 8)
                .ok_or_else(|| bad("truncated header"))?
                .try_into()
                .expect("8"),
        ))
    };
    let version = u32_at(0)? as u32;
    let field = |i: usize| match version {
        1 => u32_at(4 + 4 * i),
        2 => u64_at(4 + 8 * i),
        _ => Err(bad("unknown layout version")),
    };
    let offsets = Offsets {
        version,
        block_size: field(0)?,
        data_size: field(1)?,
        data: field(2)?,
        plaintext_hash_tree: field(3)?,
        crypttext_hash_tree: field(4)?,
        block_hashes: field(5)?,
        share_hashes: field(6)?,
        uri_extension: field(7)?,
    };
    let slice = |from: u64, to: u64| -> Result<&[u8], DecodeError> {
        bytes
            .get(from as usize..to as usize)
            .ok_or_else(|| bad("a section lies outside the share"))
    };
    let hashes = |s: &[u8]| -> Vec<[u8; 32]> {
        s.chunks_exact(32)
            .map(|c| c.try_into().expect("32"))
            .collect()
    };
    let data = slice(offsets.data, offsets.data + offsets.data_size)?;
    let crypttext_tree = hashes(slice(offsets.crypttext_hash_tree, offsets.block_hashes)?);
    let block_tree = hashes(slice(offsets.block_hashes, offsets.share_hashes)?);
    let share_hashes = slice(offsets.share_hashes, offsets.uri_extension)?
        .chunks_exact(34)
        .map(|c| {
            (
                usize::from(u16::from_be_bytes([c[0], c[1]])),
                c[2..].try_into().expect("32"),
            )
        })
        .collect();
    let lf = offsets.length_field();
    let ueb_len = if version == 1 {
        u32_at(offsets.uri_extension as usize)?
    } else {
        u64_at(offsets.uri_extension as usize)?
    };
    let ueb = slice(
        offsets.uri_extension + lf,
        offsets.uri_extension + lf + ueb_len,
    )?;
    Ok(ShareParts {
        offsets,
        data,
        crypttext_tree,
        block_tree,
        share_hashes,
        ueb,
    })
}

/// What a download recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The file.
    pub plaintext: Vec<u8>,
    /// Shares that failed verification (to advise corruption on).
    pub bad_shares: Vec<usize>,
}

/// Verifies shares against `cap` and recovers the file: every UEB, block, share hash
/// chain and ciphertext segment is checked; bad shares are skipped and reported.
///
/// # Errors
/// [`DecodeError::Invalid`] when fewer than k good shares remain.
pub fn decode(cap: &ChkCap, shares: &[(usize, &[u8])]) -> Result<Decoded, DecodeError> {
    use crate::hashtree::verify_leaf;
    let (k, n) = (usize::from(cap.needed), usize::from(cap.total));
    let mut bad_shares = Vec::new();
    let mut good: Vec<(usize, ShareParts<'_>, Ueb)> = Vec::new();
    for (shnum, bytes) in shares {
        let verified = (|| {
            let parts = parse_share(bytes).ok()?;
            if hashutil::uri_extension_hash(parts.ueb) != cap.ueb_hash {
                return None;
            }
            let ueb = parse_ueb(parts.ueb).ok()?;
            let share_nodes = 2 * roundup_pow2(n) - 1;
            let block_root = *parts.block_tree.first()?;
            if *shnum >= n
                || !verify_leaf(
                    share_nodes,
                    *shnum,
                    &block_root,
                    &parts.share_hashes,
                    &ueb.share_root_hash,
                )
            {
                return None;
            }
            // The block tree must hash up to its own root.
            let leaves =
                &parts.block_tree[parts.block_tree.len() / 2..][..ueb.num_segments as usize];
            if HashTree::new(leaves).root() != block_root {
                return None;
            }
            Some((parts, ueb))
        })();
        match verified {
            Some((parts, ueb)) => good.push((*shnum, parts, ueb)),
            None => bad_shares.push(*shnum),
        }
    }
    if good.len() < k {
        return Err(DecodeError::Invalid(format!(
            "only {} good shares of the {k} needed",
            good.len()
        )));
    }
    let ueb = good[0].2.clone();
    let code = Zfec::new(k, n)?;
    let crypttext_tree = &good[0].1.crypttext_tree;
    if crypttext_tree.first() != Some(&ueb.crypttext_root_hash) {
        return Err(DecodeError::Invalid(
            "ciphertext hash tree does not match the UEB".into(),
        ));
    }
    let mut ciphertext = Vec::with_capacity(ueb.size as usize);
    let block_size = (ueb.segment_size / k as u64) as usize;
    for seg in 0..ueb.num_segments as usize {
        let last = seg as u64 + 1 == ueb.num_segments;
        let this_block = if last {
            (ueb.tail_segment_size / k as u64) as usize
        } else {
            block_size
        };
        // The first k shares whose block verifies; a share with a bad block is bad
        // from then on (and reported), and the next good share takes its place.
        let mut blocks = Vec::with_capacity(k);
        for (shnum, parts, _) in &good {
            if blocks.len() == k {
                break;
            }
            if bad_shares.contains(shnum) {
                continue;
            }
            let start = seg * block_size;
            let leaf = parts.block_tree.len() / 2 + seg;
            match parts.data.get(start..start + this_block) {
                Some(block) if parts.block_tree.get(leaf) == Some(&hashutil::block_hash(block)) => {
                    blocks.push((*shnum, block))
                }
                _ => bad_shares.push(*shnum),
            }
        }
        if blocks.len() < k {
            return Err(DecodeError::Invalid(format!(
                "segment {seg}: only {} good blocks of the {k} needed",
                blocks.len()
            )));
        }
        let pieces = code.decode(&blocks)?;
        let mut segment: Vec<u8> = pieces.concat();
        let seg_len = if last {
            (ueb.size - seg as u64 * ueb.segment_size) as usize
        } else {
            ueb.segment_size as usize
        };
        segment.truncate(seg_len);
        let leaf = crypttext_tree.len() / 2 + seg;
        if crypttext_tree.get(leaf) != Some(&hashutil::crypttext_segment_hash(&segment)) {
            return Err(DecodeError::Invalid(format!(
                "segment {seg} does not match its ciphertext hash"
            )));
        }
        ciphertext.extend_from_slice(&segment);
    }
    if hashutil::crypttext_hash(&ciphertext) != ueb.crypttext_hash
        || ciphertext.len() as u64 != cap.size
    {
        return Err(DecodeError::Invalid(
            "the ciphertext does not match the UEB".into(),
        ));
    }
    aes::aes128_ctr(&cap.key, 0, &mut ciphertext);
    Ok(Decoded {
        plaintext: ciphertext,
        bad_shares,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_from_any_k_shares_and_corruption_is_detected() {
        let params = Params {
            needed: 3,
            total: 7,
            max_segment_size: 1000,
        };
        let plaintext: Vec<u8> = (0..4321u32).map(|i| (i * 7 % 251) as u8).collect();
        let enc = encode(
            &plaintext,
            convergent_key(&plaintext, &params, b"secret"),
            &params,
        )
        .unwrap();
        let pick = |ns: &[usize]| -> Vec<(usize, &[u8])> {
            ns.iter().map(|&n| (n, enc.shares[n].as_slice())).collect()
        };
        assert_eq!(
            decode(&enc.cap, &pick(&[6, 2, 4])).unwrap().plaintext,
            plaintext
        );
        let mut damaged = enc.shares[2].clone();
        let mid = damaged.len() / 3;
        damaged[mid] ^= 1;
        let shares = vec![
            (2, damaged.as_slice()),
            (5, enc.shares[5].as_slice()),
            (0, enc.shares[0].as_slice()),
            (6, enc.shares[6].as_slice()),
        ];
        let got = decode(&enc.cap, &shares).unwrap();
        assert_eq!(got.plaintext, plaintext);
        assert_eq!(got.bad_shares, vec![2]);
        let mut wrong_ueb = enc.shares[0].clone();
        let last = wrong_ueb.len() - 1;
        wrong_ueb[last] ^= 1;
        let shares = vec![
            (0, wrong_ueb.as_slice()),
            (1, enc.shares[1].as_slice()),
            (3, enc.shares[3].as_slice()),
            (4, enc.shares[4].as_slice()),
        ];
        assert_eq!(
            decode(&enc.cap, &shares).unwrap().bad_shares,
            vec![0],
            "a damaged UEB is caught up front"
        );
        assert!(decode(&enc.cap, &pick(&[1, 2])).is_err(), "fewer than k");
    }
}
