//! The hub: the journal plus every subscriber's subscriptions, under one lock, so that
//! recording a change, assigning its sequence number and queueing it for subscribers
//! is one step, and registering a subscription can never fall between two steps (no
//! gap, no duplicate).
//!
//! Fan-out costs one queue push per subscriber of the changed storage index; it never
//! waits for a subscriber (see `outbox.rs`).

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use swamp_proto::StorageIndex;
use swamp_proto::feed::{Cursor, FeedEvent, SlotVersion};
use swamp_proto::v1::ShareKind;

use super::compact::Compaction;
use super::durable::Syncer;
use super::journal::{Backlog, CATCH_UP_ROUNDS, Journal, Retention};
use super::outbox::{CloseReason, Outbox};
use crate::backend::change::{AheadError, Change, ChangeSink};
use crate::backend::redo::ShareRedo;
use crate::backend::{Storage, StorageError};

/// Feed limits and timings.
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// Exact history kept.
    pub retention: Retention,
    /// Outbound queue budget per subscriber, in bytes.
    pub queue_budget: usize,
    /// Subscriptions one connection may hold.
    pub max_subscriptions_per_connection: usize,
    /// Subscriptions all connections together may hold.
    pub max_subscriptions: usize,
    /// Feed connections at once.
    pub max_connections: usize,
    /// Feed connections one token may hold at once (`token_shares.rs`).
    pub max_connections_per_token: usize,
    /// How often an idle stream gets a progress event.
    pub progress_interval: Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            queue_budget: 64 * 1024,
            max_subscriptions_per_connection: 10_000,
            max_subscriptions: 1_000_000,
            max_connections: 50_000,
            max_connections_per_token: 32,
            progress_interval: Duration::from_secs(30),
        }
    }
}

/// Why a subscription request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeedError {
    /// Too many feed connections.
    #[error("too many feed connections (limit {0})")]
    TooManyConnections(usize),
    /// Too many subscriptions on this connection or in total.
    #[error("too many subscriptions (limit {0})")]
    TooManySubscriptions(usize),
    /// Too many feed connections opened with one token.
    #[error("too many feed connections with this token (limit {0})")]
    TooManyForToken(usize),
}

type ConnId = u64;

struct Conn {
    outbox: Arc<Outbox>,
    subs: HashSet<StorageIndex>,
}

struct Core {
    journal: Journal,
    by_si: HashMap<StorageIndex, HashSet<ConnId>>,
    conns: HashMap<ConnId, Conn>,
    total_subs: usize,
    /// Written to the journal, waiting for a sync before subscribers may see them.
    unpublished: std::collections::VecDeque<super::records::Entry>,
    /// The last sequence number written.
    written: u64,
    /// First sequence numbers of batches logged ahead whose redo is not yet applied:
    /// no checkpoint may cover them.
    unapplied: std::collections::BTreeSet<u64>,
    /// A checkpoint is running.
    checkpointing: bool,
}

impl Core {
    fn register(&mut self, id: ConnId, si: StorageIndex) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.subs.insert(si) {
            self.by_si.entry(si).or_default().insert(id);
            self.total_subs += 1;
        }
    }
}

/// The change feeds of one server.
pub struct Feeds {
    core: Mutex<Core>,
    storage: Arc<Storage>,
    settings: FeedSettings,
    next_id: AtomicU64,
    slow_closes: AtomicU64,
    /// The last sequence number known synced to disk.
    synced: Mutex<u64>,
    /// Every sync, behind the latch that stops acknowledgements after a failed one.
    syncer: Arc<Syncer>,
    closing: tokio_util::sync::CancellationToken,
    token_shares: Arc<super::token_shares::TokenShares>,
}

impl Feeds {
    /// Opens the journal and attaches the feeds to `storage` as its change sink.
    ///
    /// # Errors
    /// If the journal cannot be opened.
    pub fn attach(storage: Arc<Storage>, settings: FeedSettings) -> io::Result<Arc<Self>> {
        let syncer = Syncer::with_faults(storage.settings().faults.clone());
        Self::attach_with(storage, settings, Arc::new(syncer))
    }

    /// The same, with the syncs going through `syncer` (tests inject failures).
    ///
    /// # Errors
    /// If the journal cannot be opened.
    pub fn attach_with(
        storage: Arc<Storage>,
        settings: FeedSettings,
        syncer: Arc<Syncer>,
    ) -> io::Result<Arc<Self>> {
        let clock = storage.settings().clock.clone();
        let layout = storage.layout();
        let recover = |redo: &[ShareRedo]| {
            for r in redo {
                r.apply(layout, true)?;
            }
            syncer.syncfs(&layout.shares)
        };
        let journal = Journal::open(
            &layout.storage_dir(),
            settings.retention.clone(),
            clock,
            Arc::clone(&syncer),
            &recover,
        )?;
        let head_seq = journal.head().seq;
        let feeds = Arc::new(Self {
            core: Mutex::new(Core {
                journal,
                by_si: HashMap::new(),
                conns: HashMap::new(),
                total_subs: 0,
                unpublished: std::collections::VecDeque::new(),
                written: head_seq,
                unapplied: std::collections::BTreeSet::new(),
                checkpointing: false,
            }),
            storage: Arc::clone(&storage),
            next_id: AtomicU64::new(1),
            slow_closes: AtomicU64::new(0),
            synced: Mutex::new(head_seq),
            syncer,
            closing: tokio_util::sync::CancellationToken::new(),
            token_shares: super::token_shares::TokenShares::new(settings.max_connections_per_token),
            settings,
        });
        storage.set_change_sink(Arc::clone(&feeds) as Arc<dyn ChangeSink>);
        Ok(feeds)
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The settings.
    pub fn settings(&self) -> &FeedSettings {
        &self.settings
    }

    /// Each token's share of the connection limit.
    pub fn token_shares(&self) -> &Arc<super::token_shares::TokenShares> {
        &self.token_shares
    }

    /// The cursor after the last change.
    pub fn head(&self) -> Cursor {
        self.core().journal.head()
    }

    /// Opens a subscriber (one per feed connection or long-poll request).
    ///
    /// # Errors
    /// [`FeedError::TooManyConnections`].
    pub fn open(self: &Arc<Self>) -> Result<Subscriber, FeedError> {
        let mut core = self.core();
        if core.conns.len() >= self.settings.max_connections {
            return Err(FeedError::TooManyConnections(self.settings.max_connections));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::new(self.settings.queue_budget));
        core.conns.insert(
            id,
            Conn {
                outbox: Arc::clone(&outbox),
                subs: HashSet::new(),
            },
        );
        Ok(Subscriber {
            feeds: Arc::clone(self),
            id,
            outbox,
        })
    }

    /// Resolves when the server starts shutting down (for streams outside the hub,
    /// like the activity stream).
    pub async fn closing(&self) {
        self.closing.cancelled().await;
    }

    /// Ends every stream (server shutdown).
    pub fn close_all(&self, reason: CloseReason) {
        self.closing.cancel();
        for conn in self.core().conns.values() {
            conn.outbox.close(reason);
        }
    }

    /// How many streams were closed because their subscriber read too slowly.
    pub fn slow_closes(&self) -> u64 {
        self.slow_closes.load(Ordering::Relaxed)
    }

    /// Number of open subscribers and subscriptions.
    pub fn counts(&self) -> (usize, usize) {
        let core = self.core();
        (core.conns.len(), core.total_subs)
    }
}

impl ChangeSink for Feeds {
    fn record(&self, changes: Vec<Change>) -> io::Result<()> {
        self.commit(|core| core.journal.write(changes), false)
            .map(|_| ())
            .map_err(|e| e.error)
    }

    fn writes_ahead(&self) -> bool {
        true
    }

    fn record_ahead(&self, changes: Vec<(Change, ShareRedo)>) -> Result<u64, AheadError> {
        self.commit(|core| core.journal.write_ahead(changes), true)
    }

    fn applied(&self, ticket: u64) {
        let (upto, dir) = {
            let mut core = self.core();
            core.unapplied.remove(&ticket);
            // After a failed sync the checkpoint stays where it is: the restart
            // replays everything after it (`durable.rs`).
            if core.checkpointing || self.syncer.has_failed() || !core.journal.wants_checkpoint() {
                return;
            }
            core.checkpointing = true;
            let upto = core
                .unapplied
                .first()
                .map_or(core.written, |first| first - 1);
            (upto, core.journal.dir().to_path_buf())
        };
        // Outside the lock: writers go on while the share files are flushed.
        let done = self
            .syncer
            .syncfs(&self.storage.layout().shares)
            .and_then(|()| super::records::write_checkpoint(&dir, upto, &self.syncer));
        let mut core = self.core();
        core.checkpointing = false;
        match done {
            Ok(()) => core.journal.checkpointed(upto),
            Err(e) => tracing::error!(error = %e, "feed journal checkpoint failed; will retry"),
        }
    }
}

impl Feeds {
    /// Group commit: write under the hub lock (which fixes the order), sync outside it
    /// (one sync covers every writer that wrote before it started), then publish, in
    /// sequence order, everything synced. Subscribers never see a change before it is
    /// durable, and nobody waits on a sync while holding the hub lock. Returns the
    /// first sequence number written (0 if none); with `ahead`, it stays unapplied
    /// until [`ChangeSink::applied`], also when the sync fails (the error then
    /// carries it). After a failed sync, nothing is written any more (`durable.rs`).
    fn commit(
        &self,
        write: impl FnOnce(&mut Core) -> io::Result<Vec<super::records::Entry>>,
        ahead: bool,
    ) -> Result<u64, AheadError> {
        let (first, last) = {
            let mut core = self.core();
            let entries = write(&mut core).map_err(|error| AheadError {
                ticket: None,
                error,
            })?;
            let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
                return Ok(0);
            };
            let (first, last) = (first.seq, last.seq);
            core.written = last;
            if ahead {
                core.unapplied.insert(first);
            }
            core.unpublished.extend(entries);
            (first, last)
        };
        {
            let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
            if *synced < last {
                // Everything written so far is in the journal file current now (a
                // compaction copies what it has not yet into the new file before the
                // swap, `compact.rs`), so this sync covers it all.
                let (target, job) = {
                    let mut core = self.core();
                    (core.written, core.journal.sync_job())
                };
                if let Err(error) = job.run() {
                    // Written but maybe not durable: the caller applies it anyway.
                    return Err(AheadError {
                        ticket: Some(first),
                        error,
                    });
                }
                *synced = target;
            }
        }
        self.publish();
        Ok(first)
    }
}

impl Feeds {
    /// Publishes, in order, every written change that is synced.
    fn publish(&self) {
        let synced = *self.synced.lock().unwrap_or_else(|p| p.into_inner());
        let mut core = self.core();
        let epoch = core.journal.epoch();
        while core.unpublished.front().is_some_and(|e| e.seq <= synced) {
            let Some(entry) = core.unpublished.pop_front() else {
                break;
            };
            core.journal.set_visible(entry.seq);
            let si = entry.change.storage_index();
            let Some(ids) = core.by_si.get(&si) else {
                continue;
            };
            // Encoded at most once, whatever the number of subscribers.
            let event = super::encode::shared(entry.change.to_event(Cursor {
                epoch,
                seq: entry.seq,
            }));
            for id in ids {
                if let Some(conn) = core.conns.get(id)
                    && conn.outbox.push(std::sync::Arc::clone(&event))
                {
                    self.slow_closes.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        subscriber = id,
                        "feed subscriber too slow; closing its stream"
                    );
                }
            }
        }
        let compaction = core.journal.start_compaction();
        drop(core);
        if let Some(compaction) = compaction {
            self.compact(compaction);
        }
    }

    /// Runs a compaction, holding the hub's lock only for the steps that need it (no
    /// sync under it but, rarely, one of a few records' bytes; see `compact.rs`).
    /// Subscribing and publishing stay under the one lock: compaction changes neither
    /// the sequence numbers nor what is published. Errors are logged; the old journal
    /// then stays and a later compaction retries.
    fn compact(&self, mut compaction: Compaction) {
        let mut run = || -> io::Result<()> {
            compaction.write()?;
            for round in 0..=CATCH_UP_ROUNDS {
                let last = round == CATCH_UP_ROUNDS;
                if self.core().journal.catch_up(&mut compaction, last)? {
                    return Ok(());
                }
                compaction.copy_pending()?;
            }
            Ok(())
        };
        if let Err(e) = run() {
            tracing::error!(error = %e, "feed journal compaction failed; will retry");
            self.core().journal.compaction_failed(compaction);
        }
    }
}

impl Feeds {
    /// Subscribes connection `id` to `sis` with a snapshot of each: reads every share's
    /// state from disk (blocking; run it on the blocking pool).
    fn snapshot(&self, id: ConnId, sis: &[StorageIndex]) -> Result<Vec<FeedEvent>, SubscribeError> {
        let mut events = Vec::new();
        let mut synced_at = None;
        for si in sis {
            let (states, head) = self.storage.with_share_states(si, |states| {
                // Registered while no change to `si` can commit: the states read
                // above are exactly those before the first live event for `si`.
                let mut core = self.core();
                core.register(id, *si);
                (states, core.journal.head())
            })?;
            synced_at.get_or_insert(head);
            for state in states {
                let version = match state.kind {
                    ShareKind::Mutable => SlotVersion::from_share_prefix(&state.prefix),
                    ShareKind::Immutable => None,
                };
                events.push(FeedEvent::Snapshot {
                    si: *si,
                    shnum: state.shnum,
                    seqnum: version.map(|v| v.seqnum),
                    roothash: version.map(|v| v.roothash),
                    format: version.map(|v| v.format),
                    length: state.length,
                    kind: state.kind.as_str().to_string(),
                });
            }
        }
        let cursor = synced_at.unwrap_or_else(|| self.head());
        events.push(FeedEvent::Synced { cursor });
        Ok(events)
    }
}

/// One feed connection's view: its subscriptions and its queue. Dropping it removes
/// every subscription.
pub struct Subscriber {
    feeds: Arc<Feeds>,
    id: ConnId,
    outbox: Arc<Outbox>,
}

impl Subscriber {
    /// Adds subscriptions and returns what must be sent before live events:
    /// - with `since`: the changes after it (exactly, or the latest state of each
    ///   followed share if the exact history is gone), or a `reset`;
    /// - else with `snapshot`: a `snapshot` event per share held, then `synced` (read
    ///   from disk on the blocking pool, never on an async worker);
    /// - else: a `progress` event with the current cursor.
    ///
    /// # Errors
    /// [`FeedError::TooManySubscriptions`], or a storage failure while reading the
    /// snapshot (as [`SubscribeError::Storage`]).
    pub async fn subscribe(
        &self,
        sis: &[StorageIndex],
        since: Option<Cursor>,
        snapshot: bool,
    ) -> Result<Vec<FeedEvent>, SubscribeError> {
        let mut unique: Vec<StorageIndex> = sis.to_vec();
        unique.sort();
        unique.dedup();
        if let Some(since) = since {
            let mut core = self.feeds.core();
            self.check_limits(&core, &unique)?;
            let backlog = core.journal.backlog_for(since, &unique);
            let head = core.journal.head();
            for si in &unique {
                core.register(self.id, *si);
            }
            return Ok(match backlog {
                Backlog::Exact(entries) | Backlog::Coalesced(entries) => entries
                    .iter()
                    .map(|e| {
                        e.change.to_event(Cursor {
                            epoch: head.epoch,
                            seq: e.seq,
                        })
                    })
                    .collect(),
                Backlog::Reset(reason) => vec![FeedEvent::Reset {
                    cursor: head,
                    reason,
                }],
            });
        }
        if !snapshot {
            let mut core = self.feeds.core();
            self.check_limits(&core, &unique)?;
            for si in &unique {
                core.register(self.id, *si);
            }
            return Ok(vec![FeedEvent::Progress {
                cursor: core.journal.head(),
            }]);
        }
        self.check_limits(&self.feeds.core(), &unique)?;
        let feeds = Arc::clone(&self.feeds);
        let id = self.id;
        tokio::task::spawn_blocking(move || feeds.snapshot(id, &unique))
            .await
            .map_err(|e| SubscribeError::Task(e.to_string()))?
    }

    fn check_limits(&self, core: &Core, new: &[StorageIndex]) -> Result<(), FeedError> {
        let conn = core.conns.get(&self.id);
        let have = conn.map_or(0, |c| c.subs.len());
        let adding = new
            .iter()
            .filter(|si| !conn.is_some_and(|c| c.subs.contains(si)))
            .count();
        let per_conn = self.feeds.settings.max_subscriptions_per_connection;
        if have + adding > per_conn {
            return Err(FeedError::TooManySubscriptions(per_conn));
        }
        if core.total_subs + adding > self.feeds.settings.max_subscriptions {
            return Err(FeedError::TooManySubscriptions(
                self.feeds.settings.max_subscriptions,
            ));
        }
        Ok(())
    }

    /// Removes subscriptions.
    pub fn unsubscribe(&self, sis: &[StorageIndex]) {
        let mut core = self.feeds.core();
        for si in sis {
            let removed = core
                .conns
                .get_mut(&self.id)
                .is_some_and(|c| c.subs.remove(si));
            if removed {
                core.total_subs -= 1;
                if let Some(ids) = core.by_si.get_mut(si) {
                    ids.remove(&self.id);
                    if ids.is_empty() {
                        core.by_si.remove(si);
                    }
                }
            }
        }
    }

    /// Queues a `progress` event with the current cursor, behind any queued event.
    pub fn request_progress(&self) {
        let core = self.feeds.core();
        let _ = self.outbox.push(super::encode::shared(FeedEvent::Progress {
            cursor: core.journal.head(),
        }));
    }

    /// The queue of live events.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// How many storage indexes this subscriber follows.
    pub fn subscription_count(&self) -> usize {
        self.feeds
            .core()
            .conns
            .get(&self.id)
            .map_or(0, |c| c.subs.len())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let mut core = self.feeds.core();
        if let Some(conn) = core.conns.remove(&self.id) {
            core.total_subs -= conn.subs.len();
            for si in conn.subs {
                if let Some(ids) = core.by_si.get_mut(&si) {
                    ids.remove(&self.id);
                    if ids.is_empty() {
                        core.by_si.remove(&si);
                    }
                }
            }
        }
    }
}

/// Why `subscribe` failed.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// A limit.
    #[error(transparent)]
    Limit(#[from] FeedError),
    /// Reading the snapshot failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The blocking task reading the snapshot failed (a bug).
    #[error("snapshot task failed: {0}")]
    Task(String),
}
