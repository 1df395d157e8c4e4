//! What the mirror remembers between runs, in one JSON file inside the target folder
//! ([`STATE_FILE`]), replaced atomically after every batch of changes:
//!
//! - each server's feed cursor, so a restart resumes where it stopped (keyed by the
//!   server's SPKI hash, so the order of `servers.yaml` does not matter);
//! - each mirrored directory's cap and last version read, to follow it again at once
//!   and to skip events about a version already applied;
//! - each mirrored file's cap: a file is downloaded again only when its cap changed.
//!   (Immutable caps name the contents, so an equal cap means equal bytes.)
//!
//! Cursors are saved only after the changes before them are on disk, so a crash at any
//! point makes the next run redo some work, never skip a change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use swamp_proto::feed::{Cursor, RootHash};

use super::local::write_atomically;

/// The state file's name in the target folder.
pub const STATE_FILE: &str = ".swamp-mirror.json";

/// A larger state file is refused (about 200 bytes a path: a million paths).
const MAX_STATE_BYTES: u64 = 256 * 1024 * 1024;

/// A mirrored directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Dir {
    /// Its read-only cap.
    pub(crate) cap: String,
    /// The version last applied: (seqnum, root hash); `None` for immutable directories
    /// or one not read yet.
    pub(crate) version: Option<(u64, RootHash)>,
}

/// Everything saved.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    /// The mirrored directory's read-only cap.
    pub(crate) root: String,
    /// Feed cursor per server (SPKI hash).
    pub(crate) cursors: BTreeMap<String, Cursor>,
    /// Mirrored directories by path ("" is the root).
    pub(crate) dirs: BTreeMap<String, Dir>,
    /// Mirrored files by path: their caps.
    pub(crate) files: BTreeMap<String, String>,
}

fn file(target: &Path) -> PathBuf {
    target.join(STATE_FILE)
}

impl State {
    /// The saved state of `target`, or an empty one.
    pub(crate) fn load(target: &Path) -> anyhow::Result<Self> {
        let path = file(target);
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).context(path.display().to_string()),
            Ok(meta) if meta.len() > MAX_STATE_BYTES => {
                anyhow::bail!("{}: over {MAX_STATE_BYTES} bytes", path.display())
            }
            Ok(_) => {}
        }
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        serde_json::from_slice(&bytes).with_context(|| path.display().to_string())
    }

    /// Saves the state atomically.
    pub(crate) fn save(&self, target: &Path) -> anyhow::Result<()> {
        let path = file(target);
        write_atomically(&path, &serde_json::to_vec(self)?)
            .with_context(|| path.display().to_string())
    }

    /// Names of the mirrored files and directories directly in directory `dir`.
    pub(crate) fn children(&self, dir: &str) -> Vec<String> {
        self.files
            .keys()
            .chain(self.dirs.keys())
            .filter(|p| !p.is_empty() && split(p).0 == dir)
            .map(|p| split(p).1.to_string())
            .collect()
    }

    /// Forgets `path` and everything under it.
    pub(crate) fn forget(&mut self, path: &str) {
        let under = format!("{path}/");
        let gone = |p: &String| p == path || p.starts_with(&under);
        self.files.retain(|p, _| !gone(p));
        self.dirs.retain(|p, _| !gone(p));
    }
}

/// (parent, name) of a path.
pub(crate) fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}
