//! The followed slots: reading them, diffing each read against the last, reporting
//! what changed, and (with `recursive`) following subdirectories as they appear and
//! dropping them as they disappear. Each slot is followed once, at the first path it
//! was found under, so a cycle of directories is harmless.

use std::ops::ControlFlow;

use swamp_formats::cap::Cap;
use swamp_formats::dirdiff::{ChildChange, ChildInfo, diff};
use swamp_formats::dirnode::Entry;
use swamp_proto::StorageIndex;

use super::{WatchEvent, Watcher};
use crate::grid::GridError;

/// One followed slot.
pub(super) struct Followed {
    /// Directory path relative to the root ("" for the root).
    path: String,
    cap: Cap,
    entries: Vec<Entry>,
    /// `None` until it has been read.
    pub(super) version: Option<(u64, [u8; 32])>,
}

/// One read of a followed slot.
pub(super) struct Read {
    entries: Vec<Entry>,
    version: Option<(u64, [u8; 32])>,
    data: Vec<u8>,
}

impl Watcher<'_> {
    /// Reads a followed cap: children (none for a file), version, and for a file its
    /// contents.
    pub(super) async fn read(&self, cap: &Cap) -> Result<Read, GridError> {
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

    /// Starts following the subdirectory `cap` at `path`, reporting its current
    /// children as existing when `report`. One that cannot be read yet (its creator
    /// may still be writing its shares) is followed anyway and read again until it
    /// can be.
    async fn add(&mut self, path: String, cap: Cap, report: bool) -> ControlFlow<()> {
        let Some(si) = cap.storage_index() else {
            return ControlFlow::Continue(());
        };
        if self.followed.contains_key(&si) {
            return ControlFlow::Continue(());
        }
        match self.read(&cap).await {
            Ok(read) => self.insert(si, path, cap, read, report).await,
            Err(e) => {
                let notice = WatchEvent::Notice(format!("cannot read {path} yet: {e}"));
                let unread = Followed {
                    path,
                    cap,
                    entries: Vec::new(),
                    version: None,
                };
                self.followed.insert(si, unread);
                self.send(notice).await
            }
        }
    }

    /// Follows `cap`, just read, at `path`: reports its version (a file) or its
    /// children (a directory) when `report`, and adds the subdirectories to follow.
    pub(super) async fn insert(
        &mut self,
        si: StorageIndex,
        path: String,
        cap: Cap,
        read: Read,
        report: bool,
    ) -> ControlFlow<()> {
        let Read {
            entries,
            version,
            data,
        } = read;
        if let (Cap::Mutable(_), Some((seqnum, root_hash)), true) = (&cap, version, report) {
            self.send(WatchEvent::Version {
                seqnum,
                root_hash,
                data,
            })
            .await?;
        }
        let mut subdirs = Vec::new();
        for entry in &entries {
            let child_path = join(&path, &entry.name);
            if report {
                self.send(WatchEvent::Existing {
                    path: child_path.clone(),
                    entry: entry.clone(),
                })
                .await?;
            }
            let info = ChildInfo::of(entry);
            if self.follows_into(&child_path) && info.followable_dir() {
                subdirs.extend(info.cap.map(|c| (child_path, c)));
            }
        }
        let followed = Followed {
            path,
            cap,
            entries,
            version,
        };
        self.followed.insert(si, followed);
        for (child_path, child) in subdirs {
            Box::pin(self.add(child_path, child, report)).await?;
        }
        ControlFlow::Continue(())
    }

    /// Whether a directory at `path` (relative to the root) is followed when found.
    fn follows_into(&self, path: &str) -> bool {
        let depth = path.split('/').count();
        self.options.recursive
            && self.options.max_depth.is_none_or(|max| depth <= max)
            && !self.options.skip.iter().any(|p| p == path)
    }

    /// Whether some followed slot has never been read successfully.
    pub(super) fn has_unread(&self) -> bool {
        self.followed.values().any(|f| f.version.is_none())
    }

    /// Reads again every followed slot never read successfully.
    pub(super) async fn reread_unread(&mut self) -> ControlFlow<()> {
        let sis: Vec<StorageIndex> = self
            .followed
            .iter()
            .filter(|(_, f)| f.version.is_none())
            .map(|(si, _)| *si)
            .collect();
        for si in sis {
            self.reread(si).await?;
        }
        ControlFlow::Continue(())
    }

    /// Reads again every followed slot.
    pub(super) async fn reread_all(&mut self) -> ControlFlow<()> {
        let sis: Vec<StorageIndex> = self.followed.keys().copied().collect();
        for si in sis {
            self.reread(si).await?;
        }
        ControlFlow::Continue(())
    }

    /// Reads a followed slot again and reports what changed since the last read.
    pub(super) async fn reread(&mut self, si: StorageIndex) -> ControlFlow<()> {
        let Some(f) = self.followed.get(&si) else {
            return ControlFlow::Continue(());
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
                return self
                    .send(WatchEvent::Notice(format!("cannot read {path} yet: {e}")))
                    .await;
            }
        };
        let (Some((seqnum, root_hash)), Some(f)) = (version, self.followed.get_mut(&si)) else {
            return ControlFlow::Continue(());
        };
        match f.version {
            Some((old, old_root)) if old > seqnum || (old == seqnum && old_root == root_hash) => {
                return ControlFlow::Continue(());
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
            return self.send(event).await;
        }
        let changes = diff(&f.entries, &entries);
        f.entries = entries;
        let dir = f.path.clone();
        let mut set_changed = false;
        for change in changes {
            let path = join(&dir, change.name());
            self.send(WatchEvent::Changed {
                path: path.clone(),
                change: change.clone(),
                dir_seqnum: seqnum,
            })
            .await?;
            if !self.follows_into(&path) {
                continue;
            }
            if let ChildChange::Removed(old) | ChildChange::Modified { old, .. } = &change {
                set_changed |= self.drop_subtree(&path, old);
            }
            if let ChildChange::Added(new) | ChildChange::Modified { new, .. } = &change {
                let info = ChildInfo::of(new);
                if let (true, Some(child)) = (info.followable_dir(), info.cap) {
                    self.add(path, child, true).await?;
                    set_changed = true;
                }
            }
        }
        if set_changed {
            self.restart_feeds();
        }
        ControlFlow::Continue(())
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
