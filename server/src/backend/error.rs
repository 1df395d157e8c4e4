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
    /// No room left on the disk for this operation.
    #[error("not enough space left on the storage disk")]
    NoSpace,
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
    /// restart replays the journal (`feeds/durable.rs`).
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
            if is_needs_restart(&source) {
                StorageError::NeedsRestart
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
