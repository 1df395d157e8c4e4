//! Immutable uploads: allocate, write (PATCH), abort, and the idle-upload sweeper.
//!
//! Upload state is in memory, as in Tahoe: an upload is a container file in
//! `shares/incoming/` plus the ranges written so far. When the ranges cover the
//! allocated size the file is synced and renamed into `shares/`, and its directory
//! synced, before the 201 goes out. The container is written around the page cache
//! where the file system allows it (`staging.rs` says why and how).
//!
//! Bounds: an upload holds no open file between writes (`staging.rs`), at most
//! [`MAX_PIECES`] disjoint written ranges and 64 KiB of waiting blocks; the number of
//! uploads in progress is capped by the operator's `max_uploads_in_progress` (per
//! storage index it is bounded by the 256 share numbers).
//!
//! Faults: a write that fails leaves the upload as it was, so the client may send it
//! again (a full disk is answered 507, and once space is freed the same PATCH goes
//! through). A failed *sync* of a completed share is not retried: the kernel may have
//! dropped the pages it could not write, so the partial share is deleted and the
//! upload forgotten; the client must allocate again (`docs/durability.md`).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use swamp_proto::secrets::UploadSecret;
use swamp_proto::{ShareNumber, StorageIndex};

use super::error::{IoContext, StorageError};
use super::lease::{IMMUTABLE_LEASE_SIZE, Lease};
use super::ranges::{MAX_PIECES, RangeSet};
use super::staging::{BLOCK, StagedFile};
use super::{LeaseGrant, Storage, immutable, layout};
use crate::wal::change::Change;

/// One share being uploaded: its fixed size, readable without waiting for a write in
/// progress, and its state behind a lock.
struct UploadSlot {
    allocated_size: u64,
    upload: Mutex<Upload>,
}

/// The mutable state of an upload.
struct Upload {
    secret: UploadSecret,
    written: RangeSet,
    file: StagedFile,
    incoming: PathBuf,
    last_activity: Instant,
}

type UploadKey = (StorageIndex, ShareNumber);

/// The uploads in progress.
#[derive(Default)]
pub struct Uploads {
    map: Mutex<HashMap<UploadKey, Arc<UploadSlot>>>,
}

impl Uploads {
    fn map(&self) -> MutexGuard<'_, HashMap<UploadKey, Arc<UploadSlot>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &UploadKey) -> Option<Arc<UploadSlot>> {
        self.map().get(key).cloned()
    }

    /// Bytes promised to open uploads (their allocated sizes). Takes no upload's
    /// lock, so it never waits for a write (or the sync of a completing share).
    pub fn promised_bytes(&self) -> u64 {
        self.map()
            .values()
            .map(|u| u.allocated_size)
            .fold(0u64, u64::saturating_add)
    }

    /// Forgets `key` if it still names `slot` (a new upload of the same share may have
    /// been allocated since).
    fn forget(&self, key: &UploadKey, slot: &Arc<UploadSlot>) {
        let mut map = self.map();
        if map.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            map.remove(key);
        }
    }

    /// Number of uploads in progress.
    pub fn len(&self) -> usize {
        self.map().len()
    }
}

fn lock(upload: &Mutex<Upload>) -> MutexGuard<'_, Upload> {
    upload.lock().unwrap_or_else(|p| p.into_inner())
}

/// The result of an allocate request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// Every complete share held for the storage index.
    pub already_have: BTreeSet<ShareNumber>,
    /// The shares now open for upload.
    pub allocated: BTreeSet<ShareNumber>,
}

/// Where an upload stands after a write.
#[derive(Debug, PartialEq, Eq)]
pub struct UploadStatus {
    /// True when the share is complete and in `shares/`.
    pub complete: bool,
    /// Missing `[begin, end)` ranges (empty when complete).
    pub required: Vec<(u64, u64)>,
}

impl Storage {
    /// Allocates shares for upload, as Tahoe's `allocate_buckets`: every complete share
    /// of `si` is reported (and gets the lease); shares with an upload in progress are
    /// in neither set; new ones are allocated while space lasts.
    ///
    /// # Errors
    /// [`StorageError::Io`] on disk failures.
    pub fn allocate(
        &self,
        si: &StorageIndex,
        share_numbers: &BTreeSet<ShareNumber>,
        allocated_size: u64,
        grant: &LeaseGrant,
        secret: &UploadSecret,
    ) -> Result<Allocation, StorageError> {
        let already_have = self.list_shares(si)?;
        if !already_have.is_empty() {
            let _guard = self.locks.write(si);
            self.wal.repair(si)?;
            // Tahoe renews (or adds) the lease on every share already held.
            for &shnum in &already_have {
                self.lease_one_share_locked(si, shnum, grant)?;
            }
        }
        let mut remaining = self.available_space();
        let mut allocated = BTreeSet::new();
        let mut over_cap = false;
        let max = self.limits().max_uploads_in_progress;
        let mut map = self.uploads.map();
        for &shnum in share_numbers {
            let key = (*si, shnum);
            if already_have.contains(&shnum) || map.contains_key(&key) {
                continue;
            }
            if remaining < allocated_size {
                continue;
            }
            if map.len() >= max {
                over_cap = true;
                continue;
            }
            let incoming = self.layout.incoming_path(si, shnum);
            let file = create_incoming(
                &incoming,
                allocated_size,
                &grant.to_lease(super::lease::SecretStorage::Hashed),
                self.settings.direct_upload_writes,
                &self.settings.faults,
            )?;
            remaining -= allocated_size;
            allocated.insert(shnum);
            map.insert(
                key,
                Arc::new(UploadSlot {
                    allocated_size,
                    upload: Mutex::new(Upload {
                        secret: secret.clone(),
                        written: RangeSet::default(),
                        file,
                        incoming,
                        last_activity: Instant::now(),
                    }),
                }),
            );
        }
        // Shares left out for want of space are simply not allocated, as in Tahoe; if
        // the cap left out every new share, say so, so the client knows to come back.
        if over_cap && allocated.is_empty() {
            return Err(StorageError::TooManyUploads { max });
        }
        Ok(Allocation {
            already_have,
            allocated,
        })
    }

    /// Writes `data` at `offset` of an upload, checking the upload secret, the
    /// allocation bounds and that rewritten bytes are unchanged.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] (no such upload), [`StorageError::UploadSecretMismatch`],
    /// [`StorageError::PastAllocation`], [`StorageError::Conflict`], or I/O failures.
    pub fn write_immutable(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        secret: &UploadSecret,
        offset: u64,
        data: &[u8],
    ) -> Result<UploadStatus, StorageError> {
        let key = (*si, shnum);
        let upload = self.uploads.get(&key).ok_or(StorageError::NotFound)?;
        let allocated = upload.allocated_size;
        let mut up = lock(&upload.upload);
        if up.secret != *secret {
            return Err(StorageError::UploadSecretMismatch);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(StorageError::PastAllocation {
                end: u64::MAX,
                allocated,
            })?;
        if end > allocated {
            return Err(StorageError::PastAllocation { end, allocated });
        }
        up.last_activity = Instant::now();
        if up.written.pieces_after(offset, end) > MAX_PIECES {
            return Err(StorageError::TooManyPieces { max: MAX_PIECES });
        }
        for (b, e) in up.written.overlaps(offset, end) {
            let mut existing = vec![0u8; (e - b) as usize];
            up.file
                .read_exact_at(&mut existing, immutable::DATA_OFFSET + b)
                .op("read", &up.incoming)?;
            if existing != data[(b - offset) as usize..(e - offset) as usize] {
                return Err(StorageError::Conflict { offset: b });
            }
        }
        let Upload { file, incoming, .. } = &mut *up;
        file.write_at(data, immutable::DATA_OFFSET + offset)
            .op("write", incoming)?;
        up.written.insert(offset, end);
        let required = up.written.missing(allocated);
        if !required.is_empty() {
            return Ok(UploadStatus {
                complete: false,
                required,
            });
        }
        match self.finish_upload(si, shnum, &mut up, allocated) {
            Ok(()) => {}
            Err(Unfinished::Retry(e)) => return Err(e),
            Err(Unfinished::Discard(e)) => {
                tracing::error!(si = %si, shnum = %shnum, "could not sync a completed share; the upload is discarded and must start again");
                self.remove_incoming(&up);
                drop(up);
                self.uploads.forget(&key, &upload);
                return Err(e);
            }
        }
        drop(up);
        self.uploads.forget(&key, &upload);
        Ok(UploadStatus {
            complete: true,
            required,
        })
    }

    fn finish_upload(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        up: &mut Upload,
        allocated: u64,
    ) -> Result<(), Unfinished> {
        let Upload { file, incoming, .. } = up;
        file.flush()
            .op("write", incoming)
            .map_err(Unfinished::Retry)?;
        file.sync()
            .op("sync", incoming)
            .map_err(Unfinished::Discard)?;
        let bucket = self.layout.bucket_dir(si);
        layout::create_dir_durable(&bucket)
            .op("create", &bucket)
            .map_err(Unfinished::Retry)?;
        let final_path = self.layout.share_path(si, shnum);
        let _guard = self.locks.write(si);
        fs::rename(&up.incoming, &final_path)
            .op("move into place", &final_path)
            .map_err(Unfinished::Retry)?;
        // From here the share is in `shares/`. If the directory cannot be synced, the
        // share may or may not survive a crash: take it back out rather than say "have"
        // to the next allocate for a share that was never acknowledged.
        if let Err(e) = layout::sync_dir(&bucket).op("sync", &bucket) {
            let _ = fs::remove_file(&final_path);
            return Err(Unfinished::Discard(e));
        }
        // The share is durable; if the journal cannot record it, the client is told
        // (the feed misses the event, which a restart's snapshot makes good).
        self.wal
            .record(vec![Change::ShareAdded {
                si: *si,
                shnum,
                size: allocated,
            }])
            .map_err(Unfinished::Discard)?;
        drop(_guard);
        if let Some(parent) = up.incoming.parent() {
            layout::remove_empty_dirs(parent, &self.layout.incoming);
        }
        Ok(())
    }

    /// Abandons an upload and deletes its partial share.
    ///
    /// # Errors
    /// [`StorageError::AlreadyComplete`] if the share is complete,
    /// [`StorageError::NotFound`] if there is no such upload,
    /// [`StorageError::UploadSecretMismatch`] for the wrong secret.
    pub fn abort_immutable(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        secret: &UploadSecret,
    ) -> Result<(), StorageError> {
        let key = (*si, shnum);
        let Some(upload) = self.uploads.get(&key) else {
            if self.list_shares(si)?.contains(&shnum) {
                return Err(StorageError::AlreadyComplete);
            }
            return Err(StorageError::NotFound);
        };
        let up = lock(&upload.upload);
        if up.secret != *secret {
            return Err(StorageError::UploadSecretMismatch);
        }
        self.remove_incoming(&up);
        drop(up);
        self.uploads.forget(&key, &upload);
        Ok(())
    }

    /// Deletes an upload's partial share. The upload map is updated by the caller
    /// after releasing the upload's lock: the map's lock is never taken while an
    /// upload's is held, so the two can never wait on each other.
    fn remove_incoming(&self, up: &Upload) {
        let _ = fs::remove_file(&up.incoming);
        if let Some(parent) = up.incoming.parent() {
            layout::remove_empty_dirs(parent, &self.layout.incoming);
        }
    }

    /// Aborts uploads with no write for `idle`; returns how many.
    pub fn abort_idle_uploads(&self, idle: Duration) -> usize {
        let candidates: Vec<(UploadKey, Arc<UploadSlot>)> = self
            .uploads
            .map()
            .iter()
            .map(|(k, u)| (*k, Arc::clone(u)))
            .collect();
        let mut aborted = 0;
        for (key, upload) in candidates {
            // An upload whose lock is held is being written to: not idle.
            let Ok(up) = upload.upload.try_lock() else {
                continue;
            };
            if up.last_activity.elapsed() >= idle {
                self.remove_incoming(&up);
                drop(up);
                self.uploads.forget(&key, &upload);
                aborted += 1;
            }
        }
        aborted
    }

    /// Number of uploads in progress.
    pub fn uploads_in_progress(&self) -> usize {
        self.uploads.len()
    }
}

/// Why a completed upload did not finish.
enum Unfinished {
    /// Nothing was lost: the client may send its last write again.
    Retry(StorageError),
    /// A sync failed: the upload can no longer be trusted and is discarded.
    Discard(StorageError),
}

/// Where the first byte of a write at share `offset` falls within a [`BLOCK`] of the
/// container: request bodies placed at this offset in aligned memory can be written
/// around the page cache without a copy.
pub fn body_phase(offset: u64) -> usize {
    ((immutable::DATA_OFFSET + offset) % BLOCK as u64) as usize
}

/// Creates the incoming container: the header, and the first lease at the end of the
/// allocated area (a sparse hole in between), as Tahoe's `BucketWriter` does.
fn create_incoming(
    path: &std::path::Path,
    allocated_size: u64,
    lease: &Lease,
    direct: bool,
    faults: &super::faults::Faults,
) -> Result<StagedFile, StorageError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).op("create", parent)?;
    }
    let lease_at = immutable::DATA_OFFSET + allocated_size;
    let mut file = StagedFile::create(
        path,
        lease_at + IMMUTABLE_LEASE_SIZE as u64,
        direct,
        faults.clone(),
    )
    .op("create", path)?;
    let header = immutable::new_header(allocated_size, 1);
    file.write_at(&header, 0).op("write", path)?;
    file.write_at(&lease.to_immutable(), lease_at)
        .op("write", path)?;
    Ok(file)
}
