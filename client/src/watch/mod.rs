//! Watching a directory (or a mutable file) for changes, decrypted on the client.
//!
//! The server only ever learns which storage indexes we follow. Each server's change
//! feed (or, for servers without one, a poll) is only a *trigger*: on any sign that a
//! followed slot moved, the slot is read again from the grid, verified, decrypted and
//! diffed against the last version seen. Triggers are therefore allowed to be
//! duplicated, coalesced or stale (a lagging server's snapshot) without harm, and the
//! watcher converges on the newest recoverable version whatever the feeds did:
//! a reconnect after an outage re-reads everything, a `reset` re-reads everything.
//!
//! With `recursive`, mutable subdirectories are followed as they appear and dropped as
//! they disappear; each slot is followed once, at the first path it was found under,
//! so a cycle of directories is harmless.
//!
//! [`watch`] is the one entry point, for one server or many: a slot's shares live on
//! several servers, so every server of the grid is followed. A version several of
//! them announce is read once (an announcement no newer than the last read is
//! skipped) and reported once (a read reports only what is newer than the last).
//!
//! Each step returns [`ControlFlow::Break`] once the consumer has dropped its
//! receiver, and the watch ends there; the feeds' tasks end with it.
//!
//! # Layout
//! - `mod.rs`: what a watch reports, and the loop: feed items in, reads out.
//! - `server_feed.rs`: one server's feed (cursor, lost or polled, its task).
//! - `tree.rs`: the followed slots: read, diffed, reported, subdirectories followed.
//! - `json.rs`: an event as JSON, the one shape `tahoe watch --json` and a client
//!   node's `t=watch` share. How events are printed for people is the CLI's business.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ops::ControlFlow;
use std::time::Duration;

use swamp_formats::cap::Cap;
use swamp_formats::dirdiff::{ChildChange, is_mutable_dir};
use swamp_formats::dirnode::Entry;
use swamp_proto::StorageIndex;
use swamp_proto::feed::FeedEvent;
use tokio::sync::mpsc;

use crate::feed::{FeedItem, FeedOptions};
use crate::grid::{Grid, GridError};

mod json;
mod server_feed;
mod tree;

use server_feed::{ServerFeed, Trigger};
use tree::{Followed, Read};

/// How to watch.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Report the current children first (as [`WatchEvent::Existing`]).
    pub snapshot: bool,
    /// Follow subdirectories too.
    pub recursive: bool,
    /// With `recursive`, how deep to follow subdirectories (1 = only the watched
    /// directory's own children); `None` follows every depth. A bound for trees that
    /// others write to, such as a magic-folder collective.
    pub max_depth: Option<usize>,
    /// With `recursive`, paths (relative to the watched directory) whose directories
    /// are not followed; changes to their entries are still reported. For a
    /// magic-folder collective: our own personal directory.
    pub skip: Vec<String>,
    /// How often servers without a change feed are polled.
    pub poll_interval: Duration,
    /// Feed client settings.
    pub feed: FeedOptions,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            snapshot: false,
            recursive: false,
            max_depth: None,
            skip: Vec::new(),
            poll_interval: Duration::from_secs(1),
            feed: FeedOptions::default(),
        }
    }
}

/// What a watch reports.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    /// A child present when watching began (with `snapshot`), or inside a
    /// subdirectory that appeared (with `recursive`).
    Existing {
        /// Path relative to the watched directory.
        path: String,
        /// The child.
        entry: Entry,
    },
    /// A child was added, removed or modified.
    Changed {
        /// Path of the child relative to the watched directory.
        path: String,
        /// What changed.
        change: ChildChange,
        /// The directory's new sequence number.
        dir_seqnum: u64,
    },
    /// The watched mutable file has a new version.
    Version {
        /// Its sequence number.
        seqnum: u64,
        /// Its root hash.
        root_hash: [u8; 32],
        /// Its contents.
        data: Vec<u8>,
    },
    /// The initial state is read; changes from here on are live.
    Ready,
    /// Something the user should know (a server polled instead of followed, a feed
    /// lost).
    Notice(String),
    /// A feed came back after an outage, or reset: changes may have been missed while
    /// it was away, so everything is being read again (and any difference will follow
    /// as [`WatchEvent::Changed`]). Says why.
    Resync(String),
}

/// The state of one watch: the followed slots, and one feed per server.
struct Watcher<'g> {
    grid: &'g Grid,
    options: WatchOptions,
    out: mpsc::Sender<WatchEvent>,
    /// Every followed slot, by storage index.
    followed: BTreeMap<StorageIndex, Followed>,
    /// One feed per server, in the grid's order ([`Trigger::server`] indexes it).
    servers: Vec<ServerFeed>,
    /// Where the feeds send their items.
    triggers: mpsc::Sender<Trigger>,
}

/// Watches `target` (a mutable directory or mutable file cap) until `out` is closed,
/// sending what happens to `out`.
///
/// # Errors
/// [`GridError::NotWatchable`] for caps that cannot change; [`GridError`] when the
/// first read fails.
pub async fn watch(
    grid: &Grid,
    target: Cap,
    options: WatchOptions,
    out: mpsc::Sender<WatchEvent>,
) -> Result<(), GridError> {
    let is_file = matches!(target, Cap::Mutable(_));
    let si = target
        .storage_index()
        .filter(|_| is_file || is_mutable_dir(&target));
    let Some(si) = si else {
        return Err(GridError::NotWatchable {
            cap: target.to_string(),
        });
    };
    let (triggers, incoming) = mpsc::channel(1024);
    let servers = grid.servers().iter();
    let mut w = Watcher {
        grid,
        options,
        out,
        followed: BTreeMap::new(),
        servers: servers.map(|s| ServerFeed::new(s.nurl.clone())).collect(),
        triggers,
    };
    let read = w.read(&target).await?;
    let ControlFlow::Break(()) = w.run(si, target, read, incoming).await;
    Ok(())
}

impl Watcher<'_> {
    /// Reports the root, just read, then follows it until the consumer is gone.
    async fn run(
        &mut self,
        si: StorageIndex,
        root: Cap,
        read: Read,
        mut incoming: mpsc::Receiver<Trigger>,
    ) -> ControlFlow<(), Infallible> {
        let snapshot = self.options.snapshot;
        self.insert(si, String::new(), root, read, snapshot).await?;
        self.send(WatchEvent::Ready).await?;
        self.restart_feeds();
        let mut poll = tokio::time::interval(self.options.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let polling = self.servers.iter().any(ServerFeed::is_polled);
            tokio::select! {
                trigger = incoming.recv() => match trigger {
                    Some(trigger) => self.on_trigger(trigger).await,
                    None => ControlFlow::Break(()),
                },
                _ = poll.tick(), if polling || self.has_unread() => {
                    if polling { self.reread_all().await } else { self.reread_unread().await }
                }
                () = self.out.closed() => ControlFlow::Break(()),
            }?;
        }
    }

    /// Sends `event` on; [`ControlFlow::Break`] when the consumer is gone.
    async fn send(&self, event: WatchEvent) -> ControlFlow<()> {
        match self.out.send(event).await {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }

    /// (Re)starts every server's feed for the followed set.
    fn restart_feeds(&mut self) {
        let sis: Vec<StorageIndex> = self.followed.keys().copied().collect();
        for (server, feed) in self.servers.iter_mut().enumerate() {
            feed.restart(server, sis.clone(), &self.options.feed, &self.triggers);
        }
    }

    /// Handles one item of a server's feed.
    async fn on_trigger(&mut self, Trigger { server, item }: Trigger) -> ControlFlow<()> {
        let Some(feed) = self.servers.get_mut(server) else {
            return ControlFlow::Continue(());
        };
        let name = feed.name();
        match item {
            FeedItem::Event(event) => {
                if let Some(cursor) = event.cursor() {
                    feed.saw(cursor);
                }
                self.on_event(event, &name).await
            }
            FeedItem::Connected(_) => {
                if !feed.connected() {
                    return ControlFlow::Continue(());
                }
                let why = format!("feed from {name} is back");
                self.send(WatchEvent::Resync(why)).await?;
                // Whatever happened while it was down, read everything again.
                self.reread_all().await
            }
            FeedItem::Disconnected { error, retry_in } => {
                if !feed.lost() {
                    return ControlFlow::Continue(());
                }
                self.send(WatchEvent::Notice(format!(
                    "feed from {name} lost ({error}); retrying in {:.1} s",
                    retry_in.as_secs_f64()
                )))
                .await
            }
            FeedItem::Unsupported => {
                if !feed.unsupported() {
                    return ControlFlow::Continue(());
                }
                self.send(WatchEvent::Notice(format!(
                    "server {name} has no change feed; polling every {:.1} s",
                    self.options.poll_interval.as_secs_f64()
                )))
                .await
            }
        }
    }

    /// Handles one event of the feed of server `name`: a trigger to read again when it
    /// may mean a newer version than the one known.
    async fn on_event(&mut self, event: FeedEvent, name: &str) -> ControlFlow<()> {
        match event {
            FeedEvent::Reset { .. } => {
                let why = format!("feed from {name} reset; reading everything again");
                self.send(WatchEvent::Resync(why)).await?;
                self.reread_all().await
            }
            FeedEvent::SlotDeleted { si, .. } => self.reread(si).await,
            event => {
                let Some((si, version)) = event.slot_version() else {
                    return ControlFlow::Continue(());
                };
                let known = self.followed.get(&si).and_then(|f| f.version);
                let newer = match (version, known) {
                    (Some((s, r)), Some((ks, kr))) => s > ks || (s == ks && r.0 != kr),
                    _ => true,
                };
                if newer {
                    self.reread(si).await
                } else {
                    ControlFlow::Continue(())
                }
            }
        }
    }
}
