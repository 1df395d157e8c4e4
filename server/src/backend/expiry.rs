//! Lease expiry: Tahoe's `expire.*` settings and the sweep that applies them.
//!
//! A share whose leases have all expired (or that has none) is deleted; its empty
//! directories go too. With expiry off (Tahoe's default) nothing is ever deleted.

use std::fs::{self, OpenOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use swamp_proto::StorageIndex;

use super::error::{IoContext, StorageError};
use super::lease::{LEASE_DURATION_SECS, Lease};
use super::{Storage, immutable, layout, mutable};

/// When a lease counts as expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpiryMode {
    /// Its own expiry time (`expire.mode = age` without an override).
    Age,
    /// Granted more than this many seconds ago (`expire.override_lease_duration`).
    AgeOverride(u64),
    /// Granted before this Unix time (`expire.mode = cutoff-date`).
    CutoffDate(u64),
}

/// Tahoe's `expire.*` settings, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// The rule.
    pub mode: ExpiryMode,
    /// Apply to immutable shares (`expire.immutable`).
    pub immutable: bool,
    /// Apply to mutable shares (`expire.mutable`).
    pub mutable: bool,
}

impl ExpiryPolicy {
    /// Whether `lease` has expired at `now`.
    pub fn is_expired(&self, lease: &Lease, now: u64) -> bool {
        let expiry = u64::from(lease.expiry);
        let granted = expiry.saturating_sub(LEASE_DURATION_SECS);
        match self.mode {
            ExpiryMode::Age => expiry < now,
            ExpiryMode::AgeOverride(duration) => granted.saturating_add(duration) < now,
            ExpiryMode::CutoffDate(cutoff) => granted < cutoff,
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Shares looked at.
    pub examined: usize,
    /// Shares deleted because every lease had expired.
    pub deleted: usize,
}

/// How far the lease expiry sweep (`tasks::expiry`) has got: written by the sweep as
/// it goes, read by the operator listener (`/metrics`, `/status`) when asked, so the
/// figures cost nothing between reads. Totals count from the node's start.
#[derive(Debug, Default)]
pub struct SweepProgress {
    running: AtomicBool,
    prefixes_done: AtomicU64,
    passes: AtomicU64,
    /// Unix seconds; 0 before the first pass ends.
    last_pass_end: AtomicU64,
    examined: AtomicU64,
    deleted: AtomicU64,
}

/// A reading of [`SweepProgress`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReading {
    /// A pass is under way.
    pub running: bool,
    /// Prefix directories swept in the current pass, or in the last one when none
    /// runs (all of them if it completed).
    pub prefixes_done: u64,
    /// Passes completed.
    pub passes: u64,
    /// When the last complete pass ended (Unix seconds).
    pub last_pass_end: Option<u64>,
    /// Shares examined.
    pub shares_examined: u64,
    /// Shares deleted because every lease had expired.
    pub shares_deleted: u64,
}

impl SweepProgress {
    /// A pass starts.
    pub fn pass_started(&self) {
        self.prefixes_done.store(0, Ordering::Relaxed);
        self.running.store(true, Ordering::Relaxed);
    }

    /// One prefix directory is done, having done `report`.
    pub fn prefix_done(&self, report: &SweepReport) {
        self.examined
            .fetch_add(report.examined as u64, Ordering::Relaxed);
        self.deleted
            .fetch_add(report.deleted as u64, Ordering::Relaxed);
        self.prefixes_done.fetch_add(1, Ordering::Relaxed);
    }

    /// The pass ended: completed at `now` (Unix seconds), or cut short (`None`:
    /// expiry was turned off, or the node stops).
    pub fn pass_ended(&self, completed_at: Option<u64>) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(now) = completed_at {
            self.last_pass_end.store(now, Ordering::Relaxed);
            // Release: whoever reads the new count reads the rest of the pass too.
            self.passes.fetch_add(1, Ordering::Release);
        }
    }

    /// The figures now.
    pub fn read(&self) -> SweepReading {
        let passes = self.passes.load(Ordering::Acquire);
        let last = self.last_pass_end.load(Ordering::Relaxed);
        SweepReading {
            running: self.running.load(Ordering::Relaxed),
            prefixes_done: self.prefixes_done.load(Ordering::Relaxed),
            passes,
            last_pass_end: (last > 0).then_some(last),
            shares_examined: self.examined.load(Ordering::Relaxed),
            shares_deleted: self.deleted.load(Ordering::Relaxed),
        }
    }
}

impl Storage {
    /// The lease expiry sweep's progress.
    pub fn expiry_progress(&self) -> &SweepProgress {
        &self.expiry_progress
    }

    /// The storage indexes under one two-character prefix directory.
    ///
    /// # Errors
    /// I/O failures other than a missing directory.
    pub fn buckets_in_prefix(&self, prefix: &str) -> Result<Vec<StorageIndex>, StorageError> {
        let dir = self.layout.shares.join(prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).op("list", &dir),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.op("list", &dir)?;
            if let Some(si) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                out.push(si);
            }
        }
        Ok(out)
    }

    /// Applies `policy` to every share of `si`.
    ///
    /// # Errors
    /// I/O failures.
    pub fn expire_bucket(
        &self,
        si: &StorageIndex,
        policy: &ExpiryPolicy,
        report: &mut SweepReport,
    ) -> Result<(), StorageError> {
        let now = self.now();
        let _guard = self.locks.write(si);
        self.wal.repair(si)?;
        for shnum in self.list_shares(si)? {
            let path = self.layout.share_path(si, shnum);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .op("open", &path)?;
            let mut first = [0u8; 32];
            let n = super::read_prefix(&file, &mut first).op("read", &path)?;
            report.examined += 1;
            let leases = if mutable::is_mutable_header(&first[..n]) {
                if !policy.mutable {
                    continue;
                }
                let container = mutable::Container::open(file.try_clone().op("open", &path)?)
                    .op("read", &path)?;
                container
                    .leases()
                    .iter()
                    .filter(|l| !policy.is_expired(l, now))
                    .count()
            } else if immutable::is_immutable_header(&first[..n]) {
                if !policy.immutable {
                    continue;
                }
                let header = immutable::read_header(&file).op("read", &path)?;
                let leases = immutable::read_leases(&file, &header).op("read", &path)?;
                leases.iter().filter(|l| !policy.is_expired(l, now)).count()
            } else {
                continue;
            };
            if leases == 0 {
                fs::remove_file(&path).op("delete", &path)?;
                report.deleted += 1;
            }
        }
        let bucket = self.layout.bucket_dir(si);
        if self.list_shares(si)?.is_empty() {
            layout::remove_empty_dirs(&bucket, &self.layout.shares);
        }
        Ok(())
    }
}
