//! Share reads that never wait for the disk.
//!
//! Why: most reads are of shares in the page cache, and sending each one through the
//! blocking pool (a hand-off to another thread and a wake-up back) cost about a sixth of
//! the server's CPU per downloaded GiB (`docs/benchmarks.md`). A read that can be
//! answered from memory is therefore tried on the request's own thread first: the
//! storage index's lock is only tried, the path is resolved from the kernel's directory
//! cache only (`RESOLVE_CACHED`), and every read asks the kernel to fail rather than wait
//! (`RWF_NOWAIT`). Whenever any of them would wait, the caller gets `None` and makes the
//! ordinary, waiting read on the blocking pool; so does a kernel or file system that
//! supports neither flag.

use std::fs::File;
use std::io::{self, IoSliceMut};

use rustix::fs::{CWD, Mode, OFlags, ResolveFlags};
use rustix::io::{Errno, ReadWriteFlags};
use swamp_proto::v1::ShareKind;
use swamp_proto::{ShareNumber, StorageIndex};

use super::error::IoContext;
use super::{Storage, StorageError};

impl Storage {
    /// Reads share data from `first` into `buf` (clipped to the data length) if the
    /// share is wholly in memory, as [`Storage::read_share`] does otherwise. Returns the
    /// share's data length and the bytes read, or `None` if any step would wait.
    ///
    /// # Errors
    /// As [`Storage::read_share`].
    pub fn read_share_cached(
        &self,
        kind: ShareKind,
        si: &StorageIndex,
        shnum: ShareNumber,
        first: u64,
        buf: &mut [u8],
    ) -> Result<Option<(u64, usize)>, StorageError> {
        if self.needs_repair(si) {
            return Ok(None);
        }
        let Some(_guard) = self.locks.try_read(si) else {
            return Ok(None);
        };
        let path = self.layout.share_path(si, shnum);
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let file = match rustix::fs::openat2(CWD, &path, flags, Mode::empty(), ResolveFlags::CACHED)
        {
            Ok(fd) => File::from(fd),
            Err(Errno::NOENT) => return Err(StorageError::NotFound),
            Err(_) => return Ok(None),
        };
        let mut prefix = [0u8; 32];
        let Some(n) = read_nowait(&file, &mut prefix, 0).op("read", &path)? else {
            return Ok(None);
        };
        let share = super::describe_share(file, kind, &prefix[..n], &path)?;
        let end = first
            .saturating_add(buf.len() as u64)
            .min(share.data_length);
        if first >= end {
            return Ok(Some((share.data_length, 0)));
        }
        let want = (end - first) as usize;
        let at = share.data_offset + first;
        match read_nowait(&share.file, &mut buf[..want], at).op("read", &path)? {
            Some(got) if got == want => Ok(Some((share.data_length, got))),
            // Partly in memory, or shorter than its length says: the waiting read decides.
            _ => Ok(None),
        }
    }
}

/// Fills `buf` from `offset` without waiting for the disk: the bytes read (fewer only
/// at the end of the file), or `None` if some of them are not in memory.
fn read_nowait(file: &File, buf: &mut [u8], offset: u64) -> io::Result<Option<usize>> {
    let mut filled = 0;
    while filled < buf.len() {
        let mut slices = [IoSliceMut::new(&mut buf[filled..])];
        let at = offset + filled as u64;
        match rustix::io::preadv2(file, &mut slices, at, ReadWriteFlags::NOWAIT) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(Errno::AGAIN | Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(filled))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::os::unix::fs::FileExt;

    use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret, UploadSecret};

    use super::*;
    use crate::backend::{LeaseGrant, StorageSettings, system_clock};

    const SI: StorageIndex = StorageIndex::from_bytes([7; 16]);

    fn storage_with_share(dir: &std::path::Path, data: &[u8]) -> Storage {
        let storage = Storage::open(
            dir,
            StorageSettings {
                // Written through the page cache, so the share is in memory.
                direct_upload_writes: false,
                ..StorageSettings::new([1; 20], system_clock())
            },
            std::sync::Arc::new(crate::wal::NoFeeds),
        )
        .unwrap();
        let grant = LeaseGrant {
            owner: 0,
            renew: LeaseRenewSecret::from_bytes([2; 32]),
            cancel: LeaseCancelSecret::from_bytes([3; 32]),
            expiry: 2_000_000_000,
            nodeid: [1; 20],
        };
        let secret = UploadSecret::new(vec![4; 32]).unwrap();
        let shnum = ShareNumber::new(0);
        let shares = BTreeSet::from([shnum]);
        storage
            .allocate(&SI, &shares, data.len() as u64, &grant, &secret)
            .unwrap();
        let status = storage
            .write_immutable(&SI, shnum, &secret, 0, data)
            .unwrap();
        assert!(status.complete);
        storage
    }

    /// Whether `dir` is on tmpfs, whose pages cannot be dropped from memory.
    fn on_tmpfs(dir: &std::path::Path) -> bool {
        rustix::fs::statfs(dir).is_ok_and(|s| s.f_type == 0x0102_1994)
    }

    #[test]
    fn cached_reads_answer_as_waiting_reads_do() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let storage = storage_with_share(dir.path(), &data);
        let shnum = ShareNumber::new(0);
        for (first, size) in [
            (0, 10_000),
            (5, 100),
            (9_990, 100),
            (10_000, 10),
            (20_000, 5),
        ] {
            let mut buf = vec![0xaa; size];
            let cached = storage
                .read_share_cached(ShareKind::Immutable, &SI, shnum, first, &mut buf)
                .unwrap()
                .expect("a share just written is in memory");
            let waiting = storage
                .read_share(ShareKind::Immutable, &SI, shnum, first, size as u64)
                .unwrap();
            assert_eq!(cached.0, waiting.0, "data length at {first}");
            assert_eq!(&buf[..cached.1], &waiting.1[..], "bytes at {first}+{size}");
        }
        // A share of the other kind is not found; a missing one is either not found or,
        // when the kernel has not cached the name's absence, left to the waiting read.
        let mut buf = [0u8; 10];
        let other = storage.read_share_cached(ShareKind::Mutable, &SI, shnum, 0, &mut buf);
        assert!(matches!(other, Err(StorageError::NotFound)));
        let missing = ShareNumber::new(9);
        let cached = storage.read_share_cached(ShareKind::Immutable, &SI, missing, 0, &mut buf);
        assert!(matches!(cached, Err(StorageError::NotFound) | Ok(None)));
    }

    #[test]
    fn reads_that_would_wait_are_left_to_the_waiting_path() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![5u8; 64 * 1024];
        let storage = storage_with_share(dir.path(), &data);
        let shnum = ShareNumber::new(0);
        let mut buf = vec![0u8; data.len()];
        // While a writer holds the storage index's lock.
        let guard = storage.locks.write(&SI);
        let held = storage.read_share_cached(ShareKind::Immutable, &SI, shnum, 0, &mut buf);
        assert!(matches!(held, Ok(None)));
        drop(guard);
        // Once the share's pages are dropped from memory (written out first).
        let path = storage.layout.share_path(&SI, shnum);
        let file = File::open(&path).unwrap();
        file.sync_all().unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        let evicted = storage
            .read_share_cached(ShareKind::Immutable, &SI, shnum, 0, &mut buf)
            .unwrap();
        if on_tmpfs(dir.path()) {
            assert_eq!(evicted.map(|(_, n)| &buf[..n]), Some(&data[..]));
        } else {
            assert!(
                evicted.is_none(),
                "not in memory: the waiting path reads it"
            );
        }
        // Read once the waiting way, it is in memory again.
        let mut again = vec![0u8; 100];
        file.read_exact_at(&mut again, 0).unwrap();
        let waiting = storage
            .read_share(ShareKind::Immutable, &SI, shnum, 0, data.len() as u64)
            .unwrap();
        assert_eq!(waiting.1, data);
        let cached = storage
            .read_share_cached(ShareKind::Immutable, &SI, shnum, 0, &mut buf)
            .unwrap();
        assert_eq!(cached.map(|(_, n)| n), Some(data.len()));
    }
}
