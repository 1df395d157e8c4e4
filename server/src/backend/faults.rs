//! A seam for injecting disk faults: the storage layer asks it before each write and
//! each sync of share data, and a test can make those fail with the error a real disk
//! would give (`EIO`, `ENOSPC`) without filling or breaking a disk.
//!
//! Why a seam as well as real file systems: a full disk (a small tmpfs or loop-mounted
//! ext4, see `tests/tests/it/faults.rs`) shows `ENOSPC` where the kernel gives it, but
//! an `EIO` from a write or a sync cannot be had on demand from a healthy disk. In a
//! running node the seam is empty and costs one branch per write.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

/// What the storage layer consults before writing or syncing share data.
#[derive(Clone, Default)]
pub struct Faults(Option<Arc<FaultPlan>>);

/// Errors to inject, set and cleared by a test while the node runs.
#[derive(Default, Debug)]
pub struct FaultPlan {
    write_errno: AtomicI32,
    /// Writes that still succeed before `write_errno` applies.
    writes_left: AtomicI32,
    sync_errno: AtomicI32,
    journal_sync_errno: AtomicI32,
}

impl FaultPlan {
    /// Every write of share data fails with `errno` (0: writes work again).
    pub fn fail_writes(&self, errno: i32) {
        self.fail_writes_after(0, errno);
    }

    /// The next `n` writes succeed, then every write fails with `errno`: a disk that
    /// fills up in the middle of a request.
    pub fn fail_writes_after(&self, n: i32, errno: i32) {
        self.writes_left.store(n, Ordering::SeqCst);
        self.write_errno.store(errno, Ordering::SeqCst);
    }

    /// Every sync of share data fails with `errno` (0: syncs work again).
    pub fn fail_syncs(&self, errno: i32) {
        self.sync_errno.store(errno, Ordering::SeqCst);
    }

    /// Every sync of the feed journal (its `fdatasync`, the files it writes durably,
    /// the checkpoint's `syncfs`) fails with `errno` (0: they work again; the journal
    /// still trusts none until a restart, `wal/durable.rs`).
    pub fn fail_journal_syncs(&self, errno: i32) {
        self.journal_sync_errno.store(errno, Ordering::SeqCst);
    }

    /// No more injected faults.
    pub fn heal(&self) {
        self.fail_writes(0);
        self.fail_syncs(0);
        self.fail_journal_syncs(0);
    }
}

impl Faults {
    /// A seam that injects the faults `plan` says.
    pub fn injected(plan: Arc<FaultPlan>) -> Self {
        Self(Some(plan))
    }

    fn check(&self, pick: impl Fn(&FaultPlan) -> &AtomicI32) -> io::Result<()> {
        match self.0.as_deref().map(|p| pick(p).load(Ordering::SeqCst)) {
            Some(errno) if errno != 0 => Err(io::Error::from_raw_os_error(errno)),
            _ => Ok(()),
        }
    }

    /// Before a write of share data.
    ///
    /// # Errors
    /// The injected error, if any.
    pub fn before_write(&self) -> io::Result<()> {
        if let Some(plan) = self.0.as_deref()
            && plan.write_errno.load(Ordering::SeqCst) != 0
            && plan.writes_left.fetch_sub(1, Ordering::SeqCst) > 0
        {
            return Ok(());
        }
        self.check(|p| &p.write_errno)
    }

    /// Before a sync of share data.
    ///
    /// # Errors
    /// The injected error, if any.
    pub fn before_sync(&self) -> io::Result<()> {
        self.check(|p| &p.sync_errno)
    }

    /// Before a sync of the feed journal.
    ///
    /// # Errors
    /// The injected error, if any.
    pub fn before_journal_sync(&self) -> io::Result<()> {
        self.check(|p| &p.journal_sync_errno)
    }
}
