//! The hub: every subscriber's subscriptions and the history of published changes
//! (`history.rs`), under one lock.
//!
//! # Invariant: subscribing and publishing happen under one lock
//! A change is added to the history and queued for the subscribers of its storage
//! index in one step under the hub's lock ([`Publisher::publish`], called by the
//! write-ahead log once the change is synced, in sequence order). A subscription is
//! registered under the same lock, together with what it is sent first: the backlog
//! after its cursor, read from the history, or the current cursor. So a subscription
//! never falls between two steps: every change after what it was sent first reaches
//! it live, exactly once (no gap, no duplicate).
//!
//! A snapshot reads the share files, so it cannot be read under the hub's lock. It is
//! read while no change to its storage index can commit
//! ([`Storage::with_share_states`] holds the index's read lock, and a writer holds
//! the write lock until its change is published), and the subscription is registered
//! inside that: the states read are exactly those before the first live event.
//!
//! Ownership, with no `Arc` cycle: the [`Hub`] is created first and handed to
//! [`Storage::open`] as its publisher; [`Feeds`] holds the storage and the hub. The hub
//! holds nothing of the storage, and never calls into it.
//!
//! Fan-out costs one queue push per subscriber of the changed storage index; it never
//! waits for a subscriber (see `outbox.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use swamp_proto::StorageIndex;
use swamp_proto::feed::{Cursor, FeedEvent};

use super::event;
use super::history::{Backlog, History, Retention};
use super::outbox::{CloseReason, Outbox};
use crate::backend::{Clock, Storage, StorageError};
use crate::wal::records::Entry;
use crate::wal::{Publisher, Saved};

/// Feed limits and timings.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[expect(
    clippy::enum_variant_names,
    reason = "each is a limit that was reached: `FeedError::TooManyConnections` reads as the answer"
)]
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
    transport: Transport,
}

/// How a subscriber's events travel (for the connection counts in the metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A WebSocket stream.
    WebSocket,
    /// A server-sent events stream.
    Sse,
    /// One long-poll request.
    LongPoll,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Self; 3] = [Self::WebSocket, Self::Sse, Self::LongPoll];

    /// The name in the metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Sse => "sse",
            Self::LongPoll => "long-poll",
        }
    }
}

struct Core {
    history: History,
    by_si: HashMap<StorageIndex, HashSet<ConnId>>,
    conns: HashMap<ConnId, Conn>,
    total_subs: usize,
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

/// The feeds' figures, read when the operator asks (`crate::operator`).
pub struct FeedFigures {
    /// Open feed connections, by transport.
    pub connections: [(&'static str, usize); 3],
    /// Subscriptions held.
    pub subscriptions: usize,
    /// Events handed to transports so far.
    pub deliveries: u64,
    /// Events dropped by coalescing so far (a newer state of the same share replaced
    /// them in a slow subscriber's queue).
    pub coalesced: u64,
    /// Streams closed because their subscriber read too slowly, so far.
    pub slow_closes: u64,
    /// Bytes queued for subscribers now.
    pub queued_bytes: usize,
}

/// Subscriptions and history: the publisher the storage is opened with.
pub struct Hub {
    core: Mutex<Core>,
    /// Read when a connection opens or subscribes (a reload changes them).
    settings: crate::live::Live<FeedSettings>,
    next_id: AtomicU64,
    slow_closes: AtomicU64,
    /// Events dropped by coalescing in slow subscribers' queues.
    coalesced: AtomicU64,
    /// Events handed to transports.
    delivered: AtomicU64,
    /// Seconds from an event's making (its publication, for a live one) to its
    /// hand-over to a transport.
    lag: metrics::Histogram,
}

impl Hub {
    /// An empty hub; the storage fills its history when it opens
    /// ([`Publisher::restore`]). `lag` gets each event's delivery lag.
    pub fn new(settings: FeedSettings, clock: Clock, lag: metrics::Histogram) -> Arc<Self> {
        Arc::new(Self {
            core: Mutex::new(Core {
                history: History::new(settings.retention.clone(), clock),
                by_si: HashMap::new(),
                conns: HashMap::new(),
                total_subs: 0,
            }),
            settings: crate::live::Live::new(settings),
            next_id: AtomicU64::new(1),
            slow_closes: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            lag,
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Publisher for Hub {
    fn restore(&self, epoch: u64, saved: Saved) {
        self.core().history.restore(epoch, saved);
    }

    fn publish(&self, entries: &[Entry]) {
        let mut core = self.core();
        core.history.extend(entries);
        let epoch = core.history.epoch();
        for entry in entries {
            let si = entry.change.storage_index();
            let Some(ids) = core.by_si.get(&si) else {
                continue;
            };
            // Encoded at most once, whatever the number of subscribers.
            let event = super::encode::shared(event::of_change(
                &entry.change,
                Cursor {
                    epoch,
                    seq: entry.seq,
                },
            ));
            for id in ids {
                let Some(conn) = core.conns.get(id) else {
                    continue;
                };
                let pushed = conn.outbox.push(Arc::clone(&event));
                if pushed.coalesced > 0 {
                    self.coalesced
                        .fetch_add(pushed.coalesced as u64, Ordering::Relaxed);
                }
                if pushed.closed_slow {
                    self.slow_closes.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        subscriber = id,
                        "feed subscriber too slow; closing its stream"
                    );
                }
            }
        }
    }

    fn exact_len(&self) -> usize {
        self.core().history.exact_len()
    }

    fn to_save(&self) -> Saved {
        self.core().history.prune_and_save()
    }
}

/// The change feeds of one server: the storage (for snapshots) and the hub.
pub struct Feeds {
    storage: Arc<Storage>,
    hub: Arc<Hub>,
    closing: tokio_util::sync::CancellationToken,
    token_shares: Arc<super::token_shares::TokenShares>,
}

impl Feeds {
    /// The feeds of `storage`, which was opened with `hub` as its publisher.
    pub fn new(storage: Arc<Storage>, hub: Arc<Hub>) -> Arc<Self> {
        Arc::new(Self {
            storage,
            token_shares: super::token_shares::TokenShares::new(
                hub.settings.get().max_connections_per_token,
            ),
            hub,
            closing: tokio_util::sync::CancellationToken::new(),
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.hub.core()
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<FeedSettings> {
        self.hub.settings.get()
    }

    /// Replaces the settings (a reload). Connections and subscriptions already open
    /// stay, also over a lowered limit; new ones meet the new limits; the history is
    /// pruned to the new retention as it next grows.
    pub fn set_settings(&self, settings: FeedSettings) {
        self.core()
            .history
            .set_retention(settings.retention.clone());
        self.token_shares
            .set_max_per_token(settings.max_connections_per_token);
        self.hub.settings.set(settings);
    }

    /// Each token's share of the connection limit.
    pub fn token_shares(&self) -> &Arc<super::token_shares::TokenShares> {
        &self.token_shares
    }

    /// The cursor after the last change.
    pub fn head(&self) -> Cursor {
        self.core().history.head()
    }

    /// Opens a subscriber (one per feed connection or long-poll request).
    ///
    /// # Errors
    /// [`FeedError::TooManyConnections`].
    pub fn open(self: &Arc<Self>, transport: Transport) -> Result<Subscriber, FeedError> {
        let mut core = self.core();
        let settings = self.hub.settings.get();
        if core.conns.len() >= settings.max_connections {
            return Err(FeedError::TooManyConnections(settings.max_connections));
        }
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::new(settings.queue_budget));
        core.conns.insert(
            id,
            Conn {
                outbox: Arc::clone(&outbox),
                subs: HashSet::new(),
                transport,
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
        self.hub.slow_closes.load(Ordering::Relaxed)
    }

    /// Number of open subscribers and subscriptions.
    pub fn counts(&self) -> (usize, usize) {
        let core = self.core();
        (core.conns.len(), core.total_subs)
    }

    /// The feeds' figures for the metrics: one look at each subscriber (its transport
    /// and queue), under the hub's lock.
    pub fn figures(&self) -> FeedFigures {
        let core = self.core();
        let mut open = [0; Transport::ALL.len()];
        let mut queued_bytes = 0;
        for conn in core.conns.values() {
            queued_bytes += conn.outbox.queued_bytes();
            open[conn.transport as usize] += 1;
        }
        FeedFigures {
            connections: Transport::ALL.map(|t| (t.name(), open[t as usize])),
            subscriptions: core.total_subs,
            deliveries: self.hub.delivered.load(Ordering::Relaxed),
            coalesced: self.hub.coalesced.load(Ordering::Relaxed),
            slow_closes: self.hub.slow_closes.load(Ordering::Relaxed),
            queued_bytes,
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
                (states, core.history.head())
            })?;
            synced_at.get_or_insert(head);
            events.extend(states.into_iter().map(|state| event::of_state(*si, state)));
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
            let backlog = core.history.backlog_for(since, &unique);
            let head = core.history.head();
            for si in &unique {
                core.register(self.id, *si);
            }
            return Ok(match backlog {
                Backlog::Exact(entries) | Backlog::Coalesced(entries) => entries
                    .iter()
                    .map(|e| {
                        event::of_change(
                            &e.change,
                            Cursor {
                                epoch: head.epoch,
                                seq: e.seq,
                            },
                        )
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
                cursor: core.history.head(),
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
        let settings = self.feeds.hub.settings.get();
        let per_conn = settings.max_subscriptions_per_connection;
        if have + adding > per_conn {
            return Err(FeedError::TooManySubscriptions(per_conn));
        }
        let max = settings.max_subscriptions;
        if core.total_subs + adding > max {
            return Err(FeedError::TooManySubscriptions(max));
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
            cursor: core.history.head(),
        }));
    }

    /// The queue of live events.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Counts `events` as handed to this subscriber's transport, with their lag.
    pub fn delivered(&self, events: &[super::encode::Shared]) {
        let hub = &self.feeds.hub;
        hub.delivered
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        let now = std::time::Instant::now();
        for event in events {
            hub.lag
                .record(now.saturating_duration_since(event.made).as_secs_f64());
        }
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
