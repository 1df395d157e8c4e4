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

use swamp_proto::{DecodeError, StorageIndex};

use crate::aes;
use crate::cap::ChkCap;
use crate::hashtree::{HashTree, roundup_pow2};
use crate::hashutil::{self, netstring};
use crate::zfec::Zfec;

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

/// The convergent key, computed as the plaintext streams by: feed all `size` bytes
/// to the returned hasher, then pass it to [`ConvergentKeyHasher::key`].
pub fn convergent_key_hasher(
    size: u64,
    params: &Params,
    convergence_secret: &[u8],
) -> ConvergentKeyHasher {
    ConvergentKeyHasher(hashutil::TaggedHasher::new(&hashutil::convergence_tag(
        params.needed,
        params.total,
        params.segment_size(size),
        convergence_secret,
    )))
}

/// See [`convergent_key_hasher`].
#[derive(Clone)]
pub struct ConvergentKeyHasher(hashutil::TaggedHasher);

impl ConvergentKeyHasher {
    /// Absorbs the next plaintext bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The key ([`convergent_key`] of everything fed in).
    pub fn key(self) -> [u8; 16] {
        self.0.finish()[..16]
            .try_into()
            .expect("invariant: 32 > 16")
    }
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

/// Encodes `plaintext` (longer than [`LIT_MAX`]) under `key`, all at once (a
/// [`Encoder`] fed every segment, its blocks and tails assembled into whole shares).
///
/// # Errors
/// [`DecodeError::Invalid`] for bad parameters or a LIT-sized file.
pub fn encode(plaintext: &[u8], key: [u8; 16], params: &Params) -> Result<Encoded, DecodeError> {
    let mut encoder = Encoder::new(plaintext.len() as u64, key, params)?;
    let n = usize::from(params.total);
    let share_size = encoder.share_size() as usize;
    let mut shares: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let mut share = Vec::with_capacity(share_size);
            share.extend_from_slice(&encoder.header());
            share
        })
        .collect();
    for index in 0..encoder.num_segments() {
        let range = encoder.segment_range(index);
        let plain = &plaintext[range.start as usize..range.end as usize];
        let block_len = encoder.block_len(index);
        let mut blocks = vec![vec![0u8; block_len]; n];
        for (block, piece) in blocks.iter_mut().zip(plain.chunks(block_len)) {
            block[..piece.len()].copy_from_slice(piece);
        }
        let mut slices: Vec<&mut [u8]> = blocks.iter_mut().map(Vec::as_mut_slice).collect();
        let block_hashes = encoder.encode_in_place(index, &mut slices)?;
        let primary: Vec<&[u8]> = blocks[..usize::from(params.needed)]
            .iter()
            .map(Vec::as_slice)
            .collect();
        encoder.absorb_blocks(index, block_hashes, &primary)?;
        for (share, block) in shares.iter_mut().zip(&blocks) {
            share.extend_from_slice(block);
        }
    }
    let finished = encoder.finish()?;
    for (share, tail) in shares.iter_mut().zip(&finished.tails) {
        share.extend_from_slice(tail);
        debug_assert_eq!(share.len(), share_size);
    }
    Ok(Encoded {
        storage_index: finished.cap.storage_index(),
        cap: finished.cap,
        shares,
        ueb: finished.ueb,
    })
}

/// The end of an encoding: the cap, the UEB, and each share's bytes after its blocks.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The cap.
    pub cap: ChkCap,
    /// The URI extension block.
    pub ueb: Vec<u8>,
    /// Share `i`'s bytes from [`Encoder::tail_offset`] to its end: the hash trees, the
    /// share hash chain and the UEB.
    pub tails: Vec<Vec<u8>>,
}

/// A streaming CHK encoder. Every share's size and header are known up front, so a
/// share can be written as it is made: the header at 0, each segment's block at
/// [`Encoder::block_offset`], and, once every segment went through
/// [`Encoder::absorb_blocks`] in order, the tail from [`Encoder::finish`].
/// [`Encoder::encode_in_place`] needs only `&self`, so segments may be encoded on
/// several threads at once, straight in the buffers they are sent from;
/// [`Encoder::absorb_blocks`] takes them back in order.
#[derive(Clone)]
pub struct Encoder {
    key: [u8; 16],
    params: Params,
    code: Zfec,
    size: u64,
    segment_size: u64,
    num_segments: u64,
    padded_tail: u64,
    offsets: Offsets,
    ueb_len: usize,
    crypttext: hashutil::TaggedHasher,
    segment_hashes: Vec<[u8; 32]>,
    block_hashes: Vec<Vec<[u8; 32]>>,
}

impl Encoder {
    /// An encoder for a file of `size` bytes (more than [`LIT_MAX`]) under `key`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for bad parameters or a LIT-sized file.
    pub fn new(size: u64, key: [u8; 16], params: &Params) -> Result<Self, DecodeError> {
        if size <= LIT_MAX as u64 {
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
        let block_size = segment_size / k as u64;
        let data_size = (num_segments - 1) * block_size + padded_tail / k as u64;
        let share_nodes = 2 * roundup_pow2(n) - 1;
        let num_share_hashes = crate::hashtree::needed_hashes(share_nodes, 0, true).len() as u64;
        let offsets = Offsets::new(block_size, data_size, num_segments, num_share_hashes);
        let mut encoder = Self {
            key,
            params: *params,
            code,
            size,
            segment_size,
            num_segments,
            padded_tail,
            offsets,
            ueb_len: 0,
            crypttext: hashutil::TaggedHasher::new(hashutil::tag::CIPHERTEXT),
            segment_hashes: Vec::with_capacity(num_segments as usize),
            block_hashes: vec![Vec::with_capacity(num_segments as usize); n],
        };
        // Every value in the UEB is a fixed-size hash or a number known now.
        encoder.ueb_len = encoder.ueb(&[0; 32], &[0; 32], &[0; 32]).len();
        Ok(encoder)
    }

    /// The storage index (from the key alone).
    pub fn storage_index(&self) -> StorageIndex {
        StorageIndex::from_bytes(hashutil::storage_index_hash(&self.key))
    }

    /// Every share's size in bytes (what to allocate).
    pub fn share_size(&self) -> u64 {
        self.offsets.uri_extension + self.offsets.length_field() + self.ueb_len as u64
    }

    /// The encoding parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The share layout.
    pub fn offsets(&self) -> &Offsets {
        &self.offsets
    }

    /// Every share's first bytes (the offsets header), at offset 0.
    pub fn header(&self) -> Vec<u8> {
        self.offsets.header()
    }

    /// How many segments the file has.
    pub fn num_segments(&self) -> u64 {
        self.num_segments
    }

    /// The plaintext bytes of segment `index`.
    pub fn segment_range(&self, index: u64) -> std::ops::Range<u64> {
        let start = index * self.segment_size;
        start..(start + self.segment_size).min(self.size)
    }

    /// Where segment `index`'s block starts in every share.
    pub fn block_offset(&self, index: u64) -> u64 {
        self.offsets.data + index * self.offsets.block_size
    }

    /// Where the tail from [`Encoder::finish`] starts in every share.
    pub fn tail_offset(&self) -> u64 {
        self.offsets.plaintext_hash_tree
    }

    /// The length of each of segment `index`'s n blocks.
    pub fn block_len(&self, index: u64) -> usize {
        let padded = if index + 1 == self.num_segments {
            self.padded_tail
        } else {
            self.segment_size
        };
        (padded / u64::from(self.params.needed)) as usize
    }

    /// How many bytes of each of segment `index`'s first k blocks are file (only the
    /// last segment has padding): block `p` holds the segment's bytes from
    /// `p * block_len(index)` on.
    pub fn piece_lens(&self, index: u64) -> impl Iterator<Item = usize> + use<> {
        let range = self.segment_range(index);
        let (len, block_len) = ((range.end - range.start) as usize, self.block_len(index));
        (0..usize::from(self.params.needed))
            .map(move |p| len.saturating_sub(p * block_len).min(block_len))
    }

    /// Encrypts and erasure-codes segment `index` in place and returns its n block
    /// hashes. `blocks` are its n blocks, each [`Encoder::block_len`] long: on entry
    /// the first k hold the segment's plaintext cut in k in order (past the end of
    /// the file their contents are ignored and become zero padding); on return they
    /// hold its ciphertext, and the other n - k its parity.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a segment that does not exist or blocks of the
    /// wrong number or length.
    pub fn encode_in_place(
        &self,
        index: u64,
        blocks: &mut [&mut [u8]],
    ) -> Result<Vec<[u8; 32]>, DecodeError> {
        let (k, block_len) = (usize::from(self.params.needed), self.block_len(index));
        if index >= self.num_segments
            || blocks.len() != usize::from(self.params.total)
            || blocks.iter().any(|b| b.len() != block_len)
        {
            return Err(DecodeError::Invalid(format!(
                "segment {index} of {} needs {} blocks of {block_len} bytes",
                self.num_segments, self.params.total
            )));
        }
        let start = self.segment_range(index).start;
        let (primary, parity) = blocks.split_at_mut(k);
        for (p, (block, len)) in primary.iter_mut().zip(self.piece_lens(index)).enumerate() {
            let (file, padding) = block.split_at_mut(len);
            aes::aes128_ctr(&self.key, start + (p * block_len) as u64, file);
            padding.fill(0);
        }
        let primary: Vec<&[u8]> = primary.iter().map(|b| &**b).collect();
        self.code.encode_parity(&primary, parity)?;
        let all: Vec<&[u8]> = primary
            .into_iter()
            .chain(parity.iter().map(|b| &**b))
            .collect();
        Ok(hashutil::block_hashes(&all))
    }

    /// Takes in segment `index`'s block hashes and ciphertext (its first k blocks, as
    /// [`Encoder::encode_in_place`] left them), in order: the ciphertext goes to the
    /// segment's hash and to the whole file's, both at once.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if `index` is not the next segment, or for the wrong
    /// number of blocks or hashes.
    pub fn absorb_blocks(
        &mut self,
        index: u64,
        block_hashes: Vec<[u8; 32]>,
        primary: &[&[u8]],
    ) -> Result<(), DecodeError> {
        if index != self.segment_hashes.len() as u64
            || primary.len() != usize::from(self.params.needed)
            || block_hashes.len() != usize::from(self.params.total)
        {
            return Err(DecodeError::Invalid(format!(
                "segment {index} absorbed with {} blocks and {} hashes when segment {} was \
                 next, with {} blocks and {} hashes",
                primary.len(),
                block_hashes.len(),
                self.segment_hashes.len(),
                self.params.needed,
                self.params.total
            )));
        }
        let mut segment = hashutil::TaggedHasher::new(hashutil::tag::CIPHERTEXT_SEGMENT);
        for (block, len) in primary.iter().zip(self.piece_lens(index)) {
            let file = block.get(..len).ok_or_else(|| {
                DecodeError::Invalid(format!("segment {index}: a block is too short"))
            })?;
            hashutil::TaggedHasher::update_pair(&mut self.crypttext, file, &mut segment, file);
        }
        self.segment_hashes.push(segment.finish());
        for (hashes, h) in self.block_hashes.iter_mut().zip(block_hashes) {
            hashes.push(h);
        }
        Ok(())
    }

    fn ueb(
        &self,
        crypttext_hash: &[u8; 32],
        crypttext_root: &[u8; 32],
        share_root: &[u8; 32],
    ) -> Vec<u8> {
        let (k, n) = (self.params.needed, self.params.total);
        let segment_size = self.segment_size;
        let padded_tail = self.padded_tail;
        let decimal = |x: u64| x.to_string().into_bytes();
        pack_ueb(&[
            ("codec_name", b"crs".to_vec()),
            (
                "codec_params",
                format!("{segment_size}-{k}-{n}").into_bytes(),
            ),
            ("crypttext_hash", crypttext_hash.to_vec()),
            ("crypttext_root_hash", crypttext_root.to_vec()),
            ("needed_shares", decimal(u64::from(k))),
            ("num_segments", decimal(self.num_segments)),
            ("segment_size", decimal(segment_size)),
            ("share_root_hash", share_root.to_vec()),
            ("size", decimal(self.size)),
            (
                "tail_codec_params",
                format!("{padded_tail}-{k}-{n}").into_bytes(),
            ),
            ("total_shares", decimal(u64::from(n))),
        ])
    }

    /// After every segment was absorbed: the cap, the UEB and the shares' tails.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if segments are missing.
    pub fn finish(self) -> Result<Finished, DecodeError> {
        if self.segment_hashes.len() as u64 != self.num_segments {
            return Err(DecodeError::Invalid(format!(
                "finished after {} of {} segments",
                self.segment_hashes.len(),
                self.num_segments
            )));
        }
        let crypttext_hash = self.crypttext.clone().finish();
        let crypttext_tree = HashTree::new(&self.segment_hashes);
        let block_trees: Vec<HashTree> =
            self.block_hashes.iter().map(|h| HashTree::new(h)).collect();
        let share_tree = HashTree::new(&block_trees.iter().map(HashTree::root).collect::<Vec<_>>());
        let ueb = self.ueb(&crypttext_hash, &crypttext_tree.root(), &share_tree.root());
        debug_assert_eq!(ueb.len(), self.ueb_len);
        let ueb_hash = hashutil::uri_extension_hash(&ueb);
        let offsets = self.offsets;
        let zero_tree = vec![0u8; crypttext_tree.nodes().len() * 32];
        let tails = block_trees
            .iter()
            .enumerate()
            .map(|(shnum, block_tree)| {
                let mut tail =
                    Vec::with_capacity((self.share_size() - offsets.plaintext_hash_tree) as usize);
                tail.extend_from_slice(&zero_tree);
                for node in crypttext_tree.nodes() {
                    tail.extend_from_slice(node);
                }
                for node in block_tree.nodes() {
                    tail.extend_from_slice(node);
                }
                for index in share_hash_order(share_tree.nodes().len(), shnum) {
                    tail.extend_from_slice(&(index as u16).to_be_bytes());
                    tail.extend_from_slice(&share_tree.nodes()[index]);
                }
                if offsets.version == 1 {
                    tail.extend_from_slice(&(ueb.len() as u32).to_be_bytes());
                } else {
                    tail.extend_from_slice(&(ueb.len() as u64).to_be_bytes());
                }
                tail.extend_from_slice(&ueb);
                debug_assert_eq!(
                    offsets.plaintext_hash_tree + tail.len() as u64,
                    self.share_size()
                );
                tail
            })
            .collect();
        let cap = ChkCap {
            key: self.key,
            ueb_hash,
            needed: self.params.needed,
            total: self.params.total,
            size: self.size,
        };
        Ok(Finished { cap, ueb, tails })
    }
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
        // Checked: a huge length is an error, not an overflow.
        let end = (len_end + 1)
            .checked_add(len)
            .filter(|&end| end < rest.len())
            .ok_or_else(|| bad(format!("{key}: truncated")))?;
        let value = &rest[len_end + 1..end];
        if rest[end] != b',' {
            return Err(bad(format!("{key}: netstring not closed")));
        }
        fields.insert(key, value.to_vec());
        rest = &rest[end + 1..];
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

/// The largest segment a download accepts. A decoder holds whole segments (several,
/// to read ahead), so a cap whose UEB names a larger one is refused before anything is
/// allocated for it. 64 times Swamp's default ([`DEFAULT_MAX_SEGMENT_SIZE`]), 512
/// times Tahoe's.
pub const MAX_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;

/// The longest URI extension block a reader accepts: Tahoe's are a few hundred bytes
/// (numbers, codec parameters, three hashes).
pub const MAX_UEB_LEN: u64 = 64 * 1024;

/// The longest share hash chain: one hash per level of the share tree (N is at most
/// 256 shares, so 9 levels) and the leaf's sibling.
const MAX_SHARE_HASHES: u64 = 16;

/// Checks a URI extension block against `cap` (its hash, and that its sizes agree with
/// the cap's and with each other) and returns it parsed: after this its sizes are the
/// uploader's, bound to the cap, and bounded by [`MAX_SEGMENT_SIZE`].
///
/// # Errors
/// [`DecodeError::Invalid`] naming what does not match.
pub fn check_ueb(cap: &ChkCap, bytes: &[u8]) -> Result<Ueb, DecodeError> {
    let bad = |why: &str| DecodeError::Invalid(why.to_string());
    if hashutil::uri_extension_hash(bytes) != cap.ueb_hash {
        return Err(bad("the URI extension block does not match the cap"));
    }
    let ueb = parse_ueb(bytes)?;
    if ueb.segment_size == 0
        || ueb.num_segments != ueb.size.div_ceil(ueb.segment_size)
        || u64::from(ueb.needed) != u64::from(cap.needed)
        || ueb.size != cap.size
        || ueb.tail_segment_size > ueb.segment_size
    {
        return Err(bad("the URI extension block is inconsistent"));
    }
    if ueb.segment_size > MAX_SEGMENT_SIZE {
        return Err(DecodeError::Invalid(format!(
            "the URI extension block names {}-byte segments, over the {MAX_SEGMENT_SIZE}-byte limit",
            ueb.segment_size
        )));
    }
    Ok(ueb)
}

/// The most bytes a share of a file with URI extension block `ueb` can hold from its
/// ciphertext hash tree to its UEB length field (both segment trees and the share hash
/// chain), or `None` if that does not fit in a `u64`: a bound on what a reader fetches
/// for those sections, known before they are read.
pub fn max_hash_sections_len(ueb: &Ueb) -> Option<u64> {
    let width = ueb.num_segments.max(1).checked_next_power_of_two()?;
    let tree = width.checked_mul(2)?.checked_sub(1)?.checked_mul(32)?;
    tree.checked_mul(2)?.checked_add(MAX_SHARE_HASHES * 34)
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

/// The first bytes of a share always hold its offsets header (layout 2's is longer).
pub const HEADER_LEN: u64 = 0x44;

/// Parses the offsets header at the start of a share (`header` may run on).
///
/// # Errors
/// [`DecodeError::Invalid`] for a short header or an unknown layout version.
pub fn parse_offsets(header: &[u8]) -> Result<Offsets, DecodeError> {
    let bad = |why: &str| DecodeError::Invalid(format!("immutable share: {why}"));
    let be = |at: usize, width: usize| -> Result<u64, DecodeError> {
        let b = header
            .get(at..at + width)
            .ok_or_else(|| bad("truncated header"))?;
        Ok(b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
    };
    let version = be(0, 4)? as u32;
    let field = |i: usize| match version {
        1 => be(4 + 4 * i, 4),
        2 => be(4 + 8 * i, 8),
        _ => Err(bad("unknown layout version")),
    };
    Ok(Offsets {
        version,
        block_size: field(0)?,
        data_size: field(1)?,
        data: field(2)?,
        plaintext_hash_tree: field(3)?,
        crypttext_hash_tree: field(4)?,
        block_hashes: field(5)?,
        share_hashes: field(6)?,
        uri_extension: field(7)?,
    })
}

/// A share's hash trees, hash chain and UEB: all of it but the header and blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareMeta {
    /// The offsets header.
    pub offsets: Offsets,
    /// The ciphertext segment tree, flat.
    pub crypttext_tree: Vec<[u8; 32]>,
    /// The block hash tree, flat.
    pub block_tree: Vec<[u8; 32]>,
    /// The share hash chain.
    pub share_hashes: Vec<(usize, [u8; 32])>,
    /// The UEB bytes.
    pub ueb: Vec<u8>,
}

/// Parses a share's bytes from `offsets.crypttext_hash_tree` to its end (`tail` may
/// run on past the UEB).
///
/// # Errors
/// [`DecodeError::Invalid`] for a malformed share.
pub fn parse_share_meta(offsets: Offsets, tail: &[u8]) -> Result<ShareMeta, DecodeError> {
    let bad = |why: &str| DecodeError::Invalid(format!("immutable share: {why}"));
    let base = offsets.crypttext_hash_tree;
    let slice = |from: u64, to: u64| -> Result<&[u8], DecodeError> {
        if from < base || to < from {
            return Err(bad("the offsets are out of order"));
        }
        tail.get((from - base) as usize..(to - base) as usize)
            .ok_or_else(|| bad("a section lies outside the share"))
    };
    let hashes = |s: &[u8]| -> Vec<[u8; 32]> {
        s.chunks_exact(32)
            .map(|c| c.try_into().expect("32"))
            .collect()
    };
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
    let len_field = slice(offsets.uri_extension, offsets.uri_extension + lf)?;
    let ueb_len = len_field
        .iter()
        .fold(0u64, |acc, &x| acc << 8 | u64::from(x));
    let ueb_start = offsets.uri_extension + lf;
    let ueb_end = ueb_start
        .checked_add(ueb_len)
        .ok_or_else(|| bad("a section lies outside the share"))?;
    let ueb = slice(ueb_start, ueb_end)?.to_vec();
    Ok(ShareMeta {
        offsets,
        crypttext_tree,
        block_tree,
        share_hashes,
        ueb,
    })
}

/// Splits a share's bytes into its sections.
///
/// # Errors
/// [`DecodeError::Invalid`] for a malformed share.
pub fn parse_share(bytes: &[u8]) -> Result<ShareParts<'_>, DecodeError> {
    let bad = |why: &str| DecodeError::Invalid(format!("immutable share: {why}"));
    let offsets = parse_offsets(bytes)?;
    let data = offsets
        .data
        .checked_add(offsets.data_size)
        .and_then(|end| bytes.get(offsets.data as usize..end as usize))
        .ok_or_else(|| bad("a section lies outside the share"))?;
    let tail = bytes
        .get(offsets.crypttext_hash_tree as usize..)
        .ok_or_else(|| bad("a section lies outside the share"))?;
    let meta = parse_share_meta(offsets, tail)?;
    let ueb_start = (offsets.uri_extension + offsets.length_field()) as usize;
    Ok(ShareParts {
        offsets,
        data,
        crypttext_tree: meta.crypttext_tree,
        block_tree: meta.block_tree,
        share_hashes: meta.share_hashes,
        ueb: &bytes[ueb_start..ueb_start + meta.ueb.len()],
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

/// Why [`Decoder::decode_segment_into`] failed.
#[derive(Debug)]
pub enum SegmentError {
    /// `blocks[i]` does not match its share's block tree (the share is corrupt).
    BadBlock(usize),
    /// The segment cannot be decoded or does not match the ciphertext tree.
    Invalid(DecodeError),
}

/// Segment-by-segment decoding of a file: shares are checked against the cap from
/// their metadata alone ([`Decoder::check_share`]), each block against its share's
/// block tree ([`Decoder::block_ok`]), and each decoded segment against the
/// ciphertext tree before it is decrypted ([`Decoder::decode_segment`]). Segments are
/// independent, so they may be fetched and decoded in any order and on any thread.
#[derive(Clone, Debug)]
pub struct Decoder {
    cap: ChkCap,
    ueb: Ueb,
    code: Zfec,
    crypttext_tree: Vec<[u8; 32]>,
}

impl Decoder {
    /// Checks share `shnum`'s metadata against `cap`: the UEB's hash, the share hash
    /// chain up to the UEB's share root, and the block tree up to the share's leaf.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] naming what does not match.
    pub fn check_share(cap: &ChkCap, shnum: usize, meta: &ShareMeta) -> Result<Ueb, DecodeError> {
        use crate::hashtree::verify_leaf;
        let bad = |why: &str| DecodeError::Invalid(format!("share {shnum}: {why}"));
        let ueb = check_ueb(cap, &meta.ueb).map_err(|e| match e {
            DecodeError::Invalid(why) => DecodeError::Invalid(format!("share {shnum}: {why}")),
            other => other,
        })?;
        let n = usize::from(cap.total);
        let share_nodes = 2 * roundup_pow2(n) - 1;
        let block_root = *meta
            .block_tree
            .first()
            .ok_or_else(|| bad("empty block tree"))?;
        if shnum >= n
            || !verify_leaf(
                share_nodes,
                shnum,
                &block_root,
                &meta.share_hashes,
                &ueb.share_root_hash,
            )
        {
            return Err(bad("the share hash chain does not reach the share root"));
        }
        // The block tree must hash up to its own root.
        let leaves = meta
            .block_tree
            .get(meta.block_tree.len() / 2..)
            .and_then(|l| l.get(..ueb.num_segments as usize))
            .ok_or_else(|| bad("the block tree is too small"))?;
        if HashTree::new(leaves).root() != block_root {
            return Err(bad("the block tree does not hash to its root"));
        }
        // Each share carries its own copy of the ciphertext tree, and a decoder uses
        // one share's copy to check every segment: its leaves must hash up to the
        // UEB's root here, so that a damaged copy is this share's fault (and the share
        // is replaced) rather than a failure of every segment of the file.
        let leaves = meta
            .crypttext_tree
            .get(meta.crypttext_tree.len() / 2..)
            .and_then(|l| l.get(..ueb.num_segments as usize))
            .ok_or_else(|| bad("the ciphertext hash tree is too small"))?;
        if HashTree::new(leaves).root() != ueb.crypttext_root_hash {
            return Err(bad("the ciphertext hash tree does not match the UEB"));
        }
        Ok(ueb)
    }

    /// A decoder for `cap`, from the metadata of one of its shares.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if that share fails [`Decoder::check_share`] or its
    /// ciphertext tree does not match the UEB.
    pub fn new(cap: &ChkCap, shnum: usize, meta: &ShareMeta) -> Result<Self, DecodeError> {
        let ueb = Self::check_share(cap, shnum, meta)?;
        if meta.crypttext_tree.first() != Some(&ueb.crypttext_root_hash) {
            return Err(DecodeError::Invalid(
                "ciphertext hash tree does not match the UEB".into(),
            ));
        }
        Ok(Self {
            cap: *cap,
            code: Zfec::new(usize::from(cap.needed), usize::from(cap.total))?,
            crypttext_tree: meta.crypttext_tree.clone(),
            ueb,
        })
    }

    /// The URI extension block.
    pub fn ueb(&self) -> &Ueb {
        &self.ueb
    }

    /// Where segment `seg`'s block lies in a share's data (add `offsets.data` for the
    /// offset in the share).
    pub fn block_range(&self, seg: u64) -> std::ops::Range<u64> {
        let k = u64::from(self.cap.needed);
        let block_size = self.ueb.segment_size / k;
        let len = if seg + 1 == self.ueb.num_segments {
            self.ueb.tail_segment_size / k
        } else {
            block_size
        };
        seg * block_size..seg * block_size + len
    }

    /// Whether `block` is segment `seg`'s block of the share with metadata `meta`
    /// (which passed [`Decoder::check_share`]).
    pub fn block_ok(&self, meta: &ShareMeta, seg: u64, block: &[u8]) -> bool {
        let leaf = meta.block_tree.len() / 2 + seg as usize;
        let range = self.block_range(seg);
        block.len() as u64 == range.end - range.start
            && meta.block_tree.get(leaf) == Some(&hashutil::block_hash(block))
    }

    /// The plaintext bytes of segment `seg`.
    pub fn segment_range(&self, seg: u64) -> std::ops::Range<u64> {
        let start = seg * self.ueb.segment_size;
        start..(start + self.ueb.segment_size).min(self.ueb.size)
    }

    /// Checks segment `seg`'s k blocks and decrypts the segment into `out` (exactly
    /// its [`Decoder::segment_range`] long). `blocks[i]` is a block of the share with
    /// metadata `blocks[i].1` (which passed [`Decoder::check_share`]). When the blocks
    /// are the primary ones (shares 0..k, the common case) they are hashed two streams
    /// at once with the segment, and decrypted from where they lie, with no copy.
    ///
    /// # Errors
    /// [`SegmentError::BadBlock`] naming the first block that fails its hash, or
    /// [`SegmentError::Invalid`] as [`Decoder::decode_segment`].
    pub fn decode_segment_into(
        &self,
        seg: u64,
        blocks: &[(usize, &ShareMeta, &[u8])],
        out: &mut [u8],
    ) -> Result<(), SegmentError> {
        let k = usize::from(self.cap.needed);
        let range = self.segment_range(seg);
        let invalid = |why: String| SegmentError::Invalid(DecodeError::Invalid(why));
        if out.len() as u64 != range.end - range.start {
            return Err(invalid(format!("segment {seg}: wrong output length")));
        }
        let primary = blocks.len() == k && blocks.iter().enumerate().all(|(i, b)| b.0 == i);
        if !primary {
            for (i, (_, meta, block)) in blocks.iter().enumerate() {
                if !self.block_ok(meta, seg, block) {
                    return Err(SegmentError::BadBlock(i));
                }
            }
            let pairs: Vec<(usize, &[u8])> = blocks.iter().map(|b| (b.0, b.2)).collect();
            out.copy_from_slice(
                &self
                    .decode_segment(seg, &pairs)
                    .map_err(SegmentError::Invalid)?,
            );
            return Ok(());
        }
        let block_range = self.block_range(seg);
        let block_len = (block_range.end - block_range.start) as usize;
        if block_len == 0 || block_len * k < out.len() {
            return Err(invalid(format!("segment {seg}: blocks too short")));
        }
        let mut segment = hashutil::TaggedHasher::new(hashutil::tag::CIPHERTEXT_SEGMENT);
        let mut rest = out.len();
        for (i, (_, meta, block)) in blocks.iter().enumerate() {
            let leaf = meta
                .block_tree
                .get(meta.block_tree.len() / 2 + seg as usize);
            if block.len() != block_len || leaf.is_none() {
                return Err(SegmentError::BadBlock(i));
            }
            let file = &block[..rest.min(block_len)];
            let mut hash = hashutil::TaggedHasher::new(hashutil::tag::BLOCK);
            hashutil::TaggedHasher::update_pair(&mut segment, file, &mut hash, block);
            if leaf != Some(&hash.finish()) {
                return Err(SegmentError::BadBlock(i));
            }
            rest -= file.len();
        }
        let leaf = self.crypttext_tree.len() / 2 + seg as usize;
        if self.crypttext_tree.get(leaf) != Some(&segment.finish()) {
            return Err(invalid(format!(
                "segment {seg} does not match its ciphertext hash"
            )));
        }
        let starts = (range.start..).step_by(block_len);
        for (((_, _, block), out), at) in blocks.iter().zip(out.chunks_mut(block_len)).zip(starts) {
            aes::aes128_ctr_into(&self.cap.key, at, &block[..out.len()], out);
        }
        Ok(())
    }

    /// Decodes segment `seg` from k distinct blocks that passed [`Decoder::block_ok`],
    /// checks it against the ciphertext tree and returns its plaintext. The whole-file
    /// ciphertext hash in the UEB is not checked here (every segment's hash is, and
    /// the tree of them is bound to the cap through the UEB).
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for the wrong blocks, or a segment that does not match
    /// its hash (only possible with blocks that were not checked).
    pub fn decode_segment(
        &self,
        seg: u64,
        blocks: &[(usize, &[u8])],
    ) -> Result<Vec<u8>, DecodeError> {
        let k = usize::from(self.cap.needed);
        let range = self.segment_range(seg);
        let seg_len = (range.end - range.start) as usize;
        let mut segment = Vec::with_capacity(k * blocks.first().map_or(0, |b| b.1.len()));
        let mut sorted: Vec<(usize, &[u8])> = blocks.to_vec();
        sorted.sort_by_key(|b| b.0);
        if sorted.len() == k && sorted.iter().enumerate().all(|(i, b)| b.0 == i) {
            // Primary blocks are the segment's pieces: no algebra.
            for (_, block) in &sorted {
                segment.extend_from_slice(block);
            }
        } else {
            for piece in self.code.decode(blocks)? {
                segment.extend_from_slice(&piece);
            }
        }
        if segment.len() < seg_len {
            return Err(DecodeError::Invalid(format!(
                "segment {seg}: blocks too short"
            )));
        }
        segment.truncate(seg_len);
        let leaf = self.crypttext_tree.len() / 2 + seg as usize;
        if self.crypttext_tree.get(leaf) != Some(&hashutil::crypttext_segment_hash(&segment)) {
            return Err(DecodeError::Invalid(format!(
                "segment {seg} does not match its ciphertext hash"
            )));
        }
        aes::aes128_ctr(&self.cap.key, range.start, &mut segment);
        Ok(segment)
    }
}

/// Verifies shares against `cap` and recovers the file: every UEB, block, share hash
/// chain and ciphertext segment is checked, and the whole ciphertext against the UEB;
/// bad shares are skipped and reported.
///
/// # Errors
/// [`DecodeError::Invalid`] when fewer than k good shares remain.
pub fn decode(cap: &ChkCap, shares: &[(usize, &[u8])]) -> Result<Decoded, DecodeError> {
    let k = usize::from(cap.needed);
    let mut bad_shares = Vec::new();
    let mut good: Vec<(usize, &[u8], ShareMeta)> = Vec::new();
    for (shnum, bytes) in shares {
        let meta = parse_share(bytes).and_then(|parts| {
            let meta = ShareMeta {
                offsets: parts.offsets,
                crypttext_tree: parts.crypttext_tree,
                block_tree: parts.block_tree,
                share_hashes: parts.share_hashes,
                ueb: parts.ueb.to_vec(),
            };
            Decoder::check_share(cap, *shnum, &meta)?;
            Ok((parts.data, meta))
        });
        match meta {
            Ok((data, meta)) => good.push((*shnum, data, meta)),
            Err(_) => bad_shares.push(*shnum),
        }
    }
    if good.len() < k {
        return Err(DecodeError::Invalid(format!(
            "only {} good shares of the {k} needed",
            good.len()
        )));
    }
    let decoder = Decoder::new(cap, good[0].0, &good[0].2)?;
    let ueb = decoder.ueb().clone();
    // The UEB's size is the uploader's word: room only for what the shares can hold.
    let held: usize = good.iter().map(|(_, data, _)| data.len()).sum();
    let mut plaintext =
        Vec::with_capacity(usize::try_from(ueb.size).unwrap_or(usize::MAX).min(held));
    let mut crypttext = hashutil::TaggedHasher::new(hashutil::tag::CIPHERTEXT);
    for seg in 0..ueb.num_segments {
        // The first k shares whose block verifies; a share with a bad block is bad
        // from then on (and reported), and the next good share takes its place.
        let range = decoder.block_range(seg);
        let mut blocks = Vec::with_capacity(k);
        for (shnum, data, meta) in &good {
            if blocks.len() == k {
                break;
            }
            if bad_shares.contains(shnum) {
                continue;
            }
            match data.get(range.start as usize..range.end as usize) {
                Some(block) if decoder.block_ok(meta, seg, block) => blocks.push((*shnum, block)),
                _ => bad_shares.push(*shnum),
            }
        }
        if blocks.len() < k {
            return Err(DecodeError::Invalid(format!(
                "segment {seg}: only {} good blocks of the {k} needed",
                blocks.len()
            )));
        }
        let mut segment = decoder.decode_segment(seg, &blocks)?;
        // Back to ciphertext for the whole-file hash (AES-CTR is its own inverse).
        let offset = decoder.segment_range(seg).start;
        aes::aes128_ctr(&cap.key, offset, &mut segment);
        crypttext.update(&segment);
        aes::aes128_ctr(&cap.key, offset, &mut segment);
        plaintext.extend_from_slice(&segment);
    }
    if crypttext.finish() != ueb.crypttext_hash || plaintext.len() as u64 != cap.size {
        return Err(DecodeError::Invalid(
            "the ciphertext does not match the UEB".into(),
        ));
    }
    Ok(Decoded {
        plaintext,
        bad_shares,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2-of-3 with 1000-byte segments: files of a few segments, with a tail.
    const SMALL_2_OF_3: Params = Params {
        needed: 2,
        total: 3,
        max_segment_size: 1000,
    };

    #[test]
    fn streamed_convergent_key_is_the_same() {
        let params = SMALL_2_OF_3;
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 256) as u8).collect();
        let mut h = convergent_key_hasher(data.len() as u64, &params, b"s");
        for chunk in data.chunks(777) {
            h.update(chunk);
        }
        assert_eq!(h.key(), convergent_key(&data, &params, b"s"));
    }

    #[test]
    fn segments_decode_into_place_from_primary_or_other_blocks() {
        let params = SMALL_2_OF_3;
        let plaintext: Vec<u8> = (0..2501u32).map(|i| (i * 11 % 253) as u8).collect();
        let enc = encode(&plaintext, [3; 16], &params).unwrap();
        let parts: Vec<ShareParts<'_>> =
            enc.shares.iter().map(|s| parse_share(s).unwrap()).collect();
        let metas: Vec<ShareMeta> = parts
            .iter()
            .map(|p| ShareMeta {
                offsets: p.offsets,
                crypttext_tree: p.crypttext_tree.clone(),
                block_tree: p.block_tree.clone(),
                share_hashes: p.share_hashes.clone(),
                ueb: p.ueb.to_vec(),
            })
            .collect();
        let decoder = Decoder::new(&enc.cap, 0, &metas[0]).unwrap();
        let mut damaged = parts[1].data.to_vec();
        damaged[1] ^= 1;
        for seg in 0..decoder.ueb().num_segments {
            let range = decoder.segment_range(seg);
            let block = decoder.block_range(seg);
            let get = |n: usize| {
                (
                    n,
                    &metas[n],
                    &parts[n].data[block.start as usize..block.end as usize],
                )
            };
            let want = &plaintext[range.start as usize..range.end as usize];
            for shares in [[0, 1], [2, 0], [1, 2]] {
                let blocks: Vec<_> = shares.iter().map(|&n| get(n)).collect();
                let mut out = vec![0u8; want.len()];
                decoder.decode_segment_into(seg, &blocks, &mut out).unwrap();
                assert_eq!(out, want, "segment {seg} from {shares:?}");
            }
            if seg == 0 {
                let bad = (
                    1,
                    &metas[1],
                    &damaged[block.start as usize..block.end as usize],
                );
                let mut out = vec![0u8; want.len()];
                assert!(matches!(
                    decoder.decode_segment_into(seg, &[get(0), bad], &mut out),
                    Err(SegmentError::BadBlock(1))
                ));
            }
        }
    }

    /// A damaged leaf of one share's copy of the ciphertext tree fails that share's
    /// check (so a downloader blames it and takes another), not every segment later.
    #[test]
    fn a_damaged_ciphertext_tree_fails_its_share_check() {
        let plaintext: Vec<u8> = (0..4321u32).map(|i| (i * 7 % 251) as u8).collect();
        let enc = encode(&plaintext, [5; 16], &SMALL_2_OF_3).unwrap();
        let parts = parse_share(&enc.shares[0]).unwrap();
        let mut meta = ShareMeta {
            offsets: parts.offsets,
            crypttext_tree: parts.crypttext_tree.clone(),
            block_tree: parts.block_tree.clone(),
            share_hashes: parts.share_hashes.clone(),
            ueb: parts.ueb.to_vec(),
        };
        Decoder::check_share(&enc.cap, 0, &meta).unwrap();
        let leaf = meta.crypttext_tree.len() / 2 + 2;
        meta.crypttext_tree[leaf][0] ^= 1;
        let err = Decoder::check_share(&enc.cap, 0, &meta).unwrap_err();
        assert!(err.to_string().contains("ciphertext hash tree"), "{err}");
        assert!(Decoder::new(&enc.cap, 0, &meta).is_err());
    }

    #[test]
    fn netstring_lengths_past_the_end_are_errors_not_overflows() {
        for ueb in [
            &b"size:18446744073709551615:x,"[..],
            b"size:18446744073709551614:x,",
            b"size:5:abc,",
            b"size:3:abc",
        ] {
            assert!(
                parse_ueb(ueb).is_err(),
                "{:?}",
                String::from_utf8_lossy(ueb)
            );
        }
    }

    /// A UEB (bound to its cap) naming absurd sizes is refused by its check, before a
    /// reader sizes anything by it.
    #[test]
    fn a_ueb_with_an_absurd_segment_size_is_refused() {
        let size = 1u64 << 50;
        let segment_size = 1u64 << 40;
        let num_segments = size.div_ceil(segment_size);
        let ueb = pack_ueb(&[
            ("codec_name", b"crs".to_vec()),
            ("crypttext_hash", vec![1; 32]),
            ("crypttext_root_hash", vec![2; 32]),
            ("needed_shares", b"2".to_vec()),
            ("num_segments", num_segments.to_string().into_bytes()),
            ("segment_size", segment_size.to_string().into_bytes()),
            ("share_root_hash", vec![3; 32]),
            ("size", size.to_string().into_bytes()),
            (
                "tail_codec_params",
                format!("{segment_size}-2-3").into_bytes(),
            ),
            ("total_shares", b"3".to_vec()),
        ]);
        let cap = ChkCap {
            key: [0; 16],
            ueb_hash: hashutil::uri_extension_hash(&ueb),
            needed: 2,
            total: 3,
            size,
        };
        let err = check_ueb(&cap, &ueb).unwrap_err();
        assert!(err.to_string().contains("over the"), "{err}");
        // Within the segment limit, the hash sections are bounded by the segment
        // count, and a count whose trees cannot be sized is no bound at all.
        let mut fine = parse_ueb(&ueb).unwrap();
        fine.num_segments = 4;
        assert_eq!(max_hash_sections_len(&fine), Some(2 * 7 * 32 + 16 * 34));
        fine.num_segments = u64::MAX;
        assert_eq!(max_hash_sections_len(&fine), None);
    }

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
