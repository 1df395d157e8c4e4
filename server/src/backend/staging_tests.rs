//! The staged container file against the bytes it must end up holding: uploads in
//! order, out of order, with rewrites, scattered enough to fall back, and with lengths
//! at and around a block boundary; with direct writes allowed and refused.

use std::path::Path;

use std::sync::Arc;

use super::faults::{FaultPlan, Faults};
use super::staging::{BLOCK, MAX_WAITING, StagedFile};

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Writes `expected` through a staged file in the given `(offset, length)` pieces,
/// checks what reads back before and after the sync, and returns the file.
fn stage(path: &Path, expected: &[u8], pieces: &[(usize, usize)], direct: bool) -> StagedFile {
    let mut file =
        StagedFile::create(path, expected.len() as u64, direct, Faults::default()).unwrap();
    for &(at, len) in pieces {
        file.write_at(&expected[at..at + len], at as u64).unwrap();
        let mut back = vec![0; len];
        file.read_exact_at(&mut back, at as u64).unwrap();
        assert_eq!(back, expected[at..at + len], "read back at {at}+{len}");
    }
    file.sync_all().unwrap();
    assert_eq!(file.waiting_blocks(), 0);
    assert_eq!(std::fs::read(path).unwrap(), expected, "file bytes");
    file
}

/// An upload as clients send it: header and lease first, then the data in order.
fn upload_pieces(len: usize, chunk: usize) -> Vec<(usize, usize)> {
    let data_end = len - 72;
    let mut pieces = vec![(0, 12), (data_end, 72)];
    let mut at = 12;
    while at < data_end {
        let n = chunk.min(data_end - at);
        pieces.push((at, n));
        at += n;
    }
    pieces
}

#[test]
fn sequential_upload_goes_around_the_page_cache() {
    let dir = tempfile::tempdir().unwrap();
    let len = 12 + 5 * (1 << 20) + 1234 + 72;
    let expected = content(len, 1);
    for direct in [true, false] {
        let path = dir.path().join(format!("seq-{direct}"));
        let file = stage(&path, &expected, &upload_pieces(len, 1 << 20), direct);
        if !direct {
            assert_eq!(file.direct_bytes(), 0);
        } else if file.is_direct() {
            // Everything but the tail past the last whole block.
            assert_eq!(file.direct_bytes(), (len / BLOCK * BLOCK) as u64);
        }
    }
}

#[test]
fn out_of_order_writes_and_identical_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    for (round, len) in [3 * BLOCK, 3 * BLOCK + 1, 200_000, BLOCK - 1, 100]
        .into_iter()
        .enumerate()
    {
        let expected = content(len, round as u64 + 7);
        let mut rng = Rng(round as u64 * 31 + 5);
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < len {
            let n = (1 + rng.below(3 * BLOCK as u64) as usize).min(len - at);
            pieces.push((at, n));
            at += n;
        }
        // Shuffle, then rewrite a few pieces, straddling their neighbours.
        for i in (1..pieces.len()).rev() {
            pieces.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for _ in 0..pieces.len().min(5) {
            let from = rng.below(len as u64) as usize;
            let n = 1 + rng.below((len - from) as u64) as usize;
            pieces.push((from, n.min(2 * BLOCK)));
        }
        let path = dir.path().join(format!("shuffled-{round}"));
        stage(&path, &expected, &pieces, true);
    }
}

#[test]
fn scattered_small_writes_fall_back_without_losing_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = 2 * MAX_WAITING + 10;
    let len = blocks * BLOCK;
    let expected = content(len, 3);
    // One byte in the middle of every block first, so every block waits; then the rest.
    let mut pieces: Vec<(usize, usize)> = (0..blocks).map(|b| (b * BLOCK + 100, 1)).collect();
    for b in 0..blocks {
        pieces.push((b * BLOCK, 100));
        pieces.push((b * BLOCK + 101, BLOCK - 101));
    }
    let path = dir.path().join("scattered");
    let file = stage(&path, &expected, &pieces, true);
    assert!(!file.is_direct(), "more than {MAX_WAITING} waiting blocks");
}

#[test]
fn unaligned_memory_is_copied_into_aligned_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let len = 40 * BLOCK;
    let expected = content(len, 9);
    // The same bytes one byte into a bigger buffer: whole blocks in unaligned memory.
    let mut shifted = vec![0u8; len + 1];
    shifted[1..].copy_from_slice(&expected);
    let path = dir.path().join("unaligned");
    let mut file = StagedFile::create(&path, len as u64, true, Faults::default()).unwrap();
    file.write_at(&shifted[1..], 0).unwrap();
    file.sync_all().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), expected);
    if file.is_direct() {
        assert_eq!(file.direct_bytes(), len as u64);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Any upload (in order or shuffled, pieces of any size, rewrites) whose writes
    /// fail at any point (an `ENOSPC` after 0 to 3 writes of a request went out,
    /// including when a block becomes complete and when waiting blocks are written
    /// out) and are sent again, then flushed and synced through failures, gives a
    /// byte-exact file, with direct writes or without.
    #[test]
    fn failed_writes_sent_again_leave_no_hole(
        blocks in 1usize..120,
        tail in 0usize..4096,
        chunk in 1usize..40_000,
        shuffle in proptest::prelude::any::<Option<u64>>(),
        faults in proptest::collection::vec(proptest::option::of(0i32..4), 1..64),
        direct in proptest::prelude::any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let len = (blocks * BLOCK + tail).max(100);
        let expected = content(len, blocks as u64 * 7 + tail as u64);
        let mut pieces = upload_pieces(len, chunk);
        if let Some(seed) = shuffle {
            let mut rng = Rng(seed | 1);
            for i in (1..pieces.len()).rev() {
                pieces.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let plan = Arc::new(FaultPlan::default());
        let path = dir.path().join("upload");
        let mut file =
            StagedFile::create(&path, len as u64, direct, Faults::injected(Arc::clone(&plan)))
                .unwrap();
        for (i, &(at, n)) in pieces.iter().enumerate() {
            if let Some(after) = faults[i % faults.len()] {
                plan.fail_writes_after(after, 28);
                let _ = file.write_at(&expected[at..at + n], at as u64);
                plan.heal();
            }
            file.write_at(&expected[at..at + n], at as u64).unwrap();
        }
        plan.fail_writes(5);
        let _ = file.flush();
        plan.heal();
        file.flush().unwrap();
        plan.fail_syncs(5);
        proptest::prop_assert!(file.sync().is_err(), "an injected sync failure is reported");
        plan.heal();
        file.sync().unwrap();
        proptest::prop_assert!(std::fs::read(&path).unwrap() == expected);
    }
}

/// As a client meets a disk that fills up: the first writes go through, then every
/// write fails once the disk is full (some after part of their blocks went out); the
/// refused ones are sent again, in order, once space is freed.
#[test]
fn a_disk_that_fills_mid_upload_then_frees_gives_a_byte_exact_file() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 0..20u64 {
        let len = 12 + 24 * 4096 * 4 + 72;
        let expected = content(len, seed + 90);
        let pieces = upload_pieces(len, 4 * 4096);
        let plan = Arc::new(FaultPlan::default());
        let path = dir.path().join(format!("fills-{seed}"));
        let mut file =
            StagedFile::create(&path, len as u64, true, Faults::injected(Arc::clone(&plan)))
                .unwrap();
        let mut rng = Rng(seed * 13 + 1);
        let full_at = 2 + rng.below(pieces.len() as u64 - 4) as usize;
        let mut refused = Vec::new();
        for (i, &(at, n)) in pieces.iter().enumerate() {
            if i == full_at {
                plan.fail_writes_after(rng.below(3) as i32, 28);
            }
            if file.write_at(&expected[at..at + n], at as u64).is_err() {
                refused.push((at, n));
            }
        }
        plan.heal();
        for (at, n) in refused {
            file.write_at(&expected[at..at + n], at as u64).unwrap();
        }
        file.sync_all().unwrap();
        assert!(std::fs::read(&path).unwrap() == expected, "seed {seed}");
    }
}
