//! Server-sent events framing as the feed client reads a stream: the first byte
//! chooses how the rest is cut into chunks. The events framed must not depend on the
//! chunking, and each one's data goes to the JSON event decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swamp_client::feed::sse_frames::SseFrames;
use swamp_proto::feed::FeedEvent;

/// The events framed, and whether the stream was refused (over the bound, not text).
fn frame<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<String>, bool) {
    let mut framer = SseFrames::new(64 * 1024);
    let mut out = Vec::new();
    for chunk in chunks {
        if framer.push(chunk, &mut out).is_err() {
            return (out, true);
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let (whole, refused) = frame(std::iter::once(stream));
    let (chunked, refused_chunked) = frame(stream.chunks(usize::from(cut).max(1)));
    assert_eq!(
        refused, refused_chunked,
        "refusal depends on chunk boundaries"
    );
    if !refused {
        assert_eq!(chunked, whole, "framing depends on chunk boundaries");
    }
    for data in &whole {
        if let Ok(event) = serde_json::from_str::<FeedEvent>(data) {
            let json = serde_json::to_string(&event).expect("serializes");
            assert_eq!(
                serde_json::from_str::<FeedEvent>(&json).expect("decodes"),
                event
            );
        }
    }
});
