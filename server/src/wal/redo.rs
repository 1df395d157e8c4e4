//! Redo records: what a read-test-write changes in a slot's share file, logged (in the
//! journal) and synced *before* the file is changed in place.
//!
//! Why: replacing the file (temporary file, sync, rename, directory sync) costs two
//! device flushes per write on top of the journal's. Writing in place with no sync of
//! its own is safe once the bytes are in a synced log: a crash can tear the in-place
//! write, but recovery writes the same bytes again (`apply` is idempotent), in log
//! order, for every record after the last checkpoint. A checkpoint (`syncfs`, then the
//! checkpoint's sequence number) makes everything applied so far durable, so older
//! records need not be replayed. The argument in full is in `docs/durability.md`.
//!
//! Replay must also be safe on top of *later* unlogged changes to the same file (lease
//! renewals, lease expiry). So a record carries the header and the extra-lease block
//! whole (replaying it restores that version exactly, losing at most a lease renewal),
//! a partial record is never applied to a file that is missing (expired since), and
//! nothing is ever written over an immutable share.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};
use swamp_proto::{ShareNumber, StorageIndex};

use crate::backend::faults::Faults;
use crate::backend::immutable;
use crate::backend::layout::{self, Layout};
use crate::backend::mutable::Container;

/// The redo of one share's change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRedo {
    /// Slot.
    pub si: StorageIndex,
    /// Share.
    pub shnum: ShareNumber,
    /// What to do to the file.
    pub op: RedoOp,
}

/// What to do to a share file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedoOp {
    /// Remove it.
    Delete,
    /// Zero these ranges, write these, and set the file's length.
    Write {
        /// The new length of the file.
        len: u64,
        /// A new share: create the file if missing.
        whole: bool,
        /// `(offset, bytes)`, written in order, after `zeros`.
        ranges: Vec<(u64, serde_bytes::ByteBuf)>,
        /// `(offset, length)` ranges of the old file to clear, first. Absent from
        /// records written before it existed (whose ranges carried zeros as bytes), so
        /// those read back unchanged.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        zeros: Vec<(u64, u64)>,
    },
}

impl ShareRedo {
    /// The redo that turns the share's file into `container`.
    pub fn write(si: StorageIndex, shnum: ShareNumber, container: &Container) -> Self {
        let (zeros, ranges) = container.edits();
        Self {
            si,
            shnum,
            op: RedoOp::Write {
                len: container.file_len(),
                whole: container.is_fresh(),
                ranges,
                zeros,
            },
        }
    }

    /// The redo that removes the share.
    pub fn delete(si: StorageIndex, shnum: ShareNumber) -> Self {
        Self {
            si,
            shnum,
            op: RedoOp::Delete,
        }
    }

    /// Bytes of share data carried (to decide when to checkpoint).
    pub fn weight(&self) -> usize {
        match &self.op {
            RedoOp::Delete => 64,
            RedoOp::Write { ranges, .. } => 64 + ranges.iter().map(|(_, b)| b.len()).sum::<usize>(),
        }
    }

    /// Applies the change to the file, with no sync (the log is the durable copy).
    /// Idempotent. At recovery (`replaying`), nothing is written over an immutable
    /// share, and a partial change to a share that is gone (expired since) is skipped
    /// (see the module docs); live, the caller holds the storage index's write lock
    /// and has just checked the share.
    ///
    /// # Errors
    /// I/O errors.
    pub fn apply(&self, layout: &Layout, replaying: bool) -> io::Result<()> {
        self.apply_checked(layout, replaying, &Faults::default())
    }

    /// [`Self::apply`], asking `faults` first (tests inject disk errors there).
    ///
    /// # Errors
    /// I/O errors.
    pub fn apply_checked(
        &self,
        layout: &Layout,
        replaying: bool,
        faults: &Faults,
    ) -> io::Result<()> {
        let path = layout.share_path(&self.si, self.shnum);
        if replaying {
            match on_disk(&path)? {
                OnDisk::Immutable => return Ok(()),
                OnDisk::Missing if matches!(self.op, RedoOp::Write { whole: false, .. }) => {
                    return Ok(());
                }
                _ => {}
            }
        }
        match &self.op {
            RedoOp::Delete => match faults.before_write().and_then(|()| fs::remove_file(&path)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            RedoOp::Write { whole, .. } => {
                let file = if *whole {
                    fs::create_dir_all(layout.bucket_dir(&self.si))?;
                    OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&path)?
                } else {
                    OpenOptions::new().write(true).open(&path)?
                };
                self.apply_to(&file, faults)
            }
        }
    }
}

impl ShareRedo {
    /// Applies a live change to its share file; `open` is the file if the caller has
    /// it open for writing. The caller holds the storage index's write lock.
    ///
    /// # Errors
    /// I/O errors.
    pub fn apply_live(
        &self,
        layout: &Layout,
        open: Option<&File>,
        faults: &Faults,
    ) -> io::Result<()> {
        match (open, &self.op) {
            (Some(file), RedoOp::Write { .. }) => self.apply_to(file, faults),
            (None, RedoOp::Write { whole, .. }) => {
                if *whole {
                    layout::create_dir_durable(&layout.bucket_dir(&self.si))?;
                }
                self.apply_checked(layout, false, faults)
            }
            (_, RedoOp::Delete) => self.apply_checked(layout, false, faults),
        }
    }

    /// Applies a live change to the share's file, already open for writing (the
    /// caller holds the storage index's write lock and read the file). A deletion
    /// still goes by path.
    ///
    /// # Errors
    /// I/O errors.
    pub fn apply_to(&self, file: &File, faults: &Faults) -> io::Result<()> {
        match &self.op {
            RedoOp::Write {
                len, ranges, zeros, ..
            } => {
                faults.before_write()?;
                for &(at, n) in zeros {
                    zero_range(file, at, n)?;
                }
                for (at, bytes) in ranges {
                    file.write_all_at(bytes, *at)?;
                }
                if file.metadata()?.len() != *len {
                    file.set_len(*len)?;
                }
                Ok(())
            }
            RedoOp::Delete => Err(io::Error::other("a deletion is applied by path")),
        }
    }
}

/// Clears `[at, at + n)` of the file: a hole punched where the file system allows it
/// (so clearing costs no disk writes and leaves the file as sparse as Tahoe's), zeros
/// written otherwise.
fn zero_range(file: &File, at: u64, n: u64) -> io::Result<()> {
    use rustix::fs::FallocateFlags;
    let len = file.metadata()?.len();
    let end = at.saturating_add(n).min(len);
    if at >= end {
        return Ok(());
    }
    match rustix::fs::fallocate(
        file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        at,
        end - at,
    ) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => {
            static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
            let mut pos = at;
            while pos < end {
                let n = (end - pos).min(ZEROS.len() as u64) as usize;
                file.write_all_at(&ZEROS[..n], pos)?;
                pos += n as u64;
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// What is at a share's path, as far as replay cares.
enum OnDisk {
    Missing,
    /// An immutable share: never written over by a replayed slot change.
    Immutable,
    /// A slot, or anything else (a torn new slot, say).
    Other,
}

fn on_disk(path: &std::path::Path) -> io::Result<OnDisk> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OnDisk::Missing),
        Err(e) => return Err(e),
    };
    let mut first = Vec::with_capacity(32);
    io::Read::read_to_end(&mut io::Read::take(&file, 32), &mut first)?;
    Ok(if immutable::is_immutable_header(&first) {
        OnDisk::Immutable
    } else {
        OnDisk::Other
    })
}
