//! The latest-state index: for every share that changed, its latest state-changing
//! log entry, so that a cursor older than the exact history is answered with the
//! latest state of what changed after it.
//!
//! It is bounded (`docs/feeds.md`): entries older than a horizon (default 31 days,
//! Tahoe's lease period: a share neither changed nor renewed for that long has likely
//! expired) and, beyond a count (default 250,000 shares: about 50 MB in memory, at
//! about 200 bytes each, and a 35 MB file rewritten at each compaction), the oldest
//! entries are dropped when the journal is compacted. The *floor* remembers the highest
//! sequence number dropped: a cursor below it can no longer be answered without a gap,
//! so it gets a `reset` (`cursor_expired`) instead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use swamp_proto::{ShareNumber, StorageIndex};

use crate::wal::LatestFile;
use crate::wal::records::Entry;

/// How large the index may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexBound {
    /// Entries older than this are dropped.
    pub horizon: Duration,
    /// At most this many entries are kept (the oldest go first).
    pub max_entries: usize,
}

impl Default for IndexBound {
    fn default() -> Self {
        Self {
            horizon: Duration::from_secs(31 * 24 * 3600),
            max_entries: 250_000,
        }
    }
}

/// The index: one ordered map keyed by share, so a storage index's shares are one
/// range (one map per storage index cost a tree node of about 300 bytes each, for the
/// one share a server usually holds of it).
#[derive(Default)]
pub struct LatestIndex {
    map: BTreeMap<(StorageIndex, ShareNumber), Entry>,
    floor: u64,
}

impl LatestIndex {
    /// Loads a saved index; entries with no saved time are dated `now`.
    pub fn from_file(file: LatestFile, now: u64) -> Self {
        let mut index = Self {
            floor: file.floor,
            ..Self::default()
        };
        let times = if file.times.len() == file.entries.len() {
            file.times
        } else {
            vec![now; file.entries.len()]
        };
        for ((seq, change), time) in file.entries.into_iter().zip(times) {
            index.insert(Entry { seq, time, change });
        }
        index
    }

    /// A copy to save (cheap: the changes are shared).
    pub fn to_file(&self, upto: u64) -> LatestFile {
        let mut entries = Vec::with_capacity(self.map.len());
        let mut times = Vec::with_capacity(self.map.len());
        for e in self.map.values() {
            entries.push((e.seq, Arc::clone(&e.change)));
            times.push(e.time);
        }
        LatestFile {
            upto,
            entries,
            times,
            floor: self.floor,
        }
    }

    /// Records `entry` as its share's latest state (advisories are not states).
    pub fn insert(&mut self, entry: Entry) {
        if !entry.change.is_state() {
            return;
        }
        let key = (entry.change.storage_index(), entry.change.share_number());
        self.map.insert(key, entry);
    }

    /// Number of shares in the index.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The highest sequence number dropped: cursors below it cannot be answered.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// The latest entries of the shares of `si`.
    pub fn shares(&self, si: &StorageIndex) -> impl Iterator<Item = &Entry> {
        self.map
            .range((*si, ShareNumber::new(0))..=(*si, ShareNumber::new(u8::MAX)))
            .map(|(_, e)| e)
    }

    /// Every entry.
    #[cfg(test)]
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.map.values()
    }

    /// Drops entries past the bound (at `now`); returns how many. The count bound
    /// drops down to nine tenths of the maximum, so that the sort it takes happens at
    /// most once per tenth of the maximum new shares.
    pub fn prune(&mut self, now: u64, bound: &IndexBound) -> usize {
        let horizon = bound.horizon.as_secs();
        let mut cut_seq = 0;
        if self.map.len() > bound.max_entries {
            let mut seqs: Vec<u64> = self.map.values().map(|e| e.seq).collect();
            let keep = bound.max_entries - bound.max_entries / 10;
            let drop = seqs.len() - keep;
            // The `drop` lowest sequence numbers go: everything up to the largest of them.
            let (_, nth, _) = seqs.select_nth_unstable(drop.saturating_sub(1));
            cut_seq = *nth;
        }
        let before = self.map.len();
        let mut floor = self.floor;
        self.map.retain(|_, e| {
            let keep = e.seq > cut_seq && e.time.saturating_add(horizon) > now;
            if !keep {
                floor = floor.max(e.seq);
            }
            keep
        });
        self.floor = floor;
        before - self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::change::Change;
    use serde::Serialize;

    fn entry(si: u8, shnum: u8, seq: u64, time: u64) -> Entry {
        Entry {
            seq,
            time,
            change: Arc::new(Change::SlotDeleted {
                si: StorageIndex::from_bytes([si; 16]),
                shnum: ShareNumber::new(shnum),
            }),
        }
    }

    #[test]
    fn the_count_bound_drops_the_oldest_and_raises_the_floor() {
        let mut index = LatestIndex::default();
        for i in 0..100u8 {
            index.insert(entry(i, 0, u64::from(i) + 1, 1000));
        }
        // A newer state of the same share replaces, not adds.
        index.insert(entry(0, 0, 500, 1000));
        assert_eq!(index.len(), 100);
        let bound = IndexBound {
            horizon: Duration::from_secs(3600),
            max_entries: 50,
        };
        assert_eq!(index.prune(1000, &bound), 55);
        assert_eq!(index.len(), 45);
        // Dropped: seqs 2..=56 (share 0 now has seq 500 and is the newest).
        assert_eq!(index.floor(), 56);
        assert!(
            index
                .shares(&StorageIndex::from_bytes([0; 16]))
                .any(|e| e.seq == 500)
        );
        assert_eq!(index.shares(&StorageIndex::from_bytes([55; 16])).count(), 0);
        assert_eq!(index.shares(&StorageIndex::from_bytes([56; 16])).count(), 1);
        assert_eq!(index.prune(1000, &bound), 0, "within the bound now");
    }

    #[test]
    fn the_horizon_drops_old_entries_and_the_file_keeps_times_and_floor() {
        let mut index = LatestIndex::default();
        index.insert(entry(1, 0, 1, 100));
        index.insert(entry(2, 0, 2, 5000));
        let bound = IndexBound {
            horizon: Duration::from_secs(1000),
            max_entries: 10,
        };
        assert_eq!(index.prune(1100, &bound), 1);
        assert_eq!(index.floor(), 1);
        let bytes = swamp_proto::v1::encode(&index.to_file(2));
        let back = LatestIndex::from_file(swamp_proto::v1::decode(&bytes).unwrap(), 9999);
        assert_eq!(back.floor(), 1);
        assert_eq!(back.len(), 1);
        let kept: Vec<_> = back
            .shares(&StorageIndex::from_bytes([2; 16]))
            .map(|e| (e.seq, e.time))
            .collect();
        assert_eq!(kept, vec![(2, 5000)]);
    }

    #[test]
    fn an_index_file_without_times_or_floor_still_loads() {
        #[derive(Serialize)]
        struct Old {
            upto: u64,
            entries: Vec<(u64, Change)>,
        }
        let old = Old {
            upto: 3,
            entries: vec![(3, (*entry(1, 2, 3, 0).change).clone())],
        };
        let file: LatestFile = swamp_proto::v1::decode(&swamp_proto::v1::encode(&old)).unwrap();
        let index = LatestIndex::from_file(file, 77);
        assert_eq!(index.floor(), 0);
        let got: Vec<_> = index
            .shares(&StorageIndex::from_bytes([1; 16]))
            .map(|e| (e.seq, e.time))
            .collect();
        assert_eq!(got, vec![(3, 77)]);
    }
}
