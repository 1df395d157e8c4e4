//! Version 1 of the GBS storage API: paths, body size limits and CBOR bodies.
//!
//! Bodies follow the CDDL schemas of Tahoe 1.20's `http_server.py` exactly: maps are
//! closed (an unknown key is an error), sets are CBOR tag 258 around an array, and the
//! version map has byte-string keys. The same types encode on one side and decode on
//! the other, so the client and server cannot drift apart.

pub mod cbor;
pub mod endpoint;
pub mod immutable;
pub mod mutable;
pub mod version;

pub use cbor::{ShareSet, decode, encode};
pub use immutable::{
    AdviseCorruptRequest, AllocateRequest, AllocateResponse, RequiredRange, UploadProgress,
};
pub use mutable::{
    ReadTestWriteRequest, ReadTestWriteResponse, ReadVector, TestVector, TestWriteVectors,
    WriteVector,
};
pub use version::{StorageVersion, VersionResponse};

use crate::{ShareNumber, StorageIndex};

pub use endpoint::CBOR_MEDIA_TYPE;

/// Largest allocate request body Tahoe accepts.
pub const MAX_ALLOCATE_BODY: usize = 8192;
/// Largest corruption-advisory body Tahoe accepts.
pub const MAX_ADVISE_CORRUPT_BODY: usize = 32_768;
/// Largest advisory reason, in characters of text.
pub const MAX_CORRUPTION_REASON: usize = 32_765;
/// At most this many test vectors per share, and read vectors, in a read-test-write.
pub const MAX_TEST_OR_READ_VECTORS: usize = 30;
/// At most this many shares in a set or a read-test-write.
pub const MAX_SHARES_PER_REQUEST: usize = 256;
/// The mutable share size limit Tahoe announces (`MAX_MUTABLE_SHARE_SIZE`).
pub const MAX_MUTABLE_SHARE_SIZE: u64 = 69_105 * 1_000_000_000_000;

/// `/storage/v1/version`
pub const VERSION_PATH: &str = endpoint::VERSION.pattern;
/// `/storage/v1/feed` (Swamp's change feeds)
pub const FEED_PATH: &str = endpoint::FEED.pattern;

/// `/storage/v1/lease/:si`
pub fn lease_path(si: &StorageIndex) -> String {
    endpoint::LEASE.path(Some(si), None)
}

/// `/storage/v1/immutable/:si` (allocate)
pub fn immutable_path(si: &StorageIndex) -> String {
    endpoint::ALLOCATE.path(Some(si), None)
}

/// `/storage/v1/immutable/:si/:shnum` (write and read)
pub fn immutable_share_path(si: &StorageIndex, shnum: ShareNumber) -> String {
    endpoint::READ_IMMUTABLE.path(Some(si), Some(shnum))
}

/// `/storage/v1/immutable/:si/:shnum/abort`
pub fn immutable_abort_path(si: &StorageIndex, shnum: ShareNumber) -> String {
    endpoint::ABORT.path(Some(si), Some(shnum))
}

/// `/storage/v1/{immutable,mutable}/:si/shares`
pub fn shares_path(kind: ShareKind, si: &StorageIndex) -> String {
    match kind {
        ShareKind::Immutable => endpoint::LIST_IMMUTABLE,
        ShareKind::Mutable => endpoint::LIST_MUTABLE,
    }
    .path(Some(si), None)
}

/// `/storage/v1/{immutable,mutable}/:si/:shnum/corrupt`
pub fn corrupt_path(kind: ShareKind, si: &StorageIndex, shnum: ShareNumber) -> String {
    match kind {
        ShareKind::Immutable => endpoint::CORRUPT_IMMUTABLE,
        ShareKind::Mutable => endpoint::CORRUPT_MUTABLE,
    }
    .path(Some(si), Some(shnum))
}

/// `/storage/v1/mutable/:si/read-test-write`
pub fn read_test_write_path(si: &StorageIndex) -> String {
    endpoint::READ_TEST_WRITE.path(Some(si), None)
}

/// `/storage/v1/mutable/:si/:shnum`
pub fn mutable_share_path(si: &StorageIndex, shnum: ShareNumber) -> String {
    endpoint::READ_MUTABLE.path(Some(si), Some(shnum))
}

/// Immutable (written once through an upload) or mutable (a slot).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ShareKind {
    /// Written once by allocate and PATCH.
    Immutable,
    /// A slot, written by read-test-write.
    Mutable,
}

impl ShareKind {
    /// The path segment naming the kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Immutable => "immutable",
            Self::Mutable => "mutable",
        }
    }
}
