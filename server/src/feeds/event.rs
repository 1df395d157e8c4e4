//! Committed changes and share states as the feed's wire events: the one place where
//! the server's [`Change`] becomes the wire's [`FeedEvent`].

use swamp_proto::StorageIndex;
use swamp_proto::feed::{Cursor, FeedEvent, SlotVersion};
use swamp_proto::v1::ShareKind;

use crate::backend::ShareState;
use crate::wal::change::Change;

/// The event for `change` at `cursor`.
pub fn of_change(change: &Change, cursor: Cursor) -> FeedEvent {
    match change.clone() {
        Change::SlotChanged {
            si,
            shnum,
            version,
            length,
        } => FeedEvent::SlotChanged {
            cursor,
            si,
            shnum,
            seqnum: version.map(|v| v.seqnum),
            root_hash: version.map(|v| v.root_hash),
            format: version.map(|v| v.format),
            length,
        },
        Change::SlotDeleted { si, shnum } => FeedEvent::SlotDeleted { cursor, si, shnum },
        Change::ShareAdded { si, shnum, size } => FeedEvent::ShareAdded {
            cursor,
            si,
            shnum,
            size,
        },
        Change::CorruptionAdvised { si, shnum, kind } => FeedEvent::CorruptionAdvised {
            cursor,
            si,
            shnum,
            kind,
        },
    }
}

/// The `snapshot` event for a share of `si` in `state`.
pub fn of_state(si: StorageIndex, state: ShareState) -> FeedEvent {
    let version = match state.kind {
        ShareKind::Mutable => SlotVersion::from_share_prefix(&state.prefix),
        ShareKind::Immutable => None,
    };
    FeedEvent::Snapshot {
        si,
        shnum: state.shnum,
        seqnum: version.map(|v| v.seqnum),
        root_hash: version.map(|v| v.root_hash),
        format: version.map(|v| v.format),
        length: state.length,
        kind: state.kind.as_str().to_string(),
    }
}
