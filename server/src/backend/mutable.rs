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
//! A read-test-write opens the share as a [`Container`] and applies Tahoe's own write
//! algorithm to it, so the bytes on disk are what the Python server would have
//! produced. The container never holds the share data: only the 468-byte header, the
//! extra-lease block, and the edits (the write vectors' bytes, and ranges to zero).
//! What a request makes the server hold is therefore bounded by its own body, whatever
//! offsets it names; a write far past the end makes a sparse file, as in Tahoe. The
//! edits become a redo record (`redo.rs`), logged ahead and then written in place.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use serde_bytes::ByteBuf;

use swamp_proto::secrets::WriteEnabler;

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
/// Extra leases a container may carry before it is treated as damaged: Tahoe sets no
/// limit, but real shares carry a handful, and the block is read whole.
pub const MAX_EXTRA_LEASES: u32 = 100_000;

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

/// A container's edits as a redo record carries them: `(offset, length)` ranges to
/// zero, then `(offset, bytes)` writes.
pub type Edits = (Vec<(u64, u64)>, Vec<(u64, ByteBuf)>);

/// A slot share opened for editing: the header and the extra-lease block in memory,
/// the share data on disk, and the edits made so far.
///
/// The edits, applied to the old file in this order, give the new file (`redo.rs`
/// logs exactly them): first `zeros` (byte ranges of the old file to clear), then
/// `writes` in order, then the header and the extra-lease block at its new place, then
/// the new length. Clearing a range also clears it in the earlier writes' bytes, so
/// clearing every range first is the same as clearing each in turn.
pub struct Container {
    /// The share file, open for reading and writing; none for a new share.
    file: Option<File>,
    /// The 468-byte header, with its four lease slots.
    head: Vec<u8>,
    /// The extra-lease block: a u32 count, then 92 bytes a lease.
    extra: Vec<u8>,
    /// Length of the file before the edits.
    old_len: u64,
    /// Ranges of the old file to zero, `(offset, length)`.
    zeros: Vec<(u64, u64)>,
    /// Share data writes, `(file offset, bytes)`, in order.
    writes: Vec<(u64, Vec<u8>)>,
}

impl Container {
    /// A new, empty v2 container recording `nodeid` and `write_enabler`.
    pub fn new(nodeid: [u8; 20], write_enabler: &WriteEnabler) -> Self {
        let mut head = vec![0u8; DATA_OFFSET as usize];
        head[..32].copy_from_slice(MAGIC_V2);
        head[32..52].copy_from_slice(&nodeid);
        head[52..84].copy_from_slice(write_enabler.expose());
        head[EXTRA_LEASE_AT..EXTRA_LEASE_AT + 8].copy_from_slice(&DATA_OFFSET.to_be_bytes());
        Self {
            file: None,
            head,
            extra: vec![0u8; 4],
            old_len: 0,
            zeros: Vec::new(),
            writes: Vec::new(),
        }
    }

    /// Opens an existing container: reads its header and extra-lease block, and
    /// checks that they agree with the file's length.
    ///
    /// # Errors
    /// I/O errors; `InvalidData` if the magic, the offsets or the lease count are wrong.
    pub fn open(file: File) -> io::Result<Self> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        let old_len = file.metadata()?.len();
        if old_len < DATA_OFFSET + 4 {
            return Err(bad("not a mutable share container"));
        }
        let mut head = vec![0u8; DATA_OFFSET as usize];
        file.read_exact_at(&mut head, 0)?;
        if !is_mutable_header(&head) {
            return Err(bad("not a mutable share container"));
        }
        let extra_at = be_u64(&head[EXTRA_LEASE_AT..]);
        let data_length = be_u64(&head[DATA_LENGTH_AT..]);
        if extra_at < DATA_OFFSET.saturating_add(data_length)
            || extra_at.saturating_add(4) > old_len
        {
            return Err(bad("mutable container offsets are inconsistent"));
        }
        let mut count = [0u8; 4];
        file.read_exact_at(&mut count, extra_at)?;
        let extras = u32::from_be_bytes(count);
        let block_len = 4 + u64::from(extras) * MUTABLE_LEASE_SIZE as u64;
        if extras > MAX_EXTRA_LEASES || extra_at + block_len > old_len {
            return Err(bad("mutable container is shorter than its leases"));
        }
        let mut extra = vec![0u8; block_len as usize];
        file.read_exact_at(&mut extra, extra_at)?;
        Ok(Self {
            file: Some(file),
            head,
            extra,
            old_len,
            zeros: Vec::new(),
            writes: Vec::new(),
        })
    }

    /// Whether the container was built from nothing (it has no file yet).
    pub fn is_fresh(&self) -> bool {
        self.file.is_none()
    }

    /// The file it was opened from, if any.
    pub fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// The length of the file once the edits are applied (containers never shrink).
    pub fn file_len(&self) -> u64 {
        self.old_len
            .max(self.extra_lease_offset() + self.extra.len() as u64)
    }

    /// The edits, in the order that turns the old file into the new one: ranges to
    /// zero, then `(offset, bytes)` writes, the header and the extra-lease block last.
    pub fn edits(&self) -> Edits {
        let mut writes: Vec<(u64, ByteBuf)> = Vec::with_capacity(self.writes.len() + 2);
        writes.push((0, ByteBuf::from(self.head.clone())));
        writes.extend(
            self.writes
                .iter()
                .map(|(at, bytes)| (*at, ByteBuf::from(bytes.clone()))),
        );
        writes.push((self.extra_lease_offset(), ByteBuf::from(self.extra.clone())));
        (self.zeros.clone(), writes)
    }

    /// The lease slots, as file ranges with their bytes: the four in the header and
    /// the extra-lease block. Writing these and nothing else records a lease change.
    pub fn lease_bytes(&self) -> [(u64, &[u8]); 2] {
        [
            (LEASES_AT as u64, &self.head[LEASES_AT..]),
            (self.extra_lease_offset(), &self.extra),
        ]
    }

    fn secret_storage(&self) -> SecretStorage {
        if &self.head[..32] == MAGIC_V1 {
            SecretStorage::Plain
        } else {
            SecretStorage::Hashed
        }
    }

    /// The logical length of the share data.
    pub fn data_length(&self) -> u64 {
        be_u64(&self.head[DATA_LENGTH_AT..])
    }

    fn set_data_length(&mut self, len: u64) {
        self.head[DATA_LENGTH_AT..DATA_LENGTH_AT + 8].copy_from_slice(&len.to_be_bytes());
    }

    fn extra_lease_offset(&self) -> u64 {
        be_u64(&self.head[EXTRA_LEASE_AT..])
    }

    fn num_extra_leases(&self) -> u32 {
        be_u32(&self.extra[..4])
    }

    /// Clears `[from, to)` of the file. Bytes that earlier writes of this container
    /// put there are cleared in those writes, so applying every cleared range before
    /// every write stays exact; of the old file only what it holds needs clearing,
    /// since past its end the file grows with zeros.
    fn zero(&mut self, from: u64, to: u64) {
        for (at, bytes) in &mut self.writes {
            overlay(bytes, *at, from, to.saturating_sub(from), |dst, _| {
                dst.fill(0)
            });
        }
        let to = to.min(self.old_len);
        if from < to {
            self.zeros.push((from, to - from));
        }
    }

    /// The first `max` bytes of the share data after the edits (clipped to the data
    /// length): what the feeds report a new version from.
    ///
    /// # Errors
    /// I/O errors reading the old file.
    pub fn data_prefix(&self, max: u64) -> io::Result<Vec<u8>> {
        let len = self.data_length().min(max) as usize;
        let mut out = vec![0u8; len];
        let (from, to) = (DATA_OFFSET, DATA_OFFSET + len as u64);
        if let Some(file) = &self.file {
            let have = self.old_len.min(to).saturating_sub(from) as usize;
            file.read_exact_at(&mut out[..have], from)?;
        }
        for &(at, n) in &self.zeros {
            overlay(&mut out, from, at, n, |dst, _| dst.fill(0));
        }
        for (at, bytes) in &self.writes {
            overlay(&mut out, from, *at, bytes.len() as u64, |dst, skip| {
                dst.copy_from_slice(&bytes[skip..skip + dst.len()]);
            });
        }
        Ok(out)
    }

    /// Moves the extra-lease block so the data area can hold `new_data_size` bytes;
    /// containers never shrink (Tahoe's `_change_container_size`).
    fn grow_container(&mut self, new_data_size: u64) {
        let old = self.extra_lease_offset();
        let new = DATA_OFFSET + new_data_size;
        if new < old {
            return;
        }
        // Tahoe zeroes the old block, so leases never show through the data.
        self.zero(old, old + self.extra.len() as u64);
        self.head[EXTRA_LEASE_AT..EXTRA_LEASE_AT + 8].copy_from_slice(&new.to_be_bytes());
    }

    /// Writes `data` at `offset`, growing the data (zero-filling any gap) as Tahoe's
    /// `_write_share_data` does. The caller has checked `offset + data.len()` against
    /// the largest share size.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let len = data.len() as u64;
        let data_length = self.data_length();
        if offset + len >= data_length {
            if DATA_OFFSET + offset + len > self.extra_lease_offset() {
                self.grow_container(offset + len);
            }
            self.set_data_length(offset + len);
        }
        if offset > data_length {
            self.zero(DATA_OFFSET + data_length, DATA_OFFSET + offset);
        }
        if !data.is_empty() {
            self.writes.push((DATA_OFFSET + offset, data.to_vec()));
        }
    }

    /// Shrinks the logical length (never grows it), as `new-length` does.
    pub fn truncate(&mut self, new_length: u64) {
        if new_length < self.data_length() {
            self.set_data_length(new_length);
        }
    }

    fn num_lease_slots(&self) -> usize {
        4 + self.num_extra_leases() as usize
    }

    /// Where lease slot `n` lies: in the header, or in the extra-lease block.
    fn lease_slot(&self, n: usize) -> (&[u8], usize) {
        if n < 4 {
            (&self.head, LEASES_AT + n * MUTABLE_LEASE_SIZE)
        } else {
            (&self.extra, 4 + (n - 4) * MUTABLE_LEASE_SIZE)
        }
    }

    fn lease_at(&self, n: usize) -> Option<Lease> {
        let (bytes, at) = self.lease_slot(n);
        let rec: &[u8; MUTABLE_LEASE_SIZE] = bytes[at..at + MUTABLE_LEASE_SIZE]
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

    fn write_lease(&mut self, n: usize, record: &[u8; MUTABLE_LEASE_SIZE]) {
        if n >= self.num_lease_slots() {
            let count = self.num_extra_leases() + 1;
            self.extra[..4].copy_from_slice(&count.to_be_bytes());
            self.extra.extend_from_slice(&[0u8; MUTABLE_LEASE_SIZE]);
        }
        let (bytes, at) = if n < 4 {
            (&mut self.head, LEASES_AT + n * MUTABLE_LEASE_SIZE)
        } else {
            (&mut self.extra, 4 + (n - 4) * MUTABLE_LEASE_SIZE)
        };
        bytes[at..at + MUTABLE_LEASE_SIZE].copy_from_slice(record);
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
                    self.write_lease(n, &renewed.to_mutable());
                }
                return;
            }
        }
        let slot = (0..self.num_lease_slots())
            .find(|&n| self.lease_at(n).is_none())
            .unwrap_or(self.num_lease_slots());
        self.write_lease(slot, &lease.to_mutable());
    }
}

/// Applies an edit of file range `[at, at + n)` to `out`, which holds the file range
/// starting at `from`: `f` gets the overlapping part of `out` and how far into the
/// edit it starts.
fn overlay(out: &mut [u8], from: u64, at: u64, n: u64, f: impl FnOnce(&mut [u8], usize)) {
    let to = from + out.len() as u64;
    let (b, e) = (at.max(from), at.saturating_add(n).min(to));
    if b < e {
        f(
            &mut out[(b - from) as usize..(e - from) as usize],
            (b - at) as usize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::redo::ShareRedo;
    use swamp_proto::secrets::{LeaseCancelSecret, LeaseRenewSecret};
    use swamp_proto::{ShareNumber, StorageIndex};

    fn grant(n: u8, expiry: u64) -> LeaseGrant {
        LeaseGrant {
            owner: 1,
            renew: LeaseRenewSecret::from_bytes([n; 32]),
            cancel: LeaseCancelSecret::from_bytes([n; 32]),
            expiry,
            nodeid: [7; 20],
        }
    }

    /// Tahoe's algorithm on a whole in-memory image (as `storage/mutable.py` does it
    /// on the file): the model the file-backed container must agree with.
    struct Model(Vec<u8>);

    impl Model {
        fn at(&self, i: usize) -> u64 {
            be_u64(&self.0[i..])
        }
        fn put(&mut self, i: usize, v: u64) {
            self.0[i..i + 8].copy_from_slice(&v.to_be_bytes());
        }
        fn ensure(&mut self, len: usize) {
            if self.0.len() < len {
                self.0.resize(len, 0);
            }
        }
        fn block_len(&self) -> usize {
            let x = self.at(EXTRA_LEASE_AT) as usize;
            4 + be_u32(&self.0[x..]) as usize * MUTABLE_LEASE_SIZE
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            let (offset, len) = (offset as usize, data.len());
            let d = DATA_OFFSET as usize;
            let data_length = self.at(DATA_LENGTH_AT) as usize;
            if offset + len >= data_length {
                let old = self.at(EXTRA_LEASE_AT) as usize;
                if d + offset + len > old {
                    let new = d + offset + len;
                    let n = self.block_len();
                    let block = self.0[old..old + n].to_vec();
                    self.0[old..old + n].fill(0);
                    self.ensure(new + n);
                    self.0[new..new + n].copy_from_slice(&block);
                    self.put(EXTRA_LEASE_AT, new as u64);
                }
                self.put(DATA_LENGTH_AT, (offset + len) as u64);
            }
            if offset > data_length {
                self.0[d + data_length..d + offset].fill(0);
            }
            self.0[d + offset..d + offset + len].copy_from_slice(data);
        }
        fn truncate(&mut self, len: u64) {
            if len < self.at(DATA_LENGTH_AT) {
                self.put(DATA_LENGTH_AT, len);
            }
        }
        /// Adds a raw lease record in a new extra slot (renewals go through the real
        /// container; the model only needs to follow where the block is).
        fn set_extra(&mut self, block: &[u8]) {
            let x = self.at(EXTRA_LEASE_AT) as usize;
            self.ensure(x + block.len());
            self.0[x..x + block.len()].copy_from_slice(block);
        }
    }

    const SI: StorageIndex = StorageIndex::from_bytes([3; 16]);

    /// Applies the container's redo to the file, as a read-test-write does; with
    /// `fail_after`, a first attempt fails after that many writes (a disk error mid
    /// apply) and the redo is applied again, as a repair or a replay does.
    fn commit_with(c: &Container, path: &std::path::Path, fail_after: Option<i32>) {
        use crate::backend::faults::{FaultPlan, Faults};
        let redo = ShareRedo::write(SI, ShareNumber::try_from(0u64).unwrap(), c);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        if let Some(n) = fail_after {
            let plan = std::sync::Arc::new(FaultPlan::default());
            plan.fail_writes_after(n, 5);
            let _ = redo.apply_to(&file, &Faults::injected(plan));
        }
        redo.apply_to(&file, &Faults::default()).unwrap();
    }

    fn commit(c: &Container, path: &std::path::Path) {
        commit_with(c, path, None);
    }

    fn open(path: &std::path::Path) -> Container {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        Container::open(file).unwrap()
    }

    /// One step of a slot's life.
    #[derive(Clone, Debug)]
    enum Op {
        Write(u64, Vec<u8>),
        Truncate(u64),
        Lease(u8, u64),
        /// End the read-test-write: log, apply (maybe failing part way first), reopen.
        Commit(Option<i32>),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0u64..3_000, proptest::collection::vec(1u8..=255, 0..600))
                .prop_map(|(o, d)| Op::Write(o, d)),
            1 => (0u64..20_000, proptest::collection::vec(1u8..=255, 0..50))
                .prop_map(|(o, d)| Op::Write(o, d)),
            1 => (0u64..4_000).prop_map(Op::Truncate),
            1 => (0u8..8, 100u64..150).prop_map(|(n, e)| Op::Lease(n, e)),
            2 => proptest::option::of(0i32..4).prop_map(Op::Commit),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any sequence of read-test-writes (scattered writes, gaps, truncations, lease
        /// changes that move the extra-lease block), applied through redo records to a
        /// real file, some of them failing part way and applied again, gives exactly
        /// the bytes Tahoe's algorithm gives on a whole in-memory image.
        #[test]
        fn file_edits_agree_with_the_whole_image_model(ops in proptest::collection::vec(op(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("share");
            let mut c = Container::new([1; 20], &WriteEnabler::from_bytes([2; 32]));
            let mut model = Model(Vec::new());
            model.0.extend_from_slice(&c.head);
            model.0.extend_from_slice(&c.extra);
            for op in ops.into_iter().chain([Op::Commit(None)]) {
                match op {
                    Op::Write(offset, data) => {
                        c.write(offset, &data);
                        model.write(offset, &data);
                    }
                    Op::Truncate(len) => {
                        c.truncate(len);
                        model.truncate(len);
                    }
                    Op::Lease(n, expiry) => c.add_or_renew_lease(&grant(n, expiry)),
                    Op::Commit(fail_after) => {
                        // The model takes the lease bytes from the container (leases
                        // have their own tests); the data and the layout are its own.
                        model.0[LEASES_AT..DATA_OFFSET as usize].copy_from_slice(&c.head[LEASES_AT..]);
                        model.set_extra(&c.extra);
                        let prefix = c.data_prefix(57).unwrap();
                        commit_with(&c, &path, fail_after);
                        let bytes = std::fs::read(&path).unwrap();
                        proptest::prop_assert_eq!(bytes.len(), model.0.len());
                        proptest::prop_assert!(bytes == model.0, "file bytes differ from the model");
                        let d = DATA_OFFSET as usize;
                        let dl = model.at(DATA_LENGTH_AT) as usize;
                        proptest::prop_assert_eq!(&prefix[..], &model.0[d..d + dl.min(57)]);
                        c = open(&path);
                    }
                }
            }
        }
    }

    #[test]
    fn a_write_far_out_makes_a_sparse_file_and_holds_no_data_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let mut c = Container::new([1; 20], &WriteEnabler::from_bytes([2; 32]));
        c.write(0, b"head");
        c.write(1 << 32, b"tail");
        assert!(c.writes.iter().map(|(_, b)| b.len()).sum::<usize>() < 16);
        commit(&c, &path);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), DATA_OFFSET + (1 << 32) + 4 + 4);
        use std::os::unix::fs::MetadataExt;
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "sparse: {} blocks",
            meta.blocks()
        );
        let c = open(&path);
        assert_eq!(c.data_length(), (1 << 32) + 4);
        assert_eq!(c.data_prefix(8).unwrap(), b"head\0\0\0\0");
        // Shrink, then write past the old end again: the gap is cleared by punching a
        // hole, not by writing zeros, and the old bytes never show through.
        let mut c = c;
        c.truncate(2);
        commit(&c, &path);
        let mut c = open(&path);
        c.write(10, b"x");
        assert_eq!(c.zeros, vec![(DATA_OFFSET + 2, 8)]);
        commit(&c, &path);
        assert_eq!(open(&path).data_prefix(11).unwrap(), b"he\0\0\0\0\0\0\0\0x");
    }

    #[test]
    fn writes_grow_and_zero_fill() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grow");
        let mut c = Container::new([1; 20], &WriteEnabler::from_bytes([2; 32]));
        assert_eq!(c.file_len(), 472);
        c.write(0, b"abc");
        c.write(10, b"xyz");
        assert_eq!(c.data_length(), 13);
        assert_eq!(c.data_prefix(100).unwrap(), b"abc\0\0\0\0\0\0\0xyz");
        commit(&c, &path);
        let mut c = open(&path);
        c.truncate(5);
        assert_eq!(c.data_prefix(100).unwrap(), b"abc\0\0");
        c.truncate(50);
        assert_eq!(c.data_length(), 5, "new-length never grows");
    }

    #[test]
    fn extra_leases_move_when_data_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases");
        let mut c = Container::new([1; 20], &WriteEnabler::from_bytes([2; 32]));
        for n in 0..6 {
            c.add_or_renew_lease(&grant(n, 100));
        }
        assert_eq!(c.leases().len(), 6);
        commit(&c, &path);
        let mut c = open(&path);
        c.write(0, &[9u8; 1000]);
        commit(&c, &path);
        let mut c = open(&path);
        assert_eq!(c.leases().len(), 6, "leases survive growth");
        assert_eq!(c.data_prefix(1000).unwrap(), vec![9u8; 1000]);
        c.add_or_renew_lease(&grant(0, 200));
        assert_eq!(c.leases().len(), 6, "renewal does not add");
        assert_eq!(c.leases()[0].expiry, 200);
        c.add_or_renew_lease(&grant(0, 150));
        assert_eq!(c.leases()[0].expiry, 200, "renewal never shortens");
        assert_eq!(
            &c.head[52..84],
            &[2u8; 32],
            "the write enabler stays in place"
        );
    }

    #[test]
    fn damaged_containers_are_refused_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad");
        let mut c = Container::new([1; 20], &WriteEnabler::from_bytes([2; 32]));
        c.write(0, b"data");
        commit(&c, &path);
        let good = std::fs::read(&path).unwrap();
        type Damage = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Damage)> = vec![
            ("short", Box::new(|b| b.truncate(100))),
            ("magic", Box::new(|b| b[0] ^= 1)),
            (
                "extra offset past the end",
                Box::new(|b| b[92..100].copy_from_slice(&u64::MAX.to_be_bytes())),
            ),
            (
                "data past the extra block",
                Box::new(|b| b[84..92].copy_from_slice(&(1u64 << 40).to_be_bytes())),
            ),
            (
                "lease count",
                Box::new(|b| {
                    let at = be_u64(&b[92..]) as usize;
                    b[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
                }),
            ),
        ];
        for (name, damage) in cases {
            let mut bytes = good.clone();
            damage(&mut bytes);
            std::fs::write(&path, &bytes).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let err = Container::open(file)
                .err()
                .unwrap_or_else(|| panic!("{name} accepted"));
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{name}");
        }
    }

    #[test]
    fn v2_magic_is_the_tagged_hash_suffix() {
        assert_eq!(&MAGIC_V2[..27], b"Tahoe mutable container v2\n");
    }
}
