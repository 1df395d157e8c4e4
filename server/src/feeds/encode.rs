//! Event encodings: JSON text, CBOR binary, and SSE frames.

use swamp_proto::feed::FeedEvent;

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
pub fn sse_frame(event: &FeedEvent) -> String {
    let mut frame = String::with_capacity(256);
    if let Some(cursor) = event.cursor() {
        frame.push_str("id: ");
        frame.push_str(&cursor.to_string());
        frame.push('\n');
    }
    frame.push_str("event: ");
    frame.push_str(event.type_name());
    frame.push_str("\ndata: ");
    frame.push_str(&json(event));
    frame.push_str("\n\n");
    frame
}
