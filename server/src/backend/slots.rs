//! Read-test-write on slots (mutable shares), Tahoe's `slot_testv_and_readv_and_writev`.
//!
//! Order, as in Tahoe: check the write enabler against every existing share (one
//! mismatch refuses the whole request); evaluate every test vector; evaluate the read
//! vectors on every existing share; only if all tests passed, apply the writes (or
//! deletions, for `new-length` 0) and add or renew the lease on each written share.
//! Each change is durable before we answer: logged ahead in the write-ahead log, synced,
//! and then written in place (`crate::wal`, `wal/redo.rs`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;

use swamp_proto::secrets::WriteEnabler;
use swamp_proto::v1::mutable::ValidReadTestWrite;
use swamp_proto::{ShareNumber, StorageIndex};

use super::error::{IoContext, StorageError};
use super::layout::{self, Layout};
use super::mutable::{self, Container};
use super::{LeaseGrant, Storage};
use crate::wal::change::Change;
use crate::wal::redo::ShareRedo;

/// What a read-test-write did.
#[derive(Debug, Default)]
pub struct ReadTestWriteOutcome {
    /// Whether all tests passed (and so the writes happened).
    pub success: bool,
    /// Per existing share (before the writes): the data of each read vector.
    pub reads: BTreeMap<ShareNumber, Vec<Vec<u8>>>,
}

/// Bytes of share data that identify a version (SDMF's prefix is the longest).
pub const VERSION_PREFIX_LEN: u64 = 57;

/// A read-test-write worked out under its storage index's lock, not yet logged.
pub(super) struct Plan {
    /// The answer, once the changes (if the tests passed) are durable.
    pub(super) outcome: ReadTestWriteOutcome,
    /// The shares as they were, open for the in-place write.
    pub(super) existing: BTreeMap<ShareNumber, ExistingShare>,
    /// Each change with its redo; empty if the tests failed.
    pub(super) logged: Vec<(Change, ShareRedo)>,
    /// Whether a share is deleted (the bucket may then be empty).
    pub(super) deleted_any: bool,
}

pub(super) struct ExistingShare {
    /// Opened for reading and writing: read-test-write reads it and, logged ahead,
    /// writes the change into it.
    pub(super) file: File,
    data_length: u64,
}

impl ExistingShare {
    /// The data a read vector asks for: `[offset, offset + size)` clipped to the data.
    fn clipped(&self, offset: u64, size: u64) -> u64 {
        offset
            .saturating_add(size)
            .min(self.data_length)
            .saturating_sub(offset)
    }

    fn read(&self, offset: u64, size: u64) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.clipped(offset, size) as usize];
        self.file
            .read_exact_at(&mut buf, mutable::DATA_OFFSET + offset)?;
        Ok(buf)
    }

    /// Whether the data in `[offset, offset + size)` (clipped) equals `specimen`. Reads
    /// only when the lengths agree, so a test naming a huge size costs nothing.
    fn matches(&self, offset: u64, size: u64, specimen: &[u8]) -> std::io::Result<bool> {
        if self.clipped(offset, size) != specimen.len() as u64 {
            return Ok(false);
        }
        Ok(self.read(offset, size)? == specimen)
    }
}

impl Storage {
    /// Runs a read-test-write on `si`.
    ///
    /// Memory: the request's own bytes, the answer (bounded by
    /// `max_read_answer_size`), and per share written its header and lease block;
    /// never the share data (`mutable.rs`).
    ///
    /// # Errors
    /// [`StorageError::BadWriteEnabler`], [`StorageError::TooLarge`],
    /// [`StorageError::AnswerTooLarge`], [`StorageError::Damaged`] (an existing share is
    /// not a mutable container), or I/O failures.
    pub fn read_test_write(
        &self,
        si: &StorageIndex,
        write_enabler: &WriteEnabler,
        grant: &LeaseGrant,
        request: &ValidReadTestWrite,
    ) -> Result<ReadTestWriteOutcome, StorageError> {
        self.check_write_sizes(request)?;
        let _guard = self.locks.write(si);
        let plan = self.plan_read_test_write(si, write_enabler, grant, request)?;
        let Plan {
            outcome,
            existing,
            logged,
            deleted_any,
        } = plan;
        if outcome.success {
            self.wal
                .write_ahead(si, logged, |shnum| existing.get(&shnum).map(|s| &s.file))?;
            self.after_written(si, deleted_any)?;
        }
        Ok(outcome)
    }

    /// Refuses a request that would make a share larger than the limit.
    pub(super) fn check_write_sizes(
        &self,
        request: &ValidReadTestWrite,
    ) -> Result<(), StorageError> {
        let max = self.limits().max_mutable_share_size;
        for vectors in request.shares.values() {
            for w in &vectors.write {
                let end = w.offset.saturating_add(w.data.len() as u64);
                if end > max {
                    return Err(StorageError::TooLarge { size: end, max });
                }
            }
        }
        Ok(())
    }

    /// Once a read-test-write is applied: only a deletion can empty the bucket, so the
    /// listing is skipped otherwise.
    pub(super) fn after_written(
        &self,
        si: &StorageIndex,
        deleted_any: bool,
    ) -> Result<(), StorageError> {
        if deleted_any && self.list_shares(si)?.is_empty() {
            layout::remove_empty_dirs(&self.layout.bucket_dir(si), &self.layout.shares);
        }
        Ok(())
    }

    /// Everything a read-test-write does before it logs: checks the write enabler,
    /// runs the tests and reads, and (if the tests passed) prepares each share's
    /// change and redo. The caller holds the storage index's write lock.
    pub(super) fn plan_read_test_write(
        &self,
        si: &StorageIndex,
        write_enabler: &WriteEnabler,
        grant: &LeaseGrant,
        request: &ValidReadTestWrite,
    ) -> Result<Plan, StorageError> {
        self.wal.repair(si)?;
        let mut existing = BTreeMap::new();
        for shnum in self.list_shares(si)? {
            let path = self.layout.share_path(si, shnum);
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .op("open", &path)?;
            let mut header = [0u8; 100];
            file.read_exact_at(&mut header, 0).op("read", &path)?;
            if !mutable::is_mutable_header(&header) {
                return Err(StorageError::Damaged {
                    path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "an immutable share where a slot was expected",
                    ),
                });
            }
            let recorded = &header[52..84];
            if !swamp_proto::secrets::constant_time_eq(recorded, write_enabler.expose()) {
                return Err(StorageError::BadWriteEnabler);
            }
            let data_length = u64::from_be_bytes(
                header[84..92]
                    .try_into()
                    .expect("invariant: 8 bytes of a 100-byte header"),
            );
            existing.insert(shnum, ExistingShare { file, data_length });
        }

        let mut success = true;
        'tests: for (shnum, vectors) in &request.shares {
            for test in &vectors.test {
                let pass = match existing.get(shnum) {
                    Some(share) => {
                        let path = self.layout.share_path(si, *shnum);
                        share
                            .matches(test.offset, test.size, &test.specimen)
                            .op("read", &path)?
                    }
                    None => test.specimen.is_empty(),
                };
                if !pass {
                    success = false;
                    break 'tests;
                }
            }
        }

        let answer: u64 = existing
            .values()
            .flat_map(|share| {
                request
                    .read_vector
                    .iter()
                    .map(|rv| share.clipped(rv.offset, rv.size))
            })
            .fold(0, u64::saturating_add);
        let max = self.limits().max_read_answer_size;
        if answer > max {
            return Err(StorageError::AnswerTooLarge { size: answer, max });
        }
        let mut reads = BTreeMap::new();
        for (shnum, share) in &existing {
            let path = self.layout.share_path(si, *shnum);
            let data = request
                .read_vector
                .iter()
                .map(|rv| share.read(rv.offset, rv.size))
                .collect::<std::io::Result<Vec<_>>>()
                .op("read", &path)?;
            reads.insert(*shnum, data);
        }

        let mut plan = Plan {
            outcome: ReadTestWriteOutcome { success, reads },
            existing: BTreeMap::new(),
            logged: Vec::new(),
            deleted_any: false,
        };
        if !success {
            return Ok(plan);
        }
        let mut logged = Vec::new();
        let mut deleted_any = false;
        for (shnum, vectors) in &request.shares {
            let path = self.layout.share_path(si, *shnum);
            if vectors.new_length == Some(0) {
                deleted_any |= existing.contains_key(shnum);
                let change = Change::SlotDeleted {
                    si: *si,
                    shnum: *shnum,
                };
                logged.push((change, ShareRedo::delete(*si, *shnum)));
                continue;
            }
            let mut container = match existing.get(shnum) {
                Some(share) => {
                    Container::open(share.file.try_clone().op("open", &path)?).op("read", &path)?
                }
                None => Container::new(self.settings.nodeid, write_enabler),
            };
            for w in &vectors.write {
                container.write(w.offset, &w.data);
            }
            if let Some(len) = vectors.new_length {
                container.truncate(len);
            }
            container.add_or_renew_lease(grant);
            let prefix = container
                .data_prefix(VERSION_PREFIX_LEN)
                .op("read", &path)?;
            let change = Change::slot_written(*si, *shnum, container.data_length(), &prefix);
            logged.push((change, ShareRedo::write(*si, *shnum, &container)));
        }
        plan.existing = existing;
        plan.logged = logged;
        plan.deleted_any = deleted_any;
        Ok(plan)
    }
}

/// Adds or renews a lease on a slot share in place: only the lease bytes (the header's
/// four slots and the extra-lease block) are written, then synced. The caller holds
/// the storage index's write lock.
///
/// # Errors
/// I/O failures, or [`StorageError::Damaged`] for a broken container.
pub fn renew_lease_in_place(
    layout: &Layout,
    si: &StorageIndex,
    shnum: ShareNumber,
    grant: &LeaseGrant,
    faults: &super::faults::Faults,
) -> Result<(), StorageError> {
    let path = layout.share_path(si, shnum);
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .op("open", &path)?;
    let mut container = Container::open(file).op("read", &path)?;
    container.add_or_renew_lease(grant);
    let file = container.file().expect("invariant: opened from a file");
    let write = || -> std::io::Result<()> {
        faults.before_write()?;
        for (at, bytes) in container.lease_bytes() {
            file.write_all_at(bytes, at)?;
        }
        faults.before_sync()?;
        file.sync_data()
    };
    write().op("write lease", &path)
}
