//! Crash recovery of slot writes logged ahead in the journal, on real files: a torn or
//! missing in-place write is repaired at the next start, whatever the journal went
//! through meanwhile (compaction, checkpoints).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret, WriteEnabler};
use swamp_proto::v1::ShareKind;
use swamp_proto::v1::mutable::{TestWriteVectors, ValidReadTestWrite, WriteVector};
use swamp_proto::{ShareNumber, StorageIndex};

use super::journal::Retention;
use super::{FeedSettings, Feeds};
use crate::backend::{LeaseGrant, Storage, StorageSettings, system_clock};

const SI: StorageIndex = StorageIndex::from_bytes([9; 16]);

fn open(dir: &Path, retention: Retention) -> (Arc<Storage>, Arc<Feeds>) {
    let storage = Arc::new(
        Storage::open(
            dir,
            StorageSettings {
                nodeid: [1; 20],
                reserved_space: 0,
                readonly: false,
                direct_upload_writes: true,
                clock: system_clock(),
            },
        )
        .unwrap(),
    );
    let feeds = Feeds::attach(
        Arc::clone(&storage),
        FeedSettings {
            retention,
            ..FeedSettings::default()
        },
    )
    .unwrap();
    (storage, feeds)
}

fn write(storage: &Storage, offset: u64, data: &[u8]) {
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
    let grant = LeaseGrant {
        owner: 1,
        renew: LeaseRenewSecret::from_bytes([3; 32]),
        cancel: LeaseCancelSecret::from_bytes([4; 32]),
        expiry: 2_000_000_000,
        nodeid: [1; 20],
    };
    let outcome = storage
        .read_test_write(
            &SI,
            &WriteEnabler::from_bytes([2; 32]),
            &grant,
            &ValidReadTestWrite {
                shares,
                read_vector: Vec::new(),
            },
        )
        .unwrap();
    assert!(outcome.success);
}

fn data(storage: &Storage) -> Vec<u8> {
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
    let journal = dir.path().join("swamp-feed/journal");
    let mut largest = 0;
    for i in 0..1200u32 {
        write(
            &storage,
            u64::from(i % 50) * 10,
            format!("{i:010}").as_bytes(),
        );
        largest = largest.max(fs::metadata(&journal).unwrap().len());
    }
    assert!(
        fs::metadata(&journal).unwrap().len() < largest,
        "the journal was compacted"
    );
    let expected = data(&storage);
    // Every in-place write since the start is lost.
    fs::write(share_file(dir.path()), b"garbage").unwrap();
    drop((storage, feeds));
    let (storage, _feeds) = open(dir.path(), short());
    assert_eq!(data(&storage), expected);
}
