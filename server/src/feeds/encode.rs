//! Event encodings: JSON text, CBOR binary, and SSE frames.
//!
//! A live event goes to every subscriber of its storage index: it is wrapped once in
//! [`Encoded`] and each encoding is made at most once, then shared (one JSON encoding
//! per event instead of one per subscriber).

use std::sync::{Arc, OnceLock};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use swamp_proto::feed::FeedEvent;

/// An event with its encodings, made on first use and shared.
pub struct Encoded {
    /// The event.
    pub event: FeedEvent,
    /// When it was made: for a live event, when it was published (for the delivery
    /// lag metric).
    pub made: std::time::Instant,
    json: OnceLock<Utf8Bytes>,
    cbor: OnceLock<Bytes>,
}

/// An event as queued for subscribers.
pub type Shared = Arc<Encoded>;

/// Wraps an event for sharing.
pub fn shared(event: FeedEvent) -> Shared {
    Arc::new(Encoded {
        event,
        made: std::time::Instant::now(),
        json: OnceLock::new(),
        cbor: OnceLock::new(),
    })
}

impl Encoded {
    /// The JSON text.
    pub fn json(&self) -> &Utf8Bytes {
        self.json.get_or_init(|| json(&self.event).into())
    }

    /// The CBOR bytes.
    pub fn cbor(&self) -> &Bytes {
        self.cbor.get_or_init(|| cbor(&self.event).into())
    }
}

impl std::ops::Deref for Encoded {
    type Target = FeedEvent;
    fn deref(&self) -> &FeedEvent {
        &self.event
    }
}

impl PartialEq for Encoded {
    fn eq(&self, other: &Self) -> bool {
        self.event == other.event
    }
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.event.fmt(f)
    }
}

/// JSON text of an event.
pub fn json(event: &FeedEvent) -> String {
    serde_json::to_string(event).expect("invariant: feed events always serialize")
}

/// CBOR bytes of an event.
pub fn cbor(event: &FeedEvent) -> Vec<u8> {
    swamp_proto::v1::encode(event)
}

/// One SSE frame: `id:` is the cursor (when the event has one), `event:` the type,
/// `data:` the JSON.
pub fn sse_frame(event: &Encoded) -> String {
    let mut frame = String::with_capacity(256);
    if let Some(cursor) = event.cursor() {
        frame.push_str("id: ");
        frame.push_str(&cursor.to_string());
        frame.push('\n');
    }
    frame.push_str("event: ");
    frame.push_str(event.type_name());
    frame.push_str("\ndata: ");
    frame.push_str(event.json());
    frame.push_str("\n\n");
    frame
}
