//! The log as the storage uses it: group commit, publishing, slot writes logged ahead
//! and applied in place, their repairs, checkpoints and compaction.
//!
//! Group commit: a writer appends under the log's lock (which fixes the order), syncs
//! outside it (one sync covers every writer that appended before it started), then
//! publishes, in sequence order and under the lock, everything synced. Subscribers
//! never see a change before it is durable, and nobody waits on a sync while holding
//! the lock. One writer at a time syncs; the others wait on a condition variable, all
//! woken at once when it is done (not one after another through a mutex held across
//! the sync), and the first whose entries that sync did not cover starts the next.
//! A writer returns only once its own entries are published, and it holds
//! its storage index's lock until then: that is what lets the feeds take a snapshot
//! of a storage index and subscribe to it with no gap and no duplicate
//! (`feeds/hub.rs`). Nothing is acknowledged before it is synced; after a failed sync,
//! nothing more is written (`durable.rs`).

use std::fs::File;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use swamp_proto::{ShareNumber, StorageIndex};

use super::change::Change;
use super::compact::Compaction;
use super::durable::Syncer;
use super::log::{CATCH_UP_ROUNDS, Log};
use super::publish::Publisher;
use super::records::{self, Entry};
use super::redo::ShareRedo;
use super::repairs::Repairs;
use crate::backend::clock::Clock;
use crate::backend::error::{IoContext, StorageError};
use crate::backend::faults::Faults;
use crate::backend::layout::Layout;

/// The write-ahead log of one storage directory.
pub struct Wal {
    log: Mutex<Log>,
    /// The last sequence number known synced to disk, and whether a sync runs.
    synced: Mutex<Synced>,
    /// Signalled when a sync ends.
    sync_done: Condvar,
    /// Every sync, behind the latch that stops acknowledgements after a failed one.
    syncer: Arc<Syncer>,
    publisher: Arc<dyn Publisher>,
    layout: Layout,
    faults: Faults,
    repairs: Repairs,
}

/// Where the syncs stand.
struct Synced {
    /// The last sequence number known synced to disk.
    upto: u64,
    /// Whether a writer is syncing now (the others wait on `Wal::sync_done`).
    syncing: bool,
}

/// Why a batch was not logged: if it carries a ticket, the records are in the journal
/// but their sync failed, and they must still be applied (a later sync or a replay may
/// make them durable, and the share files must always equal the journal applied in
/// order).
struct Unlogged {
    ticket: Option<u64>,
    error: io::Error,
}

impl Wal {
    /// Opens the log of `layout`'s storage directory: replays the redo logged after the
    /// last checkpoint into the share files (before anything else), then hands the
    /// feeds' history to `publisher`.
    ///
    /// # Errors
    /// I/O errors opening the journal or replaying it.
    pub fn open(
        layout: &Layout,
        clock: Clock,
        syncer: Arc<Syncer>,
        faults: Faults,
        publisher: Arc<dyn Publisher>,
    ) -> io::Result<Self> {
        let recover = |redo: &[ShareRedo]| {
            for r in redo {
                r.apply(layout, true)?;
            }
            syncer.syncfs(&layout.shares)
        };
        let (log, saved) = Log::open(&layout.storage_dir(), clock, Arc::clone(&syncer), &recover)?;
        let head = log.head();
        publisher.restore(log.epoch(), saved);
        Ok(Self {
            log: Mutex::new(log),
            synced: Mutex::new(Synced {
                upto: head,
                syncing: false,
            }),
            sync_done: Condvar::new(),
            syncer,
            publisher,
            layout: layout.clone(),
            faults,
            repairs: Repairs::default(),
        })
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn synced(&self) -> MutexGuard<'_, Synced> {
        self.synced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records changes that are already durable on disk (a completed upload, an
    /// advisory), synced and published before the caller answers. The caller holds the
    /// storage index's lock.
    ///
    /// # Errors
    /// If the record could not be made durable.
    pub fn record(&self, changes: Vec<Change>) -> Result<(), StorageError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.commit(|log| log.write(changes))
            .map(|_| ())
            .map_err(|e| e.error)
            .op("record in the feed journal", &self.layout.shares)
    }

    /// Logs the changes of one read-test-write ahead, synced, then applies them in
    /// place; `open` gives a share's file if the caller has it open for writing. The
    /// caller holds the storage index's write lock.
    ///
    /// # Errors
    /// If the changes could not be logged, synced or applied.
    pub fn write_ahead<'a>(
        &self,
        si: &StorageIndex,
        logged: Vec<(Change, ShareRedo)>,
        open: impl Fn(ShareNumber) -> Option<&'a File>,
    ) -> Result<(), StorageError> {
        let bucket = self.layout.bucket_dir(si);
        // Shared with the log, which keeps them until a checkpoint: no copy of the data.
        let logged: Vec<(Change, Arc<ShareRedo>)> = logged
            .into_iter()
            .map(|(change, redo)| (change, Arc::new(redo)))
            .collect();
        let redos: Vec<Arc<ShareRedo>> = logged.iter().map(|(_, r)| Arc::clone(r)).collect();
        let (ticket, unsynced) = match self.commit(|log| log.write_ahead(logged)) {
            Ok(ticket) => (ticket, None),
            Err(Unlogged {
                ticket: Some(ticket),
                error,
            }) => (ticket, Some(error)),
            Err(Unlogged { error, .. }) => {
                return Err(error).op("record in the feed journal", &bucket);
            }
        };
        // Logged: from here a crash is repaired by replay. Applied even if the sync
        // failed, so the files always equal the journal applied in order (the client
        // then gets an error: outcome unknown). If applying fails (a full disk, say),
        // the log is not told it was applied, so no checkpoint passes it and a
        // restart replays it; and the redo waits in `repairs`, applied again before
        // anyone next reads or writes the slot (`repairs.rs`).
        let applied = redos
            .iter()
            .try_for_each(|redo| redo.apply_live(&self.layout, open(redo.shnum), &self.faults));
        match &applied {
            Ok(()) => self.applied(ticket),
            Err(e) => {
                tracing::warn!(si = %si, error = %e, "a logged slot write could not be applied in place; it is retried before the slot is next used");
                self.repairs.add(*si, ticket, redos);
            }
        }
        if let Some(error) = unsynced {
            return Err(error).op("sync the feed journal", &bucket);
        }
        applied.op("write in place", &bucket)
    }

    /// Applies the logged slot changes of `si` whose in-place write failed before
    /// (`repairs.rs`). The caller holds the index's write lock.
    ///
    /// # Errors
    /// The I/O error that still stops them; they stay waiting.
    pub fn repair(&self, si: &StorageIndex) -> Result<(), StorageError> {
        let mut list = self.repairs.take(si).into_iter();
        while let Some((ticket, redos)) = list.next() {
            if let Err(e) = redos
                .iter()
                .try_for_each(|r| r.apply_live(&self.layout, None, &self.faults))
            {
                let mut rest = vec![(ticket, redos)];
                rest.extend(list);
                self.repairs.put_back(*si, rest);
                return Err(e).op("write in place", &self.layout.bucket_dir(si));
            }
            tracing::info!(si = %si, "a slot write that had failed is now applied");
            self.applied(ticket);
        }
        Ok(())
    }

    /// Whether a slot of `si` waits for a repair (reads must not go around it).
    pub fn needs_repair(&self, si: &StorageIndex) -> bool {
        self.repairs.waiting(si)
    }

    /// Checkpoints past every slot write applied so far, at a clean shutdown, so the
    /// next start replays nothing. Why: whatever changes the share files before then
    /// must not be undone by old redo. An operator may serve the directory with
    /// Tahoe's own storage node meanwhile (a roll-back), and replaying Swamp's older
    /// slot writes over Tahoe's newer ones would lose them. A write still in flight
    /// (the grace period ran out) stays after the checkpoint, as during running.
    pub fn checkpoint_at_shutdown(&self) {
        let Some(upto) = self.log().final_checkpoint() else {
            return;
        };
        self.checkpoint(upto);
    }

    /// The redo of the batch logged at `ticket` is applied: checkpoints if one is due.
    fn applied(&self, ticket: u64) {
        let Some(upto) = self.log().applied(ticket) else {
            return;
        };
        self.checkpoint(upto);
    }

    /// Makes the share files durable, then records `upto` as the checkpoint.
    fn checkpoint(&self, upto: u64) {
        let dir = self.log().dir().to_path_buf();
        // Outside the lock: writers go on while the share files are flushed.
        let done = self
            .syncer
            .syncfs(&self.layout.shares)
            .and_then(|()| records::write_checkpoint(&dir, upto, &self.syncer));
        if let Err(e) = &done {
            tracing::error!(error = %e, "feed journal checkpoint failed; will retry");
        }
        self.log().checkpointed(done.ok().map(|()| upto));
    }

    /// Group commit (see the module docs). Returns the first sequence number written;
    /// a batch written ahead stays unapplied until [`Wal::applied`], also when the
    /// sync fails (the error then carries its ticket).
    fn commit(
        &self,
        write: impl FnOnce(&mut Log) -> io::Result<Vec<Entry>>,
    ) -> Result<u64, Unlogged> {
        let (first, last) = {
            let mut log = self.log();
            let entries = write(&mut log).map_err(|error| Unlogged {
                ticket: None,
                error,
            })?;
            match (entries.first(), entries.last()) {
                (Some(first), Some(last)) => (first.seq, last.seq),
                _ => return Ok(0),
            }
        };
        if let Err(error) = self.sync_through(last) {
            // Written but maybe not durable: the caller applies it anyway.
            return Err(Unlogged {
                ticket: Some(first),
                error,
            });
        }
        self.publish();
        Ok(first)
    }

    /// Returns once everything up to `last` is synced: waits for the sync running now,
    /// or runs one, outside every lock, that covers everything written so far.
    fn sync_through(&self, last: u64) -> io::Result<()> {
        let mut state = self.synced();
        while state.upto < last {
            if state.syncing {
                state = self
                    .sync_done
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.syncing = true;
            drop(state);
            // Ends the sync, also if it panics: the others must not wait forever.
            let mut ending = SyncEnding {
                wal: self,
                upto: None,
            };
            // Everything written so far is in the journal file current now (a
            // compaction copies what it has not yet into the new file before the
            // swap, `compact.rs`), so this sync covers it all.
            let (target, job) = {
                let mut log = self.log();
                (log.head(), log.sync_job())
            };
            let result = job.run();
            ending.upto = result.is_ok().then_some(target);
            // On failure the others try again and fail on the latch (`durable.rs`).
            return result;
        }
        Ok(())
    }

    /// Publishes, in order, every written entry that is synced; then starts a
    /// compaction if one is due.
    fn publish(&self) {
        let synced = self.synced().upto;
        let mut log = self.log();
        let entries = log.take_synced(synced);
        if !entries.is_empty() {
            self.publisher.publish(&entries);
        }
        let compaction = log
            .compaction_due(self.publisher.exact_len())
            .then(|| log.start_compaction(self.publisher.to_save()));
        drop(log);
        if let Some(compaction) = compaction {
            self.compact(compaction);
        }
    }

    /// Runs a compaction, holding the log's lock only for the steps that need it (no
    /// sync under it but, rarely, one of a few records' bytes; see `compact.rs`).
    /// Compaction changes neither the sequence numbers nor what is published. Errors
    /// are logged; the old journal then stays and a later compaction retries.
    fn compact(&self, mut compaction: Compaction) {
        let mut run = || -> io::Result<()> {
            compaction.write()?;
            for round in 0..=CATCH_UP_ROUNDS {
                let last = round == CATCH_UP_ROUNDS;
                if self.log().catch_up(&mut compaction, last)? {
                    return Ok(());
                }
                compaction.copy_pending()?;
            }
            Ok(())
        };
        if let Err(e) = run() {
            tracing::error!(error = %e, "feed journal compaction failed; will retry");
            self.log().compaction_failed(compaction);
        }
    }
}

/// Ends the sync a writer runs: records what it made durable, then wakes the writers
/// waiting on it.
struct SyncEnding<'a> {
    wal: &'a Wal,
    upto: Option<u64>,
}

impl Drop for SyncEnding<'_> {
    fn drop(&mut self) {
        let mut state = self.wal.synced();
        state.syncing = false;
        if let Some(upto) = self.upto {
            state.upto = state.upto.max(upto);
        }
        drop(state);
        self.wal.sync_done.notify_all();
    }
}
