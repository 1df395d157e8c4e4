//! Redo records: what a read-test-write changes in a slot's share file, logged (in the
//! feed journal) and synced *before* the file is changed in place.
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

use super::immutable;
use super::layout::Layout;
use super::mutable::Container;

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
    /// Write these ranges and set the file's length.
    Write {
        /// The new length of the file.
        len: u64,
        /// The ranges cover the whole file (a new share): create it if missing.
        whole: bool,
        /// `(offset, bytes)`, sorted, not overlapping.
        ranges: Vec<(u64, serde_bytes::ByteBuf)>,
    },
}

impl ShareRedo {
    /// The redo that turns the share's file into `container`.
    pub fn write(si: StorageIndex, shnum: ShareNumber, container: &Container) -> Self {
        Self {
            si,
            shnum,
            op: RedoOp::Write {
                len: container.as_bytes().len() as u64,
                whole: container.is_fresh(),
                ranges: container
                    .dirty_ranges()
                    .into_iter()
                    .map(|(at, bytes)| (at, serde_bytes::ByteBuf::from(bytes.to_vec())))
                    .collect(),
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
            RedoOp::Delete => match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            RedoOp::Write { len, whole, ranges } => {
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
                for (at, bytes) in ranges {
                    file.write_all_at(bytes, *at)?;
                }
                if file.metadata()?.len() != *len {
                    file.set_len(*len)?;
                }
                Ok(())
            }
        }
    }
}

impl ShareRedo {
    /// Applies a live change to the share's file, already open for writing (the
    /// caller holds the storage index's write lock and read the file). A deletion
    /// still goes by path.
    ///
    /// # Errors
    /// I/O errors.
    pub fn apply_to(&self, file: &File) -> io::Result<()> {
        match &self.op {
            RedoOp::Write { len, ranges, .. } => {
                for (at, bytes) in ranges {
                    file.write_all_at(bytes, *at)?;
                }
                // Containers never shrink: the ranges end at the new length, so the
                // file is already that long unless the last range was empty.
                if ranges
                    .last()
                    .is_none_or(|(at, b)| at + b.len() as u64 != *len)
                {
                    file.set_len(*len)?;
                }
                Ok(())
            }
            RedoOp::Delete => Err(io::Error::other("a deletion is applied by path")),
        }
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
    let mut first = [0u8; 32];
    let n = super::read_prefix(&file, &mut first)?;
    Ok(if immutable::is_immutable_header(&first[..n]) {
        OnDisk::Immutable
    } else {
        OnDisk::Other
    })
}

/// Makes every change applied so far durable: the share files and the directories
/// created or changed (a checkpoint; see the module docs).
///
/// # Errors
/// I/O errors.
pub fn sync_storage(layout: &Layout) -> io::Result<()> {
    let dir = File::open(&layout.shares)?;
    rustix::fs::syncfs(&dir).map_err(io::Error::from)
}
