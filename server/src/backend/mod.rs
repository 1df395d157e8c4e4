//! Share storage in Tahoe's own on-disk layout.
//!
//! [`Storage`] is the whole backend: immutable uploads, immutable and mutable reads,
//! read-test-write, leases, corruption advisories and space accounting. Nearly every
//! method is synchronous file I/O that the HTTP layer calls on the blocking pool; the
//! exceptions, run on the request's own thread, are reads that never wait for the disk
//! (`cached.rs`) and small read-test-writes, which leave the thread only for their
//! group commit's sync (`slots_inline.rs`).
//!
//! # Consistency
//! - Completed immutable shares never change except for their lease records. Lease
//!   changes and share-length reads of one storage index are ordered by a per-index lock
//!   ([`locks`]), so nobody computes a length mid-lease-append.
//! - A read-test-write holds the index's write lock and builds each new container in
//!   memory. It logs the changed bytes in the write-ahead log (`crate::wal`), synced,
//!   then writes them in place; slot reads hold the index's read lock, so they see the
//!   old or the new version, and a crash is repaired by replaying the log when the
//!   storage is next opened.
//! - Uploads live in `shares/incoming/` and are renamed into `shares/` only when complete
//!   and synced, so `shares/` never holds a partial immutable share.
//!
//! # Layout
//! `layout.rs` (paths, durable directory operations), `immutable.rs` and `mutable.rs`
//! (the two container formats), `lease.rs` (lease records), `ranges.rs` (upload
//! progress), `locks.rs`, `uploads.rs` (in-progress uploads), `staging.rs` (their
//! containers, written around the page cache), `slots.rs` (read-test-write),
//! `slots_inline.rs` (small read-test-writes on the request's thread),
//! `advisory.rs` (corruption reports), `cached.rs` (reads that never wait for the
//! disk), `expiry.rs` (lease expiry), `error.rs`, `faults.rs` (injected disk faults),
//! `clock.rs`. The write-ahead log the storage owns is `crate::wal`.

pub mod advisory;
pub mod cached;
pub mod clock;
pub mod error;
pub mod expiry;
pub mod faults;
pub mod immutable;
pub mod layout;
pub mod lease;
pub mod locks;
pub mod mutable;
pub mod ranges;
pub mod slots;
pub mod slots_inline;
pub mod staging;
#[cfg(test)]
mod staging_tests;
pub mod uploads;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::Arc;

use swamp_proto::v1::ShareKind;
use swamp_proto::{ShareNumber, StorageIndex};

use crate::wal::change::Change;
use crate::wal::durable::Syncer;
use crate::wal::{Publisher, Wal};

pub use clock::{Clock, system_clock};
use error::IoContext;
pub use error::StorageError;
pub use layout::Layout;
pub use lease::LeaseGrant;

/// What a share read opens: the file and where its data lies.
pub struct OpenShare {
    /// The container file, opened for reading.
    pub file: File,
    /// Offset of the share data in the file.
    pub data_offset: u64,
    /// Length of the share data.
    pub data_length: u64,
}

/// Which version of a file: anything that writes it changes the stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(file: &File) -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata()?;
        Ok(Self {
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// One share's current state, for feed snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareState {
    /// Which share.
    pub shnum: ShareNumber,
    /// Immutable or mutable.
    pub kind: ShareKind,
    /// Data length.
    pub length: u64,
    /// Mutable shares: the first bytes of the data (version, seqnum, root hash).
    pub prefix: Vec<u8>,
}

/// The storage backend's limits an operator may change while it runs (`reload`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageLimits {
    /// Space to leave free on the disk.
    pub reserved_space: u64,
    /// Refuse new shares (Tahoe's `[storage] readonly`).
    pub readonly: bool,
    /// Immutable uploads in progress at once (`[storageserver.plugins.swamp]
    /// max_uploads_in_progress`).
    pub max_uploads_in_progress: usize,
    /// The largest mutable share kept (`[storageserver.plugins.swamp]
    /// max_mutable_share_size`).
    pub max_mutable_share_size: u64,
    /// Bytes one read-test-write answer may carry (`[storageserver.plugins.swamp]
    /// max_read_answer_size`).
    pub max_read_answer_size: u64,
}

impl StorageLimits {
    /// The storage part of a node's configuration.
    pub fn of(config: &crate::node::Config) -> Self {
        Self {
            reserved_space: config.reserved_space,
            readonly: config.readonly,
            ..Self::from_limits(&config.limits)
        }
    }

    /// The storage part of `limits`, with no reserve, not read-only.
    pub fn from_limits(limits: &crate::node::Limits) -> Self {
        Self {
            reserved_space: 0,
            readonly: false,
            max_uploads_in_progress: limits.max_uploads_in_progress,
            max_mutable_share_size: limits.max_mutable_share_size,
            max_read_answer_size: limits.max_read_answer_size,
        }
    }
}

impl Default for StorageLimits {
    fn default() -> Self {
        Self::from_limits(&crate::node::Limits::default())
    }
}

/// Settings of the storage backend.
#[derive(Clone)]
pub struct StorageSettings {
    /// This server's node id (the Foolscap tubid bytes), written into mutable containers
    /// and leases.
    pub nodeid: [u8; 20],
    /// The limits it starts with ([`Storage::set_limits`] changes them).
    pub limits: StorageLimits,
    /// Write uploads around the page cache (`O_DIRECT`) where the file system allows
    /// it (`[storageserver.plugins.swamp] direct_upload_writes`, on by default;
    /// `staging.rs`).
    pub direct_upload_writes: bool,
    /// Unix time source.
    pub clock: Clock,
    /// Injected disk faults (tests only; empty in a node).
    pub faults: faults::Faults,
    /// Where the write-ahead log reports its group commits (nowhere by default).
    pub group_metrics: crate::wal::GroupMetrics,
}

impl StorageSettings {
    /// Settings with every limit at its default: for tests and tools.
    pub fn new(nodeid: [u8; 20], clock: Clock) -> Self {
        Self {
            nodeid,
            limits: StorageLimits::default(),
            direct_upload_writes: true,
            clock,
            faults: faults::Faults::default(),
            group_metrics: crate::wal::GroupMetrics::default(),
        }
    }
}

/// The storage backend.
pub struct Storage {
    layout: Layout,
    settings: StorageSettings,
    /// The limits now (`settings.limits` is only where they started).
    limits: crate::live::Live<StorageLimits>,
    locks: locks::SiLocks,
    uploads: uploads::Uploads,
    /// The write-ahead log (`crate::wal`), which hands committed changes to the feeds.
    wal: Wal,
    /// How far the lease expiry sweep has got (`tasks::expiry` writes it).
    expiry_progress: expiry::SweepProgress,
}

impl Storage {
    /// Opens (creating if needed) the storage directory: opens its write-ahead log and
    /// replays the slot writes logged after the last checkpoint before anything else,
    /// hands the feeds' history to `publisher` (which then gets every committed change,
    /// `crate::wal::publish`), and discards any uploads left in `incoming/` by a
    /// previous run, as Tahoe does at start.
    ///
    /// # Errors
    /// [`StorageError::Io`] if the directories cannot be created or cleaned, or the log
    /// cannot be opened or replayed.
    pub fn open(
        storage_dir: &Path,
        settings: StorageSettings,
        publisher: Arc<dyn Publisher>,
    ) -> Result<Self, StorageError> {
        let syncer = Syncer::with_faults(settings.faults.clone());
        Self::open_with(storage_dir, settings, publisher, Arc::new(syncer))
    }

    /// The same, with the log's syncs going through `syncer` (tests inject failures).
    pub(crate) fn open_with(
        storage_dir: &Path,
        settings: StorageSettings,
        publisher: Arc<dyn Publisher>,
        syncer: Arc<Syncer>,
    ) -> Result<Self, StorageError> {
        let layout = Layout::new(storage_dir);
        let wal = Wal::open(
            &layout,
            settings.clock.clone(),
            syncer,
            settings.faults.clone(),
            publisher,
            settings.group_metrics.clone(),
        )
        .op("open the write-ahead log in", &layout.storage_dir())?;
        layout::create_dir_durable(&layout.shares).op("create", &layout.shares)?;
        layout::create_dir_durable(&layout.advisories).op("create", &layout.advisories)?;
        match fs::remove_dir_all(&layout.incoming) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).op("clean", &layout.incoming),
        }
        layout::create_dir_durable(&layout.incoming).op("create", &layout.incoming)?;
        Ok(Self {
            layout,
            limits: crate::live::Live::new(settings.limits.clone()),
            settings,
            locks: locks::SiLocks::new(),
            uploads: uploads::Uploads::default(),
            wal,
            expiry_progress: expiry::SweepProgress::default(),
        })
    }

    /// Before a read of `si`: applies what waits for it, under the write lock.
    fn repair_before_read(&self, si: &StorageIndex) -> Result<(), StorageError> {
        if self.wal.needs_repair(si) {
            let _guard = self.locks.write(si);
            self.wal.repair(si)?;
        }
        Ok(())
    }

    /// At a clean shutdown: makes the share files durable and moves the log's
    /// checkpoint past every applied slot write, so the next start replays nothing
    /// (`Wal::checkpoint_at_shutdown` says why). Blocks on `syncfs`.
    pub fn checkpoint_at_shutdown(&self) {
        self.wal.checkpoint_at_shutdown();
    }

    /// Whether a slot of `si` waits for a repair (reads must not go around it).
    pub(crate) fn needs_repair(&self, si: &StorageIndex) -> bool {
        self.wal.needs_repair(si)
    }

    /// Runs `then` with the current state of every share of `si`, while no change to
    /// `si` can commit (the change feeds register a subscription inside `then`, so the
    /// snapshot and the live events meet with no gap and no duplicate).
    ///
    /// # Errors
    /// I/O failures reading the shares.
    pub fn with_share_states<T>(
        &self,
        si: &StorageIndex,
        then: impl FnOnce(Vec<ShareState>) -> T,
    ) -> Result<T, StorageError> {
        self.repair_before_read(si)?;
        let _guard = self.locks.read(si);
        let mut states = Vec::new();
        for shnum in self.list_shares(si)? {
            let path = self.layout.share_path(si, shnum);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).op("open", &path),
            };
            let mut first = [0u8; 32];
            let n = read_prefix(&file, &mut first).op("read", &path)?;
            if mutable::is_mutable_header(&first[..n]) {
                let length = mutable::read_data_length(&file).op("read", &path)?;
                let mut prefix = vec![0u8; length.min(slots::VERSION_PREFIX_LEN) as usize];
                let got =
                    read_prefix_at(&file, &mut prefix, mutable::DATA_OFFSET).op("read", &path)?;
                prefix.truncate(got);
                states.push(ShareState {
                    shnum,
                    kind: ShareKind::Mutable,
                    length,
                    prefix,
                });
            } else if immutable::is_immutable_header(&first[..n]) {
                let header = immutable::read_header(&file).op("read", &path)?;
                let length = immutable::data_length(&file, &header).op("read", &path)?;
                states.push(ShareState {
                    shnum,
                    kind: ShareKind::Immutable,
                    length,
                    prefix: Vec::new(),
                });
            }
        }
        Ok(then(states))
    }

    /// The directory layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The settings this backend runs with.
    pub fn settings(&self) -> &StorageSettings {
        &self.settings
    }

    /// The limits in force now.
    pub fn limits(&self) -> Arc<StorageLimits> {
        self.limits.get()
    }

    /// Replaces the limits (a reload); uploads and writes already admitted keep going.
    pub fn set_limits(&self, limits: StorageLimits) {
        self.limits.set(limits);
    }

    /// Unix seconds now, from the injected clock.
    pub fn now(&self) -> u64 {
        (self.settings.clock)()
    }

    /// Whether a sync of the write-ahead log has failed, so nothing more is
    /// acknowledged until a restart.
    pub fn needs_restart(&self) -> bool {
        self.wal.needs_restart()
    }

    /// Whether the storage directory's file system takes a new file now: makes, syncs
    /// and removes a small probe file (for readiness checks).
    ///
    /// # Errors
    /// The I/O error that stopped it.
    pub fn probe_write(&self) -> std::io::Result<()> {
        let path = self.layout.storage_dir().join(".swamp-ready-probe");
        let written = fs::write(&path, b"ready\n").and_then(|()| fs::File::open(&path)?.sync_all());
        let removed = fs::remove_file(&path);
        written.and(removed)
    }

    /// Bytes free for new shares: the disk's available space, minus the reserve, minus
    /// what open uploads have been promised (0 when read-only).
    pub fn available_space(&self) -> u64 {
        let limits = self.limits();
        if limits.readonly {
            return 0;
        }
        let free = match rustix::fs::statvfs(&self.layout.shares) {
            Ok(st) => st.f_bavail.saturating_mul(st.f_frsize),
            Err(_) => 0,
        };
        free.saturating_sub(limits.reserved_space)
            .saturating_sub(self.uploads.promised_bytes())
    }

    /// The share numbers held for `si` (complete shares of either kind).
    ///
    /// # Errors
    /// [`StorageError::Io`] if the bucket directory cannot be read.
    pub fn list_shares(&self, si: &StorageIndex) -> Result<BTreeSet<ShareNumber>, StorageError> {
        let bucket = self.layout.bucket_dir(si);
        Ok(layout::list_share_numbers(&bucket)
            .op("list", &bucket)?
            .into_iter()
            .collect())
    }

    /// Opens a complete share of the given kind for reading.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if there is no such share or it is of the other kind;
    /// [`StorageError::Damaged`] for a broken container.
    pub fn open_share(
        &self,
        kind: ShareKind,
        si: &StorageIndex,
        shnum: ShareNumber,
    ) -> Result<OpenShare, StorageError> {
        self.repair_before_read(si)?;
        let _guard = self.locks.read(si);
        self.open_share_locked(kind, si, shnum)
    }

    /// Reads share data `[first, first + size)` (clipped to the data length) with one
    /// positioned read while holding the storage index's read lock, so a slot read sees
    /// a whole version even though read-test-write writes slots in place. Returns the
    /// share's data length and the bytes (empty when `first` is at or past the end).
    ///
    /// # Errors
    /// As [`Storage::open_share`].
    pub fn read_share(
        &self,
        kind: ShareKind,
        si: &StorageIndex,
        shnum: ShareNumber,
        first: u64,
        size: u64,
    ) -> Result<(u64, Vec<u8>), StorageError> {
        self.repair_before_read(si)?;
        let _guard = self.locks.read(si);
        let share = self.open_share_locked(kind, si, shnum)?;
        let end = first.saturating_add(size).min(share.data_length);
        if first >= end {
            return Ok((share.data_length, Vec::new()));
        }
        let path = self.layout.share_path(si, shnum);
        let data = read_vec_at(
            &share.file,
            (end - first) as usize,
            share.data_offset + first,
        )
        .op("read", &path)?;
        Ok((share.data_length, data))
    }

    /// Reads `[first, first + size)` of a slot's data (clipped) under the storage
    /// index's read lock, with the stamp of the file version it came from. With
    /// `expect`, a file that changed since that stamp is [`StorageError::Changed`]: a
    /// large slot read is answered in chunks, and must never mix two versions.
    ///
    /// # Errors
    /// As [`Storage::open_share`], or [`StorageError::Changed`].
    pub fn read_slot_chunk(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        first: u64,
        size: u64,
        expect: Option<FileStamp>,
    ) -> Result<(u64, Vec<u8>, FileStamp), StorageError> {
        self.repair_before_read(si)?;
        let _guard = self.locks.read(si);
        let share = self.open_share_locked(ShareKind::Mutable, si, shnum)?;
        let path = self.layout.share_path(si, shnum);
        let stamp = FileStamp::of(&share.file).op("stat", &path)?;
        if expect.is_some_and(|e| e != stamp) {
            return Err(StorageError::Changed);
        }
        let end = first.saturating_add(size).min(share.data_length);
        let data = if first < end {
            read_vec_at(
                &share.file,
                (end - first) as usize,
                share.data_offset + first,
            )
            .op("read", &path)?
        } else {
            Vec::new()
        };
        Ok((share.data_length, data, stamp))
    }

    fn open_share_locked(
        &self,
        kind: ShareKind,
        si: &StorageIndex,
        shnum: ShareNumber,
    ) -> Result<OpenShare, StorageError> {
        let path = self.layout.share_path(si, shnum);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::NotFound),
            Err(e) => return Err(e).op("open", &path),
        };
        let mut first = [0u8; 32];
        let n = read_prefix(&file, &mut first).op("read", &path)?;
        describe_share(file, kind, &first[..n], &path)
    }

    /// Adds or renews a lease on every share of `si`, mutable and immutable
    /// (`PUT /storage/v1/lease/:si`).
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if `si` has no shares.
    pub fn add_or_renew_leases(
        &self,
        si: &StorageIndex,
        grant: &LeaseGrant,
    ) -> Result<(), StorageError> {
        // Listed under the lock, so a read-test-write cannot delete a share between
        // the listing and its lease.
        let _guard = self.locks.write(si);
        self.wal.repair(si)?;
        let shares = self.list_shares(si)?;
        if shares.is_empty() {
            return Err(StorageError::NotFound);
        }
        for shnum in shares {
            self.lease_one_share_locked(si, shnum, grant)?;
        }
        Ok(())
    }

    /// Adds or renews one share's lease, writing only the lease bytes and syncing them;
    /// the caller holds the index's write lock (and has applied waiting repairs).
    pub(crate) fn lease_one_share_locked(
        &self,
        si: &StorageIndex,
        shnum: ShareNumber,
        grant: &LeaseGrant,
    ) -> Result<(), StorageError> {
        let path = self.layout.share_path(si, shnum);
        let file = match fs::OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            // Deleted since the caller listed it (allocate lists before it locks).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).op("open", &path),
        };
        let mut first = [0u8; 32];
        let n = read_prefix(&file, &mut first).op("read", &path)?;
        if mutable::is_mutable_header(&first[..n]) {
            drop(file);
            slots::renew_lease_in_place(&self.layout, si, shnum, grant, &self.settings.faults)
        } else if immutable::is_immutable_header(&first[..n]) {
            let faults = &self.settings.faults;
            faults
                .before_write()
                .and_then(|()| immutable::add_or_renew_lease(&file, grant))
                .and_then(|()| faults.before_sync())
                .and_then(|()| file.sync_data())
                .op("write lease", &path)
        } else {
            // Not a share container (Tahoe skips such files too).
            Ok(())
        }
    }

    /// Records a client's corruption advisory for a share we hold.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if the share does not exist.
    pub fn advise_corrupt(
        &self,
        kind: ShareKind,
        si: &StorageIndex,
        shnum: ShareNumber,
        reason: &str,
    ) -> Result<(), StorageError> {
        if !self.list_shares(si)?.contains(&shnum) {
            return Err(StorageError::NotFound);
        }
        advisory::write(
            &self.layout.advisories,
            kind,
            si,
            shnum,
            reason,
            std::time::SystemTime::now(),
        )?;
        let _guard = self.locks.write(si);
        self.wal.record(vec![Change::CorruptionAdvised {
            si: *si,
            shnum,
            kind: kind.as_str().to_string(),
        }])
    }
}

/// Where the data of an open share file lies, given its first bytes (up to 32): a
/// file of the other kind, or of neither, is no such share.
fn describe_share(
    file: File,
    kind: ShareKind,
    first: &[u8],
    path: &Path,
) -> Result<OpenShare, StorageError> {
    match kind {
        ShareKind::Immutable if immutable::is_immutable_header(first) => {
            let header = immutable::parse_header(first).op("read", path)?;
            let data_length = immutable::data_length(&file, &header).op("read", path)?;
            Ok(OpenShare {
                file,
                data_offset: immutable::DATA_OFFSET,
                data_length,
            })
        }
        ShareKind::Mutable if mutable::is_mutable_header(first) => {
            let data_length = mutable::read_data_length(&file).op("read", path)?;
            Ok(OpenShare {
                file,
                data_offset: mutable::DATA_OFFSET,
                data_length,
            })
        }
        _ => Err(StorageError::NotFound),
    }
}

pub(crate) fn read_prefix(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    read_prefix_at(file, buf, 0)
}

/// Reads up to `len` bytes at `offset` (fewer at the end of the file) into a new vector,
/// without zeroing it first: the read fills the memory, and zeroing half a MiB per
/// ranged read was 4 % of a download's server CPU.
fn read_vec_at(file: &File, len: usize, offset: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        let at = offset + data.len() as u64;
        // Reads into the unused capacity and extends the length by what was read.
        let n = rustix::io::pread(file, rustix::buffer::spare_capacity(&mut data), at)?;
        if n == 0 {
            break;
        }
    }
    data.truncate(len);
    Ok(data)
}

/// Reads up to `buf.len()` bytes at `offset`, stopping early only at end of file.
pub(crate) fn read_prefix_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
