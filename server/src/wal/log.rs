//! The journal file and its bookkeeping: sequence numbers, entries waiting for their
//! sync, redo waiting for a checkpoint, and the steps of a compaction. No locking of its
//! own: `commit.rs` holds it under the log's lock.
//!
//! Recovery at open ([`Log::open`]): the redo logged after the last checkpoint is
//! applied first; a torn tail (crash mid-append) is cut off quietly; damage in the
//! middle is a loud recovery that starts a new epoch. Then what the files hold for the
//! feeds' history is handed over ([`Saved`]).

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::appender::Appender;
use super::change::Change;
use super::compact::Compaction;
use super::durable::{Syncer, write_durably};
use super::publish::{LatestFile, Saved};
use super::records::{self, Entry};
use super::redo::ShareRedo;
use crate::backend::clock::Clock;

/// Applies recovered redo to the share files, in order, and makes it durable.
pub type Recover<'a> = &'a dyn Fn(&[ShareRedo]) -> io::Result<()>;

/// Checkpoint once this many bytes of redo are waiting, or this many records.
const CHECKPOINT_BYTES: usize = 64 * 1024 * 1024;
const CHECKPOINT_RECORDS: usize = 100_000;

/// Compaction copies records appended meanwhile outside the log's lock this many times
/// at most, then once more under it (`compact.rs`).
pub const CATCH_UP_ROUNDS: usize = 3;

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

/// The journal file and its bookkeeping.
pub struct Log {
    dir: PathBuf,
    epoch: u64,
    file: Appender,
    /// The last sequence number written.
    head: u64,
    records_in_file: usize,
    clock: Clock,
    syncer: Arc<Syncer>,
    /// Written, waiting for a sync before they are published, in order.
    unpublished: VecDeque<Entry>,
    /// Redo logged after the checkpoint, with its entry (kept for compaction).
    pending_redo: VecDeque<(Entry, Arc<ShareRedo>)>,
    /// Bytes of redo in `pending_redo`.
    pending_weight: usize,
    /// First sequence numbers of batches logged ahead whose redo is not yet applied:
    /// no checkpoint may cover them.
    unapplied: BTreeSet<u64>,
    /// A checkpoint is running.
    checkpointing: bool,
    /// A compaction is running (see `compact.rs`).
    compacting: bool,
    /// Records the last compaction left in the file.
    compacted_to: usize,
    /// A compaction renamed a new journal into place; the directory is not synced yet.
    dir_unsynced: bool,
}

impl Log {
    /// Opens (or starts) the journal under `storage_dir/swamp-feed`. First, the redo
    /// logged after the last checkpoint is handed to `recover` (which applies it and
    /// makes it durable) and the checkpoint moves to the end of the journal. Returns
    /// the log and what the files hold for the feeds' history.
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
        clock: Clock,
        syncer: Arc<Syncer>,
        recover: Recover<'_>,
    ) -> io::Result<(Self, Saved)> {
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
            return Self::start_epoch(dir, clock, syncer);
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
            None => return Self::start_epoch(dir, clock, syncer),
        };
        let latest = match fs::read(dir.join("latest")) {
            Ok(bytes) => match swamp_proto::v1::decode::<LatestFile>(&bytes) {
                Ok(file) => file,
                Err(_) => {
                    tracing::error!(
                        "feed journal's latest-state file is damaged; starting a new epoch"
                    );
                    return Self::start_epoch(dir, clock, syncer);
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => LatestFile::default(),
            Err(e) => return Err(e),
        };
        let file = Appender::open(&journal_path, read.good_len, read.clean_tail)?;
        let log = Self {
            records_in_file: read.records.len(),
            head: latest.upto.max(last),
            ..Self::empty(dir, epoch, file, clock, syncer)
        };
        let entries = read.records.into_iter().map(|(entry, _)| entry).collect();
        Ok((log, Saved { latest, entries }))
    }

    fn empty(dir: PathBuf, epoch: u64, file: Appender, clock: Clock, syncer: Arc<Syncer>) -> Self {
        Self {
            dir,
            epoch,
            file,
            head: 0,
            records_in_file: 0,
            clock,
            syncer,
            unpublished: VecDeque::new(),
            pending_redo: VecDeque::new(),
            pending_weight: 0,
            unapplied: BTreeSet::new(),
            checkpointing: false,
            compacting: false,
            compacted_to: 0,
            dir_unsynced: false,
        }
    }

    fn start_epoch(dir: PathBuf, clock: Clock, syncer: Arc<Syncer>) -> io::Result<(Self, Saved)> {
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
        Ok((
            Self::empty(dir, epoch, file, clock, syncer),
            Saved::default(),
        ))
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last sequence number written.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Appends changes without syncing; returns their entries. Sync with
    /// [`Log::sync_job`] (group commit: one sync can cover many writers), then take
    /// them with [`Log::take_synced`] to publish them.
    ///
    /// # Errors
    /// If the journal cannot be written, or a sync has failed in this process.
    pub fn write(&mut self, changes: Vec<Change>) -> io::Result<Vec<Entry>> {
        self.write_records(changes.into_iter().map(|c| (c, None)).collect())
    }

    /// The same, for slot changes logged ahead of their in-place write: each record
    /// also carries the redo of its share file, kept until a checkpoint covers it, and
    /// the batch stays unapplied (no checkpoint covers it) until [`Log::applied`].
    ///
    /// # Errors
    /// If the journal cannot be written, or a sync has failed in this process.
    pub fn write_ahead(
        &mut self,
        changes: Vec<(Change, impl Into<Arc<ShareRedo>>)>,
    ) -> io::Result<Vec<Entry>> {
        let entries = self.write_records(
            changes
                .into_iter()
                .map(|(c, r)| (c, Some(r.into())))
                .collect(),
        )?;
        if let Some(first) = entries.first() {
            self.unapplied.insert(first.seq);
        }
        Ok(entries)
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
        if let Some(last) = entries.last() {
            self.head = last.seq;
        }
        self.unpublished.extend(entries.iter().cloned());
        self.records_in_file += entries.len();
        Ok(entries)
    }

    /// The sync that makes everything written so far durable (run it outside the
    /// log's lock). After a compaction, the first one also syncs the directory.
    pub fn sync_job(&mut self) -> SyncJob {
        SyncJob {
            file: self.file.handle(),
            dir: std::mem::take(&mut self.dir_unsynced).then(|| self.dir.clone()),
            syncer: Arc::clone(&self.syncer),
        }
    }

    /// Takes, in order, the written entries up to `synced`: they may be published.
    pub fn take_synced(&mut self, synced: u64) -> Vec<Entry> {
        let n = self
            .unpublished
            .iter()
            .take_while(|e| e.seq <= synced)
            .count();
        self.unpublished.drain(..n).collect()
    }

    /// The redo of the batch logged ahead at `ticket` has been applied. Returns the
    /// sequence number to checkpoint at, if a checkpoint is due now (the caller makes
    /// the share files durable, then writes it, then calls [`Log::checkpointed`]).
    pub fn applied(&mut self, ticket: u64) -> Option<u64> {
        self.unapplied.remove(&ticket);
        // After a failed sync the checkpoint stays where it is: the restart replays
        // everything after it (`durable.rs`).
        let due =
            self.pending_weight > CHECKPOINT_BYTES || self.pending_redo.len() > CHECKPOINT_RECORDS;
        if self.checkpointing || self.syncer.has_failed() || !due {
            return None;
        }
        self.checkpointing = true;
        Some(self.unapplied.first().map_or(self.head, |first| first - 1))
    }

    /// At a clean shutdown: the sequence number to checkpoint at so that the next start
    /// replays nothing already applied, if any redo waits and no checkpoint runs (the
    /// caller proceeds as after [`Log::applied`]).
    pub fn final_checkpoint(&mut self) -> Option<u64> {
        if self.checkpointing || self.syncer.has_failed() || self.pending_redo.is_empty() {
            return None;
        }
        self.checkpointing = true;
        Some(self.unapplied.first().map_or(self.head, |first| first - 1))
    }

    /// The checkpoint [`Log::applied`] asked for is done (`Some(seq)`: durable at
    /// `seq`, so redo up to it is no longer needed) or failed (`None`).
    pub fn checkpointed(&mut self, done: Option<u64>) {
        self.checkpointing = false;
        let Some(seq) = done else { return };
        while self.pending_redo.front().is_some_and(|(e, _)| e.seq <= seq) {
            if let Some((_, redo)) = self.pending_redo.pop_front() {
                self.pending_weight -= redo.weight();
            }
        }
    }

    /// The journal's directory (for the checkpoint file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a compaction should start: the file has grown well past what the
    /// history keeps exactly (`exact` entries, as the publisher says, plus those not
    /// published yet), and none is running, and no sync has failed.
    pub fn compaction_due(&self, exact: usize) -> bool {
        // What the last compaction kept counts too: redo no checkpoint covers stays
        // in the file, and without it a journal of mostly such redo would be
        // rewritten on every commit until the next checkpoint.
        let kept = (exact + self.unpublished.len()).max(self.compacted_to);
        !self.compacting && !self.syncer.has_failed() && self.records_in_file > 2 * kept + 1024
    }

    /// Starts a compaction that keeps `saved` (what the history keeps, from the
    /// publisher), the entries not published yet, and the redo no checkpoint covers.
    /// No I/O; see `compact.rs` for the phases.
    pub fn start_compaction(&mut self, saved: Saved) -> Compaction {
        // Redo not yet covered by a checkpoint must survive compaction, even for
        // entries that have left the history.
        let kept: Vec<&Entry> = saved.entries.iter().chain(&self.unpublished).collect();
        let oldest_kept = kept.first().map_or(u64::MAX, |e| e.seq);
        let mut redo = self.pending_redo.iter().peekable();
        let mut records = Vec::new();
        while let Some((entry, r)) = redo.next_if(|(e, _)| e.seq < oldest_kept) {
            records.push((entry.clone(), Some(Arc::clone(r))));
        }
        for entry in kept {
            let r = redo
                .next_if(|(e, _)| e.seq == entry.seq)
                .map(|(_, r)| Arc::clone(r));
            records.push((entry.clone(), r));
        }
        self.compacting = true;
        Compaction {
            dir: self.dir.clone(),
            latest: saved.latest,
            count: records.len(),
            records,
            source: self.file.handle(),
            copied: self.file.end(),
            head: self.head,
            pending: None,
            tmp: None,
            tmp_len: 0,
            syncer: Arc::clone(&self.syncer),
        }
    }

    /// Phase 3 of a compaction, under the log's lock: if records were appended since
    /// `compaction` last looked, notes them for [`Compaction::copy_pending`] and
    /// returns `false`; with `last_round`, copies them now instead. Once nothing is
    /// missing, puts the new journal in place and returns `true`.
    ///
    /// # Errors
    /// I/O errors; then call [`Log::compaction_failed`].
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

    /// Records in the journal file.
    #[cfg(test)]
    pub fn records_in_file(&self) -> usize {
        self.records_in_file
    }

    /// Redo logged and not yet covered by a checkpoint.
    #[cfg(test)]
    pub fn pending_redo(&self) -> usize {
        self.pending_redo.len()
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
