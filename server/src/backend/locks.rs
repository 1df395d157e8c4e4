//! Per-storage-index locks, sharded so their number is fixed.
//!
//! Storage indexes are hashes, so the first byte spreads them evenly over 256 shards; two
//! indexes that share a shard merely wait for each other briefly.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use swamp_proto::StorageIndex;

/// 256 reader-writer locks keyed by a storage index's first byte.
pub struct SiLocks {
    shards: Vec<RwLock<()>>,
}

impl SiLocks {
    /// Makes the shards.
    pub fn new() -> Self {
        Self {
            shards: (0..256).map(|_| RwLock::new(())).collect(),
        }
    }

    fn shard(&self, si: &StorageIndex) -> &RwLock<()> {
        &self.shards[usize::from(si.as_bytes()[0])]
    }

    /// Shared access: reading a share's metadata.
    pub fn read(&self, si: &StorageIndex) -> RwLockReadGuard<'_, ()> {
        // A panic while holding the lock leaves no half-state behind (files are
        // replaced atomically), so a poisoned lock is safe to reuse.
        self.shard(si).read().unwrap_or_else(|p| p.into_inner())
    }

    /// Shared access if nobody holds the lock exclusively, without waiting.
    pub fn try_read(&self, si: &StorageIndex) -> Option<RwLockReadGuard<'_, ()>> {
        match self.shard(si).try_read() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Exclusive access: changing shares or leases.
    pub fn write(&self, si: &StorageIndex) -> RwLockWriteGuard<'_, ()> {
        self.shard(si).write().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for SiLocks {
    fn default() -> Self {
        Self::new()
    }
}
