//! The local side of the mirror: which remote names may become local files, and
//! writes that a crash cannot leave half done.
//!
//! Names come from a directory anyone with its write cap can fill, so each is checked
//! before it touches the file system: no separators, no `.` or `..`, no NUL, and none of
//! the names the mirror keeps for itself (its state and temporary files, which start
//! with [`RESERVED`]).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The prefix of every file the mirror itself keeps in the target folder.
pub(crate) const RESERVED: &str = ".swamp-mirror";

/// Why `name` cannot be a local file name, if it cannot.
pub(crate) fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name == "." || name == ".." {
        Some("not a file name")
    } else if name.contains(['/', '\\', '\0']) {
        Some("a path separator or NUL in the name")
    } else if name.len() > 255 {
        Some("a name over 255 bytes")
    } else if name.starts_with(RESERVED) {
        Some("a name the mirror keeps for itself")
    } else {
        None
    }
}

/// The local path of `path` (names joined by `/`, each checked) under `target`.
pub(crate) fn local_path(target: &Path, path: &str) -> PathBuf {
    let mut out = target.to_path_buf();
    out.extend(path.split('/').filter(|n| !n.is_empty()));
    out
}

/// A file being written next to its destination, renamed over it once complete.
pub(crate) struct Replacement {
    temp: PathBuf,
    dest: PathBuf,
    /// Write the new contents here.
    pub(crate) file: File,
}

impl Replacement {
    /// Starts replacing `dest`: a temporary file in the same directory (a rename is
    /// atomic only within one file system).
    pub(crate) fn new(dest: &Path) -> io::Result<Self> {
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let temp = dest.with_file_name(format!("{RESERVED}-tmp.{name}"));
        let file = File::create(&temp)?;
        Ok(Self {
            temp,
            dest: dest.to_path_buf(),
            file,
        })
    }

    /// Makes the new contents durable, then puts them in place: readers see the old
    /// file or the new one, never a part.
    pub(crate) fn commit(self) -> io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.temp, &self.dest)?;
        // The rename itself is durable once the directory is synced.
        if let Some(dir) = self.dest.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Gives up: the destination stays as it was.
    pub(crate) fn abandon(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// Writes `bytes` to `dest` atomically.
pub(crate) fn write_atomically(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut r = Replacement::new(dest)?;
    match io::Write::write_all(&mut r.file, bytes) {
        Ok(()) => r.commit(),
        Err(e) => {
            r.abandon();
            Err(e)
        }
    }
}

/// Removes a file or a whole directory at `path` (never following a symlink); gone
/// already is fine.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for name in [
            "",
            ".",
            "..",
            "a/b",
            "/etc",
            "a\\b",
            "a\0b",
            ".swamp-mirror.json",
        ] {
            assert!(bad_name(name).is_some(), "{name:?}");
        }
        assert!(bad_name(&"x".repeat(256)).is_some());
        for name in ["a", "..a", "café ☕.txt", ".hidden"] {
            assert_eq!(bad_name(name), None, "{name:?}");
        }
    }
}
