//! The one hook through which the log hands committed changes to the change feeds, and
//! what it stores on their behalf.
//!
//! The journal file is both the write-ahead log and the feeds' history on disk: records
//! stay in it while a feed may still replay them exactly, and each compaction saves the
//! feeds' latest-state index beside it (the `latest` file). The feeds keep that
//! history in memory (`feeds/history.rs`); the log only stores it. So the feeds are
//! given to `Storage::open` as a [`Publisher`], which is created first and holds
//! nothing of the storage (no `Arc` cycle):
//! - at open, [`Publisher::restore`] gets what the files hold;
//! - after each group commit, [`Publisher::publish`] gets the entries just synced, in
//!   sequence order, never before they are durable;
//! - when the file is compacted, [`Publisher::to_save`] says what to keep.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::records::Entry;

/// Where the log sends committed changes (the change feeds).
///
/// The log calls `publish` and `to_save` while holding its own lock, so calls never
/// overlap and entries arrive in sequence order; an implementation must never call
/// back into the storage from them.
pub trait Publisher: Send + Sync {
    /// Once, at open, before anything is published: the epoch and the history the
    /// files hold (every record of the journal file, in order, and the `latest` file).
    fn restore(&self, epoch: u64, saved: Saved);

    /// Entries synced to disk, in sequence order, each exactly once. The writer that
    /// made them still holds its storage index's lock.
    fn publish(&self, entries: &[Entry]);

    /// How many of the latest entries the history keeps exactly (a compaction keeps at
    /// least as many records; cheap, asked after each publish).
    fn exact_len(&self) -> usize;

    /// What a compaction of the journal file keeps for the history: its exact entries
    /// (consecutive, ending with the last one published) and its latest-state index.
    fn to_save(&self) -> Saved;
}

/// The history as the files hold it.
#[derive(Default)]
pub struct Saved {
    /// The latest-state index as of some sequence number (`latest.upto`).
    pub latest: LatestFile,
    /// Entries of the journal file: at open, every record in file order (older ones
    /// may be kept only for their redo, with gaps between); at compaction, the exact
    /// history.
    pub entries: Vec<Entry>,
}

/// The `latest` file. `times` and `floor` were added later: files without them load
/// with every entry dated at load time and a floor of 0, and older versions ignore them.
#[derive(Default, Serialize, Deserialize)]
pub struct LatestFile {
    /// The index reflects the journal up to this sequence number.
    pub upto: u64,
    /// `(seq, change)` per share.
    pub entries: Vec<(u64, Arc<Change>)>,
    /// When each entry was recorded (Unix seconds), in the same order.
    #[serde(default)]
    pub times: Vec<u64>,
    /// The highest sequence number dropped from the index.
    #[serde(default)]
    pub floor: u64,
}

/// A publisher that keeps no history: storage used without change feeds (tools,
/// tests). Compaction then keeps only the redo no checkpoint covers.
#[cfg(test)]
pub struct NoFeeds;

#[cfg(test)]
impl Publisher for NoFeeds {
    fn restore(&self, _epoch: u64, _saved: Saved) {}

    fn publish(&self, _entries: &[Entry]) {}

    fn exact_len(&self) -> usize {
        0
    }

    fn to_save(&self) -> Saved {
        Saved::default()
    }
}
