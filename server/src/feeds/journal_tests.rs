//! Journal recovery on real files: damage in the middle (a loud new epoch, with every
//! valid record's redo replayed), torn tails (quiet), compaction with appends in
//! between its phases, and the bounded latest-state index. The property test checks
//! replay after a random corruption against a simple model: the list of records.

use std::cell::RefCell;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use swamp_proto::feed::{Cursor, ResetReason};
use swamp_proto::{ShareNumber, StorageIndex};

use super::durable::Syncer;
use super::index::IndexBound;
use super::journal::{Backlog, Journal, Retention};
use super::records;
use crate::backend::change::Change;
use crate::backend::redo::ShareRedo;

fn si(n: u64) -> StorageIndex {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    StorageIndex::from_bytes(bytes)
}

fn change(n: u64) -> Change {
    Change::SlotChanged {
        si: si(n),
        shnum: ShareNumber::new(0),
        version: None,
        length: n,
    }
}

fn redo(n: u64) -> ShareRedo {
    ShareRedo::delete(si(n), ShareNumber::new(0))
}

fn open_at(dir: &Path, retention: Retention, now: u64, seen: &RefCell<Vec<ShareRedo>>) -> Journal {
    let recover = |r: &[ShareRedo]| {
        seen.borrow_mut().extend_from_slice(r);
        Ok(())
    };
    Journal::open(
        dir,
        retention,
        Arc::new(move || now),
        Arc::new(Syncer::new()),
        &recover,
    )
    .unwrap()
}

/// Exact history of ten events: a compaction is due after 2 * 10 + 1024 records.
fn ring_of_ten() -> Retention {
    Retention {
        min_events: 10,
        min_age: Duration::ZERO,
        ..Retention::default()
    }
}

fn open(dir: &Path, seen: &RefCell<Vec<ShareRedo>>) -> Journal {
    open_at(dir, Retention::default(), 1, seen)
}

/// Writes records 1..=n, each with redo, synced; returns where each record starts.
fn write_records(dir: &Path, n: u64) -> (u64, Vec<u64>) {
    let seen = RefCell::new(Vec::new());
    let mut j = open(dir, &seen);
    let journal = dir.join("swamp-feed/journal");
    let mut starts = Vec::new();
    for i in 1..=n {
        starts.push(records::read(&journal).unwrap().good_len);
        j.write_ahead(vec![(change(i), redo(i))]).unwrap();
    }
    j.sync_job().run().unwrap();
    (j.epoch(), starts)
}

fn damaged_copies(dir: &Path) -> Vec<std::path::PathBuf> {
    fs::read_dir(dir.join("swamp-feed"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("journal.damaged-"))
        .collect()
}

#[test]
fn damage_in_the_middle_replays_every_valid_record_and_starts_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, starts) = write_records(dir.path(), 6);
    let path = dir.path().join("swamp-feed/journal");
    let mut bytes = fs::read(&path).unwrap();
    bytes[starts[2] as usize + 10] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    records::write_checkpoint(&dir.path().join("swamp-feed"), 1, &Syncer::new()).unwrap();

    let seen = RefCell::new(Vec::new());
    let j = open(dir.path(), &seen);
    // Before and after the damage, after the checkpoint, in order.
    assert_eq!(*seen.borrow(), vec![redo(2), redo(4), redo(5), redo(6)]);
    assert_ne!(j.epoch(), epoch, "subscribers must resync");
    assert_eq!(j.head().seq, 0);
    assert!(matches!(
        j.backlog(Cursor { epoch, seq: 6 }, |_| true),
        Backlog::Reset(ResetReason::EpochChanged)
    ));
    let copies = damaged_copies(dir.path());
    assert_eq!(copies.len(), 1);
    assert_eq!(
        fs::read(&copies[0]).unwrap(),
        bytes,
        "the damaged file is kept"
    );
    drop(j);
    // Recovered for good: the next start replays nothing and keeps the epoch.
    seen.borrow_mut().clear();
    let again = open(dir.path(), &seen);
    assert!(seen.borrow().is_empty());
    assert_ne!(again.epoch(), epoch);
}

#[test]
fn a_torn_last_record_is_cut_quietly_in_the_same_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, starts) = write_records(dir.path(), 4);
    let path = dir.path().join("swamp-feed/journal");
    let mut bytes = fs::read(&path).unwrap();
    let end = records::parse(&bytes).good_len as usize;
    // Half of the last record reached the disk, inside the space allocated ahead.
    let half = (starts[3] as usize + end) / 2;
    bytes[half..end].fill(0);
    fs::write(&path, &bytes).unwrap();
    let seen = RefCell::new(Vec::new());
    let j = open(dir.path(), &seen);
    assert_eq!(*seen.borrow(), vec![redo(1), redo(2), redo(3)]);
    assert_eq!(j.epoch(), epoch);
    assert_eq!(j.head().seq, 3);
    assert!(damaged_copies(dir.path()).is_empty());
}

#[derive(Clone, Debug)]
enum Fault {
    /// One bit of record `k` flips.
    Flip { k: usize, byte: usize, bit: u8 },
    /// Record `k` reads as zeros.
    Zero { k: usize },
    /// The file ends inside the last record (at this fraction of it, in 1/256).
    Torn { at: u8 },
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn replay_after_a_fault_matches_the_model(
        n in 2u64..24,
        checkpoint in 0u64..24,
        fault in prop_oneof![
            (0usize..24, 0usize..200, 0u8..8).prop_map(|(k, byte, bit)| Fault::Flip { k, byte, bit }),
            (0usize..24).prop_map(|k| Fault::Zero { k }),
            any::<u8>().prop_map(|at| Fault::Torn { at }),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (epoch, starts) = write_records(dir.path(), n);
        let checkpoint = checkpoint.min(n);
        records::write_checkpoint(&dir.path().join("swamp-feed"), checkpoint, &Syncer::new()).unwrap();
        let path = dir.path().join("swamp-feed/journal");
        let mut bytes = fs::read(&path).unwrap();
        let end = records::parse(&bytes).good_len as usize;
        let span = |k: usize| {
            let from = starts[k] as usize;
            let to = starts.get(k + 1).map_or(end, |&s| s as usize);
            (from, to)
        };
        // The model: which record is lost.
        let lost = match fault {
            Fault::Flip { k, byte, bit } => {
                let k = k % n as usize;
                let (from, to) = span(k);
                bytes[from + byte % (to - from)] ^= 1 << bit;
                k
            }
            Fault::Zero { k } => {
                let k = k % n as usize;
                let (from, to) = span(k);
                bytes[from..to].fill(0);
                k
            }
            Fault::Torn { at } => {
                let k = n as usize - 1;
                let (from, to) = span(k);
                // Keep at least the length's last byte, so the cut is not all zeros.
                let cut = (from + 4 + (to - from - 5) * usize::from(at) / 256).min(to - 1);
                bytes.truncate(cut);
                k
            }
        };
        fs::write(&path, &bytes).unwrap();
        let seen = RefCell::new(Vec::new());
        let j = open(dir.path(), &seen);
        let expected: Vec<ShareRedo> = (1..=n)
            .filter(|&seq| seq > checkpoint && seq != lost as u64 + 1)
            .map(redo)
            .collect();
        prop_assert_eq!(&*seen.borrow(), &expected);
        if lost + 1 < n as usize {
            prop_assert_ne!(j.epoch(), epoch);
            prop_assert_eq!(j.head().seq, 0);
            prop_assert_eq!(damaged_copies(dir.path()).len(), 1);
        } else {
            prop_assert_eq!(j.epoch(), epoch);
            prop_assert_eq!(j.head().seq, n - 1);
            prop_assert!(damaged_copies(dir.path()).is_empty());
        }
    }
}

#[test]
fn appends_between_compaction_phases_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let retention = ring_of_ten();
    let seen = RefCell::new(Vec::new());
    let mut j = open_at(dir.path(), retention.clone(), 1, &seen);
    let epoch = j.epoch();
    let n = std::cell::Cell::new(0);
    let write = |j: &mut Journal, with_redo: bool| {
        let seq = n.get() + 1;
        n.set(seq);
        if with_redo {
            j.write_ahead(vec![(change(seq), redo(seq))]).unwrap();
        } else {
            j.write(vec![change(seq)]).unwrap();
        }
        j.sync_job().run().unwrap();
        j.set_visible(seq);
    };
    // Enough records for a compaction; the first ones carry redo that no checkpoint
    // covers, so it must survive.
    for i in 0..1100 {
        write(&mut j, i < 3);
    }
    let mut compaction = j.start_compaction().expect("a compaction is due");
    assert!(j.start_compaction().is_none(), "one at a time");
    // Writers go on while the index and the new journal are written (no lock).
    write(&mut j, false);
    compaction.write().unwrap();
    write(&mut j, true);
    write(&mut j, false);
    assert!(!j.catch_up(&mut compaction, false).unwrap());
    compaction.copy_pending().unwrap();
    write(&mut j, false);
    // The last round copies under the lock.
    assert!(j.catch_up(&mut compaction, true).unwrap());
    let after_swap = n.get();
    write(&mut j, true);
    let n = n.get();
    drop(j);
    let kept = records::read(&dir.path().join("swamp-feed/journal"))
        .unwrap()
        .records
        .len();
    assert!(kept < 30, "compacted: {kept} records");

    seen.borrow_mut().clear();
    let j = open_at(dir.path(), retention, 1, &seen);
    assert_eq!(j.epoch(), epoch);
    assert_eq!(j.head().seq, n);
    assert_eq!(
        *seen.borrow(),
        vec![redo(1), redo(2), redo(3), redo(1102), redo(after_swap + 1)]
    );
    match j.backlog(Cursor { epoch, seq: n - 10 }, |_| true) {
        Backlog::Exact(e) => {
            assert_eq!(
                e.iter().map(|e| e.seq).collect::<Vec<_>>(),
                ((n - 9)..=n).collect::<Vec<_>>()
            )
        }
        other => panic!("{other:?}"),
    }
    // Records kept only for their redo are not exact history: a cursor between them
    // and the ring gets the latest states, not a ring with a hole (even when the
    // retention would keep them all).
    drop(j);
    let longer = Retention {
        min_events: 1000,
        ..ring_of_ten()
    };
    let j = open_at(dir.path(), longer, 1, &seen);
    match j.backlog(Cursor { epoch, seq: 3 }, |s| *s == si(5) || *s == si(n)) {
        Backlog::Coalesced(e) => {
            assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5, n])
        }
        other => panic!("{other:?}"),
    }
    match j.backlog(Cursor { epoch, seq: 0 }, |s| *s == si(5)) {
        Backlog::Coalesced(e) => assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_index_is_bounded_and_an_older_cursor_gets_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        index: IndexBound {
            horizon: Duration::from_secs(1000),
            max_entries: 100,
        },
        ..ring_of_ten()
    };
    let seen = RefCell::new(Vec::new());
    let mut j = open_at(dir.path(), retention.clone(), 5000, &seen);
    let epoch = j.epoch();
    // 1100 shares, one change each. The compaction after record 1045 (more than
    // 2 * 10 + 1024 records in the file) prunes the index to 90 entries: 956..=1045.
    for i in 1..=1100 {
        j.append(vec![change(i)]).unwrap();
    }
    let floor = 955;
    let expired = |j: &Journal, seq| {
        matches!(
            j.backlog(Cursor { epoch, seq }, |_| true),
            Backlog::Reset(ResetReason::CursorExpired)
        )
    };
    assert!(expired(&j, floor - 1));
    match j.backlog(Cursor { epoch, seq: floor }, |_| true) {
        Backlog::Coalesced(e) => assert_eq!(e.len(), 1100 - 955),
        other => panic!("{other:?}"),
    }
    drop(j);
    // The floor survives a restart; after the horizon, everything old goes.
    let mut j = open_at(dir.path(), retention, 7000, &seen);
    assert!(expired(&j, floor - 1));
    assert!(!expired(&j, floor));
    for i in 1101..=2200 {
        j.append(vec![change(i)]).unwrap();
    }
    assert!(expired(&j, floor));
    assert_eq!(j.ring_len(), 10);
}

#[test]
fn a_journal_of_redo_no_checkpoint_covers_is_not_rewritten_on_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let seen = RefCell::new(Vec::new());
    let mut j = open_at(dir.path(), ring_of_ten(), 1, &seen);
    for i in 1..=1100 {
        j.write_ahead(vec![(change(i), redo(i))]).unwrap();
    }
    j.sync_job().run().unwrap();
    let mut compaction = j.start_compaction().expect("due");
    compaction.write().unwrap();
    assert!(j.catch_up(&mut compaction, true).unwrap());
    // It kept all 1100 records (their redo); one more must not start another.
    j.write_ahead(vec![(change(1101), redo(1101))]).unwrap();
    assert!(j.start_compaction().is_none());
    for i in 1102..=3325 {
        j.write_ahead(vec![(change(i), redo(i))]).unwrap();
    }
    assert!(
        j.start_compaction().is_some(),
        "due again at 2 * 1100 + 1024"
    );
}
