//! Crash recovery of slot writes logged ahead in the write-ahead log, on real files: a torn or
//! missing in-place write is repaired at the next start, whatever the journal went
//! through meanwhile (compaction, checkpoints). And the fsync-failure policy, with
//! failures injected through the [`Syncer`]: nothing is acknowledged after a failed
//! sync, the checkpoint stays, and a restart replays the journal as it is on disk.
//! And what must not happen under the log's or the hub's lock (a compaction's syncs)
//! or on an async worker (a snapshot's disk reads).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret, WriteEnabler};
use swamp_proto::v1::ShareKind;
use swamp_proto::v1::mutable::{TestWriteVectors, ValidReadTestWrite, WriteVector};
use swamp_proto::{ShareNumber, StorageIndex};

use super::durable::{SyncKind, Syncer};
use crate::backend::{
    LeaseGrant, Storage, StorageError, StorageSettings, slots::ReadTestWriteOutcome, system_clock,
};
use crate::feeds::{FeedSettings, Feeds, Hub, Retention};

pub(super) const SI: StorageIndex = StorageIndex::from_bytes([9; 16]);

pub(super) fn open(dir: &Path, retention: Retention) -> (Arc<Storage>, Arc<Feeds>) {
    open_with(dir, retention, Arc::new(Syncer::new()))
}

pub(super) fn open_with(
    dir: &Path,
    retention: Retention,
    syncer: Arc<Syncer>,
) -> (Arc<Storage>, Arc<Feeds>) {
    let settings = FeedSettings {
        retention,
        ..FeedSettings::default()
    };
    let hub = Hub::new(settings, system_clock(), metrics::Histogram::noop());
    let storage = Storage::open_with(
        dir,
        StorageSettings::new([1; 20], system_clock()),
        Arc::clone(&hub) as _,
        syncer,
    )
    .unwrap();
    let storage = Arc::new(storage);
    (Arc::clone(&storage), Feeds::new(storage, hub))
}

/// Storage whose journal syncs pass through a [`Gate`] (disarmed), with one write
/// already committed.
pub(super) fn open_with_journal_gate(dir: &Path) -> (Arc<Gate>, Arc<Storage>, Arc<Feeds>) {
    let gate = Gate::new();
    let (storage, feeds) = open_with(dir, Retention::default(), gate.syncer(SyncKind::Journal));
    write(&storage, 0, b"before");
    (gate, storage, feeds)
}

pub(super) fn write(storage: &Storage, offset: u64, data: &[u8]) {
    assert!(try_write(storage, offset, data).unwrap().success);
}

pub(super) fn try_write(
    storage: &Storage,
    offset: u64,
    data: &[u8],
) -> Result<ReadTestWriteOutcome, StorageError> {
    try_write_to(storage, &SI, offset, data)
}

pub(super) fn try_write_to(
    storage: &Storage,
    si: &StorageIndex,
    offset: u64,
    data: &[u8],
) -> Result<ReadTestWriteOutcome, StorageError> {
    let mut shares = BTreeMap::new();
    shares.insert(
        ShareNumber::new(0),
        TestWriteVectors {
            test: Vec::new(),
            write: vec![WriteVector {
                offset,
                data: data.to_vec(),
            }],
            new_length: None,
        },
    );
    storage.read_test_write(
        si,
        &WriteEnabler::from_bytes([2; 32]),
        &grant(),
        &ValidReadTestWrite {
            shares,
            read_vector: Vec::new(),
        },
    )
}

/// The lease every test write adds or renews.
pub(super) fn grant() -> LeaseGrant {
    LeaseGrant {
        owner: 1,
        renew: LeaseRenewSecret::from_bytes([3; 32]),
        cancel: LeaseCancelSecret::from_bytes([4; 32]),
        expiry: 2_000_000_000,
        nodeid: [1; 20],
    }
}

pub(super) fn data(storage: &Storage) -> Vec<u8> {
    storage
        .read_share(ShareKind::Mutable, &SI, ShareNumber::new(0), 0, u64::MAX)
        .unwrap()
        .1
}

fn share_file(dir: &Path) -> std::path::PathBuf {
    crate::backend::Layout::new(dir).share_path(&SI, ShareNumber::new(0))
}

fn short() -> Retention {
    Retention {
        min_events: 2,
        min_age: Duration::ZERO,
        ..Retention::default()
    }
}

#[test]
fn a_torn_in_place_write_is_repaired_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _feeds) = open(dir.path(), Retention::default());
    write(&storage, 0, &[b'a'; 3000]);
    let before = fs::read(share_file(dir.path())).unwrap();
    write(&storage, 100, &[b'b'; 2000]);
    let after = fs::read(share_file(dir.path())).unwrap();
    // A crash mid-write: half of the new bytes reached the disk.
    let mut torn = before.clone();
    torn[..1500].copy_from_slice(&after[..1500]);
    fs::write(share_file(dir.path()), &torn).unwrap();
    drop((storage, _feeds));

    let (storage, feeds) = open(dir.path(), Retention::default());
    assert_eq!(fs::read(share_file(dir.path())).unwrap(), after);
    let mut expected = vec![b'a'; 3000];
    expected[100..2100].fill(b'b');
    assert_eq!(data(&storage), expected);
    assert_eq!(feeds.head().seq, 2, "both changes are in the feed");
}

#[test]
fn a_write_lost_before_it_reached_the_file_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, feeds) = open(dir.path(), Retention::default());
    write(&storage, 0, b"first version");
    let before = fs::read(share_file(dir.path())).unwrap();
    write(&storage, 0, b"second version, longer");
    let after = fs::read(share_file(dir.path())).unwrap();
    drop((storage, feeds));
    // The in-place write never reached the disk.
    fs::write(share_file(dir.path()), &before).unwrap();
    let (_, feeds) = open(dir.path(), Retention::default());
    assert_eq!(fs::read(share_file(dir.path())).unwrap(), after);
    drop(feeds);
    // That start checkpointed: a later unlogged deletion (as by lease expiry) is not
    // undone by replaying the same records again.
    fs::remove_file(share_file(dir.path())).unwrap();
    let (_storage, _feeds) = open(dir.path(), Retention::default());
    assert!(!share_file(dir.path()).exists());

    let dir = tempfile::tempdir().unwrap();
    let (storage, feeds) = open(dir.path(), Retention::default());
    write(&storage, 0, b"first version");
    write(&storage, 0, b"second version, longer");
    drop((storage, feeds));
    // Neither the share nor its directory entry reached the disk.
    fs::remove_file(share_file(dir.path())).unwrap();
    let (storage, _feeds) = open(dir.path(), Retention::default());
    assert_eq!(fs::read(share_file(dir.path())).unwrap(), after);
    assert_eq!(data(&storage), b"second version, longer");
}

#[test]
fn redo_survives_journal_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, feeds) = open(dir.path(), short());
    for i in 0..1200u32 {
        write(
            &storage,
            u64::from(i % 50) * 10,
            format!("{i:010}").as_bytes(),
        );
    }
    assert!(
        dir.path().join("swamp-feed/latest").exists(),
        "the journal was compacted"
    );
    let expected = data(&storage);
    // Every in-place write since the start is lost.
    fs::write(share_file(dir.path()), b"garbage").unwrap();
    drop((storage, feeds));
    let (storage, _feeds) = open(dir.path(), short());
    assert_eq!(data(&storage), expected);
}

/// A syncer whose syncs of `kind` fail while the flag is set.
fn failing(kind: SyncKind) -> (Arc<Syncer>, Arc<AtomicBool>) {
    let fail = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&fail);
    let syncer = Syncer::failing(move |k| {
        if k == kind && flag.load(Ordering::SeqCst) {
            Err(std::io::Error::from_raw_os_error(5)) // EIO
        } else {
            Ok(())
        }
    });
    (Arc::new(syncer), fail)
}

fn assert_needs_restart(result: Result<ReadTestWriteOutcome, StorageError>) {
    match result {
        Err(e @ StorageError::NeedsRestart) => {
            assert_eq!(e.to_string(), "storage needs a restart after a disk error");
            let status = crate::http::ApiError::Storage(e).status();
            assert_eq!(status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        }
        other => panic!("expected NeedsRestart, got {other:?}"),
    }
}

#[test]
fn after_a_failed_journal_sync_nothing_is_acknowledged_until_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (syncer, fail) = failing(SyncKind::Journal);
    let (storage, feeds) = open_with(dir.path(), Retention::default(), syncer);
    write(&storage, 0, b"first version");
    let first = fs::read(share_file(dir.path())).unwrap();
    let head = feeds.head();

    fail.store(true, Ordering::SeqCst);
    assert_needs_restart(try_write(&storage, 0, b"second version"));
    // The disk answers again, but a sync after a failed one proves nothing.
    fail.store(false, Ordering::SeqCst);
    assert_needs_restart(try_write(&storage, 0, b"third version!"));
    assert_needs_restart(try_write(&storage, 100, b"elsewhere"));
    assert_eq!(feeds.head(), head, "nothing unsynced is published");
    // Reads go on: the failed write was applied (its record is in the journal file,
    // so the share files equal the journal applied in order).
    assert_eq!(data(&storage), b"second version");
    drop((storage, feeds));

    // The page cache lost the share file's write; the journal on disk has its record.
    fs::write(share_file(dir.path()), &first).unwrap();
    let (storage, feeds) = open(dir.path(), Retention::default());
    assert_eq!(
        data(&storage),
        b"second version",
        "replayed from the journal"
    );
    assert_eq!(feeds.head().seq, 2);
    write(&storage, 0, b"after the restart");
    assert_eq!(data(&storage), b"after the restart");
}

#[test]
fn a_failed_sync_stops_the_checkpoint_and_the_restart_replays_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = || super::records::read_checkpoint(&dir.path().join("swamp-feed"));
    let (syncer, fail) = failing(SyncKind::Journal);
    let (storage, feeds) = open_with(dir.path(), Retention::default(), syncer);
    // 22 MiB of redo each: the third write makes a checkpoint due (over 64 MiB).
    let chunk = |b: u8| vec![b; 22 << 20];
    write(&storage, 0, &chunk(b'a'));
    write(&storage, 22 << 20, &chunk(b'b'));
    assert_eq!(checkpoint(), 0, "no checkpoint yet");
    fail.store(true, Ordering::SeqCst);
    assert_needs_restart(try_write(&storage, 44 << 20, &chunk(b'c')));
    assert_eq!(
        checkpoint(),
        0,
        "the checkpoint did not cover the unsynced record"
    );
    fail.store(false, Ordering::SeqCst);
    assert_needs_restart(try_write(&storage, 0, b"x"));
    drop((storage, feeds));

    // Every in-place write since the start is lost; the journal has all three.
    fs::write(share_file(dir.path()), b"garbage").unwrap();
    let (storage, _feeds) = open(dir.path(), Retention::default());
    let got = data(&storage);
    assert_eq!(got.len(), 66 << 20);
    assert!(got[..22 << 20].iter().all(|&b| b == b'a'));
    assert!(got[22 << 20..44 << 20].iter().all(|&b| b == b'b'));
    assert!(got[44 << 20..].iter().all(|&b| b == b'c'));
}

#[test]
fn a_clean_shutdown_checkpoints_so_a_later_change_by_another_server_is_kept() {
    // Swamp writes two versions and stops; Tahoe's own storage node (a roll-back)
    // then changes the share, here back to the first version's bytes; Swamp starts
    // again. The second version's redo must not be replayed over Tahoe's write.
    let run = |clean_shutdown: bool| {
        let dir = tempfile::tempdir().unwrap();
        let (storage, feeds) = open(dir.path(), Retention::default());
        write(&storage, 0, b"first version");
        let first = fs::read(share_file(dir.path())).unwrap();
        write(&storage, 0, b"second version");
        let checkpoint = || super::records::read_checkpoint(&dir.path().join("swamp-feed"));
        assert_eq!(checkpoint(), 0, "no checkpoint due while running");
        if clean_shutdown {
            storage.checkpoint_at_shutdown();
            assert_eq!(checkpoint(), feeds.head().seq);
            storage.checkpoint_at_shutdown(); // nothing left: no change
            assert_eq!(checkpoint(), feeds.head().seq);
        }
        drop((storage, feeds));
        fs::write(share_file(dir.path()), &first).unwrap();
        let (storage, _feeds) = open(dir.path(), Retention::default());
        data(&storage)
    };
    assert_eq!(run(true), b"first version");
    // Without it (a crash), the redo is replayed, as recovery must.
    assert_eq!(run(false), b"second version");
}

#[test]
fn a_failed_checkpoint_sync_stops_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let (syncer, fail) = failing(SyncKind::Storage);
    let (storage, _feeds) = open_with(dir.path(), Retention::default(), syncer);
    fail.store(true, Ordering::SeqCst);
    let chunk = |b: u8| vec![b; 22 << 20];
    write(&storage, 0, &chunk(b'a'));
    write(&storage, 22 << 20, &chunk(b'b'));
    // Acknowledged (its journal sync succeeded); then the checkpoint's syncfs fails.
    write(&storage, 44 << 20, &chunk(b'c'));
    assert_eq!(
        super::records::read_checkpoint(&dir.path().join("swamp-feed")),
        0
    );
    fail.store(false, Ordering::SeqCst);
    assert_needs_restart(try_write(&storage, 0, b"x"));
}

/// A syncer that parks the first sync of `kind` after `arm` until released, and
/// counts the syncs of `kind`.
pub(super) struct Gate {
    pub(super) armed: AtomicBool,
    pub(super) syncs: AtomicUsize,
    state: Mutex<(bool, bool)>, // (entered, released)
    changed: Condvar,
}

impl Gate {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            armed: AtomicBool::new(false),
            syncs: AtomicUsize::new(0),
            state: Mutex::new((false, false)),
            changed: Condvar::new(),
        })
    }

    pub(super) fn syncer(self: &Arc<Self>, kind: SyncKind) -> Arc<Syncer> {
        let gate = Arc::clone(self);
        Arc::new(Syncer::failing(move |k| {
            if k == kind {
                gate.syncs.fetch_add(1, Ordering::SeqCst);
            }
            if k == kind && gate.armed.swap(false, Ordering::SeqCst) {
                let mut state = gate.state.lock().unwrap();
                state.0 = true;
                gate.changed.notify_all();
                while !state.1 {
                    state = gate.changed.wait(state).unwrap();
                }
            }
            Ok(())
        }))
    }

    pub(super) fn wait_entered(&self) {
        let state = self.state.lock().unwrap();
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, Duration::from_secs(30), |s| !s.0)
            .unwrap();
        assert!(
            !timeout.timed_out() && state.0,
            "the sync was never reached"
        );
    }

    pub(super) fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

/// Runs `f` on another thread; `None` if it did not finish within 10 seconds.
pub(super) fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10)).ok()
}

#[test]
fn compaction_syncs_without_holding_the_log_or_hub_lock() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new();
    let (storage, feeds) = open_with(dir.path(), short(), gate.syncer(SyncKind::File));
    // Just below a compaction: more than 2 * 2 + 1024 records in the file triggers it.
    for i in 0..1028u32 {
        write(&storage, 0, format!("{i:06}").as_bytes());
    }
    gate.armed.store(true, Ordering::SeqCst);
    let writer = {
        let storage = Arc::clone(&storage);
        std::thread::spawn(move || write(&storage, 0, b"triggers it"))
    };
    // The compaction's first sync (the index file) is parked.
    gate.wait_entered();
    let hub = Arc::clone(&feeds);
    let other = Arc::clone(&storage);
    let answered = within_10s(move || {
        // The locks are free: subscribing, reading the head and other writers go on.
        let subscriber = hub.open(crate::feeds::Transport::WebSocket).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let events = rt
            .block_on(subscriber.subscribe(&[SI], None, false))
            .unwrap();
        let other_slot = StorageIndex::from_bytes([10; 16]);
        assert!(try_write_to(&other, &other_slot, 0, b"x").unwrap().success);
        (events.len(), hub.head())
    });
    gate.release();
    writer.join().unwrap();
    let (events, head) = answered.expect("a lock was held during the compaction's sync");
    assert_eq!(events, 1);
    assert_eq!(head.seq, 1030, "the other writer committed meanwhile");
    // Writes after the compaction, and a restart, see every record.
    write(&storage, 0, b"after");
    drop((storage, feeds));
    let (storage, feeds) = open(dir.path(), short());
    assert_eq!(feeds.head().seq, 1031);
    assert_eq!(data(&storage), b"afterers it");
}

#[test]
fn writers_that_append_during_a_sync_wait_for_it_then_share_one() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, storage, feeds) = open_with_journal_gate(dir.path());
    let journal = dir.path().join("swamp-feed/journal");
    let records = || super::records::read(&journal).map_or(0, |r| r.records.len());
    gate.armed.store(true, Ordering::SeqCst);
    let before = gate.syncs.load(Ordering::SeqCst);
    let (tx, rx) = mpsc::channel();
    let writer = |si: u8| {
        let storage = Arc::clone(&storage);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let done = try_write_to(&storage, &StorageIndex::from_bytes([si; 16]), 0, b"x");
            tx.send(si).unwrap();
            done
        })
    };
    let leader = writer(30);
    gate.wait_entered();
    let followers = [writer(31), writer(32)];
    // Both followers append while the leader's sync is parked (the log's lock is free).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while records() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the followers never appended"
        );
        std::thread::yield_now();
    }
    assert!(rx.try_recv().is_err(), "acknowledged before its sync");
    assert_eq!(feeds.head().seq, 1, "nothing unsynced is published");
    gate.release();
    for w in followers.into_iter().chain([leader]) {
        assert!(w.join().unwrap().unwrap().success);
    }
    // The leader's sync covered only its own record; one more covered both followers.
    assert_eq!(gate.syncs.load(Ordering::SeqCst) - before, 2);
    assert_eq!(feeds.head().seq, 4);
}

#[test]
fn a_snapshot_does_not_block_an_async_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, storage, feeds) = open_with_journal_gate(dir.path());
    // A writer holds the storage index's lock while its journal sync is parked, so a
    // snapshot of that storage index waits for it.
    gate.armed.store(true, Ordering::SeqCst);
    let writer = {
        let storage = Arc::clone(&storage);
        std::thread::spawn(move || write(&storage, 0, b"during"))
    };
    gate.wait_entered();
    let releaser = Arc::clone(&gate);
    let events = within_10s(move || {
        // One worker thread: if the snapshot blocked it, the release below never runs.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let subscriber = feeds.open(crate::feeds::Transport::WebSocket).unwrap();
            let snapshot = subscriber.subscribe(&[SI], None, true);
            tokio::pin!(snapshot);
            tokio::select! {
                biased;
                done = &mut snapshot => panic!("the snapshot did not wait for the writer: {done:?}"),
                () = tokio::task::yield_now() => releaser.release(),
            }
            snapshot.await.unwrap()
        })
    });
    gate.release();
    writer.join().unwrap();
    let events = events.expect("the snapshot blocked the async worker");
    // The snapshot shows the write it waited for, then `synced` at its cursor.
    match events.as_slice() {
        [
            swamp_proto::feed::FeedEvent::Snapshot { length, .. },
            swamp_proto::feed::FeedEvent::Synced { cursor },
        ] => {
            assert_eq!(*length, 6);
            assert_eq!(cursor.seq, 2);
        }
        other => panic!("{other:?}"),
    }
    drop(storage);
}

#[test]
fn concurrent_writers_lose_nothing_across_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, feeds) = open(dir.path(), short());
    let journal = dir.path().join("swamp-feed/journal");
    let writers: Vec<_> = (0..4u8)
        .map(|w| {
            let storage = Arc::clone(&storage);
            std::thread::spawn(move || {
                let si = StorageIndex::from_bytes([20 + w; 16]);
                for i in 0..700u32 {
                    let data = format!("{w}:{i:06}");
                    assert!(
                        try_write_to(&storage, &si, 0, data.as_bytes())
                            .unwrap()
                            .success
                    );
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(feeds.head().seq, 2800);
    assert!(
        dir.path().join("swamp-feed/latest").exists(),
        "compacted while writing"
    );
    // No checkpoint yet: compaction kept every record's redo.
    let kept = super::records::read(&journal).unwrap().records.len();
    assert_eq!(kept, 2800);
    drop((storage, feeds));
    // Every in-place write is lost: the journal alone brings back the last version.
    for w in 0..4u8 {
        let path = crate::backend::Layout::new(dir.path())
            .share_path(&StorageIndex::from_bytes([20 + w; 16]), ShareNumber::new(0));
        fs::write(path, b"garbage").unwrap();
    }
    let (storage, feeds) = open(dir.path(), short());
    assert_eq!(feeds.head().seq, 2800);
    for w in 0..4u8 {
        let (_, got) = storage
            .read_share(
                ShareKind::Mutable,
                &StorageIndex::from_bytes([20 + w; 16]),
                ShareNumber::new(0),
                0,
                u64::MAX,
            )
            .unwrap();
        assert_eq!(got, format!("{w}:{:06}", 699).into_bytes());
    }
}
