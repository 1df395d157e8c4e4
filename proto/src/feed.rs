//! Change-feed wire types: cursors and events, shared by the server's three transports
//! (WebSocket, SSE, long-poll) and the client.
//!
//! A [`Cursor`] is `(epoch, seq)`: `seq` counts committed changes on one server and
//! `epoch` names the journal they are counted in; when a server loses or resets its
//! journal, the epoch changes and every old cursor gets a `reset`. Clients treat cursors
//! as opaque strings (`<16 hex digits>-<decimal seq>`) and hand them back verbatim.
//!
//! Events are tagged by `type`. Every slot event names the storage index in Tahoe's
//! lowercase base32 as `si` and carries the share's `seqnum` and `roothash` (JSON:
//! base32 text; CBOR: bytes), read from the share's own header without any key.
//! `docs/feeds.md` is the protocol specification.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{DecodeError, ShareNumber, StorageIndex, base32};

/// A position in one server's change journal.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Cursor {
    /// Names the journal; a different epoch means the history was lost.
    pub epoch: u64,
    /// Changes committed before this point (0: none yet).
    pub seq: u64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.epoch, self.seq)
    }
}

impl FromStr for Cursor {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            DecodeError::Invalid(format!(
                "{s:?} is not a feed cursor (expected <16 hex digits>-<number>)"
            ))
        };
        let (epoch, seq) = s.split_once('-').ok_or_else(bad)?;
        if epoch.len() != 16 {
            return Err(bad());
        }
        Ok(Self {
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! base32_in_json {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

base32_in_json!(StorageIndex);

/// A mutable share's root hash (the share hash tree root in its signed header).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RootHash(pub [u8; 32]);

impl fmt::Display for RootHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(&self.0))
    }
}

impl FromStr for RootHash {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = base32::decode(s)?;
        Ok(Self(bytes.try_into().map_err(|v: Vec<u8>| {
            DecodeError::Length {
                what: "root hash",
                expected: 32,
                actual: v.len(),
            }
        })?))
    }
}

impl Serialize for RootHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for RootHash {
    /// Accepts base32 text (JSON) or 32 raw bytes (CBOR), whatever the decoder claims
    /// about human readability.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RootHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a root hash: 52 base32 characters or 32 bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RootHash, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<RootHash, E> {
                v.try_into()
                    .map(RootHash)
                    .map_err(|_| E::custom("a root hash is 32 bytes"))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for ShareNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.get())
    }
}

impl<'de> Deserialize<'de> for ShareNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::new(u8::deserialize(d)?))
    }
}

/// The version of a mutable share, as its header says (no key needed to read it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct SlotVersion {
    /// The share's sequence number (bytes 1..9 of the share data).
    pub seqnum: u64,
    /// The share's root hash (bytes 9..41); `roothash` when serialized (the change
    /// records of the server's journal hold it).
    #[serde(rename = "roothash")]
    pub root_hash: RootHash,
    /// 0 for SDMF, 1 for MDMF.
    pub format: u8,
}

impl SlotVersion {
    /// Reads the version from the first bytes of a mutable share's data; `None` when
    /// there are fewer than 41 bytes or the format byte is neither 0 nor 1.
    pub fn from_share_prefix(prefix: &[u8]) -> Option<Self> {
        if prefix.len() < 41 || prefix[0] > 1 {
            return None;
        }
        Some(Self {
            format: prefix[0],
            seqnum: u64::from_be_bytes(prefix[1..9].try_into().ok()?),
            root_hash: RootHash(prefix[9..41].try_into().ok()?),
        })
    }
}

/// Why a stream was reset.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetReason {
    /// The cursor belongs to another epoch (the journal was lost or reset).
    EpochChanged,
    /// The cursor is ahead of this server's journal (it cannot be from this epoch).
    CursorAhead,
    /// The cursor is older than the history this server keeps (`docs/feeds.md`).
    CursorExpired,
    /// A reason this version does not know (a newer server's): still a reset.
    #[serde(other)]
    Other,
}

/// One message of a change feed.
///
/// Decoding is tolerant, as `docs/feeds.md` section 1 requires of clients: members an
/// event does not define are ignored, and a `type` this version does not know decodes
/// as [`FeedEvent::Unknown`], which clients skip. A newer server can therefore add
/// events and members without breaking older clients. (Commands, which the server
/// decodes, stay strict: [`FeedCommand`].)
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedEvent {
    /// A read-test-write changed a share of a followed slot.
    SlotChanged {
        /// Position after this change.
        cursor: Cursor,
        /// The slot.
        si: StorageIndex,
        /// The share.
        shnum: ShareNumber,
        /// The share's new sequence number (`null` if the share is too short to have one).
        seqnum: Option<u64>,
        /// The share's new root hash (`null` likewise); `roothash` on the wire.
        #[serde(rename = "roothash")]
        root_hash: Option<RootHash>,
        /// 0 SDMF, 1 MDMF (`null` likewise).
        format: Option<u8>,
        /// The share's data length in bytes.
        length: u64,
    },
    /// A read-test-write deleted a share (`new-length` 0).
    SlotDeleted {
        /// Position after this change.
        cursor: Cursor,
        /// The slot.
        si: StorageIndex,
        /// The share.
        shnum: ShareNumber,
    },
    /// An immutable share was completed.
    ShareAdded {
        /// Position after this change.
        cursor: Cursor,
        /// The storage index.
        si: StorageIndex,
        /// The share.
        shnum: ShareNumber,
        /// Its size in bytes.
        size: u64,
    },
    /// A client advised that a share is corrupt.
    CorruptionAdvised {
        /// Position after this change.
        cursor: Cursor,
        /// The storage index.
        si: StorageIndex,
        /// The share.
        shnum: ShareNumber,
        /// `immutable` or `mutable`.
        kind: String,
    },
    /// The current state of one share, sent before `synced` when a snapshot was asked
    /// for (slots carry `seqnum`/`roothash`; immutable shares carry `size`).
    Snapshot {
        /// The storage index.
        si: StorageIndex,
        /// The share.
        shnum: ShareNumber,
        /// Mutable: sequence number.
        seqnum: Option<u64>,
        /// Mutable: root hash; `roothash` on the wire.
        #[serde(rename = "roothash")]
        root_hash: Option<RootHash>,
        /// Mutable: 0 SDMF, 1 MDMF.
        format: Option<u8>,
        /// Data length (mutable) or size (immutable).
        length: u64,
        /// `immutable` or `mutable`.
        kind: String,
    },
    /// The snapshot is complete; live events follow from `cursor`.
    Synced {
        /// Position the live part starts after.
        cursor: Cursor,
    },
    /// A checkpoint: nothing the subscriber follows changed up to `cursor`. Sent at
    /// least every 30 seconds, and on request.
    Progress {
        /// Save this to resume from.
        cursor: Cursor,
    },
    /// The history the client's cursor refers to is gone: re-read every followed slot,
    /// then continue from `cursor`.
    Reset {
        /// Where to continue from.
        cursor: Cursor,
        /// Why.
        reason: ResetReason,
    },
    /// A WebSocket command was refused; the stream goes on.
    Error {
        /// What was wrong, for a person.
        message: String,
    },
    /// The server is ending the stream (SSE; WebSocket uses its close frame).
    Close {
        /// `slow`, `shutdown` or `token_expired`.
        reason: String,
    },
    /// An event type this version does not know (a newer server's): skip it. Never
    /// sent by this server.
    #[serde(other)]
    Unknown,
}

/// A command a WebSocket client sends (JSON text or CBOR binary, as its subprotocol).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeedCommand {
    /// Follow more storage indexes.
    Subscribe {
        /// Storage indexes (base32).
        si: Vec<StorageIndex>,
        /// Resume after this cursor.
        #[serde(default)]
        since: Option<Cursor>,
        /// Send the current state first (when `since` is absent).
        #[serde(default)]
        snapshot: bool,
    },
    /// Stop following storage indexes.
    Unsubscribe {
        /// Storage indexes (base32).
        si: Vec<StorageIndex>,
    },
    /// Ask for a `progress` event now.
    Progress,
}

/// A long-poll answer: the events, and the cursor to poll from next. Members it does
/// not define are ignored, as in events.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FeedBatch {
    /// Events in order (possibly none).
    pub events: Vec<FeedEvent>,
    /// Pass this as `since` next time.
    pub cursor: Cursor,
}

impl FeedEvent {
    /// The cursor to save after this event, if it carries one.
    pub fn cursor(&self) -> Option<Cursor> {
        match self {
            Self::SlotChanged { cursor, .. }
            | Self::SlotDeleted { cursor, .. }
            | Self::ShareAdded { cursor, .. }
            | Self::CorruptionAdvised { cursor, .. }
            | Self::Synced { cursor }
            | Self::Progress { cursor }
            | Self::Reset { cursor, .. } => Some(*cursor),
            Self::Snapshot { .. } | Self::Error { .. } | Self::Close { .. } | Self::Unknown => None,
        }
    }

    /// For an event that says what a slot holds now (a change, a deletion, or a
    /// snapshot): its storage index and the version there, `(seqnum, root_hash)`, or
    /// `None` for the version when the share is gone or too short to have one. Sync
    /// clients compare that version with the one they last read.
    pub fn slot_version(&self) -> Option<(StorageIndex, Option<(u64, RootHash)>)> {
        match self {
            Self::SlotChanged {
                si,
                seqnum,
                root_hash,
                ..
            }
            | Self::Snapshot {
                si,
                seqnum,
                root_hash,
                ..
            } => Some((*si, seqnum.zip(*root_hash))),
            Self::SlotDeleted { si, .. } => Some((*si, None)),
            _ => None,
        }
    }

    /// The storage index this event is about, if any.
    pub fn storage_index(&self) -> Option<StorageIndex> {
        match self {
            Self::SlotChanged { si, .. }
            | Self::SlotDeleted { si, .. }
            | Self::ShareAdded { si, .. }
            | Self::CorruptionAdvised { si, .. }
            | Self::Snapshot { si, .. } => Some(*si),
            Self::Synced { .. }
            | Self::Progress { .. }
            | Self::Reset { .. }
            | Self::Error { .. }
            | Self::Close { .. }
            | Self::Unknown => None,
        }
    }

    /// The event's type name on the wire (the SSE `event:` field).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::SlotChanged { .. } => "slot_changed",
            Self::SlotDeleted { .. } => "slot_deleted",
            Self::ShareAdded { .. } => "share_added",
            Self::CorruptionAdvised { .. } => "corruption_advised",
            Self::Snapshot { .. } => "snapshot",
            Self::Synced { .. } => "synced",
            Self::Progress { .. } => "progress",
            Self::Reset { .. } => "reset",
            Self::Error { .. } => "error",
            Self::Close { .. } => "close",
            Self::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let c = Cursor {
            epoch: 0xdead_beef,
            seq: 42,
        };
        assert_eq!(c.to_string(), "00000000deadbeef-42");
        assert_eq!("00000000deadbeef-42".parse::<Cursor>().unwrap(), c);
        assert!("deadbeef-42".parse::<Cursor>().is_err());
        assert!("00000000deadbeef-x".parse::<Cursor>().is_err());
    }

    #[test]
    fn slot_event_json_has_the_fixed_names() {
        let si = StorageIndex::from_bytes([1; 16]);
        let e = FeedEvent::SlotChanged {
            cursor: Cursor { epoch: 1, seq: 2 },
            si,
            shnum: ShareNumber::new(3),
            seqnum: Some(7),
            root_hash: Some(RootHash([0; 32])),
            format: Some(1),
            length: 100,
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "slot_changed");
        assert_eq!(json["si"], si.to_string());
        assert_eq!(json["seqnum"], 7);
        assert_eq!(json["roothash"], "a".repeat(52));
        assert_eq!(serde_json::from_value::<FeedEvent>(json).unwrap(), e);
        let cbor = crate::v1::encode(&e);
        assert_eq!(crate::v1::decode::<FeedEvent>(&cbor).unwrap(), e);
    }

    /// A CBOR map of `members`, as a newer server might send it.
    fn cbor_map(members: Vec<(&str, ciborium::Value)>) -> Vec<u8> {
        let map = members
            .into_iter()
            .map(|(k, v)| (ciborium::Value::Text(k.into()), v))
            .collect();
        let mut out = Vec::new();
        ciborium::into_writer(&ciborium::Value::Map(map), &mut out).unwrap();
        out
    }

    #[test]
    fn unknown_event_types_decode_as_unknown_in_json_and_cbor() {
        let json =
            r#"{"type":"slot_renamed","cursor":"0000000000000001-2","si":"x","nested":{"a":[1]}}"#;
        assert_eq!(
            serde_json::from_str::<FeedEvent>(json).unwrap(),
            FeedEvent::Unknown
        );
        let cbor = cbor_map(vec![
            ("type", ciborium::Value::Text("slot_renamed".into())),
            ("blob", ciborium::Value::Bytes(vec![1, 2, 3])),
        ]);
        assert_eq!(
            crate::v1::decode::<FeedEvent>(&cbor).unwrap(),
            FeedEvent::Unknown
        );
        // Skipped, never a cursor to save; and it still round-trips.
        assert_eq!(FeedEvent::Unknown.cursor(), None);
        let again = serde_json::to_string(&FeedEvent::Unknown).unwrap();
        assert_eq!(
            serde_json::from_str::<FeedEvent>(&again).unwrap(),
            FeedEvent::Unknown
        );
        // An event without a type is still malformed.
        assert!(serde_json::from_str::<FeedEvent>(r#"{"cursor":"0000000000000001-2"}"#).is_err());
    }

    #[test]
    fn unknown_members_are_ignored_in_json_and_cbor() {
        let cursor = Cursor { epoch: 1, seq: 2 };
        let json = r#"{"type":"progress","cursor":"0000000000000001-2","server_time":17,"hint":{"x":null}}"#;
        assert_eq!(
            serde_json::from_str::<FeedEvent>(json).unwrap(),
            FeedEvent::Progress { cursor }
        );
        let cbor = cbor_map(vec![
            ("type", ciborium::Value::Text("slot_deleted".into())),
            ("cursor", ciborium::Value::Text(cursor.to_string())),
            ("si", ciborium::Value::Text("a".repeat(26))),
            ("shnum", ciborium::Value::Integer(3.into())),
            ("extra", ciborium::Value::Bytes(vec![0; 8])),
        ]);
        assert_eq!(
            crate::v1::decode::<FeedEvent>(&cbor).unwrap(),
            FeedEvent::SlotDeleted {
                cursor,
                si: StorageIndex::from_bytes([0; 16]),
                shnum: ShareNumber::new(3),
            }
        );
        // A reset for a reason this version does not know is still a reset.
        let reset = r#"{"type":"reset","cursor":"0000000000000001-2","reason":"moon_phase"}"#;
        assert_eq!(
            serde_json::from_str::<FeedEvent>(reset).unwrap(),
            FeedEvent::Reset {
                cursor,
                reason: ResetReason::Other
            }
        );
        // A long-poll answer with a new member and a new event type.
        let batch = r#"{"events":[{"type":"gossip"},{"type":"progress","cursor":"0000000000000001-2"}],"cursor":"0000000000000001-2","more":true}"#;
        let batch: FeedBatch = serde_json::from_str(batch).unwrap();
        assert_eq!(
            batch.events,
            [FeedEvent::Unknown, FeedEvent::Progress { cursor }]
        );
    }

    #[test]
    fn commands_stay_strict() {
        assert!(serde_json::from_str::<FeedCommand>(r#"{"op":"launch"}"#).is_err());
        let subscribe = r#"{"op":"subscribe","si":[],"since_when":"now"}"#;
        assert!(serde_json::from_str::<FeedCommand>(subscribe).is_err());
    }

    #[test]
    fn version_from_share_prefix() {
        let mut prefix = vec![1u8];
        prefix.extend_from_slice(&9u64.to_be_bytes());
        prefix.extend_from_slice(&[5; 32]);
        let v = SlotVersion::from_share_prefix(&prefix).unwrap();
        assert_eq!((v.format, v.seqnum, v.root_hash), (1, 9, RootHash([5; 32])));
        assert!(SlotVersion::from_share_prefix(&prefix[..40]).is_none());
        prefix[0] = 7;
        assert!(SlotVersion::from_share_prefix(&prefix).is_none());
    }
}
