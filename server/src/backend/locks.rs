//! Per-storage-index locks, sharded so their number is fixed.
//!
//! Storage indexes are hashes, so the first byte spreads them evenly over 256 shards; two
//! indexes that share a shard merely wait for each other briefly.
//!
//! The locks are asynchronous ones, so that a small read-test-write handled on the
//! request's own thread can hold its storage index's lock while it awaits its group
//! commit (`slots_inline.rs`) without holding the thread. Work on the blocking pool
//! takes the same locks, blocking the thread ([`SiLocks::read`], [`SiLocks::write`]),
//! as a standard lock would. The node calls those two only from the blocking pool; a
//! runtime thread blocking on one could wait for a task that needs that very thread.

use std::sync::Arc;

use swamp_proto::StorageIndex;
use tokio::sync::{OwnedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// 256 reader-writer locks keyed by a storage index's first byte.
pub struct SiLocks {
    shards: Vec<Arc<RwLock<()>>>,
}

impl SiLocks {
    /// Makes the shards.
    pub fn new() -> Self {
        Self {
            shards: (0..256).map(|_| Arc::new(RwLock::new(()))).collect(),
        }
    }

    fn shard(&self, si: &StorageIndex) -> &Arc<RwLock<()>> {
        &self.shards[usize::from(si.as_bytes()[0])]
    }

    /// Shared access: reading a share's metadata. Blocks the thread (not for the
    /// runtime's own threads).
    pub fn read(&self, si: &StorageIndex) -> RwLockReadGuard<'_, ()> {
        futures::executor::block_on(self.shard(si).read())
    }

    /// Shared access if nobody holds the lock exclusively, without waiting.
    pub fn try_read(&self, si: &StorageIndex) -> Option<RwLockReadGuard<'_, ()>> {
        self.shard(si).try_read().ok()
    }

    /// Exclusive access: changing shares or leases. Blocks the thread (not for the
    /// runtime's own threads).
    pub fn write(&self, si: &StorageIndex) -> RwLockWriteGuard<'_, ()> {
        futures::executor::block_on(self.shard(si).write())
    }

    /// Exclusive access for a task, awaited, held across its awaits.
    pub async fn write_owned(&self, si: &StorageIndex) -> OwnedRwLockWriteGuard<()> {
        Arc::clone(self.shard(si)).write_owned().await
    }
}

impl Default for SiLocks {
    fn default() -> Self {
        Self::new()
    }
}
