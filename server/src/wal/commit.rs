//! The log as the storage uses it: group commit, publishing, slot writes logged ahead
//! and applied in place, their repairs, checkpoints and compaction.
//!
//! Group commit: a writer appends under the log's lock (which fixes the order), syncs
//! outside it (one sync covers every writer that appended before it started), then
//! publishes, in sequence order and under the lock, everything synced. Subscribers
//! never see a change before it is durable, and nobody waits on a sync while holding
//! the lock. One writer at a time syncs; the others wait, all woken at once when it
//! is done, and the first whose entries that sync did not cover starts the next
//! (`group.rs`: threads wait on a condition variable, tasks on a notification).
//! A writer returns only once its own entries are published, and it holds
//! its storage index's lock until then: that is what lets the feeds take a snapshot
//! of a storage index and subscribe to it with no gap and no duplicate
//! (`feeds/hub.rs`). Nothing is acknowledged before it is synced; after a failed sync,
//! nothing more is written (`durable.rs`).

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use swamp_proto::{ShareNumber, StorageIndex};

use super::change::Change;
use super::compact::Compaction;
use super::durable::Syncer;
use super::group::Group;
use super::log::{CATCH_UP_ROUNDS, Log, SyncJob};
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
    /// Where the syncs stand, and the writers waiting for one (`group.rs`).
    group: Arc<Group>,
    /// Every sync, behind the latch that stops acknowledgements after a failed one.
    syncer: Arc<Syncer>,
    publisher: Arc<dyn Publisher>,
    layout: Layout,
    faults: Faults,
    repairs: Repairs,
}

/// A read-test-write's changes, written to the journal but not yet known synced. Its
/// storage index's lock is held until [`Wal::finish_ahead`] has run.
pub(crate) struct Ahead {
    si: StorageIndex,
    /// The first sequence number written: the batch's ticket until it is applied.
    first: u64,
    /// The last: synced once the group has synced through it.
    last: u64,
    /// Shared with the log, which keeps them until a checkpoint: no copy of the data.
    redos: Vec<Arc<ShareRedo>>,
}

/// Work a commit leaves due that may take long (a compaction, a checkpoint's
/// `syncfs`): the writer that finds it due runs it, or hands it to the blocking pool
/// when it is on the request's own thread. Neither changes what is acknowledged.
#[must_use = "a due compaction or checkpoint must be run"]
#[derive(Default)]
pub(crate) struct Due {
    compaction: Option<Compaction>,
    checkpoint: Option<u64>,
}

impl Due {
    /// Whether nothing is due.
    pub(crate) fn is_empty(&self) -> bool {
        self.compaction.is_none() && self.checkpoint.is_none()
    }
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
        metrics: super::GroupMetrics,
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
            group: Arc::new(Group::new(head, metrics)),
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
            .op("record in the feed journal", &self.layout.shares)
    }

    /// Logs the changes of one read-test-write ahead, synced, then applies them in
    /// place; `open` gives a share's file if the caller has it open for writing. The
    /// caller holds the storage index's write lock. (The same steps as
    /// [`Wal::log_ahead`], a group sync and [`Wal::finish_ahead`], on this thread.)
    ///
    /// # Errors
    /// If the changes could not be logged, synced or applied.
    pub fn write_ahead<'a>(
        &self,
        si: &StorageIndex,
        logged: Vec<(Change, ShareRedo)>,
        open: impl Fn(ShareNumber) -> Option<&'a File>,
    ) -> Result<(), StorageError> {
        let Some(ahead) = self.log_ahead(si, logged)? else {
            return Ok(());
        };
        let synced = self.group.sync_through(ahead.last, || self.sync_job());
        let (result, due) = self.finish_ahead(ahead, synced, open);
        self.run_due(due);
        result
    }

    /// Writes the changes of one read-test-write to the journal, not yet synced
    /// (`None` if there are none). The caller holds the storage index's write lock
    /// and must pass the batch to [`Wal::finish_ahead`], whatever happens in between.
    ///
    /// # Errors
    /// If the journal could not be written (nothing was logged).
    pub(crate) fn log_ahead(
        &self,
        si: &StorageIndex,
        logged: Vec<(Change, ShareRedo)>,
    ) -> Result<Option<Ahead>, StorageError> {
        let logged: Vec<(Change, Arc<ShareRedo>)> = logged
            .into_iter()
            .map(|(change, redo)| (change, Arc::new(redo)))
            .collect();
        let redos: Vec<Arc<ShareRedo>> = logged.iter().map(|(_, r)| Arc::clone(r)).collect();
        let entries = self
            .log()
            .write_ahead(logged)
            .op("record in the feed journal", &self.layout.bucket_dir(si))?;
        Ok(match (entries.first(), entries.last()) {
            (Some(first), Some(last)) => Some(Ahead {
                si: *si,
                first: first.seq,
                last: last.seq,
                redos,
            }),
            _ => None,
        })
    }

    /// Waits, without holding a thread, until `ahead` is synced (`group.rs`). Run it
    /// where it cannot be cancelled halfway: the batch must reach
    /// [`Wal::finish_ahead`].
    pub(crate) async fn sync_ahead(&self, ahead: &Ahead) -> io::Result<()> {
        self.group
            .sync_through_async(ahead.last, || self.sync_job())
            .await
    }

    /// Publishes a logged batch once synced, then applies it in place; `synced` says
    /// how its sync went. Returns the outcome to answer with, and any long work now
    /// due, for the caller to run ([`Wal::run_due`]) where it may block.
    pub(crate) fn finish_ahead<'a>(
        &self,
        ahead: Ahead,
        synced: io::Result<()>,
        open: impl Fn(ShareNumber) -> Option<&'a File>,
    ) -> (Result<(), StorageError>, Due) {
        let Ahead {
            si,
            first: ticket,
            redos,
            ..
        } = ahead;
        let bucket = self.layout.bucket_dir(&si);
        // Written but maybe not durable after a failed sync: not published, but still
        // applied below.
        let mut due = match synced {
            Ok(()) => self.publish(),
            Err(_) => Due::default(),
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
            Ok(()) => due.checkpoint = self.applied(ticket),
            Err(e) => {
                tracing::warn!(si = %si, error = %e, "a logged slot write could not be applied in place; it is retried before the slot is next used");
                self.repairs.add(si, ticket, redos);
            }
        }
        let result = match synced {
            Err(error) => Err(error).op("sync the feed journal", &bucket),
            Ok(()) => applied.op("write in place", &bucket),
        };
        (result, due)
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
            if let Some(upto) = self.applied(ticket) {
                self.checkpoint(upto);
            }
        }
        Ok(())
    }

    /// Whether a sync has failed, so that nothing more is acknowledged until a restart
    /// (`durable.rs`).
    pub fn needs_restart(&self) -> bool {
        self.syncer.has_failed()
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

    /// The redo of the batch logged at `ticket` is applied: the sequence number to
    /// checkpoint at, if a checkpoint is due.
    fn applied(&self, ticket: u64) -> Option<u64> {
        self.log().applied(ticket)
    }

    /// Runs what a commit left due, on this thread. Errors are logged; the work is
    /// retried later.
    pub(crate) fn run_due(&self, due: Due) {
        if let Some(compaction) = due.compaction {
            self.compact(compaction);
        }
        if let Some(upto) = due.checkpoint {
            self.checkpoint(upto);
        }
    }

    /// Makes the share files durable, then records that redo up to `upto` is no longer
    /// needed. Writers go on meanwhile.
    fn checkpoint(&self, upto: u64) {
        let dir = self.log().dir().to_path_buf();
        let done = self
            .syncer
            .syncfs(&self.layout.shares)
            .and_then(|()| records::write_checkpoint(&dir, upto, &self.syncer));
        if let Err(e) = &done {
            tracing::error!(error = %e, "feed journal checkpoint failed; will retry");
        }
        self.log().checkpointed(done.ok().map(|()| upto));
    }

    /// The sync that covers everything written so far, and the sequence number it
    /// covers. Everything written so far is in the journal file current now (a
    /// compaction copies what it has not yet into the new file before the swap,
    /// `compact.rs`).
    fn sync_job(&self) -> (u64, SyncJob) {
        let mut log = self.log();
        (log.head(), log.sync_job())
    }

    /// Group commit (see the module docs), on this thread, with what it leaves due
    /// run here too.
    fn commit(&self, write: impl FnOnce(&mut Log) -> io::Result<Vec<Entry>>) -> io::Result<()> {
        let last = {
            let mut log = self.log();
            match write(&mut log)?.last() {
                Some(last) => last.seq,
                None => return Ok(()),
            }
        };
        self.group.sync_through(last, || self.sync_job())?;
        let due = self.publish();
        self.run_due(due);
        Ok(())
    }

    /// Publishes, in order, every written entry that is synced; says whether a
    /// compaction is now due.
    fn publish(&self) -> Due {
        let synced = self.group.upto();
        let mut log = self.log();
        let entries = log.take_synced(synced);
        if !entries.is_empty() {
            self.publisher.publish(&entries);
        }
        let compaction = log
            .compaction_due(self.publisher.exact_len())
            .then(|| log.start_compaction(self.publisher.to_save()));
        Due {
            compaction,
            checkpoint: None,
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
