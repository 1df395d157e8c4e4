//! One committed change to a share: what the change feeds journal and publish.
//!
//! The backend reports each change to its [`ChangeSink`] while it still holds the
//! storage index's lock, so changes to one storage index are recorded in commit order.

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

/// Where the backend reports committed changes (the feed journal).
pub trait ChangeSink: Send + Sync {
    /// Records changes that are already durable on disk, in commit order, before the
    /// client is answered.
    ///
    /// # Errors
    /// An I/O error if the record could not be made durable.
    fn record(&self, changes: Vec<Change>) -> std::io::Result<()>;

    /// Whether the sink can log slot changes ahead of them ([`ChangeSink::record_ahead`]).
    fn writes_ahead(&self) -> bool {
        false
    }

    /// Records slot changes, each with the redo of its share file, durably, *before*
    /// the files are changed; the caller then applies the redo in place and calls
    /// [`ChangeSink::applied`] with the returned ticket (even if applying failed).
    /// Until then, no checkpoint may cover these records.
    ///
    /// # Errors
    /// [`AheadError`]: if it carries a ticket, the records are in the journal but their
    /// sync failed; the caller must still apply them (a later sync or a replay may make
    /// them durable, and the share files must always equal the journal applied in
    /// order), then report the error.
    fn record_ahead(
        &self,
        changes: Vec<(Change, super::redo::ShareRedo)>,
    ) -> Result<u64, AheadError> {
        let _ = changes;
        Err(AheadError {
            ticket: None,
            error: std::io::Error::other("this change sink does not log ahead"),
        })
    }

    /// The redo of the records behind `ticket` has been applied.
    fn applied(&self, ticket: u64) {
        let _ = ticket;
    }
}

/// Why [`ChangeSink::record_ahead`] failed.
#[derive(Debug)]
pub struct AheadError {
    /// Set when the records were written (so must be applied) but not synced.
    pub ticket: Option<u64>,
    /// The I/O error.
    pub error: std::io::Error,
}
