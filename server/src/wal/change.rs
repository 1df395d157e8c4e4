//! One committed change to a share: what the log records and the change feeds publish.
//!
//! The storage logs each change while it still holds the storage index's lock, so
//! changes to one storage index are recorded in commit order.

use serde::{Deserialize, Serialize};
use swamp_proto::feed::{Cursor, FeedEvent, SlotVersion};
use swamp_proto::{ShareNumber, StorageIndex};

/// A committed change, as stored in the journal.
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

    /// The wire event for this change at `cursor`.
    pub fn to_event(&self, cursor: Cursor) -> FeedEvent {
        match self.clone() {
            Self::SlotChanged {
                si,
                shnum,
                version,
                length,
            } => FeedEvent::SlotChanged {
                cursor,
                si,
                shnum,
                seqnum: version.map(|v| v.seqnum),
                roothash: version.map(|v| v.roothash),
                format: version.map(|v| v.format),
                length,
            },
            Self::SlotDeleted { si, shnum } => FeedEvent::SlotDeleted { cursor, si, shnum },
            Self::ShareAdded { si, shnum, size } => FeedEvent::ShareAdded {
                cursor,
                si,
                shnum,
                size,
            },
            Self::CorruptionAdvised { si, shnum, kind } => FeedEvent::CorruptionAdvised {
                cursor,
                si,
                shnum,
                kind,
            },
        }
    }
}
