//! The change journal: every committed change, numbered, on disk, plus a per-share
//! "latest state" index.
//!
//! Two tiers of history (CouchDB's lesson): a bounded ring of exact events (at least
//! the last `min_events` and the last `min_age`), for exact replay; and, for every share
//! that changed within the index's bound (`index.rs`), its latest state and the
//! sequence number of that change, so a cursor of the current epoch is answered with
//! the latest state of what changed after it (or, past the bound, with a `reset`).
//! Only a lost, reset or damaged journal changes the epoch.
//!
//! Files, under `<storage>/swamp-feed/`:
//! - `epoch`: 16 hex digits, made once;
//! - `journal`: records `length | 4-byte SHA-256 prefix | CBOR (seq, time, change)`,
//!   appended (into zero-filled space allocated ahead, `appender.rs`) and synced before
//!   the write they record is acknowledged; a torn tail (crash mid-append) is cut off
//!   at start, damage in the middle is a loud recovery (see [`Journal::open`]); format
//!   in `records.rs`;
//! - `latest`: the latest-state index as of a sequence number, written when the journal
//!   is compacted (then the journal keeps only the ring; `compact.rs`);
//! - `checkpoint`: slot changes are logged here *ahead* of their in-place write, with
//!   their redo (`records.rs`, `backend/redo.rs`); redo after the checkpoint is replayed
//!   at start, before anything else.
//!
//! Every sync goes through one [`Syncer`]: after a failed one, nothing more is written
//! (`durable.rs`).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use swamp_proto::StorageIndex;
use swamp_proto::feed::Cursor;

use super::appender::Appender;
use super::compact::Compaction;
use super::durable::{Syncer, write_durably};
use super::index::{IndexBound, LatestFile, LatestIndex};
use super::records::{self, Entry};
use crate::backend::Clock;
use crate::backend::change::Change;
use crate::backend::redo::ShareRedo;

/// Applies recovered redo to the share files, in order, and makes it durable.
pub type Recover<'a> = &'a dyn Fn(&[ShareRedo]) -> io::Result<()>;

/// Checkpoint once this many bytes of redo are waiting, or this many records.
const CHECKPOINT_BYTES: usize = 64 * 1024 * 1024;
const CHECKPOINT_RECORDS: usize = 100_000;

/// Compaction copies records appended meanwhile outside the hub's lock this many times
/// at most, then once more under it (`compact.rs`).
pub const CATCH_UP_ROUNDS: usize = 3;

/// How much history to keep.
#[derive(Clone, Debug)]
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
    /// The cursor is from another epoch, ahead of the journal, or older than the
    /// latest-state index's bound.
    Reset(swamp_proto::feed::ResetReason),
}

/// A group commit's sync: the journal file current when it starts and, after a
/// compaction renamed a new journal into place, its directory.
pub struct SyncJob {
    file: Arc<File>,
    dir: Option<PathBuf>,
    syncer: Arc<Syncer>,
}

impl SyncJob {
    /// Syncs.
    ///
    /// # Errors
    /// The "needs a restart" error once any sync has failed.
    pub fn run(&self) -> io::Result<()> {
        self.syncer.sync_data(&self.file)?;
        if let Some(dir) = &self.dir {
            self.syncer.sync_all(&File::open(dir)?)?;
        }
        Ok(())
    }
}

/// The journal and its indexes.
pub struct Journal {
    dir: PathBuf,
    epoch: u64,
    file: Appender,
    head: u64,
    /// Changes up to here are synced and published; subscribers see only these.
    visible: u64,
    ring: VecDeque<Entry>,
    /// Per share: the latest state-changing entry (bounded).
    latest: LatestIndex,
    records_in_file: usize,
    retention: Retention,
    clock: Clock,
    syncer: Arc<Syncer>,
    /// Redo logged after the checkpoint, with its entry (kept for compaction).
    pending_redo: VecDeque<(Entry, Arc<ShareRedo>)>,
    /// Bytes of redo in `pending_redo`.
    pending_weight: usize,
    /// A compaction is running (see `compact.rs`).
    compacting: bool,
    /// Records the last compaction left in the file.
    compacted_to: usize,
    /// A compaction renamed a new journal into place; the directory is not synced yet.
    dir_unsynced: bool,
}

impl Journal {
    /// Opens (or starts) the journal under `storage_dir/swamp-feed`. First, the redo
    /// logged after the last checkpoint is handed to `recover` (which applies it and
    /// makes it durable) and the checkpoint moves to the end of the journal.
    ///
    /// A damaged record with valid records after it (damage in the middle, not a torn
    /// tail) is a loud recovery: what was lost is logged at error level, the damaged
    /// file is kept as `journal.damaged-<unix time>`, the redo of every valid record
    /// after the checkpoint (before and after the damage) is replayed in order, and a
    /// new epoch starts, so every subscriber resynchronises (its cursor no longer
    /// means "nothing missed").
    ///
    /// # Errors
    /// I/O errors (from `recover` too); a damaged `latest` file starts a new epoch
    /// instead.
    pub fn open(
        storage_dir: &Path,
        retention: Retention,
        clock: Clock,
        syncer: Arc<Syncer>,
        recover: Recover<'_>,
    ) -> io::Result<Self> {
        let dir = storage_dir.join("swamp-feed");
        fs::create_dir_all(&dir)?;
        let journal_path = dir.join("journal");
        let read = records::read(&journal_path)?;
        let checkpoint = records::read_checkpoint(&dir);
        let redo: Vec<ShareRedo> = read
            .records
            .iter()
            .filter(|(e, _)| e.seq > checkpoint)
            .filter_map(|(_, r)| r.clone())
            .collect();
        for damage in &read.damage {
            tracing::error!(
                bytes = format!("{}..{}", damage.start, damage.end),
                last_good_seq = damage.seq_before,
                next_good_seq = damage.seq_after,
                lost_seqs = format!("{}..{}", damage.seq_before + 1, damage.seq_after),
                "feed journal is damaged in the middle: the records in this byte range are \
                 lost; replaying every valid record and starting a new feed epoch"
            );
        }
        if !redo.is_empty() {
            tracing::info!(
                records = redo.len(),
                "replaying slot writes logged after the last checkpoint"
            );
            recover(&redo)?;
        }
        let last = read.records.last().map_or(0, |(e, _)| e.seq);
        if !read.damage.is_empty() {
            let kept = keep_damaged(&dir, clock(), &syncer)?;
            tracing::error!(
                copy = %kept.display(),
                "kept the damaged feed journal for inspection"
            );
            return Self::start_epoch(dir, retention, clock, syncer);
        }
        // A checkpoint past the journal's end (records lost with the page cache) would
        // hide the redo of the records that will reuse those numbers.
        if !redo.is_empty() || checkpoint > last {
            records::write_checkpoint(&dir, last, &syncer)?;
        }
        let epoch_path = dir.join("epoch");
        let epoch = match fs::read_to_string(&epoch_path)
            .ok()
            .and_then(|t| u64::from_str_radix(t.trim(), 16).ok())
        {
            Some(e) => e,
            None => return Self::start_epoch(dir, retention, clock, syncer),
        };
        let (upto, mut latest) = match fs::read(dir.join("latest")) {
            Ok(bytes) => match swamp_proto::v1::decode::<LatestFile>(&bytes) {
                Ok(file) => (file.upto, LatestIndex::from_file(file, clock())),
                Err(_) => {
                    tracing::error!(
                        "feed journal's latest-state file is damaged; starting a new epoch"
                    );
                    return Self::start_epoch(dir, retention, clock, syncer);
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, LatestIndex::default()),
            Err(e) => return Err(e),
        };
        let file = Appender::open(&journal_path, read.good_len, read.clean_tail)?;
        let records_in_file = read.records.len();
        let mut head = upto;
        let mut ring: VecDeque<Entry> = VecDeque::new();
        for (entry, _) in read.records {
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
        let mut journal = Self {
            dir,
            epoch,
            file,
            head,
            visible: head,
            ring,
            latest,
            records_in_file,
            retention,
            clock,
            syncer,
            pending_redo: VecDeque::new(),
            pending_weight: 0,
            compacting: false,
            compacted_to: 0,
            dir_unsynced: false,
        };
        journal.trim();
        Ok(journal)
    }

    fn start_epoch(
        dir: PathBuf,
        retention: Retention,
        clock: Clock,
        syncer: Arc<Syncer>,
    ) -> io::Result<Self> {
        let epoch: u64 = rand::random();
        for name in ["journal", "latest", "checkpoint"] {
            match fs::remove_file(dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        write_durably(
            &dir.join("epoch"),
            format!("{epoch:016x}\n").as_bytes(),
            &syncer,
        )?;
        let file = Appender::open(&dir.join("journal"), 0, true)?;
        tracing::info!(epoch = format!("{epoch:016x}"), "started a new feed epoch");
        Ok(Self {
            dir,
            epoch,
            file,
            head: 0,
            visible: 0,
            ring: VecDeque::new(),
            latest: LatestIndex::default(),
            records_in_file: 0,
            retention,
            clock,
            syncer,
            pending_redo: VecDeque::new(),
            pending_weight: 0,
            compacting: false,
            compacted_to: 0,
            dir_unsynced: false,
        })
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The cursor after the last change subscribers can see (synced and published).
    pub fn head(&self) -> Cursor {
        Cursor {
            epoch: self.epoch,
            seq: self.visible,
        }
    }

    /// The syncs every write of this journal goes through.
    pub fn syncer(&self) -> &Arc<Syncer> {
        &self.syncer
    }

    /// Marks changes up to `seq` as synced and published: subscribers see only these.
    pub fn set_visible(&mut self, seq: u64) {
        self.visible = self.visible.max(seq.min(self.head));
    }

    /// Appends changes durably; returns their entries (with sequence numbers).
    ///
    /// # Errors
    /// If the journal cannot be written or synced.
    pub fn append(&mut self, changes: Vec<Change>) -> io::Result<Vec<Entry>> {
        let entries = self.write(changes)?;
        self.sync_job().run()?;
        if let Some(last) = entries.last() {
            self.set_visible(last.seq);
        }
        if let Some(mut compaction) = self.start_compaction() {
            let done = compaction
                .write()
                .and_then(|()| self.catch_up(&mut compaction, true));
            if let Err(e) = done {
                tracing::error!(error = %e, "feed journal compaction failed; will retry");
                self.compaction_failed(compaction);
            }
        }
        Ok(entries)
    }

    /// Appends changes without syncing; returns their entries. Sync with
    /// [`Journal::sync_job`] (group commit: one sync can cover many writers). They
    /// stay invisible to subscribers until [`Journal::set_visible`].
    ///
    /// # Errors
    /// If the journal cannot be written, or a sync has failed in this process.
    pub fn write(&mut self, changes: Vec<Change>) -> io::Result<Vec<Entry>> {
        self.write_records(changes.into_iter().map(|c| (c, None)).collect())
    }

    /// The same, for slot changes logged ahead of their in-place write: each record
    /// also carries the redo of its share file, kept until a checkpoint covers it.
    ///
    /// # Errors
    /// If the journal cannot be written, or a sync has failed in this process.
    pub fn write_ahead(&mut self, changes: Vec<(Change, ShareRedo)>) -> io::Result<Vec<Entry>> {
        self.write_records(
            changes
                .into_iter()
                .map(|(c, r)| (c, Some(Arc::new(r))))
                .collect(),
        )
    }

    fn write_records(
        &mut self,
        changes: Vec<(Change, Option<Arc<ShareRedo>>)>,
    ) -> io::Result<Vec<Entry>> {
        // After a failed sync nothing more is written: it could never be acknowledged.
        self.syncer.check()?;
        let time = (self.clock)();
        let mut buf = Vec::new();
        let mut entries = Vec::with_capacity(changes.len());
        let mut redos = Vec::new();
        for (i, (change, redo)) in changes.into_iter().enumerate() {
            let entry = Entry {
                seq: self.head + 1 + i as u64,
                time,
                change: Arc::new(change),
            };
            records::encode(&entry, redo.as_deref(), &mut buf);
            if let Some(redo) = redo {
                redos.push((entry.clone(), redo));
            }
            entries.push(entry);
        }
        self.file.append(&buf)?;
        for (entry, redo) in redos {
            self.pending_weight += redo.weight();
            self.pending_redo.push_back((entry, redo));
        }
        for entry in &entries {
            self.latest.insert(entry.clone());
            self.head = entry.seq;
            self.ring.push_back(entry.clone());
        }
        self.records_in_file += entries.len();
        self.trim();
        Ok(entries)
    }

    /// The sync that makes everything written so far durable (run it outside the
    /// hub's lock). After a compaction, the first one also syncs the directory.
    pub fn sync_job(&mut self) -> SyncJob {
        SyncJob {
            file: self.file.handle(),
            dir: std::mem::take(&mut self.dir_unsynced).then(|| self.dir.clone()),
            syncer: Arc::clone(&self.syncer),
        }
    }

    /// Whether enough redo is waiting that a checkpoint is due.
    pub fn wants_checkpoint(&self) -> bool {
        self.pending_weight > CHECKPOINT_BYTES || self.pending_redo.len() > CHECKPOINT_RECORDS
    }

    /// The journal's directory (for the checkpoint file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A checkpoint at `seq` is durable: redo up to it is no longer needed.
    pub fn checkpointed(&mut self, seq: u64) {
        while self.pending_redo.front().is_some_and(|(e, _)| e.seq <= seq) {
            if let Some((_, redo)) = self.pending_redo.pop_front() {
                self.pending_weight -= redo.weight();
            }
        }
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

    /// Starts a compaction if the file has grown well past the ring (and none is
    /// running, and no sync has failed): bounds the index, then takes a copy of what
    /// the new journal keeps. No I/O; see `compact.rs` for the phases.
    pub fn start_compaction(&mut self) -> Option<Compaction> {
        // What the last compaction kept counts too: redo no checkpoint covers stays
        // in the file, and without it a journal of mostly such redo would be
        // rewritten on every commit until the next checkpoint.
        let kept = self.ring.len().max(self.compacted_to);
        if self.compacting || self.syncer.has_failed() || self.records_in_file <= 2 * kept + 1024 {
            return None;
        }
        let dropped = self.latest.prune((self.clock)(), &self.retention.index);
        if dropped > 0 {
            tracing::info!(
                dropped,
                kept = self.latest.len(),
                floor = self.latest.floor(),
                "dropped old entries from the feed's latest-state index"
            );
        }
        // Redo not yet covered by a checkpoint must survive compaction, even for
        // entries that have left the ring.
        let oldest_ring = self.ring.front().map_or(u64::MAX, |e| e.seq);
        let mut redo = self.pending_redo.iter().peekable();
        let mut records = Vec::new();
        while let Some((entry, r)) = redo.next_if(|(e, _)| e.seq < oldest_ring) {
            records.push((entry.clone(), Some(Arc::clone(r))));
        }
        for entry in &self.ring {
            let r = redo
                .next_if(|(e, _)| e.seq == entry.seq)
                .map(|(_, r)| Arc::clone(r));
            records.push((entry.clone(), r));
        }
        self.compacting = true;
        Some(Compaction {
            dir: self.dir.clone(),
            latest: self.latest.to_file(self.head),
            count: records.len(),
            records,
            source: self.file.handle(),
            copied: self.file.end(),
            head: self.head,
            pending: None,
            tmp: None,
            tmp_len: 0,
            syncer: Arc::clone(&self.syncer),
        })
    }

    /// Phase 3 of a compaction, under the hub's lock: if records were appended since
    /// `compaction` last looked, notes them for [`Compaction::copy_pending`] and
    /// returns `false`; with `last_round`, copies them now instead. Once nothing is
    /// missing, puts the new journal in place and returns `true`.
    ///
    /// # Errors
    /// I/O errors; then call [`Journal::compaction_failed`].
    pub fn catch_up(&mut self, compaction: &mut Compaction, last_round: bool) -> io::Result<bool> {
        // After a failed sync the journal on disk stays as it is, for the restart.
        self.syncer.check()?;
        let end = self.file.end();
        if end != compaction.copied {
            compaction.pending = Some((end, self.head));
            if !last_round {
                return Ok(false);
            }
            compaction.copy_pending()?;
        }
        let tmp = compaction
            .tmp
            .take()
            .ok_or_else(|| io::Error::other("compaction: journal.tmp not written"))?;
        fs::rename(compaction.tmp_path(), self.dir.join("journal"))?;
        self.file = Appender::adopt(tmp, compaction.tmp_len);
        self.records_in_file = compaction.count;
        self.compacted_to = compaction.count;
        self.compacting = false;
        self.dir_unsynced = true;
        Ok(true)
    }

    /// A compaction failed: the old journal stays; a later one will retry.
    pub fn compaction_failed(&mut self, compaction: Compaction) {
        compaction.discard();
        self.compacting = false;
    }

    /// What a subscriber resuming after `since` must receive, for the storage indexes
    /// `follows` accepts.
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
        use swamp_proto::feed::ResetReason;
        if since.epoch != self.epoch {
            return Backlog::Reset(ResetReason::EpochChanged);
        }
        if since.seq > self.visible {
            return Backlog::Reset(ResetReason::CursorAhead);
        }
        let visible = self.visible;
        let oldest = self.ring.front().map_or(self.head + 1, |e| e.seq);
        if since.seq + 1 >= oldest {
            let skip = (since.seq + 1 - oldest) as usize;
            return Backlog::Exact(
                self.ring
                    .iter()
                    .skip(skip)
                    .filter(|e| e.seq <= visible && follows(&e.change.storage_index()))
                    .cloned()
                    .collect(),
            );
        }
        if since.seq < self.latest.floor() {
            // Some state changed after `since` may have been dropped from the index.
            return Backlog::Reset(ResetReason::CursorExpired);
        }
        let mut entries = followed_states();
        entries.retain(|e| e.seq > since.seq && e.seq <= visible);
        entries.sort_by_key(|e| e.seq);
        Backlog::Coalesced(entries)
    }

    /// Number of events in the exact ring.
    pub fn ring_len(&self) -> usize {
        self.ring.len()
    }
}

/// Moves the damaged journal aside as `journal.damaged-<now>` (durably); returns its
/// path.
fn keep_damaged(dir: &Path, now: u64, syncer: &Syncer) -> io::Result<PathBuf> {
    let mut kept = dir.join(format!("journal.damaged-{now}"));
    let mut n = 1;
    while kept.exists() {
        n += 1;
        kept = dir.join(format!("journal.damaged-{now}-{n}"));
    }
    fs::rename(dir.join("journal"), &kept)?;
    syncer.sync_all(&File::open(dir)?)?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write as _;
    use swamp_proto::ShareNumber;
    use swamp_proto::feed::ResetReason;

    fn change(si: u8, shnum: u8, length: u64) -> Change {
        Change::SlotChanged {
            si: StorageIndex::from_bytes([si; 16]),
            shnum: ShareNumber::new(shnum),
            version: None,
            length,
        }
    }

    fn syncer() -> Arc<Syncer> {
        Arc::new(Syncer::new())
    }

    fn open(dir: &Path, retention: Retention, now: u64) -> Journal {
        Journal::open(dir, retention, clock_at(now), syncer(), &|_| Ok(())).unwrap()
    }

    fn clock_at(t: u64) -> Clock {
        Arc::new(move || t)
    }

    #[test]
    fn survives_reopen_and_answers_any_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            min_events: 2,
            min_age: Duration::ZERO,
            ..Retention::default()
        };
        let mut j = open(dir.path(), retention.clone(), 100);
        let epoch = j.epoch();
        for i in 0..5 {
            j.append(vec![change(1, 0, i), change(2, 0, i)]).unwrap();
        }
        assert_eq!(j.head().seq, 10);
        drop(j);
        let j = open(dir.path(), retention, 200);
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
                assert_eq!(*e[0].change, change(1, 0, 4));
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
        let retention = Retention {
            min_events: 10,
            min_age: Duration::ZERO,
            ..Retention::default()
        };
        let mut j = open(dir.path(), retention.clone(), 100);
        let epoch = j.epoch();
        j.append(vec![change(7, 3, 1)]).unwrap();
        for i in 0..3000 {
            j.append(vec![change(8, 0, i)]).unwrap();
        }
        assert!(j.records_in_file < 3001, "compacted");
        drop(j);
        // A crash mid-append leaves half a record.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("swamp-feed/journal"))
            .unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2]).unwrap();
        drop(f);
        let j = open(dir.path(), retention, 100);
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
    fn losing_the_epoch_file_starts_a_new_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = open(dir.path(), Retention::default(), 1);
        j.append(vec![change(1, 0, 1)]).unwrap();
        let epoch = j.epoch();
        drop(j);
        fs::remove_file(dir.path().join("swamp-feed/epoch")).unwrap();
        let j = open(dir.path(), Retention::default(), 1);
        assert_ne!(j.epoch(), epoch);
        assert_eq!(j.head().seq, 0);
    }

    fn redo(n: u8) -> ShareRedo {
        ShareRedo::delete(StorageIndex::from_bytes([n; 16]), ShareNumber::new(0))
    }

    #[test]
    fn space_allocated_ahead_is_not_a_torn_tail_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swamp-feed/journal");
        let mut j = open(dir.path(), Retention::default(), 1);
        for i in 0..3 {
            j.append(vec![change(1, 0, i)]).unwrap();
        }
        drop(j);
        let allocated = fs::metadata(&path).unwrap().len();
        assert!(allocated >= 1024 * 1024, "allocated ahead: {allocated}");
        let mut j = open(dir.path(), Retention::default(), 1);
        assert_eq!(fs::metadata(&path).unwrap().len(), allocated, "zeros kept");
        for i in 3..5 {
            j.append(vec![change(1, 0, i)]).unwrap();
        }
        drop(j);
        let j = open(dir.path(), Retention::default(), 1);
        assert_eq!(j.head().seq, 5);
        let seqs: Vec<u64> = j.ring.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn only_redo_after_the_checkpoint_is_replayed_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = open(dir.path(), Retention::default(), 1);
        for n in 1..=4 {
            j.write_ahead(vec![(change(n, 0, 1), redo(n))]).unwrap();
            j.sync_job().run().unwrap();
        }
        records::write_checkpoint(j.dir(), 2, &Syncer::new()).unwrap();
        j.checkpointed(2);
        assert_eq!(j.pending_redo.len(), 2);
        drop(j);
        let seen = std::cell::RefCell::new(Vec::new());
        let recover = |r: &[ShareRedo]| {
            seen.borrow_mut().extend_from_slice(r);
            Ok(())
        };
        let reopen = || {
            Journal::open(
                dir.path(),
                Retention::default(),
                clock_at(1),
                syncer(),
                &recover,
            )
        };
        drop(reopen().unwrap());
        assert_eq!(*seen.borrow(), vec![redo(3), redo(4)]);
        seen.borrow_mut().clear();
        drop(reopen().unwrap());
        assert!(
            seen.borrow().is_empty(),
            "the start's replay moved the checkpoint"
        );
    }
}
