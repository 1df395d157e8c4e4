//! Walking a directory tree as Tahoe's `deep_traverse` does, for everything that
//! works on a whole tree: the manifest, deep-stats, deep-check.
//!
//! The order is Tahoe's, so that streamed output lines up line for line with a
//! Python node's: depth first, one object at a time; a directory is visited, then
//! read, then its file-like children in name order, then each subdirectory in name
//! order, whole. An object is visited once: a child whose verify cap was already
//! seen (a directory linked twice, or into itself) is skipped when its parent is
//! read, as in Tahoe. LIT files have no verify cap and are each visited.
//!
//! A directory that cannot be read is reported to the walker, which decides whether
//! the walk goes on. Memory grows with the tree (a verify cap per object seen, and
//! the directories waiting on the stack); [`MAX_OBJECTS`] bounds it.
//!
//! # Layout
//! - `mod.rs`: the walk, and the manifest line of one object.
//! - `stats.rs`: [`DeepStats`], counted by every walk.

use std::collections::HashSet;
use std::future::Future;
use std::ops::ControlFlow;

use serde_json::{Value, json};
use swamp_formats::cap::Cap;

use crate::grid::{Grid, GridError};

mod stats;

pub use stats::DeepStats;

/// Objects one walk visits at most (each costs a verify cap in memory, about 200
/// bytes): a tree larger than this is refused rather than allowed to grow the
/// client without bound.
pub const MAX_OBJECTS: usize = 5_000_000;

/// One object of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeNode {
    /// Names from the root (empty for the root).
    pub path: Vec<String>,
    /// Its cap, as linked ([`Cap::Unknown`] for a cap this client cannot read).
    pub cap: Cap,
}

impl TreeNode {
    /// Tahoe's word for what it is: `directory`, `file` or `unknown`.
    pub fn kind(&self) -> &'static str {
        match &self.cap {
            Cap::Dir(_) => "directory",
            Cap::Unknown(_) => "unknown",
            _ => "file",
        }
    }

    /// The cap a repair needs: an immutable file is repaired from its verify cap, a
    /// mutable file or directory from its write cap; read-only mutables and
    /// immutable directories have none.
    pub fn repair_cap(&self) -> Option<Cap> {
        match &self.cap {
            Cap::Chk(_) => self.cap.verify_cap(),
            cap if cap.is_writable() => Some(cap.clone()),
            _ => None,
        }
    }

    /// Its line of Tahoe's `t=stream-manifest` (and the start of its
    /// `t=stream-deep-check` line): path, cap, type, verify cap, repair cap and
    /// storage index, absent ones as "".
    pub fn to_manifest_json(&self) -> Value {
        let text = |cap: Option<Cap>| cap.map(|c| c.to_string()).unwrap_or_default();
        let cap = match &self.cap {
            Cap::Unknown(text) => text.clone(),
            cap => cap.to_string(),
        };
        json!({
            "path": self.path,
            "cap": cap,
            "type": self.kind(),
            "verifycap": text(self.cap.verify_cap()),
            "repaircap": text(self.repair_cap()),
            "storage-index": self
                .cap
                .storage_index()
                .map(|si| swamp_proto::base32::encode(si.as_bytes()))
                .unwrap_or_default(),
        })
    }
}

/// What a walk tells as it goes.
pub trait Walker {
    /// An object reached. [`ControlFlow::Break`] ends the walk (the consumer is
    /// gone, or has seen enough).
    fn visit(&mut self, node: TreeNode) -> impl Future<Output = ControlFlow<()>> + Send;

    /// A directory that could not be read: its children are not walked.
    fn unreadable(&mut self, path: &[String], error: &GridError) -> ControlFlow<()>;
}

/// How a walk ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkEnd {
    /// What was counted, Tahoe's deep-stats.
    pub stats: DeepStats,
    /// Whether the walker ended it early.
    pub stopped: bool,
}

impl Grid {
    /// Walks `root` (a directory, or a single file) and everything under it, telling
    /// `walker` of each object in Tahoe's order.
    ///
    /// # Errors
    /// [`GridError::TreeTooLarge`] past [`MAX_OBJECTS`]. Directories that cannot be read
    /// are the walker's to judge, not errors.
    pub async fn walk_tree<W: Walker + Send>(
        &self,
        root: &Cap,
        walker: &mut W,
    ) -> Result<WalkEnd, GridError> {
        let mut stats = DeepStats::default();
        let mut seen: HashSet<String> = root
            .verify_cap()
            .map(|v| v.to_string())
            .into_iter()
            .collect();
        // Directories still to visit and read, the next on top.
        let mut stack: Vec<TreeNode> = vec![TreeNode {
            path: Vec::new(),
            cap: root.clone(),
        }];
        let stopped = |stats: DeepStats| {
            Ok(WalkEnd {
                stats,
                stopped: true,
            })
        };
        while let Some(dir) = stack.pop() {
            stats.add_node(&dir.cap);
            let (path, cap) = (dir.path.clone(), dir.cap.clone());
            if walker.visit(dir).await.is_break() {
                return stopped(stats);
            }
            if !cap.is_dir() {
                continue;
            }
            let listing = match self.read_dir(&cap).await {
                Ok(listing) => listing,
                Err(e) => {
                    if walker.unreadable(&path, &e).is_break() {
                        return stopped(stats);
                    }
                    continue;
                }
            };
            stats.enter_directory(listing.size, listing.entries.len());
            let mut subdirs = Vec::new();
            let mut entries = listing.entries;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for entry in entries {
                let Ok(child) = entry.cap() else { continue };
                if let Some(verifier) = child.verify_cap() {
                    if !seen.insert(verifier.to_string()) {
                        continue;
                    }
                    if seen.len() > MAX_OBJECTS {
                        return Err(GridError::TreeTooLarge { max: MAX_OBJECTS });
                    }
                }
                let mut child_path = path.clone();
                child_path.push(entry.name);
                let node = TreeNode {
                    path: child_path,
                    cap: child,
                };
                if node.cap.is_dir() {
                    subdirs.push(node);
                } else {
                    stats.add_node(&node.cap);
                    if walker.visit(node).await.is_break() {
                        return stopped(stats);
                    }
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(WalkEnd {
            stats,
            stopped: false,
        })
    }
}
