//! The storage layer's one error type: domain outcomes plus I/O failures with context.

use std::io;
use std::path::PathBuf;

/// Why a storage operation did not happen.
///
/// A failed read-test-write test is not an error (it is a result with `success: false`).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No such share, bucket or upload.
    #[error("no such share or upload")]
    NotFound,
    /// The upload secret does not match the one the upload was allocated with.
    #[error("wrong upload secret")]
    UploadSecretMismatch,
    /// The write enabler does not match the one recorded in the slot's shares.
    #[error("wrong write enabler for this slot")]
    BadWriteEnabler,
    /// A PATCH rewrote bytes already written with different content.
    #[error("bytes at offset {offset} were already written with different content")]
    Conflict {
        /// First offset of the overlapping region.
        offset: u64,
    },
    /// Abort of an upload whose share is already complete.
    #[error("the share is already complete")]
    AlreadyComplete,
    /// A write reaching past the allocated size.
    #[error("write ends at byte {end}, past the allocated size {allocated}")]
    PastAllocation {
        /// Where the write would end.
        end: u64,
        /// The allocated size.
        allocated: u64,
    },
    /// A mutable share would grow past the maximum share size.
    #[error("share would grow to {size} bytes, more than the maximum {max}")]
    TooLarge {
        /// The size asked for.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// No room left on the disk for this operation (`ENOSPC`, `EDQUOT`). An upload's
    /// write was not kept and may be sent again once space is freed; a
    /// read-test-write's outcome is unknown, as after any 5xx (the client reads the
    /// slot), but the slot is never left torn (`repairs.rs`).
    #[error("not enough space left on the storage disk; try again later or elsewhere")]
    NoSpace,
    /// An upload whose written ranges are scattered into too many pieces.
    #[error(
        "this upload already has {max} separate written pieces; write the gaps between them first"
    )]
    TooManyPieces {
        /// The limit.
        max: usize,
    },
    /// The cap on uploads in progress left no room for any share asked for.
    #[error("{max} uploads are already in progress on this server; try again later")]
    TooManyUploads {
        /// The limit.
        max: usize,
    },
    /// Read vectors asking for more bytes than one answer may carry.
    #[error(
        "the read vectors ask for {size} bytes, more than the {max} one answer may carry; read in smaller pieces"
    )]
    AnswerTooLarge {
        /// Bytes asked for (after clipping to the shares' lengths).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A slot changed while a large read of it was being answered in chunks.
    #[error("the slot changed while it was being read; read it again")]
    Changed,
    /// A file under `shares/` that is not a valid container.
    #[error("share file {path} is damaged")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: io::Error,
    },
    /// A sync failed earlier in this process, so nothing more is acknowledged until a
    /// restart replays the journal (`wal/durable.rs`).
    #[error("storage needs a restart after a disk error")]
    NeedsRestart,
    /// The disk failed.
    #[error("could not {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Attaches an operation and path to io errors: `file.op("read", &path)?`.
pub(crate) trait IoContext<T> {
    fn op(self, op: &'static str, path: &std::path::Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn op(self, op: &'static str, path: &std::path::Path) -> Result<T, StorageError> {
        self.map_err(|source| {
            let full = [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT]
                .iter()
                .any(|e| source.raw_os_error() == Some(e.raw_os_error()));
            if is_needs_restart(&source) {
                StorageError::NeedsRestart
            } else if full {
                tracing::warn!(path = %path.display(), %op, "the storage disk is full");
                StorageError::NoSpace
            } else if source.kind() == io::ErrorKind::InvalidData {
                StorageError::Damaged {
                    path: path.to_path_buf(),
                    source,
                }
            } else {
                StorageError::Io {
                    op,
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }
}

/// The marker inside the I/O error of a write refused after a failed sync.
#[derive(Debug, thiserror::Error)]
#[error("storage needs a restart after a disk error")]
struct NeedsRestartMarker;

/// The I/O error a write gets once a sync has failed (it becomes
/// [`StorageError::NeedsRestart`] through [`IoContext::op`]).
pub fn needs_restart() -> io::Error {
    io::Error::other(NeedsRestartMarker)
}

/// Whether `error` is [`needs_restart`]'s.
pub fn is_needs_restart(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<NeedsRestartMarker>())
}
