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
//! the waiting blocks: nothing known is ever dropped.
//!
//! Faults: a write that fails (a full disk, say) leaves the staged file as it was
//! before the write began, as far as what it *knows* goes: the bytes it was given are
//! not counted as written, and a block that was complete but could not be written goes
//! back to waiting. So the client can send the same write again once the fault has
//! cleared, and the file ends up byte-exact. Durability is the caller's:
//! [`StagedFile::flush`] writes out anything still waiting (a failure there can be
//! retried too), and [`StagedFile::sync`] syncs the file, which also flushes the disk's
//! write cache for the direct writes. A failed sync is never retried: the caller
//! discards the upload (`docs/durability.md`, "fsync failures").
//!
//! Files: nothing is held open between writes. Each write opens the file (and its
//! direct twin), writes and closes, so an upload in progress costs no descriptor, and
//! the number of uploads is bounded by memory and the operator's cap, not by the
//! process's open-file limit.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::faults::Faults;
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

/// The file, opened for one call.
struct Open {
    buffered: File,
    /// The same file opened for direct writes, while they work.
    direct: Option<File>,
}

/// An upload's container file, written in blocks around the page cache where it can be.
pub struct StagedFile {
    path: PathBuf,
    /// Whether writes still go around the page cache.
    direct: bool,
    /// Blocks below this offset are written directly; bytes past it the ordinary way.
    direct_end: u64,
    /// The bytes of the container written or waiting.
    known: RangeSet,
    /// Partly known blocks, by block number (and complete ones whose write failed).
    waiting: BTreeMap<u64, Aligned>,
    /// Bytes written directly so far.
    direct_bytes: u64,
    /// Blocks that left `waiting` during the current write, kept until it succeeds:
    /// if it fails, they go back, since their earlier bytes are known only there.
    written_blocks: Vec<(u64, Aligned)>,
    faults: Faults,
}

impl StagedFile {
    /// Creates (or truncates) the file at `path` with its final length `len`, for
    /// direct writes if `direct` and the file system allows them.
    ///
    /// # Errors
    /// I/O errors creating the file.
    pub fn create(path: &Path, len: u64, direct: bool, faults: Faults) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len(len)?;
        let direct_end = len / BLOCK_U64 * BLOCK_U64;
        let direct = direct && direct_end > 0 && open_direct(path).is_some();
        Ok(Self {
            path: path.to_path_buf(),
            direct,
            direct_end,
            known: RangeSet::default(),
            waiting: BTreeMap::new(),
            direct_bytes: 0,
            written_blocks: Vec::new(),
            faults,
        })
    }

    fn open(&mut self) -> io::Result<Open> {
        let buffered = OpenOptions::new().read(true).write(true).open(&self.path)?;
        let direct = if self.direct {
            open_direct(&self.path)
        } else {
            None
        };
        self.direct = direct.is_some();
        Ok(Open { buffered, direct })
    }

    /// Whether writes still go around the page cache.
    #[cfg(test)]
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Bytes written around the page cache so far.
    #[cfg(test)]
    pub fn direct_bytes(&self) -> u64 {
        self.direct_bytes
    }

    /// Blocks waiting in memory for their missing bytes.
    #[cfg(test)]
    pub fn waiting_blocks(&self) -> usize {
        self.waiting.len()
    }

    /// Writes `data` at `pos`. Bytes already known are skipped: the caller has checked
    /// that a rewrite carries the same bytes. On an error nothing of `data` counts as
    /// written, so the same write can be sent again.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_at(&mut self, data: &[u8], pos: u64) -> io::Result<()> {
        let before = self.known.clone();
        let result = self.open().and_then(|mut open| {
            // Writing the ordinary way, no block may wait: its known bytes would be
            // written out later over newer ones written here.
            if open.direct.is_none() && !self.waiting.is_empty() {
                self.fall_back(&mut open)?;
            }
            let end = pos + data.len() as u64;
            for (b, e) in self.known.gaps(pos, end) {
                self.write_new(&mut open, &data[(b - pos) as usize..(e - pos) as usize], b)?;
            }
            Ok(())
        });
        let written = std::mem::take(&mut self.written_blocks);
        if result.is_err() {
            // Back to what was known before: a block completed and written by this
            // call holds bytes of earlier writes that `known` still counts, and once
            // this call's bytes count as unknown again, the block's next write must
            // start from those bytes, not from zeros.
            self.known = before;
            if self.direct {
                for (block, bytes) in written {
                    self.waiting.entry(block).or_insert(bytes);
                }
            }
        }
        result
    }

    /// Writes bytes none of which were known before.
    fn write_new(&mut self, open: &mut Open, data: &[u8], pos: u64) -> io::Result<()> {
        let end = pos + data.len() as u64;
        let split = end.min(self.direct_end).max(pos);
        if split < end {
            self.write_buffered(open, &data[(split - pos) as usize..], split)?;
            self.known.insert(split, end);
        }
        let mut at = pos;
        while at < split {
            let rest = &data[(at - pos) as usize..(split - pos) as usize];
            if open.direct.is_none() {
                self.write_buffered(open, rest, at)?;
                self.known.insert(at, split);
                return Ok(());
            }
            let block = at / BLOCK_U64;
            let run_end = split / BLOCK_U64 * BLOCK_U64;
            if at.is_multiple_of(BLOCK_U64) && at < run_end {
                // Whole blocks with no byte known yet, so none of them waits.
                self.write_run(open, &rest[..(run_end - at) as usize], at)?;
                self.known.insert(at, run_end);
                at = run_end;
            } else {
                let to = ((block + 1) * BLOCK_U64).min(split);
                self.fill(open, block, &rest[..(to - at) as usize], at)?;
                at = to;
            }
        }
        Ok(())
    }

    /// Puts bytes into a waiting block, and writes it out once it is complete. If that
    /// write fails the block stays waiting, with its bytes.
    fn fill(&mut self, open: &mut Open, block: u64, data: &[u8], pos: u64) -> io::Result<()> {
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
                if let Err(e) = self.write_direct(open, full.bytes(), start) {
                    self.waiting.insert(block, full);
                    return Err(e);
                }
                self.written_blocks.push((block, full));
            }
        } else if self.waiting.len() > MAX_WAITING {
            self.fall_back(open)?;
        }
        Ok(())
    }

    /// Writes whole blocks, from their own memory if it is aligned.
    fn write_run(&mut self, open: &mut Open, data: &[u8], pos: u64) -> io::Result<()> {
        if phase_gap(data.as_ptr(), 0) == 0 {
            return self.write_direct(open, data, pos);
        }
        let mut bounce = Aligned::zeroed(BOUNCE.min(data.len()));
        for (i, chunk) in data.chunks(BOUNCE).enumerate() {
            bounce.bytes_mut()[..chunk.len()].copy_from_slice(chunk);
            self.write_direct(
                open,
                &bounce.bytes()[..chunk.len()],
                pos + (i * BOUNCE) as u64,
            )?;
        }
        Ok(())
    }

    /// One aligned write around the page cache; the ordinary way if the file system
    /// turns out to refuse it.
    fn write_direct(&mut self, open: &mut Open, data: &[u8], pos: u64) -> io::Result<()> {
        let Some(direct) = &open.direct else {
            return self.write_buffered(open, data, pos);
        };
        self.faults.before_write()?;
        match direct.write_all_at(data, pos) {
            Ok(()) => {
                self.direct_bytes += data.len() as u64;
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                tracing::debug!(error = %e, "direct writes refused; writing through the page cache");
                self.fall_back(open)?;
                self.write_buffered(open, data, pos)
            }
            Err(e) => Err(e),
        }
    }

    fn write_buffered(&self, open: &Open, data: &[u8], pos: u64) -> io::Result<()> {
        self.faults.before_write()?;
        open.buffered.write_all_at(data, pos)
    }

    /// Stops writing directly: the known bytes of every waiting block are written the
    /// ordinary way, and so is everything after. A block leaves the waiting list only
    /// once its bytes are written, so a failure here loses nothing and can be retried.
    fn fall_back(&mut self, open: &mut Open) -> io::Result<()> {
        self.direct = false;
        open.direct = None;
        while let Some((&block, waiting)) = self.waiting.first_key_value() {
            let start = block * BLOCK_U64;
            let end = start + BLOCK_U64;
            let mut at = start;
            for (b, e) in self.known.gaps(start, end).into_iter().chain([(end, end)]) {
                if at < b {
                    let bytes = &waiting.bytes()[(at - start) as usize..(b - start) as usize];
                    self.write_buffered(open, bytes, at)?;
                }
                at = e;
            }
            self.waiting.remove(&block);
        }
        Ok(())
    }

    /// Reads known bytes back (to compare a rewrite with them).
    ///
    /// # Errors
    /// I/O errors.
    pub fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        File::open(&self.path)?.read_exact_at(buf, pos)?;
        let end = pos + buf.len() as u64;
        for (&block, waiting) in self.waiting.range(pos / BLOCK_U64..=(end - 1) / BLOCK_U64) {
            let start = block * BLOCK_U64;
            let (b, e) = (start.max(pos), (start + BLOCK_U64).min(end));
            buf[(b - pos) as usize..(e - pos) as usize]
                .copy_from_slice(&waiting.bytes()[(b - start) as usize..(e - start) as usize]);
        }
        Ok(())
    }

    /// Writes out whatever still waits. A failure leaves it waiting, to try again.
    ///
    /// # Errors
    /// I/O errors.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        let mut open = self.open()?;
        self.fall_back(&mut open)
    }

    /// Syncs the file (data and metadata). After a failure the file's contents can no
    /// longer be trusted (the kernel may have dropped the pages it could not write):
    /// the caller must discard it.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&mut self) -> io::Result<()> {
        debug_assert!(self.waiting.is_empty(), "flush before sync");
        self.faults.before_sync()?;
        File::open(&self.path)?.sync_all()
    }

    /// [`Self::flush`] then [`Self::sync`].
    ///
    /// # Errors
    /// I/O errors.
    #[cfg(test)]
    pub fn sync_all(&mut self) -> io::Result<()> {
        self.flush()?;
        self.sync()
    }
}
