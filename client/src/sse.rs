//! Server-sent events framing: the `data:` of each event out of a byte stream that
//! arrives in chunks of any size. A pure function of the bytes, apart from the
//! connection, so the fuzzer can feed it what a hostile server could send.
//!
//! Bytes are kept as bytes until an event is complete: a chunk boundary may fall
//! inside a multi-byte UTF-8 character, and decoding chunk by chunk would corrupt it.

/// Accumulates a stream's chunks and hands out each complete event's data.
#[derive(Debug, Default)]
pub struct SseFramer {
    buf: Vec<u8>,
}

impl SseFramer {
    /// Adds the next chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The data of the next complete event (its `data: ` lines joined), skipping
    /// events without data (comments, keep-alives); `None` until one is complete.
    pub fn next_data(&mut self) -> Option<String> {
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let data: String = String::from_utf8_lossy(&block)
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            if !data.is_empty() {
                return Some(data);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(chunks: &[&[u8]]) -> Vec<String> {
        let mut framer = SseFramer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            out.extend(std::iter::from_fn(|| framer.next_data()));
        }
        out
    }

    #[test]
    fn a_character_split_across_chunks_survives() {
        // Found by the `sse` fuzz target: each chunk was decoded on its own, so a
        // character cut by a chunk boundary became two U+FFFD.
        let stream = "data: {\"message\":\"caf\u{e9}\"}\n\n".as_bytes();
        let cut = stream.iter().position(|&b| b == 0xc3).unwrap() + 1;
        let split = frame(&[&stream[..cut], &stream[cut..]]);
        assert_eq!(split, ["{\"message\":\"caf\u{e9}\"}"]);
        assert_eq!(split, frame(&[stream]));
    }

    #[test]
    fn events_without_data_are_skipped_and_partial_ones_wait() {
        let mut framer = SseFramer::default();
        framer.push(b": keep-alive\n\nid: 1\nevent: x\ndata: a\ndata: b\n\ndata: c");
        assert_eq!(framer.next_data().as_deref(), Some("ab"));
        assert_eq!(framer.next_data(), None);
        framer.push(b"\n\n");
        assert_eq!(framer.next_data().as_deref(), Some("c"));
    }
}
