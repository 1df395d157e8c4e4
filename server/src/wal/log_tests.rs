//! Recovery of the log on real files: damage in the middle (a loud new epoch, with
//! every valid record's redo replayed), torn tails (quiet), the checkpoint, space
//! allocated ahead, and a journal of redo no checkpoint covers. The property test
//! checks replay after a random corruption against a simple model: the list of
//! records. (Compaction with the feeds' history: `feeds/history_tests.rs`.)

use std::cell::RefCell;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use swamp_proto::{ShareNumber, StorageIndex};

use super::change::Change;
use super::durable::Syncer;
use super::log::Log;
use super::publish::Saved;
use super::records::{self, Entry};
use super::redo::ShareRedo;

/// Storage index `n` (shared with `feeds/history_tests.rs`).
pub(crate) fn si(n: u64) -> StorageIndex {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    StorageIndex::from_bytes(bytes)
}

/// A slot change of storage index `n`.
pub(crate) fn change(n: u64) -> Change {
    Change::SlotChanged {
        si: si(n),
        shnum: ShareNumber::new(0),
        version: None,
        length: n,
    }
}

/// The redo of a deletion in storage index `n`.
pub(crate) fn redo(n: u64) -> ShareRedo {
    ShareRedo::delete(si(n), ShareNumber::new(0))
}

fn open_at(dir: &Path, now: u64, seen: &RefCell<Vec<ShareRedo>>) -> (Log, Saved) {
    let recover = |r: &[ShareRedo]| {
        seen.borrow_mut().extend_from_slice(r);
        Ok(())
    };
    Log::open(
        dir,
        Arc::new(move || now),
        Arc::new(Syncer::new()),
        &recover,
    )
    .unwrap()
}

fn open(dir: &Path, seen: &RefCell<Vec<ShareRedo>>) -> Log {
    open_at(dir, 1, seen).0
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
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
    assert_eq!(j.head(), 0);
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
    assert_eq!(j.head(), 3);
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
            prop_assert_eq!(j.head(), 0);
            prop_assert_eq!(damaged_copies(dir.path()).len(), 1);
        } else {
            prop_assert_eq!(j.epoch(), epoch);
            prop_assert_eq!(j.head(), n - 1);
            prop_assert!(damaged_copies(dir.path()).is_empty());
        }
    }
}

#[test]
fn a_journal_of_redo_no_checkpoint_covers_is_not_rewritten_on_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let seen = RefCell::new(Vec::new());
    let mut j = open(dir.path(), &seen);
    // The history keeps ten entries exactly.
    let mut published: Vec<Entry> = Vec::new();
    let mut write = |j: &mut Log, i: u64| {
        j.write_ahead(vec![(change(i), redo(i))]).unwrap();
        j.sync_job().run().unwrap();
        published.extend(j.take_synced(i));
        let exact = published[published.len().saturating_sub(10)..].to_vec();
        Saved {
            entries: exact,
            ..Saved::default()
        }
    };
    let mut saved = Saved::default();
    for i in 1..=1100 {
        saved = write(&mut j, i);
    }
    assert!(j.compaction_due(10));
    let mut compaction = j.start_compaction(saved);
    compaction.write().unwrap();
    assert!(j.catch_up(&mut compaction, true).unwrap());
    assert_eq!(j.records_in_file(), 1100, "every record kept for its redo");
    // It kept all 1100 records (their redo); one more must not start another.
    write(&mut j, 1101);
    assert!(!j.compaction_due(10));
    for i in 1102..=3325 {
        write(&mut j, i);
    }
    assert!(j.compaction_due(10), "due again at 2 * 1100 + 1024");
}

#[test]
fn losing_the_epoch_file_starts_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let seen = RefCell::new(Vec::new());
    let mut j = open(dir.path(), &seen);
    j.write(vec![change(1)]).unwrap();
    j.sync_job().run().unwrap();
    let epoch = j.epoch();
    drop(j);
    fs::remove_file(dir.path().join("swamp-feed/epoch")).unwrap();
    let (j, saved) = open_at(dir.path(), 1, &seen);
    assert_ne!(j.epoch(), epoch);
    assert_eq!(j.head(), 0);
    assert!(saved.entries.is_empty());
}

#[test]
fn space_allocated_ahead_is_not_a_torn_tail_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("swamp-feed/journal");
    let seen = RefCell::new(Vec::new());
    let mut j = open(dir.path(), &seen);
    for i in 1..=3 {
        j.write(vec![change(i)]).unwrap();
    }
    j.sync_job().run().unwrap();
    drop(j);
    let allocated = fs::metadata(&path).unwrap().len();
    assert!(allocated >= 1024 * 1024, "allocated ahead: {allocated}");
    let mut j = open(dir.path(), &seen);
    assert_eq!(fs::metadata(&path).unwrap().len(), allocated, "zeros kept");
    for i in 4..=5 {
        j.write(vec![change(i)]).unwrap();
    }
    j.sync_job().run().unwrap();
    drop(j);
    let (j, saved) = open_at(dir.path(), 1, &seen);
    assert_eq!(j.head(), 5);
    assert_eq!(seqs(&saved.entries), vec![1, 2, 3, 4, 5]);
}

#[test]
fn only_redo_after_the_checkpoint_is_replayed_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let seen = RefCell::new(Vec::new());
    let mut j = open(dir.path(), &seen);
    for n in 1..=4 {
        j.write_ahead(vec![(change(n), redo(n))]).unwrap();
        j.sync_job().run().unwrap();
    }
    records::write_checkpoint(j.dir(), 2, &Syncer::new()).unwrap();
    j.checkpointed(Some(2));
    assert_eq!(j.pending_redo(), 2);
    drop(j);
    drop(open(dir.path(), &seen));
    assert_eq!(*seen.borrow(), vec![redo(3), redo(4)]);
    seen.borrow_mut().clear();
    drop(open(dir.path(), &seen));
    assert!(
        seen.borrow().is_empty(),
        "the start's replay moved the checkpoint"
    );
}
