//! Every sync the journal relies on, behind one latch: after one fails, none is
//! trusted again in this process.
//!
//! Why: on Linux a failed `fsync`/`fdatasync` may have dropped the dirty pages it could
//! not write (they are marked clean), and reports the error once; the next sync of the
//! same file can then succeed although the earlier bytes never reached the disk.
//! PostgreSQL's answer (since 2018) is to stop and recover from its write-ahead log at
//! the next start. Swamp does the same without stopping the process: after a failed
//! sync of the journal, of a file it writes durably, or of the file system at a
//! checkpoint, it acknowledges nothing more (every later record fails with
//! [`StorageError::NeedsRestart`](crate::backend::StorageError::NeedsRestart), a 503),
//! never moves the checkpoint again, and a restart replays the journal as it is on disk
//! (`docs/durability.md`). Reads and feeds go on.
//!
//! Tests inject failures through [`Syncer::failing`] (unit tests: any sync, or park
//! one) or the storage layer's fault seam (`backend/faults.rs`, end-to-end tests).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backend::error::needs_restart;
use crate::backend::faults::Faults;

/// What is being synced (tests pick which to fail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// `fdatasync` of the journal file (group commit).
    Journal,
    /// `fsync` of a file or directory written durably (latest index, checkpoint,
    /// compacted journal, epoch).
    File,
    /// `syncfs` of the storage file system (checkpoint).
    Storage,
}

/// A test's stand-in for the system call: `Err` fails that sync.
pub type SyncHook = Box<dyn Fn(SyncKind) -> io::Result<()> + Send + Sync>;

/// The latch.
#[derive(Default)]
pub struct Syncer {
    failed: AtomicBool,
    hook: Option<SyncHook>,
    faults: Faults,
}

impl Syncer {
    /// Syncs for real.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Syncs for real, after asking the storage layer's fault seam (empty in a
    /// running node).
    pub fn with_faults(faults: Faults) -> Self {
        Self {
            faults,
            ..Self::default()
        }
    }

    /// Asks `hook` before each sync: an error fails it (as if the system call had).
    #[cfg(test)]
    pub fn failing(hook: impl Fn(SyncKind) -> io::Result<()> + Send + Sync + 'static) -> Self {
        Self {
            hook: Some(Box::new(hook)),
            ..Self::default()
        }
    }

    /// Whether a sync has failed in this process.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// `Ok` unless a sync has failed: then the error every later write gets.
    ///
    /// # Errors
    /// The "needs a restart" error.
    pub fn check(&self) -> io::Result<()> {
        if self.has_failed() {
            Err(needs_restart())
        } else {
            Ok(())
        }
    }

    /// `fdatasync` of the journal file.
    ///
    /// # Errors
    /// The "needs a restart" error, now and from then on.
    pub fn sync_data(&self, file: &File) -> io::Result<()> {
        self.run(SyncKind::Journal, || file.sync_data())
    }

    /// `fsync` of a file or directory.
    ///
    /// # Errors
    /// The "needs a restart" error, now and from then on.
    pub fn sync_all(&self, file: &File) -> io::Result<()> {
        self.run(SyncKind::File, || file.sync_all())
    }

    /// `syncfs` of the file system holding `dir`.
    ///
    /// # Errors
    /// The "needs a restart" error, now and from then on.
    pub fn syncfs(&self, dir: &std::path::Path) -> io::Result<()> {
        self.run(SyncKind::Storage, || {
            rustix::fs::syncfs(&File::open(dir)?).map_err(io::Error::from)
        })
    }

    fn run(&self, kind: SyncKind, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        self.check()?;
        let injected = match &self.hook {
            Some(hook) => hook(kind),
            None => self.faults.before_journal_sync(),
        };
        let result = injected.and_then(|()| sync());
        result.map_err(|error| {
            if !self.failed.swap(true, Ordering::AcqRel) {
                tracing::error!(
                    what = ?kind,
                    %error,
                    "a sync of the feed journal or the storage failed: no write will be \
                     acknowledged until the server restarts (it then replays the journal)"
                );
            }
            needs_restart()
        })
    }
}

/// Writes `bytes` to `path` through a temporary file, sync, rename and directory sync.
///
/// # Errors
/// I/O errors (a failed sync also latches `syncer`).
pub(crate) fn write_durably(path: &Path, bytes: &[u8], syncer: &Syncer) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    syncer.sync_all(&f)?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        syncer.sync_all(&File::open(dir)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn one_failure_latches_every_kind_of_sync() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let syncer = Syncer::failing(move |kind| {
            counted.fetch_add(1, Ordering::SeqCst);
            if kind == SyncKind::Storage {
                Err(io::Error::from_raw_os_error(5))
            } else {
                Ok(())
            }
        });
        syncer.sync_data(&file).unwrap();
        syncer.sync_all(&file).unwrap();
        assert!(syncer.check().is_ok());
        let failed = syncer.syncfs(dir.path()).unwrap_err();
        assert!(crate::backend::error::is_needs_restart(&failed));
        assert!(syncer.has_failed());
        // Later syncs are not even tried: their success would prove nothing.
        for result in [
            syncer.sync_data(&file),
            syncer.sync_all(&file),
            syncer.check(),
        ] {
            assert!(crate::backend::error::is_needs_restart(
                &result.unwrap_err()
            ));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
