//! The log's compaction together with the history it stores for the feeds, on real
//! files: appends between compaction phases are kept, records kept only for their redo
//! are not exact history, the latest-state index is bounded and survives restarts,
//! and a torn tail after a compaction is cut.

use std::cell::RefCell;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use swamp_proto::feed::{Cursor, ResetReason};
use swamp_proto::{ShareNumber, StorageIndex};

use super::history::{Backlog, History, Retention};
use super::index::IndexBound;
use crate::wal::change::Change;
use crate::wal::compact::Compaction;
use crate::wal::durable::Syncer;
use crate::wal::log::Log;
use crate::wal::log_tests::{change, redo, si};
use crate::wal::records;
use crate::wal::redo::ShareRedo;

/// The log and the history, as the storage and the hub hold them, driven by hand.
struct Journal {
    log: Log,
    history: History,
}

impl Journal {
    fn open(dir: &Path, retention: Retention, now: u64, seen: &RefCell<Vec<ShareRedo>>) -> Self {
        let recover = |r: &[ShareRedo]| {
            seen.borrow_mut().extend_from_slice(r);
            Ok(())
        };
        let clock: crate::backend::Clock = Arc::new(move || now);
        let (log, saved) =
            Log::open(dir, Arc::clone(&clock), Arc::new(Syncer::new()), &recover).unwrap();
        let mut history = History::new(retention, clock);
        history.restore(log.epoch(), saved);
        Self { log, history }
    }

    fn epoch(&self) -> u64 {
        self.log.epoch()
    }

    fn head(&self) -> Cursor {
        self.history.head()
    }

    fn write(&mut self, changes: Vec<Change>) {
        self.log.write(changes).unwrap();
    }

    fn write_ahead(&mut self, changes: Vec<(Change, ShareRedo)>) {
        self.log.write_ahead(changes).unwrap();
    }

    /// Syncs and publishes everything written.
    fn publish(&mut self) {
        let head = self.log.head();
        self.log.sync_job().run().unwrap();
        let entries = self.log.take_synced(head);
        self.history.extend(&entries);
    }

    fn start_compaction(&mut self) -> Option<Compaction> {
        self.log
            .compaction_due(self.history.exact_len())
            .then(|| self.log.start_compaction(self.history.prune_and_save()))
    }

    fn catch_up(&mut self, compaction: &mut Compaction, last_round: bool) -> bool {
        self.log.catch_up(compaction, last_round).unwrap()
    }

    /// Writes, syncs, publishes and compacts inline when due.
    fn append(&mut self, changes: Vec<Change>) {
        self.write(changes);
        self.publish();
        if let Some(mut compaction) = self.start_compaction() {
            compaction.write().unwrap();
            assert!(self.catch_up(&mut compaction, true));
        }
    }

    fn backlog(&self, since: Cursor, follows: impl Fn(&StorageIndex) -> bool) -> Backlog {
        self.history.backlog(since, follows)
    }

    fn backlog_for(&self, since: Cursor, sis: &[StorageIndex]) -> Backlog {
        self.history.backlog_for(since, sis)
    }
}

fn share_change(si: u8, shnum: u8, length: u64) -> Change {
    Change::SlotChanged {
        si: StorageIndex::from_bytes([si; 16]),
        shnum: ShareNumber::new(shnum),
        version: None,
        length,
    }
}

/// Exact history of ten events: a compaction is due after 2 * 10 + 1024 records.
fn ring_of_ten() -> Retention {
    Retention {
        min_events: 10,
        min_age: Duration::ZERO,
        ..Retention::default()
    }
}

#[test]
fn survives_reopen_and_answers_any_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let seen = RefCell::new(Vec::new());
    let retention = Retention {
        min_events: 2,
        min_age: Duration::ZERO,
        ..Retention::default()
    };
    let mut j = Journal::open(dir.path(), retention.clone(), 100, &seen);
    let epoch = j.epoch();
    for i in 0..5 {
        j.append(vec![share_change(1, 0, i), share_change(2, 0, i)]);
    }
    assert_eq!(j.head().seq, 10);
    drop(j);
    let j = Journal::open(dir.path(), retention, 200, &seen);
    assert_eq!(j.epoch(), epoch);
    assert_eq!(j.head().seq, 10);
    // Recent cursor: exact replay.
    match j.backlog(Cursor { epoch, seq: 9 }, |_| true) {
        Backlog::Exact(e) => assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![10]),
        other => panic!("{other:?}"),
    }
    // Old cursor: the latest state of each share, once.
    match j.backlog_for(
        Cursor { epoch, seq: 0 },
        &[StorageIndex::from_bytes([1; 16])],
    ) {
        Backlog::Coalesced(e) => {
            assert_eq!(e.len(), 1);
            assert_eq!(e[0].seq, 9);
            assert_eq!(*e[0].change, share_change(1, 0, 4));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        j.backlog(
            Cursor {
                epoch: epoch ^ 1,
                seq: 0
            },
            |_| true
        ),
        Backlog::Reset(ResetReason::EpochChanged)
    ));
    assert!(matches!(
        j.backlog(Cursor { epoch, seq: 11 }, |_| true),
        Backlog::Reset(ResetReason::CursorAhead)
    ));
}

#[test]
fn compaction_keeps_latest_states_and_a_torn_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let seen = RefCell::new(Vec::new());
    let retention = Retention {
        min_events: 10,
        min_age: Duration::ZERO,
        ..Retention::default()
    };
    let mut j = Journal::open(dir.path(), retention.clone(), 100, &seen);
    let epoch = j.epoch();
    j.append(vec![share_change(7, 3, 1)]);
    for i in 0..3000 {
        j.append(vec![share_change(8, 0, i)]);
    }
    assert!(j.log.records_in_file() < 3001, "compacted");
    drop(j);
    // A crash mid-append leaves half a record.
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join("swamp-feed/journal"))
        .unwrap();
    f.write_all(&[0, 0, 0, 50, 1, 2]).unwrap();
    drop(f);
    let j = Journal::open(dir.path(), retention, 100, &seen);
    assert_eq!(j.head(), Cursor { epoch, seq: 3001 });
    match j.backlog_for(
        Cursor { epoch, seq: 0 },
        &[StorageIndex::from_bytes([7; 16])],
    ) {
        Backlog::Coalesced(e) => {
            assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn appends_between_compaction_phases_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let retention = ring_of_ten();
    let seen = RefCell::new(Vec::new());
    let mut j = Journal::open(dir.path(), retention.clone(), 1, &seen);
    let epoch = j.epoch();
    let n = std::cell::Cell::new(0);
    let write = |j: &mut Journal, with_redo: bool| {
        let seq = n.get() + 1;
        n.set(seq);
        if with_redo {
            j.write_ahead(vec![(change(seq), redo(seq))]);
        } else {
            j.write(vec![change(seq)]);
        }
        j.publish();
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
    assert!(!j.catch_up(&mut compaction, false));
    compaction.copy_pending().unwrap();
    write(&mut j, false);
    // The last round copies under the lock.
    assert!(j.catch_up(&mut compaction, true));
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
    let j = Journal::open(dir.path(), retention, 1, &seen);
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
    let j = Journal::open(dir.path(), longer, 1, &seen);
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
    let mut j = Journal::open(dir.path(), retention.clone(), 5000, &seen);
    let epoch = j.epoch();
    // 1100 shares, one change each. The compaction after record 1045 (more than
    // 2 * 10 + 1024 records in the file) prunes the index to 90 entries: 956..=1045.
    for i in 1..=1100 {
        j.append(vec![change(i)]);
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
    let mut j = Journal::open(dir.path(), retention, 7000, &seen);
    assert!(expired(&j, floor - 1));
    assert!(!expired(&j, floor));
    for i in 1101..=2200 {
        j.append(vec![change(i)]);
    }
    assert!(expired(&j, floor));
    assert_eq!(j.history.exact_len(), 10);
}
