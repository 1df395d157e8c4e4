//! Tahoe's mutable share container (`storage/mutable.py`, `mutable_schema.py`).
//!
//! ```text
//! 0    32   magic (v1 or v2)
//! 32   20   node id of the server that recorded the write enabler
//! 52   32   write enabler (in the clear in both versions)
//! 84   8    u64 data length
//! 92   8    u64 file offset of the extra-lease block
//! 100  4*92 four lease slots (owner 0 = empty)
//! 468  ...  share data
//! X    4    u32 number of extra leases, then 92 bytes each  (X = value at 92)
//! ```
//!
//! A read-test-write loads the whole container into a [`Container`], applies Tahoe's
//! own write algorithm to it (so the bytes on disk are what the Python server would
//! have produced), and the caller replaces the file atomically. Readers open the file
//! and see either the old or the new version, never a mix.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use swamp_proto::secrets::{WriteEnabler, constant_time_eq};

use super::lease::{Lease, LeaseGrant, MUTABLE_LEASE_SIZE, SecretStorage, be_u32, be_u64};

/// Magic of version 1 containers.
pub const MAGIC_V1: &[u8; 32] = b"Tahoe mutable container v1\n\x75\x09\x44\x03\x8e";
/// Magic of version 2 containers (hashed lease secrets), which we write.
pub const MAGIC_V2: &[u8; 32] = b"Tahoe mutable container v2\n\xc3\x55\x21\x99\x25";
/// Offset of the share data.
pub const DATA_OFFSET: u64 = 468;
const DATA_LENGTH_AT: usize = 84;
const EXTRA_LEASE_AT: usize = 92;
const LEASES_AT: usize = 100;

/// Whether the first 32 bytes of a share file are a mutable container's magic.
pub fn is_mutable_header(first: &[u8]) -> bool {
    first.len() >= 32 && (&first[..32] == MAGIC_V1 || &first[..32] == MAGIC_V2)
}

/// Reads the data length of a mutable container file.
///
/// # Errors
/// I/O errors, or `InvalidData` if the magic is wrong.
pub fn read_data_length(file: &File) -> io::Result<u64> {
    let mut h = [0u8; 100];
    file.read_exact_at(&mut h, 0)?;
    if !is_mutable_header(&h) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a mutable share container",
        ));
    }
    Ok(be_u64(&h[DATA_LENGTH_AT..]))
}

/// A whole mutable container, in memory.
///
/// It remembers which byte ranges of the file its edits touched (`dirty`), so a
/// read-test-write can log exactly those bytes ahead of writing them in place
/// (`redo.rs`) instead of rewriting the whole file.
pub struct Container {
    image: Vec<u8>,
    /// Touched byte ranges of the file, `[from, to)`, unsorted, maybe overlapping.
    dirty: Vec<(usize, usize)>,
    /// Built from nothing: every byte is new.
    fresh: bool,
}

impl Container {
    /// A new, empty v2 container recording `nodeid` and `write_enabler`.
    pub fn new(nodeid: [u8; 20], write_enabler: &WriteEnabler) -> Self {
        let mut image = vec![0u8; DATA_OFFSET as usize + 4];
        image[..32].copy_from_slice(MAGIC_V2);
        image[32..52].copy_from_slice(&nodeid);
        image[52..84].copy_from_slice(write_enabler.expose());
        image[EXTRA_LEASE_AT..EXTRA_LEASE_AT + 8].copy_from_slice(&DATA_OFFSET.to_be_bytes());
        Self {
            image,
            dirty: Vec::new(),
            fresh: true,
        }
    }

    /// Parses a container file's bytes.
    ///
    /// # Errors
    /// `InvalidData` if the magic or the offsets are wrong.
    pub fn from_bytes(image: Vec<u8>) -> io::Result<Self> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        if !is_mutable_header(&image) || image.len() < DATA_OFFSET as usize + 4 {
            return Err(bad("not a mutable share container"));
        }
        let c = Self {
            image,
            dirty: Vec::new(),
            fresh: false,
        };
        let extra = c.extra_lease_offset();
        if extra < DATA_OFFSET.saturating_add(c.data_length())
            || extra.saturating_add(4) > c.image.len() as u64
        {
            return Err(bad("mutable container offsets are inconsistent"));
        }
        let extras = u64::from(c.num_extra_leases());
        if extra + 4 + extras * MUTABLE_LEASE_SIZE as u64 > c.image.len() as u64 {
            return Err(bad("mutable container is shorter than its leases"));
        }
        Ok(c)
    }

    /// The container's bytes, to write to disk.
    pub fn as_bytes(&self) -> &[u8] {
        &self.image
    }

    /// Whether the container was built from nothing (it has no file yet).
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// The byte ranges of the file that the edits so far changed, merged and sorted,
    /// with their new bytes. Together with the new file length they turn the old file
    /// into the new one. The header (with the data length and the leases) and the
    /// extra-lease block at the end are always included, so applying them also
    /// undoes any unlogged lease change made to the file since (a lease may be lost
    /// in a crash, see `docs/durability.md`; data never).
    pub fn dirty_ranges(&self) -> Vec<(u64, &[u8])> {
        let len = self.image.len();
        let mut ranges = self.dirty.clone();
        ranges.push((0, DATA_OFFSET as usize));
        ranges.push(((self.extra_lease_offset() as usize).min(len), len));
        if self.fresh {
            ranges.push((0, len));
        }
        ranges.retain(|&(from, to)| from < to);
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (from, to) in ranges {
            let to = to.min(len);
            match merged.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => merged.push((from, to)),
            }
        }
        merged
            .into_iter()
            .filter(|(from, to)| from < to)
            .map(|(from, to)| (from as u64, &self.image[from..to]))
            .collect()
    }

    fn touch(&mut self, from: usize, to: usize) {
        if from < to {
            self.dirty.push((from, to));
        }
    }

    fn secret_storage(&self) -> SecretStorage {
        if &self.image[..32] == MAGIC_V1 {
            SecretStorage::Plain
        } else {
            SecretStorage::Hashed
        }
    }

    /// Whether `we` is the recorded write enabler (constant time).
    pub fn write_enabler_matches(&self, we: &WriteEnabler) -> bool {
        constant_time_eq(&self.image[52..84], we.expose())
    }

    /// The logical length of the share data.
    pub fn data_length(&self) -> u64 {
        be_u64(&self.image[DATA_LENGTH_AT..])
    }

    fn set_data_length(&mut self, len: u64) {
        self.image[DATA_LENGTH_AT..DATA_LENGTH_AT + 8].copy_from_slice(&len.to_be_bytes());
        self.touch(DATA_LENGTH_AT, DATA_LENGTH_AT + 8);
    }

    fn extra_lease_offset(&self) -> u64 {
        be_u64(&self.image[EXTRA_LEASE_AT..])
    }

    fn num_extra_leases(&self) -> u32 {
        let at = self.extra_lease_offset() as usize;
        be_u32(&self.image[at..])
    }

    /// The share data `[offset, offset+size)`, clipped to the data length.
    pub fn read(&self, offset: u64, size: u64) -> &[u8] {
        let len = self.data_length();
        if offset >= len {
            return &[];
        }
        let end = offset.saturating_add(size).min(len);
        &self.image[(DATA_OFFSET + offset) as usize..(DATA_OFFSET + end) as usize]
    }

    fn ensure_len(&mut self, len: u64) {
        let old = self.image.len();
        if (old as u64) < len {
            self.image.resize(len as usize, 0);
            self.touch(old, len as usize);
        }
    }

    /// Moves the extra-lease block so the data area can hold `new_data_size` bytes;
    /// containers never shrink (Tahoe's `_change_container_size`).
    fn grow_container(&mut self, new_data_size: u64) {
        let old = self.extra_lease_offset();
        let new = DATA_OFFSET + new_data_size;
        if new < old {
            return;
        }
        let block_len = 4 + u64::from(self.num_extra_leases()) * MUTABLE_LEASE_SIZE as u64;
        let block = self.image[old as usize..(old + block_len) as usize].to_vec();
        self.image[old as usize..(old + block_len) as usize].fill(0);
        self.touch(old as usize, (old + block_len) as usize);
        self.ensure_len(new + block_len);
        self.image[new as usize..(new + block_len) as usize].copy_from_slice(&block);
        self.touch(new as usize, (new + block_len) as usize);
        self.image[EXTRA_LEASE_AT..EXTRA_LEASE_AT + 8].copy_from_slice(&new.to_be_bytes());
        self.touch(EXTRA_LEASE_AT, EXTRA_LEASE_AT + 8);
    }

    /// Writes `data` at `offset`, growing the data (zero-filling any gap) as Tahoe's
    /// `_write_share_data` does.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let len = data.len() as u64;
        let data_length = self.data_length();
        if offset + len >= data_length {
            if DATA_OFFSET + offset + len > self.extra_lease_offset() {
                self.grow_container(offset + len);
            }
            if offset > data_length {
                let from = (DATA_OFFSET + data_length) as usize;
                let to = (DATA_OFFSET + offset) as usize;
                self.image[from..to].fill(0);
                self.touch(from, to);
            }
            self.set_data_length(offset + len);
        }
        let at = (DATA_OFFSET + offset) as usize;
        self.image[at..at + data.len()].copy_from_slice(data);
        self.touch(at, at + data.len());
    }

    /// Shrinks the logical length (never grows it), as `new-length` does.
    pub fn truncate(&mut self, new_length: u64) {
        if new_length < self.data_length() {
            self.set_data_length(new_length);
        }
    }

    fn lease_slot_offset(&self, n: usize) -> usize {
        if n < 4 {
            LEASES_AT + n * MUTABLE_LEASE_SIZE
        } else {
            self.extra_lease_offset() as usize + 4 + (n - 4) * MUTABLE_LEASE_SIZE
        }
    }

    fn num_lease_slots(&self) -> usize {
        4 + self.num_extra_leases() as usize
    }

    fn lease_at(&self, n: usize) -> Option<Lease> {
        let at = self.lease_slot_offset(n);
        let rec: &[u8; MUTABLE_LEASE_SIZE] = self.image[at..at + MUTABLE_LEASE_SIZE]
            .try_into()
            .expect("invariant: record size");
        Lease::from_mutable(rec)
    }

    /// The leases in use.
    pub fn leases(&self) -> Vec<Lease> {
        (0..self.num_lease_slots())
            .filter_map(|n| self.lease_at(n))
            .collect()
    }

    fn write_lease(&mut self, n: usize, lease: &Lease) {
        if n >= self.num_lease_slots() {
            let count_at = self.extra_lease_offset() as usize;
            let count = self.num_extra_leases() + 1;
            self.image[count_at..count_at + 4].copy_from_slice(&count.to_be_bytes());
            self.touch(count_at, count_at + 4);
        }
        let at = self.lease_slot_offset(n);
        self.ensure_len((at + MUTABLE_LEASE_SIZE) as u64);
        self.image[at..at + MUTABLE_LEASE_SIZE].copy_from_slice(&lease.to_mutable());
        self.touch(at, at + MUTABLE_LEASE_SIZE);
    }

    /// Renews the lease with the presented renew secret (extending only), else puts a
    /// new lease in the first empty slot or a new extra slot.
    pub fn add_or_renew_lease(&mut self, grant: &LeaseGrant) {
        let storage = self.secret_storage();
        let lease = grant.to_lease(storage);
        for n in 0..self.num_lease_slots() {
            if let Some(existing) = self.lease_at(n)
                && existing.has_renew_secret(storage, &grant.renew)
            {
                if lease.expiry > existing.expiry {
                    let renewed = Lease {
                        expiry: lease.expiry,
                        ..existing
                    };
                    self.write_lease(n, &renewed);
                }
                return;
            }
        }
        let slot = (0..self.num_lease_slots())
            .find(|&n| self.lease_at(n).is_none())
            .unwrap_or(self.num_lease_slots());
        self.write_lease(slot, &lease);
    }

    /// Empties the lease slots for which `keep` is false; returns how many remain.
    pub fn retain_leases(&mut self, mut keep: impl FnMut(&Lease) -> bool) -> usize {
        let mut remaining = 0;
        for n in 0..self.num_lease_slots() {
            if let Some(lease) = self.lease_at(n) {
                if keep(&lease) {
                    remaining += 1;
                } else {
                    let at = self.lease_slot_offset(n);
                    self.image[at..at + MUTABLE_LEASE_SIZE].fill(0);
                    self.touch(at, at + MUTABLE_LEASE_SIZE);
                }
            }
        }
        remaining
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret};

    fn grant(n: u8, expiry: u64) -> LeaseGrant {
        LeaseGrant {
            owner: 1,
            renew: LeaseRenewSecret::from_bytes([n; 32]),
            cancel: LeaseCancelSecret::from_bytes([n; 32]),
            expiry,
            nodeid: [7; 20],
        }
    }

    #[test]
    fn a_data_length_near_u64_max_is_refused_not_overflowed() {
        // Found by the `share_container` fuzz target: 468 + data length overflowed.
        let mut image = Container::new([4; 20], &WriteEnabler::from_bytes([5; 32]))
            .as_bytes()
            .to_vec();
        image[DATA_LENGTH_AT..DATA_LENGTH_AT + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(Container::from_bytes(image).is_err());
    }

    #[test]
    fn v2_magic_is_the_tagged_hash_suffix() {
        assert_eq!(&MAGIC_V2[..27], b"Tahoe mutable container v2\n");
    }

    #[test]
    fn writes_grow_and_zero_fill() {
        let mut c = Container::new([1; 20], &WriteEnabler::from_bytes([2; 32]));
        assert_eq!(c.as_bytes().len(), 472);
        c.write(0, b"abc");
        c.write(10, b"xyz");
        assert_eq!(c.data_length(), 13);
        assert_eq!(c.read(0, 100), b"abc\0\0\0\0\0\0\0xyz");
        assert_eq!(c.read(20, 5), b"");
        c.truncate(5);
        assert_eq!(c.read(0, 100), b"abc\0\0");
        c.truncate(50);
        assert_eq!(c.data_length(), 5, "new-length never grows");
        let again = Container::from_bytes(c.as_bytes().to_vec()).unwrap();
        assert_eq!(again.read(0, 3), b"abc");
    }

    #[test]
    fn extra_leases_move_when_data_grows() {
        let mut c = Container::new([1; 20], &WriteEnabler::from_bytes([2; 32]));
        for n in 0..6 {
            c.add_or_renew_lease(&grant(n, 100));
        }
        assert_eq!(c.leases().len(), 6);
        c.write(0, &[9u8; 1000]);
        assert_eq!(c.leases().len(), 6, "leases survive growth");
        assert_eq!(c.read(0, 1000), &[9u8; 1000][..]);
        c.add_or_renew_lease(&grant(0, 200));
        assert_eq!(c.leases().len(), 6, "renewal does not add");
        assert_eq!(c.leases()[0].expiry, 200);
        c.add_or_renew_lease(&grant(0, 150));
        assert_eq!(c.leases()[0].expiry, 200, "renewal never shortens");
        assert!(Container::from_bytes(c.as_bytes().to_vec()).is_ok());
    }

    /// Applying the dirty ranges to the old bytes (and setting the new length) gives
    /// the new bytes, whatever the edit: this is what crash recovery relies on.
    #[test]
    fn dirty_ranges_turn_the_old_file_into_the_new_one() {
        type Edit = Box<dyn Fn(&mut Container)>;
        let edits: Vec<Edit> = vec![
            Box::new(|c| c.write(3, b"hello")),
            Box::new(|c| c.write(5000, &[7u8; 300])),
            Box::new(|c| c.truncate(10)),
            Box::new(|c| c.add_or_renew_lease(&grant(9, 500))),
            Box::new(|c| {
                c.retain_leases(|l| l.expiry > 100);
            }),
            Box::new(|c| {
                c.write(0, &[1u8; 20]);
                c.write(2000, b"x");
                c.add_or_renew_lease(&grant(1, 900));
            }),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut c = Container::new([1; 20], &WriteEnabler::from_bytes([2; 32]));
            c.write(0, &[5u8; 1000]);
            for n in 0..6 {
                c.add_or_renew_lease(&grant(n, 100 + u64::from(n)));
            }
            let old = c.as_bytes().to_vec();
            let mut c = Container::from_bytes(old.clone()).unwrap();
            edit(&mut c);
            let mut file = old.clone();
            file.resize(c.as_bytes().len(), 0);
            for (at, bytes) in c.dirty_ranges() {
                file[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
            }
            assert_eq!(file, c.as_bytes(), "edit {i}");
        }
    }
}
