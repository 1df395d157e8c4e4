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

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use swamp_formats::cap::Cap;
use swamp_formats::dirdiff::{ChildChange, ChildInfo, diff, is_mutable_dir};
use swamp_formats::dirnode::Entry;
use swamp_proto::StorageIndex;
use swamp_proto::feed::{Cursor, FeedEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::feed::{FeedItem, FeedOptions, FeedRequest, follow};
use crate::grid::{Grid, GridError};

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

/// Why a cap cannot be watched.
fn not_watchable(cap: &Cap) -> GridError {
    GridError::NotWatchable {
        cap: cap.to_string(),
    }
}

/// One followed slot.
struct Followed {
    /// Directory path relative to the root ("" for the root).
    path: String,
    cap: Cap,
    entries: Vec<Entry>,
    version: Option<(u64, [u8; 32])>,
}

/// One read of a followed slot.
struct Read {
    entries: Vec<Entry>,
    version: Option<(u64, [u8; 32])>,
    data: Vec<u8>,
}

/// A trigger from server `server`'s feed.
struct Trigger {
    server: usize,
    item: FeedItem,
}

struct Watcher<'g> {
    grid: &'g Grid,
    options: WatchOptions,
    out: mpsc::Sender<WatchEvent>,
    followed: BTreeMap<StorageIndex, Followed>,
    /// Last cursor per server, to resume after the followed set changes.
    cursors: HashMap<usize, Cursor>,
    feeds: Vec<JoinHandle<()>>,
    triggers: mpsc::Sender<Trigger>,
    /// Servers found without a change feed.
    polled: Vec<usize>,
    /// Servers whose feed is currently down.
    down: Vec<usize>,
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
    if !is_file && !is_mutable_dir(&target) {
        return Err(not_watchable(&target));
    }
    let (triggers, mut incoming) = mpsc::channel(1024);
    let mut w = Watcher {
        grid,
        options,
        out,
        followed: BTreeMap::new(),
        cursors: HashMap::new(),
        feeds: Vec::new(),
        triggers,
        polled: Vec::new(),
        down: Vec::new(),
    };
    let snapshot = w.options.snapshot;
    if !w.add(String::new(), target, snapshot).await? {
        return Ok(());
    }
    if !w.send(WatchEvent::Ready).await {
        return Ok(());
    }
    w.restart_feeds();
    let mut poll = tokio::time::interval(w.options.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            trigger = incoming.recv() => {
                let Some(trigger) = trigger else { break Ok(()) };
                match w.on_trigger(trigger).await {
                    Ok(true) => {}
                    Ok(false) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
            _ = poll.tick(), if !w.polled.is_empty() || w.has_unread() => {
                let again = if w.polled.is_empty() { w.reread_unread().await } else { w.reread_all().await };
                match again {
                    Ok(true) => {}
                    Ok(false) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
            () = w.out.closed() => break Ok(()),
        }
    };
    for feed in &w.feeds {
        feed.abort();
    }
    result
}

impl Watcher<'_> {
    async fn send(&self, event: WatchEvent) -> bool {
        self.out.send(event).await.is_ok()
    }

    /// Starts following `cap` at `path`, reporting its current children as existing
    /// when `report`. Returns `false` when the consumer is gone.
    async fn add(&mut self, path: String, cap: Cap, report: bool) -> Result<bool, GridError> {
        let Some(si) = cap.storage_index() else {
            return Ok(true);
        };
        if self.followed.contains_key(&si) {
            return Ok(true);
        }
        let read = match self.read(&cap).await {
            Ok(read) => read,
            // A subdirectory that cannot be read yet (its creator may still be
            // writing its shares) is followed anyway and read again until it can be.
            Err(e) if !path.is_empty() => {
                let notice = WatchEvent::Notice(format!("cannot read {path} yet: {e}"));
                self.followed.insert(
                    si,
                    Followed {
                        path,
                        cap,
                        entries: Vec::new(),
                        version: None,
                    },
                );
                return Ok(self.send(notice).await);
            }
            Err(e) => return Err(e),
        };
        let Read {
            entries,
            version,
            data,
        } = read;
        if let (Cap::Mutable(_), Some((seqnum, root_hash)), true) = (&cap, version, report) {
            let event = WatchEvent::Version {
                seqnum,
                root_hash,
                data,
            };
            if !self.send(event).await {
                return Ok(false);
            }
        }
        let mut subdirs = Vec::new();
        for entry in &entries {
            let child_path = join(&path, &entry.name);
            if report
                && !self
                    .send(WatchEvent::Existing {
                        path: child_path.clone(),
                        entry: entry.clone(),
                    })
                    .await
            {
                return Ok(false);
            }
            let info = ChildInfo::of(entry);
            if self.follows_into(&child_path) && info.followable_dir() {
                subdirs.extend(info.cap.map(|c| (child_path, c)));
            }
        }
        self.followed.insert(
            si,
            Followed {
                path,
                cap,
                entries,
                version,
            },
        );
        for (child_path, child) in subdirs {
            if !Box::pin(self.add(child_path, child, report)).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads a followed cap: children (none for a file), version, and for a file its
    /// contents.
    async fn read(&self, cap: &Cap) -> Result<Read, GridError> {
        match cap {
            Cap::Mutable(file) => {
                let v = self.grid.read_mutable(file).await?;
                Ok(Read {
                    entries: Vec::new(),
                    version: Some((v.seqnum, v.root_hash)),
                    data: v.data,
                })
            }
            dir => {
                let listing = self.grid.read_dir(dir).await?;
                Ok(Read {
                    entries: listing.entries,
                    version: listing.version,
                    data: Vec::new(),
                })
            }
        }
    }

    /// (Re)starts one feed per server for the followed set, resuming each from its
    /// last cursor (a snapshot when there is none, so nothing between our first read
    /// and the subscription is missed).
    fn restart_feeds(&mut self) {
        for feed in self.feeds.drain(..) {
            feed.abort();
        }
        let sis: Vec<StorageIndex> = self.followed.keys().copied().collect();
        for (server, s) in self.grid.servers().iter().enumerate() {
            if self.polled.contains(&server) {
                continue;
            }
            let since = self.cursors.get(&server).copied();
            let request = FeedRequest {
                storage_indexes: sis.clone(),
                since,
                snapshot: since.is_none(),
            };
            let mut stream = Box::pin(follow(&s.nurl, request, self.options.feed.clone()));
            let triggers = self.triggers.clone();
            self.feeds.push(tokio::spawn(async move {
                while let Some(item) = stream.next().await {
                    if triggers.send(Trigger { server, item }).await.is_err() {
                        break;
                    }
                }
            }));
        }
    }

    fn server_name(&self, server: usize) -> String {
        self.grid
            .servers()
            .get(server)
            .map_or_else(String::new, |s| format!("{}:{}", s.nurl.host, s.nurl.port))
    }

    /// Handles one trigger; `false` when the consumer is gone.
    async fn on_trigger(&mut self, Trigger { server, item }: Trigger) -> Result<bool, GridError> {
        match item {
            FeedItem::Event(event) => {
                if let Some(c) = event.cursor() {
                    self.cursors.insert(server, c);
                }
                match event {
                    FeedEvent::Reset { .. } => {
                        let name = self.server_name(server);
                        let why = format!("feed from {name} reset; reading everything again");
                        if !self.send(WatchEvent::Resync(why)).await {
                            return Ok(false);
                        }
                        self.reread_all().await
                    }
                    FeedEvent::SlotDeleted { si, .. } => self.reread(si).await,
                    event => {
                        let Some((si, version)) = event.slot_version() else {
                            return Ok(true);
                        };
                        let known = self.followed.get(&si).and_then(|f| f.version);
                        let newer = match (version, known) {
                            (Some((s, r)), Some((ks, kr))) => s > ks || (s == ks && r.0 != kr),
                            _ => true,
                        };
                        if newer {
                            self.reread(si).await
                        } else {
                            Ok(true)
                        }
                    }
                }
            }
            FeedItem::Connected(_) => {
                if let Some(at) = self.down.iter().position(|&s| s == server) {
                    self.down.swap_remove(at);
                    let name = self.server_name(server);
                    if !self
                        .send(WatchEvent::Resync(format!("feed from {name} is back")))
                        .await
                    {
                        return Ok(false);
                    }
                    // Whatever happened while it was down, read everything again.
                    return self.reread_all().await;
                }
                Ok(true)
            }
            FeedItem::Disconnected { error, retry_in } => {
                if self.down.contains(&server) {
                    return Ok(true);
                }
                self.down.push(server);
                let name = self.server_name(server);
                Ok(self
                    .send(WatchEvent::Notice(format!(
                        "feed from {name} lost ({error}); retrying in {:.1} s",
                        retry_in.as_secs_f64()
                    )))
                    .await)
            }
            FeedItem::Unsupported => {
                if self.polled.contains(&server) {
                    return Ok(true);
                }
                self.polled.push(server);
                let name = self.server_name(server);
                Ok(self
                    .send(WatchEvent::Notice(format!(
                        "server {name} has no change feed; polling every {:.1} s",
                        self.options.poll_interval.as_secs_f64()
                    )))
                    .await)
            }
        }
    }

    /// Whether a directory at `path` (relative to the root) is followed when found.
    fn follows_into(&self, path: &str) -> bool {
        let depth = path.split('/').count();
        self.options.recursive
            && self.options.max_depth.is_none_or(|max| depth <= max)
            && !self.options.skip.iter().any(|p| p == path)
    }

    /// Whether some followed slot has never been read successfully.
    fn has_unread(&self) -> bool {
        self.followed.values().any(|f| f.version.is_none())
    }

    async fn reread_unread(&mut self) -> Result<bool, GridError> {
        let sis: Vec<StorageIndex> = self
            .followed
            .iter()
            .filter(|(_, f)| f.version.is_none())
            .map(|(si, _)| *si)
            .collect();
        for si in sis {
            if !self.reread(si).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn reread_all(&mut self) -> Result<bool, GridError> {
        let sis: Vec<StorageIndex> = self.followed.keys().copied().collect();
        for si in sis {
            if !self.reread(si).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads a followed slot again and reports what changed since the last read.
    async fn reread(&mut self, si: StorageIndex) -> Result<bool, GridError> {
        let Some(f) = self.followed.get(&si) else {
            return Ok(true);
        };
        let cap = f.cap.clone();
        let Read {
            entries,
            version,
            data,
        } = match self.read(&cap).await {
            Ok(read) => read,
            // A slot that cannot be read right now (shares missing mid-write, servers
            // down) is read again on the next trigger; the watch goes on.
            Err(e) => {
                let path = display_dir(&f.path);
                return Ok(self
                    .send(WatchEvent::Notice(format!("cannot read {path} yet: {e}")))
                    .await);
            }
        };
        let (Some((seqnum, root_hash)), Some(f)) = (version, self.followed.get_mut(&si)) else {
            return Ok(true);
        };
        match f.version {
            Some((old, old_root)) if old > seqnum || (old == seqnum && old_root == root_hash) => {
                return Ok(true);
            }
            _ => {}
        }
        f.version = version;
        if matches!(cap, Cap::Mutable(_)) {
            let event = WatchEvent::Version {
                seqnum,
                root_hash,
                data,
            };
            return Ok(self.send(event).await);
        }
        let changes = diff(&f.entries, &entries);
        f.entries = entries;
        let dir = f.path.clone();
        let mut set_changed = false;
        for change in changes {
            let path = join(&dir, change.name());
            if !self
                .send(WatchEvent::Changed {
                    path: path.clone(),
                    change: change.clone(),
                    dir_seqnum: seqnum,
                })
                .await
            {
                return Ok(false);
            }
            if !self.follows_into(&path) {
                continue;
            }
            if let ChildChange::Removed(old) | ChildChange::Modified { old, .. } = &change {
                set_changed |= self.drop_subtree(&path, old);
            }
            if let ChildChange::Added(new) | ChildChange::Modified { new, .. } = &change {
                let info = ChildInfo::of(new);
                if let (true, Some(child)) = (info.followable_dir(), info.cap) {
                    if !self.add(path, child, true).await? {
                        return Ok(false);
                    }
                    set_changed = true;
                }
            }
        }
        if set_changed {
            self.restart_feeds();
        }
        Ok(true)
    }

    /// Stops following the directory that was at `path` (and everything followed
    /// under it). Returns whether anything was dropped.
    fn drop_subtree(&mut self, path: &str, old: &Entry) -> bool {
        let info = ChildInfo::of(old);
        if !info.followable_dir() {
            return false;
        }
        let prefix = format!("{path}/");
        let before = self.followed.len();
        self.followed
            .retain(|_, f| f.path != path && !f.path.starts_with(&prefix));
        before != self.followed.len()
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn display_dir(path: &str) -> String {
    if path.is_empty() {
        "the watched directory".into()
    } else {
        path.to_string()
    }
}

/// Makes a name printable on one line (control characters escaped).
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn describe(entry: &Entry) -> String {
    let info = ChildInfo::of(entry);
    let size = info.size.map_or_else(|| "-".to_string(), |s| s.to_string());
    format!(
        "{:<4} {:>10} {:<12}",
        info.kind.as_str(),
        size,
        info.cap_type
    )
}

/// One line of human output for `event`: verb, kind, size, cap type, path.
pub fn format_line(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Existing { path, entry } => {
            format!("{:<8} {} {}", "exists", describe(entry), printable(path))
        }
        WatchEvent::Changed { path, change, .. } => {
            format!(
                "{:<8} {} {}",
                change.verb(),
                describe(change.entry()),
                printable(path)
            )
        }
        WatchEvent::Version {
            seqnum,
            data,
            root_hash,
        } => format!(
            "{:<8} seqnum {seqnum}, {} bytes, root hash {}",
            "version",
            data.len(),
            swamp_proto::base32::encode(root_hash)
        ),
        WatchEvent::Ready => "ready".to_string(),
        WatchEvent::Notice(text) | WatchEvent::Resync(text) => format!("notice: {text}"),
    }
}

fn entry_json(entry: &Entry) -> Value {
    let info = ChildInfo::of(entry);
    json!({
        "name": entry.name,
        "kind": info.kind.as_str(),
        "size": info.size,
        "cap_type": info.cap_type,
        "mutable": info.mutable,
        "ro_uri": entry.ro_uri,
        "rw_uri": entry.rw_uri,
        "metadata": entry.metadata,
    })
}

/// One JSON line for `event` (full detail, caps included).
pub fn json_line(event: &WatchEvent) -> Value {
    match event {
        WatchEvent::Existing { path, entry } => {
            let mut v = entry_json(entry);
            v["event"] = json!("exists");
            v["path"] = json!(path);
            v
        }
        WatchEvent::Changed {
            path,
            change,
            dir_seqnum,
        } => {
            let mut v = entry_json(change.entry());
            v["event"] = json!(change.verb());
            v["path"] = json!(path);
            v["dir_seqnum"] = json!(dir_seqnum);
            if let ChildChange::Modified { old, .. } = change {
                v["old"] = entry_json(old);
            }
            v
        }
        WatchEvent::Version {
            seqnum,
            root_hash,
            data,
        } => json!({
            "event": "version",
            "seqnum": seqnum,
            "root_hash": swamp_proto::base32::encode(root_hash),
            "size": data.len(),
        }),
        WatchEvent::Ready => json!({"event": "ready"}),
        WatchEvent::Notice(text) => json!({"event": "notice", "message": text}),
        WatchEvent::Resync(text) => json!({"event": "notice", "message": text, "resync": true}),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lines_name_verb_kind_size_type_and_path() {
        let entry = Entry {
            name: "a\nb".into(),
            ro_uri: Some("URI:LIT:mfrgg".into()),
            rw_uri: None,
            metadata: json!({}),
        };
        let event = WatchEvent::Changed {
            path: "dir/a\nb".into(),
            change: ChildChange::Added(entry),
            dir_seqnum: 3,
        };
        assert_eq!(
            format_line(&event),
            "added    file          3 LIT          dir/a\\nb"
        );
        let json = json_line(&event);
        assert_eq!(json["event"], "added");
        assert_eq!(json["path"], "dir/a\nb");
        assert_eq!(json["size"], 3);
        assert_eq!(json["dir_seqnum"], 3);
    }
}
