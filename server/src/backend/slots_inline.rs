//! Small read-test-writes on the request's own thread.
//!
//! Why: a read-test-write used to cross threads three times (the request's task to
//! the blocking pool, a wait there for the group commit's sync, and back), and with
//! many writers most of its CPU went to those switches, one parked pool thread per
//! writer. A small one (its writes at most [`INLINE_WRITE_MAX`]) is now worked out,
//! logged and applied where the request runs: those steps touch only the page cache
//! (the share's header and the few bytes tested and read, a journal append, an
//! in-place write of the request's own bytes), as the cached reads of `cached.rs` do.
//! Only the sync leaves the thread: the writer awaits its group commit holding its
//! storage index's lock but no thread, and one trip to the blocking pool runs each
//! group's sync (`wal/group.rs`). A due checkpoint or compaction also goes to the
//! blocking pool. Larger writes keep the blocking pool (`slots.rs`), so a request's
//! time on the runtime's threads stays small.
//!
//! The steps run in a task of their own: once a change is logged it must be applied
//! and its lock released in order, even if the client goes away and its request is
//! dropped.

use std::sync::Arc;

use swamp_proto::StorageIndex;
use swamp_proto::secrets::WriteEnabler;
use swamp_proto::v1::mutable::ValidReadTestWrite;

use super::error::StorageError;
use super::slots::{Plan, ReadTestWriteOutcome};
use super::{LeaseGrant, Storage};

/// The most bytes a read-test-write may write and still be handled on the request's
/// own thread.
pub const INLINE_WRITE_MAX: u64 = 64 * 1024;

/// Whether `request` is small enough to be handled on the request's own thread.
pub fn is_small(request: &ValidReadTestWrite) -> bool {
    let written: u64 = request
        .shares
        .values()
        .flat_map(|vectors| &vectors.write)
        .map(|w| w.data.len() as u64)
        .fold(0, u64::saturating_add);
    written <= INLINE_WRITE_MAX
}

impl Storage {
    /// Runs a small read-test-write ([`is_small`]) as [`Storage::read_test_write`]
    /// does, on the calling runtime thread but for the sync (see the module docs).
    ///
    /// # Errors
    /// As [`Storage::read_test_write`].
    pub async fn read_test_write_inline(
        self: &Arc<Self>,
        si: StorageIndex,
        write_enabler: WriteEnabler,
        grant: LeaseGrant,
        request: ValidReadTestWrite,
    ) -> Result<ReadTestWriteOutcome, StorageError> {
        let storage = Arc::clone(self);
        let task = tokio::spawn(async move {
            storage
                .run_inline(si, &write_enabler, &grant, &request)
                .await
        });
        task.await.map_err(|e| StorageError::Io {
            op: "run a read-test-write",
            path: std::path::PathBuf::new(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    async fn run_inline(
        self: &Arc<Self>,
        si: StorageIndex,
        write_enabler: &WriteEnabler,
        grant: &LeaseGrant,
        request: &ValidReadTestWrite,
    ) -> Result<ReadTestWriteOutcome, StorageError> {
        self.check_write_sizes(request)?;
        let _guard = self.locks.write_owned(&si).await;
        let Plan {
            outcome,
            existing,
            logged,
            deleted_any,
        } = self.plan_read_test_write(&si, write_enabler, grant, request)?;
        if !outcome.success {
            return Ok(outcome);
        }
        let Some(ahead) = self.wal.log_ahead(&si, logged)? else {
            return Ok(outcome);
        };
        let synced = self.wal.sync_ahead(&ahead).await;
        let (result, due) = self
            .wal
            .finish_ahead(ahead, synced, |shnum| existing.get(&shnum).map(|s| &s.file));
        if !due.is_empty() {
            let storage = Arc::clone(self);
            // Detached: nothing waits for it; its errors are logged and retried.
            drop(tokio::task::spawn_blocking(move || {
                storage.wal.run_due(due)
            }));
        }
        result?;
        self.after_written(&si, deleted_any)?;
        Ok(outcome)
    }
}
