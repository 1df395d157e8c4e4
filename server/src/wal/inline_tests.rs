//! Small read-test-writes handled on the request's own thread
//! (`backend/slots_inline.rs`): they share group commits with writers on the blocking
//! pool, lose no update when racing them, wait for a sync without holding their
//! thread, and finish what they logged even when their request is dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use swamp_proto::secrets::WriteEnabler;
use swamp_proto::v1::mutable::{TestVector, TestWriteVectors, ValidReadTestWrite, WriteVector};
use swamp_proto::{ShareNumber, StorageIndex};

use super::wal_tests::{SI, data, grant, open, open_with_journal_gate, write};
use crate::backend::{LeaseGrant, Storage, StorageError, slots::ReadTestWriteOutcome};
use crate::feeds::Retention;

/// Writes `new` as the slot's first 8 bytes if they hold `old` (or the slot is new).
fn swap(old: Option<u64>, new: u64) -> (WriteEnabler, LeaseGrant, ValidReadTestWrite) {
    let test = old
        .map(|old| TestVector {
            offset: 0,
            size: 8,
            specimen: old.to_be_bytes().to_vec(),
        })
        .into_iter()
        .collect();
    let shares = BTreeMap::from([(
        ShareNumber::new(0),
        TestWriteVectors {
            test,
            write: vec![WriteVector {
                offset: 0,
                data: new.to_be_bytes().to_vec(),
            }],
            new_length: None,
        },
    )]);
    let request = ValidReadTestWrite {
        shares,
        read_vector: Vec::new(),
    };
    (WriteEnabler::from_bytes([2; 32]), grant(), request)
}

async fn inline(
    storage: &Arc<Storage>,
    si: StorageIndex,
    old: Option<u64>,
    new: u64,
) -> Result<ReadTestWriteOutcome, StorageError> {
    let (we, grant, request) = swap(old, new);
    storage.read_test_write_inline(si, we, grant, request).await
}

fn counter(storage: &Storage) -> u64 {
    u64::from_be_bytes(data(storage)[..8].try_into().unwrap())
}

/// Adds one to the counter slot `SI`, retrying while others win the race; returns how
/// many attempts lost.
async fn increment(storage: &Arc<Storage>, on_pool: bool) -> u32 {
    let mut lost = 0;
    loop {
        let now = {
            let storage = Arc::clone(storage);
            tokio::task::spawn_blocking(move || counter(&storage))
                .await
                .unwrap()
        };
        let done = if on_pool {
            let storage = Arc::clone(storage);
            tokio::task::spawn_blocking(move || {
                let (we, grant, request) = swap(Some(now), now + 1);
                storage.read_test_write(&SI, &we, &grant, &request)
            })
            .await
            .unwrap()
        } else {
            inline(storage, SI, Some(now), now + 1).await
        };
        if done.unwrap().success {
            return lost;
        }
        lost += 1;
    }
}

#[test]
fn inline_and_pool_writers_racing_on_one_slot_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, feeds) = open(dir.path(), Retention::default());
    write(&storage, 0, &0u64.to_be_bytes());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (writers, each) = (12u64, 40u64);
    let lost: u32 = rt.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let storage = Arc::clone(&storage);
                tokio::spawn(async move {
                    let mut lost = 0;
                    for _ in 0..each {
                        lost += increment(&storage, w % 3 == 0).await;
                    }
                    lost
                })
            })
            .collect();
        let mut lost = 0;
        for task in tasks {
            lost += task.await.unwrap();
        }
        lost
    });
    assert_eq!(counter(&storage), writers * each);
    // One record per successful write, the first one included.
    assert_eq!(feeds.head().seq, 1 + writers * each);
    assert!(lost > 0, "the writers never raced, so this proved nothing");
    drop((storage, feeds));
    let (storage, _feeds) = open(dir.path(), Retention::default());
    assert_eq!(counter(&storage), writers * each, "after a restart too");
}

#[test]
fn an_inline_writer_awaits_its_sync_without_holding_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, storage, feeds) = open_with_journal_gate(dir.path());
    let journal = dir.path().join("swamp-feed/journal");
    let records = || super::records::read(&journal).map_or(0, |r| r.records.len());
    // One runtime thread: if a writer held it while waiting, nothing else would run.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let before = gate.syncs.load(Ordering::SeqCst);
    gate.armed.store(true, Ordering::SeqCst);
    rt.block_on(async {
        let leader = tokio::spawn({
            let storage = Arc::clone(&storage);
            async move { inline(&storage, StorageIndex::from_bytes([40; 16]), None, 1).await }
        });
        let parked = Arc::clone(&gate);
        tokio::task::spawn_blocking(move || parked.wait_entered())
            .await
            .unwrap();
        // The leader's sync is parked; two more writers log on the same thread.
        let followers: Vec<_> = [41u8, 42]
            .into_iter()
            .map(|si| {
                let storage = Arc::clone(&storage);
                tokio::spawn(async move {
                    inline(&storage, StorageIndex::from_bytes([si; 16]), None, 1).await
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while records() < 4 {
            assert!(
                std::time::Instant::now() < deadline,
                "the followers never logged"
            );
            tokio::task::yield_now().await;
        }
        assert!(!leader.is_finished(), "acknowledged before its sync");
        assert_eq!(feeds.head().seq, 1, "nothing unsynced is published");
        gate.release();
        for writer in followers.into_iter().chain([leader]) {
            assert!(writer.await.unwrap().unwrap().success);
        }
    });
    // The leader's sync covered its own record; one more covered both followers.
    assert_eq!(gate.syncs.load(Ordering::SeqCst) - before, 2);
    assert_eq!(feeds.head().seq, 4);
}

#[test]
fn a_dropped_request_still_applies_what_it_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, storage, feeds) = open_with_journal_gate(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    gate.armed.store(true, Ordering::SeqCst);
    rt.block_on(async {
        // Polled until its sync is parked, then dropped, as when a client hangs up.
        let request = inline(&storage, SI, None, 7);
        let parked = Arc::clone(&gate);
        let entered = tokio::task::spawn_blocking(move || parked.wait_entered());
        tokio::select! {
            _ = request => panic!("answered while its sync was parked"),
            entered = entered => entered.unwrap(),
        }
    });
    gate.release();
    // The change it logged is applied and published all the same: a write that tests
    // for it succeeds (it waits for the storage index's lock the dropped one holds).
    let (we, grant, request) = swap(Some(7), 8);
    let after = storage.read_test_write(&SI, &we, &grant, &request).unwrap();
    assert!(after.success, "the dropped request's write was lost");
    assert_eq!(counter(&storage), 8);
    assert_eq!(feeds.head().seq, 3);
}
