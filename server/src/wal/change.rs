//! One committed change to a share: the server's one name for it, from the storage
//! write through the log (each record holds one, numbered, as an [`Entry`]) to the
//! feeds, which send it as the wire's `FeedEvent` (`feeds/event.rs`).
//!
//! The storage logs each change while it still holds the storage index's lock, so
//! changes to one storage index are recorded in commit order. Its serialized form is
//! part of the journal and `latest` files: variant and field names must not change.
//!
//! [`Entry`]: super::records::Entry

use serde::{Deserialize, Serialize};
use swamp_proto::feed::SlotVersion;
use swamp_proto::{ShareNumber, StorageIndex};

/// A committed change.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Change {
    /// A read-test-write wrote a share.
    SlotChanged {
        /// Slot.
        si: StorageIndex,
        /// Share.
        shnum: ShareNumber,
        /// Version from the share header, when it has one.
        version: Option<SlotVersion>,
        /// Data length.
        length: u64,
    },
    /// A read-test-write deleted a share.
    SlotDeleted {
        /// Slot.
        si: StorageIndex,
        /// Share.
        shnum: ShareNumber,
    },
    /// An immutable share was completed.
    ShareAdded {
        /// Storage index.
        si: StorageIndex,
        /// Share.
        shnum: ShareNumber,
        /// Size.
        size: u64,
    },
    /// A corruption advisory was received.
    CorruptionAdvised {
        /// Storage index.
        si: StorageIndex,
        /// Share.
        shnum: ShareNumber,
        /// `immutable` or `mutable`.
        kind: String,
    },
}

impl Change {
    /// A read-test-write's write to a slot's share, from its new data length and its
    /// first bytes (up to 57: the SDMF/MDMF version, seqnum, root hash and salt), from
    /// which the feeds report the new version without any key. A share left with no
    /// data is reported deleted, as it always has been.
    pub fn slot_written(si: StorageIndex, shnum: ShareNumber, length: u64, prefix: &[u8]) -> Self {
        if length == 0 && prefix.is_empty() {
            Self::SlotDeleted { si, shnum }
        } else {
            Self::SlotChanged {
                si,
                shnum,
                version: SlotVersion::from_share_prefix(prefix),
                length,
            }
        }
    }

    /// The storage index changed.
    pub fn storage_index(&self) -> StorageIndex {
        match self {
            Self::SlotChanged { si, .. }
            | Self::SlotDeleted { si, .. }
            | Self::ShareAdded { si, .. }
            | Self::CorruptionAdvised { si, .. } => *si,
        }
    }

    /// The share changed.
    pub fn share_number(&self) -> ShareNumber {
        match self {
            Self::SlotChanged { shnum, .. }
            | Self::SlotDeleted { shnum, .. }
            | Self::ShareAdded { shnum, .. }
            | Self::CorruptionAdvised { shnum, .. } => *shnum,
        }
    }

    /// Whether a later change to the same share makes this one redundant for a
    /// subscriber that only needs the latest state (advisories are never coalesced).
    pub fn is_state(&self) -> bool {
        !matches!(self, Self::CorruptionAdvised { .. })
    }
}
