//! A one-way mirror: keeps a local folder equal to a Tahoe directory tree, on push.
//!
//! Servers see only encrypted shares, so a feed event says "slot X changed", never
//! what changed. The mirror therefore uses events only as triggers, as `tahoe watch`
//! does: it follows the storage index of every mutable directory in the tree on every
//! server, and when one moves it reads that directory again (verified and decrypted
//! with the cap), then makes the local folder match: files whose cap changed are
//! downloaded into a temporary file and renamed into place, names that are gone are
//! removed, new subdirectories are read whole and followed too.
//!
//! It resumes after a restart from the cursors in its state file (see `state.rs`):
//! the servers replay what changed meanwhile, and only those directories are read
//! again; files whose cap did not change are not downloaded again. Without saved
//! cursors (first run) or after a `reset`, it reads the whole tree, still downloading
//! only the files whose cap differs from the state's.
//!
//! Mutable files inside the tree are skipped: their cap does not change with their
//! contents, so mirroring them means following their slots as well (as `tahoe watch`
//! does for a mutable file). Servers without a change feed are not polled either.
//! Both are left out to keep this example short.

mod local;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use serde::Serialize;
use swamp_client::feed::{FeedItem, FeedOptions, FeedRequest, follow};
use swamp_client::grid::Grid;
use swamp_formats::cap::Cap;
use swamp_formats::dirdiff::is_mutable_dir;
use swamp_proto::StorageIndex;
use swamp_proto::feed::{FeedEvent, RootHash};
use tokio::sync::mpsc;

pub use state::STATE_FILE;
use state::{Dir, State, split};

/// How far the mirror goes.
#[derive(Clone, Debug)]
pub struct MirrorOptions {
    /// Deepest directory mirrored (1: only the root's own children).
    pub max_depth: usize,
    /// Largest file downloaded; larger ones are skipped.
    pub max_file_size: u64,
    /// Feed client settings.
    pub feed: FeedOptions,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        Self {
            max_depth: 16,
            max_file_size: 1 << 30,
            feed: FeedOptions::default(),
        }
    }
}

/// What the mirror did: one JSON line each in the `mirror` program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MirrorEvent {
    /// The tree is read (or the saved state loaded) and the feeds are followed.
    Ready {
        /// Whether it resumed from saved cursors instead of reading the whole tree.
        resumed: bool,
    },
    /// A file was written, from the grid or from its cap (LIT).
    Downloaded {
        /// Path relative to the mirrored directory.
        path: String,
        /// Its size.
        size: u64,
    },
    /// A file or directory gone remotely was removed.
    Removed {
        /// Path relative to the mirrored directory.
        path: String,
    },
    /// An entry was not mirrored.
    Skipped {
        /// Path relative to the mirrored directory (the name may be hostile: printed
        /// as JSON, never used as a path).
        path: String,
        /// Why.
        why: String,
    },
    /// A feed or read problem; the mirror goes on.
    Notice {
        /// What happened.
        message: String,
    },
}

struct Mirror<'g> {
    grid: &'g Grid,
    target: PathBuf,
    options: MirrorOptions,
    state: State,
    /// Directories whose last read failed: read again at the next event or tick.
    retry: BTreeSet<String>,
    out: mpsc::Sender<MirrorEvent>,
}

/// Mirrors the directory `root` (a mutable directory cap; read-only is enough) into
/// the folder `target` until `out` is closed, reporting what it does to `out`.
///
/// # Errors
/// When `root` is not a mutable directory, `target` already mirrors another
/// directory, the first read fails, or the state file cannot be written.
pub async fn run(
    grid: &Grid,
    root: &Cap,
    target: &Path,
    options: MirrorOptions,
    out: mpsc::Sender<MirrorEvent>,
) -> anyhow::Result<()> {
    anyhow::ensure!(is_mutable_dir(root), "only a mutable directory changes");
    std::fs::create_dir_all(target)?;
    let root_text = root.read_only().to_string();
    let mut state = State::load(target)?;
    anyhow::ensure!(
        state.root.is_empty() || state.root == root_text,
        "{} mirrors another directory",
        target.display()
    );
    state.root = root_text;
    let mut m = Mirror {
        grid,
        target: target.to_path_buf(),
        options,
        state,
        retry: BTreeSet::new(),
        out,
    };
    let resumed = !m.state.cursors.is_empty();
    if !resumed {
        m.sync_dir(String::new(), root.read_only()).await?;
        anyhow::ensure!(!m.retry.contains(""), "cannot read the directory");
        m.state.save(&m.target)?;
    }
    let mut feeds = m.start_feeds();
    m.send(MirrorEvent::Ready { resumed }).await;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        let first = tokio::select! {
            item = feeds.next() => match item {
                Some(item) => Some(item),
                None => anyhow::bail!("no server has a change feed"),
            },
            _ = tick.tick(), if !m.retry.is_empty() => None,
            () = m.out.closed() => return Ok(()),
        };
        // Take everything already waiting too: one read per directory per burst.
        let mut batch: Vec<_> = first.into_iter().collect();
        while let Some(Some(item)) = feeds.next().now_or_never() {
            batch.push(item);
        }
        if m.apply(batch).await? {
            feeds = m.start_feeds();
        }
    }
}

impl Mirror<'_> {
    async fn send(&self, event: MirrorEvent) {
        let _ = self.out.send(event).await;
    }

    async fn notice(&self, message: String) {
        self.send(MirrorEvent::Notice { message }).await;
    }

    /// The followed slots: every mutable directory mirrored, by storage index.
    fn followed(&self) -> BTreeMap<StorageIndex, (String, Cap)> {
        let mut out = BTreeMap::new();
        for (path, dir) in &self.state.dirs {
            if let Ok(cap) = Cap::parse_lenient(&dir.cap)
                && let (true, Some(si)) = (is_mutable_dir(&cap), cap.storage_index())
            {
                out.insert(si, (path.clone(), cap));
            }
        }
        out
    }

    /// One feed per server for the followed slots, each from its saved cursor (with a
    /// snapshot when there is none: its versions show any change since our read).
    fn start_feeds(&self) -> SelectAll<BoxStream<'static, (String, FeedItem)>> {
        let sis: Vec<StorageIndex> = self.followed().into_keys().collect();
        let feeds = self.grid.servers().iter().map(|server| {
            let key = server.nurl.spki_hash.to_string();
            let since = self.state.cursors.get(&key).copied();
            let request = FeedRequest {
                storage_indexes: sis.clone(),
                since,
                snapshot: since.is_none(),
            };
            follow(&server.nurl, request, self.options.feed.clone())
                .map(move |item| (key.clone(), item))
                .boxed()
        });
        futures::stream::select_all(feeds)
    }

    /// Handles a burst of feed items; returns whether the followed set changed.
    async fn apply(&mut self, batch: Vec<(String, FeedItem)>) -> anyhow::Result<bool> {
        let followed = self.followed();
        let mut dirty: BTreeSet<String> = std::mem::take(&mut self.retry);
        let mut cursors = Vec::new();
        let mut reset = false;
        for (server, item) in batch {
            let event = match item {
                FeedItem::Event(event) => event,
                FeedItem::Unsupported => {
                    self.notice(format!("server {server} has no change feed"))
                        .await;
                    continue;
                }
                FeedItem::Disconnected { error, .. } => {
                    self.notice(format!("feed from {server} lost: {error}"))
                        .await;
                    continue;
                }
                FeedItem::Connected(_) => continue,
            };
            cursors.extend(event.cursor().map(|c| (server.clone(), c)));
            if let FeedEvent::Reset { .. } = event {
                reset = true;
                continue;
            }
            let Some((si, version)) = event.slot_version() else {
                continue;
            };
            if let Some((path, _)) = followed.get(&si)
                && (version.is_none()
                    || self.state.dirs.get(path).map(|d| d.version) != Some(version))
            {
                dirty.insert(path.clone());
            }
        }
        if reset {
            self.notice("a feed was reset: reading the whole tree".into())
                .await;
            // Parents come first, so a directory removed with its parent is not read.
            dirty = self.state.dirs.keys().cloned().collect();
        }
        for path in dirty {
            // Read again unless a removal above took it away.
            if let Some(dir) = self.state.dirs.get(&path)
                && let Ok(cap) = Cap::parse_lenient(&dir.cap)
            {
                Box::pin(self.sync_dir(path, cap)).await?;
            }
        }
        // A cursor is saved only once every change before it is applied.
        if self.retry.is_empty() {
            self.state.cursors.extend(cursors);
        }
        self.state.save(&self.target)?;
        Ok(self.followed().keys().ne(followed.keys()))
    }

    /// Reads the directory at `path` and makes the local folder match it. Grid errors
    /// are reported and retried later; only local errors that stop the mirror (the
    /// state cannot be saved) are returned.
    async fn sync_dir(&mut self, path: String, cap: Cap) -> anyhow::Result<()> {
        let listing = match self.grid.read_dir(&cap).await {
            Ok(listing) => listing,
            Err(e) => {
                self.notice(format!("cannot read {path:?} yet: {e}")).await;
                self.retry.insert(path.clone());
                self.state.dirs.entry(path).or_insert(Dir {
                    cap: cap.to_string(),
                    version: None,
                });
                return Ok(());
            }
        };
        let local = local::local_path(&self.target, &path);
        if !std::fs::symlink_metadata(&local).is_ok_and(|m| m.is_dir()) {
            local::remove(&local)?;
            std::fs::create_dir_all(&local)?;
        }
        let version = listing.version.map(|(s, r)| (s, RootHash(r)));
        self.state.dirs.insert(
            path.clone(),
            Dir {
                cap: cap.to_string(),
                version,
            },
        );
        let depth = path.split('/').filter(|n| !n.is_empty()).count() + 1;
        let mut kept = BTreeSet::new();
        for entry in listing.entries {
            let child = if path.is_empty() {
                entry.name.clone()
            } else {
                format!("{path}/{}", entry.name)
            };
            let why = match (local::bad_name(&entry.name), entry.cap()) {
                (Some(why), _) => why.to_string(),
                (None, Err(e)) => format!("unreadable cap: {e}"),
                (None, Ok(_)) if depth > self.options.max_depth => "too deep".into(),
                (None, Ok(cap)) => match self.sync_child(&child, cap.read_only()).await? {
                    None => {
                        kept.insert(entry.name);
                        continue;
                    }
                    Some(why) => why,
                },
            };
            self.send(MirrorEvent::Skipped { path: child, why }).await;
        }
        for name in self.state.children(&path) {
            if !kept.contains(&name) {
                let gone = if path.is_empty() {
                    name
                } else {
                    format!("{path}/{name}")
                };
                local::remove(&local::local_path(&self.target, &gone))?;
                self.state.forget(&gone);
                self.send(MirrorEvent::Removed { path: gone }).await;
            }
        }
        Ok(())
    }

    /// Mirrors one child; returns why it was skipped, if it was.
    async fn sync_child(&mut self, path: &str, cap: Cap) -> anyhow::Result<Option<String>> {
        let text = cap.to_string();
        let dest = local::local_path(&self.target, path);
        match &cap {
            Cap::Dir(_) => {
                if self.state.dirs.get(path).is_none_or(|d| d.cap != text) {
                    self.state.forget(path);
                    Box::pin(self.sync_dir(path.to_string(), cap)).await?;
                }
                Ok(None)
            }
            Cap::Lit(_) | Cap::Chk(_) => {
                let size = match &cap {
                    Cap::Chk(chk) => chk.size,
                    _ => 0,
                };
                if size > self.options.max_file_size {
                    return Ok(Some(format!("{size} bytes, over the limit")));
                }
                let on_disk = std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file());
                if on_disk && self.state.files.get(path) == Some(&text) {
                    return Ok(None);
                }
                if self.state.dirs.contains_key(path) {
                    local::remove(&dest)?;
                    self.state.forget(path);
                }
                let mut file = local::Replacement::new(&dest)?;
                let written = match &cap {
                    Cap::Lit(data) => {
                        std::io::Write::write_all(&mut file.file, data).map_err(anyhow::Error::from)
                    }
                    Cap::Chk(chk) => (self.grid.download_to(chk, &mut file.file).await)
                        .map_err(anyhow::Error::from),
                    _ => unreachable!("matched above"),
                };
                let done = match written {
                    Ok(()) => file.commit().map_err(anyhow::Error::from),
                    Err(e) => {
                        file.abandon();
                        Err(e)
                    }
                };
                match done {
                    Ok(()) => {
                        self.state.files.insert(path.to_string(), text);
                        let size = std::fs::metadata(&dest).map_or(0, |m| m.len());
                        let path = path.to_string();
                        self.send(MirrorEvent::Downloaded { path, size }).await;
                    }
                    Err(e) => {
                        // Tried again with its directory; the old file stays meanwhile.
                        self.retry.insert(split(path).0.to_string());
                        self.notice(format!("cannot download {path:?} yet: {e}"))
                            .await;
                    }
                }
                Ok(None)
            }
            _ => Ok(Some("not an immutable file or a directory".into())),
        }
    }
}
