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
