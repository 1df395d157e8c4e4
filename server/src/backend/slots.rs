//! Read-test-write on slots (mutable shares), Tahoe's `slot_testv_and_readv_and_writev`.
//!
//! Order, as in Tahoe: check the write enabler against every existing share (one
//! mismatch refuses the whole request); evaluate every test vector; evaluate the read
//! vectors on every existing share; only if all tests passed, apply the writes (or
//! deletions, for `new-length` 0) and add or renew the lease on each written share.
//! Each change is durable before we answer: logged ahead in the feed journal and then
//! written in place (`redo.rs`), or, without a journal, replaced atomically (temporary
//! file, sync, rename, directory sync).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;

use swamp_proto::secrets::WriteEnabler;
use swamp_proto::v1::MAX_MUTABLE_SHARE_SIZE;
use swamp_proto::v1::mutable::ValidReadTestWrite;
use swamp_proto::{ShareNumber, StorageIndex};

use swamp_proto::feed::SlotVersion;

use super::change::{AheadError, Change};
use super::error::{IoContext, StorageError};
use super::layout::{self, Layout};
use super::mutable::{self, Container};
use super::redo::{RedoOp, ShareRedo};
use super::{LeaseGrant, Storage};

/// What a read-test-write did.
#[derive(Debug, Default)]
pub struct ReadTestWriteOutcome {
    /// Whether all tests passed (and so the writes happened).
    pub success: bool,
    /// Per existing share (before the writes): the data of each read vector.
    pub reads: BTreeMap<ShareNumber, Vec<Vec<u8>>>,
    /// The shares written or deleted, in share-number order.
    pub changed: Vec<SlotChange>,
}

/// One share changed by a successful read-test-write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotChange {
    /// Which share.
    pub shnum: ShareNumber,
    /// Its new data length (0 when deleted).
    pub data_length: u64,
    /// Its first bytes (up to 57: the SDMF/MDMF version, seqnum, root hash and salt),
    /// from which feeds report the new version without any key.
    pub prefix: Vec<u8>,
}

impl SlotChange {
    /// The change as the feeds record it.
    pub fn to_change(&self, si: &StorageIndex) -> Change {
        if self.data_length == 0 && self.prefix.is_empty() {
            Change::SlotDeleted {
                si: *si,
                shnum: self.shnum,
            }
        } else {
            Change::SlotChanged {
                si: *si,
                shnum: self.shnum,
                version: SlotVersion::from_share_prefix(&self.prefix),
                length: self.data_length,
            }
        }
    }
}

/// Bytes of share data that identify a version (SDMF's prefix is the longest).
pub const VERSION_PREFIX_LEN: u64 = 57;

struct ExistingShare {
    /// Opened for reading and writing: read-test-write reads it and, logged ahead,
    /// writes the change into it.
    file: File,
    data_length: u64,
}

impl ExistingShare {
    fn read(&self, offset: u64, size: u64) -> std::io::Result<Vec<u8>> {
        if offset >= self.data_length {
            return Ok(Vec::new());
        }
        let end = offset.saturating_add(size).min(self.data_length);
        let mut buf = vec![0u8; (end - offset) as usize];
        self.file
            .read_exact_at(&mut buf, mutable::DATA_OFFSET + offset)?;
        Ok(buf)
    }
}

impl Storage {
    /// Runs a read-test-write on `si`.
    ///
    /// # Errors
    /// [`StorageError::BadWriteEnabler`], [`StorageError::TooLarge`],
    /// [`StorageError::Damaged`] (an existing share is not a mutable container), or
    /// I/O failures.
    pub fn read_test_write(
        &self,
        si: &StorageIndex,
        write_enabler: &WriteEnabler,
        grant: &LeaseGrant,
        request: &ValidReadTestWrite,
    ) -> Result<ReadTestWriteOutcome, StorageError> {
        let _guard = self.locks.write(si);
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
                let actual = match existing.get(shnum) {
                    Some(share) => {
                        let path = self.layout.share_path(si, *shnum);
                        share.read(test.offset, test.size).op("read", &path)?
                    }
                    None => Vec::new(),
                };
                if actual != test.specimen {
                    success = false;
                    break 'tests;
                }
            }
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

        let mut changed = Vec::new();
        if success {
            let mut plans = Vec::new();
            for (shnum, vectors) in &request.shares {
                let path = self.layout.share_path(si, *shnum);
                if vectors.new_length == Some(0) {
                    plans.push((*shnum, None, existing.contains_key(shnum)));
                    changed.push(SlotChange {
                        shnum: *shnum,
                        data_length: 0,
                        prefix: Vec::new(),
                    });
                    continue;
                }
                let mut container = if let Some(share) = existing.get(shnum) {
                    Container::from_bytes(read_whole(&share.file).op("read", &path)?)
                        .op("read", &path)?
                } else {
                    Container::new(self.settings.nodeid, write_enabler)
                };
                for w in &vectors.write {
                    let end = w.offset.saturating_add(w.data.len() as u64);
                    if end > MAX_MUTABLE_SHARE_SIZE {
                        return Err(StorageError::TooLarge {
                            size: end,
                            max: MAX_MUTABLE_SHARE_SIZE,
                        });
                    }
                    container.write(w.offset, &w.data);
                }
                if let Some(len) = vectors.new_length {
                    container.truncate(len);
                }
                container.add_or_renew_lease(grant);
                changed.push(SlotChange {
                    shnum: *shnum,
                    data_length: container.data_length(),
                    prefix: container.read(0, VERSION_PREFIX_LEN).to_vec(),
                });
                plans.push((*shnum, Some(container), true));
            }
            let deleted_any = plans.iter().any(|(_, c, existed)| c.is_none() && *existed);
            let bucket = self.layout.bucket_dir(si);
            match self.sink.get().filter(|sink| sink.writes_ahead()) {
                Some(sink) => {
                    let logged = plans
                        .iter()
                        .zip(&changed)
                        .map(|((shnum, container, _), change)| {
                            let redo = match container {
                                Some(c) => ShareRedo::write(*si, *shnum, c),
                                None => ShareRedo::delete(*si, *shnum),
                            };
                            (change.to_change(si), redo)
                        })
                        .collect::<Vec<_>>();
                    let redos: Vec<ShareRedo> = logged.iter().map(|(_, r)| r.clone()).collect();
                    let (ticket, unsynced) = match sink.record_ahead(logged) {
                        Ok(ticket) => (ticket, None),
                        Err(AheadError {
                            ticket: Some(ticket),
                            error,
                        }) => (ticket, Some(error)),
                        Err(AheadError { error, .. }) => {
                            return Err(error).op("record in the feed journal", &bucket);
                        }
                    };
                    // Logged: from here a crash is repaired by replay. Applied even if
                    // the sync failed, so the files always equal the journal applied
                    // in order (the client then gets an error: outcome unknown).
                    let applied =
                        redos
                            .iter()
                            .try_for_each(|redo| match existing.get(&redo.shnum) {
                                Some(share) if !matches!(redo.op, RedoOp::Delete) => {
                                    redo.apply_to(&share.file)
                                }
                                _ => redo.apply(&self.layout, false),
                            });
                    sink.applied(ticket);
                    if let Some(error) = unsynced {
                        return Err(error).op("sync the feed journal", &bucket);
                    }
                    applied.op("write in place", &bucket)?;
                }
                None => {
                    let mut staged = Staged::new(&bucket);
                    for (shnum, container, existed) in &plans {
                        match container {
                            Some(c) => staged.write(*shnum, c.as_bytes())?,
                            None if *existed => staged.delete(*shnum),
                            None => {}
                        }
                    }
                    staged.commit()?;
                    self.report(changed.iter().map(|c| c.to_change(si)).collect())?;
                }
            }
            // Only a deletion can empty the bucket; skip the listing otherwise.
            if deleted_any && self.list_shares(si)?.is_empty() {
                layout::remove_empty_dirs(&bucket, &self.layout.shares);
            }
        }
        Ok(ReadTestWriteOutcome {
            success,
            reads,
            changed,
        })
    }
}

/// The whole file, with one positioned read.
fn read_whole(file: &File) -> std::io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// Loads a slot share, lets `change` edit it, and replaces it durably. The caller holds
/// the storage index's write lock.
///
/// # Errors
/// Whatever `change` returns, or I/O failures.
pub fn update_container(
    layout: &Layout,
    si: &StorageIndex,
    shnum: ShareNumber,
    change: impl FnOnce(&mut Container) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let path = layout.share_path(si, shnum);
    let mut container =
        Container::from_bytes(fs::read(&path).op("read", &path)?).op("read", &path)?;
    change(&mut container)?;
    replace_durably(&layout.bucket_dir(si), shnum, container.as_bytes())
}

/// Writes `bytes` as share `shnum` in `bucket` durably and atomically.
fn replace_durably(bucket: &Path, shnum: ShareNumber, bytes: &[u8]) -> Result<(), StorageError> {
    let mut staged = Staged::new(bucket);
    staged.write(shnum, bytes)?;
    staged.commit()
}

/// The share changes of one read-test-write, staged as synced temporary files and
/// committed together: every rename (or deletion), then one sync of the directory.
/// If anything fails before `commit`, the temporary files are removed and no share
/// changes: a read-test-write is all or nothing.
struct Staged<'a> {
    bucket: &'a Path,
    writes: Vec<(std::path::PathBuf, ShareNumber)>,
    deletes: Vec<ShareNumber>,
}

impl<'a> Staged<'a> {
    fn new(bucket: &'a Path) -> Self {
        Self {
            bucket,
            writes: Vec::new(),
            deletes: Vec::new(),
        }
    }

    fn write(&mut self, shnum: ShareNumber, bytes: &[u8]) -> Result<(), StorageError> {
        layout::create_dir_durable(self.bucket).op("create", self.bucket)?;
        let tmp = self
            .bucket
            .join(format!(".{shnum}.{:016x}.tmp", rand::random::<u64>()));
        // Registered first, so a failure below still removes it.
        self.writes.push((tmp.clone(), shnum));
        let file = File::create(&tmp).op("create", &tmp)?;
        file.write_all_at(bytes, 0).op("write", &tmp)?;
        file.sync_all().op("sync", &tmp)
    }

    fn delete(&mut self, shnum: ShareNumber) {
        self.deletes.push(shnum);
    }

    fn commit(mut self) -> Result<(), StorageError> {
        for (tmp, shnum) in std::mem::take(&mut self.writes) {
            let target = self.bucket.join(shnum.to_string());
            if let Err(e) = fs::rename(&tmp, &target) {
                let _ = fs::remove_file(&tmp);
                return Err(e).op("move into place", &target);
            }
        }
        for shnum in std::mem::take(&mut self.deletes) {
            let target = self.bucket.join(shnum.to_string());
            fs::remove_file(&target).op("delete", &target)?;
        }
        layout::sync_dir(self.bucket).op("sync", self.bucket)
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        for (tmp, _) in &self.writes {
            let _ = fs::remove_file(tmp);
        }
    }
}
