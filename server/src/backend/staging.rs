//! Upload containers written around the page cache (`O_DIRECT`).
//!
//! Why: written the ordinary way, an uploaded share is copied by the kernel into fresh
//! page-cache pages, and on a VM whose host takes back freed guest memory every one of
//! those pages faults on the host first. That copy was most of the server's upload CPU
//! (57 % of it with the node on tmpfs), and the sync before the 201 then writes the
//! pages out at 400–500 MB/s on the benchmark disk. The same bytes written directly, then
//! synced, go at 1.5–2.2 GB/s and cost the guest no copy (`docs/benchmarks.md`).
//!
//! How: direct writes need file offsets, lengths and memory aligned to the disk's
//! blocks, and share data arrives at offsets the client chooses, 12 bytes into the
//! container. So the file is treated as [`BLOCK`]-sized blocks, and a block is written
//! once every byte of it is known. Whole blocks inside one write go straight from the
//! request's buffer (the HTTP layer places bodies at the matching alignment, see
//! [`super::uploads::body_phase`]; other memory goes through a small aligned copy).
//! The partly known blocks at a write's edges wait here until the neighbouring writes
//! complete them; the header and the first lease are known from the start. The tail of
//! the file past its last whole block is written the ordinary way.
//!
//! The cost: a share just uploaded is not in the page cache, so its first read comes
//! from the disk (a server's uploads are mostly read later, by other clients, if at
//! all; the uploader has the file).
//!
//! A file system that refuses direct I/O, the operator's setting, or more than
//! [`MAX_WAITING`] waiting blocks (many small scattered writes) turn the file into
//! ordinary writes for the rest of the upload, after writing out the known bytes of
//! the waiting blocks: nothing known is ever dropped. Durability is the caller's, as
//! before: [`StagedFile::sync_all`] writes out anything still waiting and syncs the file,
//! which also flushes the disk's write cache for the direct writes.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::ranges::RangeSet;

/// Alignment of direct writes (memory, offset and length): the largest logical block
/// size in common use.
pub const BLOCK: usize = 4096;
const BLOCK_U64: u64 = BLOCK as u64;
/// Partly known blocks one upload may hold in memory before it falls back to
/// ordinary writes. Clients that write in order (Tahoe's do) keep one or two waiting;
/// the bound keeps a client that scatters tiny writes over many uploads to 64 KiB of
/// memory per upload (each waiting block takes 8 KiB with its alignment slack).
pub const MAX_WAITING: usize = 8;
/// Bytes copied at a time when whole blocks arrive in unaligned memory.
const BOUNCE: usize = 16 * BLOCK;

/// `len` bytes of zeroed, [`BLOCK`]-aligned memory inside an ordinary allocation.
struct Aligned {
    raw: Vec<u8>,
    at: usize,
    len: usize,
}

impl Aligned {
    fn zeroed(len: usize) -> Self {
        let raw = vec![0u8; len + BLOCK];
        let at = phase_gap(raw.as_ptr(), 0);
        Self { raw, at, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.raw[self.at..self.at + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.at..self.at + self.len]
    }
}

/// How many bytes past `ptr` the first address whose offset in a [`BLOCK`] is `phase`
/// lies.
pub fn phase_gap(ptr: *const u8, phase: usize) -> usize {
    (phase % BLOCK + BLOCK - (ptr as usize) % BLOCK) % BLOCK
}

/// `path` opened for writes around the page cache, if its file system allows them.
fn open_direct(path: &Path) -> Option<File> {
    let flags = rustix::fs::OFlags::DIRECT.bits() as i32;
    OpenOptions::new()
        .write(true)
        .custom_flags(flags)
        .open(path)
        .ok()
}

/// An upload's container file, written in blocks around the page cache where it can be.
pub struct StagedFile {
    buffered: File,
    /// The same file opened for direct writes, while they work.
    direct: Option<File>,
    /// Blocks below this offset are written directly; bytes past it the ordinary way.
    direct_end: u64,
    /// The bytes of the container written or waiting.
    known: RangeSet,
    /// Partly known blocks, by block number.
    waiting: BTreeMap<u64, Aligned>,
    /// Bytes written directly so far.
    direct_bytes: u64,
}

impl StagedFile {
    /// Creates (or truncates) the file at `path` with its final length `len`, for
    /// direct writes if `direct` and the file system allows them.
    ///
    /// # Errors
    /// I/O errors creating the file.
    pub fn create(path: &Path, len: u64, direct: bool) -> io::Result<Self> {
        let buffered = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        buffered.set_len(len)?;
        let direct_end = len / BLOCK_U64 * BLOCK_U64;
        let direct = if direct && direct_end > 0 {
            open_direct(path)
        } else {
            None
        };
        Ok(Self {
            buffered,
            direct,
            direct_end,
            known: RangeSet::default(),
            waiting: BTreeMap::new(),
            direct_bytes: 0,
        })
    }

    /// Whether writes still go around the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Bytes written around the page cache so far.
    pub fn direct_bytes(&self) -> u64 {
        self.direct_bytes
    }

    /// Blocks waiting in memory for their missing bytes.
    pub fn waiting_blocks(&self) -> usize {
        self.waiting.len()
    }

    /// Writes `data` at `pos`. Bytes already known are skipped: the caller has checked
    /// that a rewrite carries the same bytes.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_at(&mut self, data: &[u8], pos: u64) -> io::Result<()> {
        let end = pos + data.len() as u64;
        for (b, e) in self.known.gaps(pos, end) {
            self.write_new(&data[(b - pos) as usize..(e - pos) as usize], b)?;
        }
        Ok(())
    }

    /// Writes bytes none of which were known before.
    fn write_new(&mut self, data: &[u8], pos: u64) -> io::Result<()> {
        let end = pos + data.len() as u64;
        let split = end.min(self.direct_end).max(pos);
        if split < end {
            self.buffered
                .write_all_at(&data[(split - pos) as usize..], split)?;
            self.known.insert(split, end);
        }
        let mut at = pos;
        while at < split {
            let rest = &data[(at - pos) as usize..(split - pos) as usize];
            if self.direct.is_none() {
                self.buffered.write_all_at(rest, at)?;
                self.known.insert(at, split);
                return Ok(());
            }
            let block = at / BLOCK_U64;
            let run_end = split / BLOCK_U64 * BLOCK_U64;
            if at.is_multiple_of(BLOCK_U64) && at < run_end {
                // Whole blocks with no byte known yet, so none of them waits.
                self.write_run(&rest[..(run_end - at) as usize], at)?;
                self.known.insert(at, run_end);
                at = run_end;
            } else {
                let to = ((block + 1) * BLOCK_U64).min(split);
                self.fill(block, &rest[..(to - at) as usize], at)?;
                at = to;
            }
        }
        Ok(())
    }

    /// Puts bytes into a waiting block, and writes it out once it is complete.
    fn fill(&mut self, block: u64, data: &[u8], pos: u64) -> io::Result<()> {
        let start = block * BLOCK_U64;
        let waiting = self
            .waiting
            .entry(block)
            .or_insert_with(|| Aligned::zeroed(BLOCK));
        let off = (pos - start) as usize;
        waiting.bytes_mut()[off..off + data.len()].copy_from_slice(data);
        self.known.insert(pos, pos + data.len() as u64);
        if self.known.covers(start, start + BLOCK_U64) {
            if let Some(full) = self.waiting.remove(&block) {
                self.write_direct(full.bytes(), start)?;
            }
        } else if self.waiting.len() > MAX_WAITING {
            self.fall_back()?;
        }
        Ok(())
    }

    /// Writes whole blocks, from their own memory if it is aligned.
    fn write_run(&mut self, data: &[u8], pos: u64) -> io::Result<()> {
        if phase_gap(data.as_ptr(), 0) == 0 {
            return self.write_direct(data, pos);
        }
        let mut bounce = Aligned::zeroed(BOUNCE.min(data.len()));
        for (i, chunk) in data.chunks(BOUNCE).enumerate() {
            bounce.bytes_mut()[..chunk.len()].copy_from_slice(chunk);
            self.write_direct(&bounce.bytes()[..chunk.len()], pos + (i * BOUNCE) as u64)?;
        }
        Ok(())
    }

    /// One aligned write around the page cache; the ordinary way if the file system
    /// turns out to refuse it.
    fn write_direct(&mut self, data: &[u8], pos: u64) -> io::Result<()> {
        let Some(direct) = &self.direct else {
            return self.buffered.write_all_at(data, pos);
        };
        match direct.write_all_at(data, pos) {
            Ok(()) => {
                self.direct_bytes += data.len() as u64;
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                tracing::debug!(error = %e, "direct writes refused; writing through the page cache");
                self.fall_back()?;
                self.buffered.write_all_at(data, pos)
            }
            Err(e) => Err(e),
        }
    }

    /// Stops writing directly: the known bytes of every waiting block are written the
    /// ordinary way, and so is everything after.
    fn fall_back(&mut self) -> io::Result<()> {
        self.direct = None;
        for (block, waiting) in std::mem::take(&mut self.waiting) {
            let start = block * BLOCK_U64;
            let end = start + BLOCK_U64;
            let gaps = self.known.gaps(start, end);
            let mut at = start;
            for (b, e) in gaps.into_iter().chain([(end, end)]) {
                if at < b {
                    let bytes = &waiting.bytes()[(at - start) as usize..(b - start) as usize];
                    self.buffered.write_all_at(bytes, at)?;
                }
                at = e;
            }
        }
        Ok(())
    }

    /// Reads known bytes back (to compare a rewrite with them).
    ///
    /// # Errors
    /// I/O errors.
    pub fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.buffered.read_exact_at(buf, pos)?;
        let end = pos + buf.len() as u64;
        if buf.is_empty() {
            return Ok(());
        }
        for (&block, waiting) in self.waiting.range(pos / BLOCK_U64..=(end - 1) / BLOCK_U64) {
            let start = block * BLOCK_U64;
            let (b, e) = (start.max(pos), (start + BLOCK_U64).min(end));
            buf[(b - pos) as usize..(e - pos) as usize]
                .copy_from_slice(&waiting.bytes()[(b - start) as usize..(e - start) as usize]);
        }
        Ok(())
    }

    /// Writes out whatever still waits and syncs the file (data and metadata).
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync_all(&mut self) -> io::Result<()> {
        if !self.waiting.is_empty() {
            self.fall_back()?;
        }
        self.buffered.sync_all()
    }
}
