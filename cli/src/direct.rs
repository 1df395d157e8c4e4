//! The output file of `tahoe get` for large files, written around the page cache
//! (`O_DIRECT`) where the file system allows it.
//!
//! Why: a buffered write of 100 MiB makes the kernel find 100 MiB of page cache, and on
//! a VM whose host takes back freed guest memory (free page reporting, as on the
//! benchmark machine) every one of those pages faults on the host first: 0.2–0.3 s of
//! CPU for 100 MiB, against 0.02 s when the pages are warm, and it was most of a
//! download's time (`docs/benchmarks.md`). Direct writes of a few MiB each go from one
//! reused, aligned buffer straight to the disk instead, on the thread that
//! writes while the next segments are decoded. The cost is that the data is on the
//! disk (not only in memory) before `get` returns, so on a slow disk `get` waits for
//! it; and a later reader of the file reads it from the disk.
//!
//! The bytes not filling a whole aligned block at the end go through an ordinary
//! descriptor of the same file. A file system that refuses `O_DIRECT` gets ordinary
//! writes throughout.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of direct writes (address, offset and length): the largest logical
/// block size in common use.
const ALIGN: usize = 4096;
/// Bytes per direct write.
const CHUNK: usize = 4 << 20;

/// A file being written from the start, sequentially.
pub struct OutFile {
    /// The direct descriptor, while direct writes work.
    direct: Option<File>,
    buffered: File,
    /// Bytes written to the file so far.
    written: u64,
    /// The buffer: `ALIGN` bytes of slack, so that an aligned window of `CHUNK` bytes
    /// fits in it.
    chunk: Vec<u8>,
    /// Bytes in the window not written yet.
    pending: usize,
}

impl OutFile {
    /// Creates (or truncates) `path`, for a file of about `size` bytes: small files
    /// are written the ordinary way.
    pub fn create(path: &Path, size: u64) -> std::io::Result<Self> {
        let buffered = File::create(path)?;
        let direct = (size >= CHUNK as u64)
            .then(|| {
                OpenOptions::new()
                    .write(true)
                    .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
                    .open(path)
                    .ok()
            })
            .flatten();
        Ok(Self {
            chunk: if direct.is_some() {
                vec![0; CHUNK + ALIGN]
            } else {
                Vec::new()
            },
            direct,
            buffered,
            written: 0,
            pending: 0,
        })
    }

    fn window(chunk: &mut [u8]) -> &mut [u8] {
        let skip = chunk.as_ptr().align_offset(ALIGN);
        &mut chunk[skip..skip + CHUNK]
    }

    /// Writes the first `len` pending bytes (a multiple of `ALIGN`, or the end of the
    /// file) at `written`, directly if it can.
    fn put(&mut self, len: usize) -> std::io::Result<()> {
        let window = Self::window(&mut self.chunk);
        let data = &window[..len];
        let direct = len.is_multiple_of(ALIGN) && self.written.is_multiple_of(ALIGN as u64);
        match self.direct.as_ref().filter(|_| direct) {
            Some(file) => match file.write_all_at(data, self.written) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                    // Not possible here after all: ordinary writes from now on.
                    self.direct = None;
                    self.buffered.write_all_at(data, self.written)?;
                }
                Err(e) => return Err(e),
            },
            None => self.buffered.write_all_at(data, self.written)?,
        }
        self.written += len as u64;
        Ok(())
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.direct.is_none() && self.pending == 0 {
            self.buffered.write_all_at(buf, self.written)?;
            self.written += buf.len() as u64;
            return Ok(buf.len());
        }
        let take = buf.len().min(CHUNK - self.pending);
        Self::window(&mut self.chunk)[self.pending..self.pending + take]
            .copy_from_slice(&buf[..take]);
        self.pending += take;
        if self.pending == CHUNK {
            self.put(CHUNK)?;
            self.pending = 0;
        }
        Ok(take)
    }

    /// Writes what is pending: whole aligned blocks directly, the rest (the end of
    /// the file) the ordinary way.
    fn flush(&mut self) -> std::io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let aligned = pending - pending % ALIGN;
        if aligned > 0 {
            self.put(aligned)?;
        }
        if pending > aligned {
            let rest = &Self::window(&mut self.chunk)[aligned..pending];
            self.buffered.write_all_at(rest, self.written)?;
            self.written += rest.len() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_byte_in_order_whatever_the_pieces() {
        let dir = tempfile::tempdir().expect("tempdir");
        for size in [100usize, CHUNK + 1, 2 * CHUNK + ALIGN + 17, 3 * CHUNK] {
            let data: Vec<u8> = (0..size as u32).map(|i| ((i * 7) >> 3) as u8).collect();
            let path = dir.path().join(format!("out-{size}"));
            let mut out = OutFile::create(&path, size as u64).expect("create");
            for piece in data.chunks(1_000_003) {
                out.write_all(piece).expect("write");
            }
            out.flush().expect("flush");
            drop(out);
            assert!(std::fs::read(&path).expect("read") == data, "{size} bytes");
        }
    }
}
