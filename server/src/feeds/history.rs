//! The feeds' history of committed changes, in memory: what a subscriber resuming from
//! a cursor is sent.
//!
//! Two tiers (CouchDB's lesson): a bounded ring of exact events (at least the last
//! `min_events` and the last `min_age`), for exact replay; and, for every share that
//! changed within the index's bound (`index.rs`), its latest state and the sequence
//! number of that change, so a cursor of the current epoch is answered with the latest
//! state of what changed after it (or, past the bound, with a `reset`). Only a lost,
//! reset or damaged log changes the epoch.
//!
//! The history holds only published entries (synced, `crate::wal::commit`). On disk it
//! is the log's: rebuilt from the journal file and the `latest` file at open
//! ([`History::restore`]), saved by the log's compaction ([`History::prune_and_save`]).

use std::collections::VecDeque;
use std::time::Duration;

use swamp_proto::StorageIndex;
use swamp_proto::feed::{Cursor, ResetReason};

use super::index::{IndexBound, LatestIndex};
use crate::backend::Clock;
use crate::wal::Saved;
use crate::wal::records::Entry;

/// How much history to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Keep at least this many events.
    pub min_events: usize,
    /// Keep every event younger than this.
    pub min_age: Duration,
    /// The bound of the latest-state index.
    pub index: IndexBound,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            min_events: 10_000,
            min_age: Duration::from_secs(600),
            index: IndexBound::default(),
        }
    }
}

/// What resuming from a cursor yields.
#[derive(Debug)]
pub enum Backlog {
    /// Every event after the cursor, exactly (filtered to the subscriptions).
    Exact(Vec<Entry>),
    /// The latest state of every followed share that changed after the cursor,
    /// ordered by sequence number (intermediate versions coalesced).
    Coalesced(Vec<Entry>),
    /// The cursor is from another epoch, ahead of the history, or older than the
    /// latest-state index's bound.
    Reset(ResetReason),
}

/// The history.
pub struct History {
    epoch: u64,
    /// The last entry published: subscribers see up to here.
    head: u64,
    ring: VecDeque<Entry>,
    /// Per share: the latest state-changing entry (bounded).
    latest: LatestIndex,
    retention: Retention,
    clock: Clock,
}

impl History {
    /// An empty history (epoch 0) until [`History::restore`].
    pub fn new(retention: Retention, clock: Clock) -> Self {
        Self {
            epoch: 0,
            head: 0,
            ring: VecDeque::new(),
            latest: LatestIndex::default(),
            retention,
            clock,
        }
    }

    /// Changes how much history is kept (a reload); applied as the history next grows
    /// or is saved.
    pub fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
    }

    /// Rebuilds the history from what the log's files hold.
    pub fn restore(&mut self, epoch: u64, saved: Saved) {
        let upto = saved.latest.upto;
        let mut latest = LatestIndex::from_file(saved.latest, (self.clock)());
        let mut head = upto;
        let mut ring: VecDeque<Entry> = VecDeque::new();
        for entry in saved.entries {
            if entry.seq > upto {
                latest.insert(entry.clone());
            }
            head = head.max(entry.seq);
            // The exact history is the consecutive run at the end: a compacted journal
            // starts with older records kept only for their redo (already replayed),
            // and an exact answer must not skip what lies between.
            if ring.back().is_some_and(|last| last.seq + 1 != entry.seq) {
                ring.clear();
            }
            ring.push_back(entry);
        }
        self.epoch = epoch;
        self.head = head;
        self.ring = ring;
        self.latest = latest;
        self.trim();
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The cursor after the last change subscribers can see.
    pub fn head(&self) -> Cursor {
        Cursor {
            epoch: self.epoch,
            seq: self.head,
        }
    }

    /// Adds published entries, in sequence order.
    pub fn extend<'a>(&mut self, entries: impl IntoIterator<Item = &'a Entry>) {
        for entry in entries {
            self.latest.insert(entry.clone());
            self.head = entry.seq;
            self.ring.push_back(entry.clone());
        }
        self.trim();
    }

    fn trim(&mut self) {
        let now = (self.clock)();
        let min_age = self.retention.min_age.as_secs();
        while self.ring.len() > self.retention.min_events
            && self
                .ring
                .front()
                .is_some_and(|e| e.time.saturating_add(min_age) <= now)
        {
            self.ring.pop_front();
        }
    }

    /// Number of events in the exact ring.
    pub fn exact_len(&self) -> usize {
        self.ring.len()
    }

    /// What the log's compaction saves: the exact ring and the latest-state index,
    /// bounded first (entries past its bound are dropped and raise its floor).
    pub fn prune_and_save(&mut self) -> Saved {
        let dropped = self.latest.prune((self.clock)(), &self.retention.index);
        if dropped > 0 {
            tracing::info!(
                dropped,
                kept = self.latest.len(),
                floor = self.latest.floor(),
                "dropped old entries from the feed's latest-state index"
            );
        }
        Saved {
            latest: self.latest.to_file(self.head),
            entries: self.ring.iter().cloned().collect(),
        }
    }

    /// What a subscriber resuming after `since` must receive, for the storage indexes
    /// `follows` accepts.
    #[cfg(test)]
    pub fn backlog(&self, since: Cursor, follows: impl Fn(&StorageIndex) -> bool) -> Backlog {
        self.answer(since, &follows, || {
            self.latest
                .entries()
                .filter(|e| follows(&e.change.storage_index()))
                .cloned()
                .collect()
        })
    }

    /// The same, for a subscriber that follows an explicit list of storage indexes
    /// (only their entries of the index are looked at).
    pub fn backlog_for(&self, since: Cursor, sis: &[StorageIndex]) -> Backlog {
        let set: std::collections::HashSet<&StorageIndex> = sis.iter().collect();
        self.answer(since, &|si| set.contains(si), || {
            sis.iter()
                .flat_map(|si| self.latest.shares(si))
                .cloned()
                .collect()
        })
    }

    /// Decides how to answer `since`; `followed_states` gives the index entries of
    /// the followed shares, asked for only when the answer is coalesced.
    fn answer(
        &self,
        since: Cursor,
        follows: &dyn Fn(&StorageIndex) -> bool,
        followed_states: impl FnOnce() -> Vec<Entry>,
    ) -> Backlog {
        if since.epoch != self.epoch {
            return Backlog::Reset(ResetReason::EpochChanged);
        }
        if since.seq > self.head {
            return Backlog::Reset(ResetReason::CursorAhead);
        }
        let oldest = self.ring.front().map_or(self.head + 1, |e| e.seq);
        if since.seq + 1 >= oldest {
            let skip = (since.seq + 1 - oldest) as usize;
            return Backlog::Exact(
                self.ring
                    .iter()
                    .skip(skip)
                    .filter(|e| follows(&e.change.storage_index()))
                    .cloned()
                    .collect(),
            );
        }
        if since.seq < self.latest.floor() {
            // Some state changed after `since` may have been dropped from the index.
            return Backlog::Reset(ResetReason::CursorExpired);
        }
        let mut entries = followed_states();
        entries.retain(|e| e.seq > since.seq);
        entries.sort_by_key(|e| e.seq);
        Backlog::Coalesced(entries)
    }
}
