//! Immutable (CHK) share metadata as a client reads it from a server: the offsets
//! header, the hash trees and chain, the URI extension block; then, with a cap made
//! to match the UEB (a hostile cap and a hostile server together), the decoder's
//! checks and the whole download. Sections must lie inside the share, and nothing may
//! panic or allocate by a size the bytes name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_formats::cap::ChkCap;
use swamp_formats::chk::{self, Decoder};
use swamp_formats::hashutil;

fuzz_target!(|data: &[u8]| {
    let _ = chk::parse_ueb(data);
    if let Ok(parts) = chk::parse_share(data) {
        assert!(parts.data.len() as u64 == parts.offsets.data_size);
    }
    let Ok(offsets) = chk::parse_offsets(data) else {
        return;
    };
    let Some(tail) = data.get(offsets.crypttext_hash_tree as usize..) else {
        return;
    };
    let Ok(meta) = chk::parse_share_meta(offsets, tail) else {
        return;
    };
    assert!(meta.ueb.len() <= tail.len());
    let Ok(ueb) = chk::parse_ueb(&meta.ueb) else {
        return;
    };
    let cap = ChkCap {
        key: [7; 16],
        ueb_hash: hashutil::uri_extension_hash(&meta.ueb),
        needed: ueb.needed,
        total: ueb.total,
        size: ueb.size,
    };
    for shnum in 0..usize::from(ueb.total).min(4) {
        let Ok(decoder) = Decoder::new(&cap, shnum, &meta) else {
            continue;
        };
        let last = decoder.ueb().num_segments.saturating_sub(1);
        for seg in [0, last] {
            let blocks = decoder.block_range(seg);
            assert!(blocks.start <= blocks.end);
            let plain = decoder.segment_range(seg);
            assert!(plain.start <= plain.end);
            let _ = decoder.block_ok(&meta, seg, &[]);
        }
        let _ = chk::decode(&cap, &[(shnum, data)]);
    }
});
