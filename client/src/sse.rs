//! Server-sent events framing: the `data:` of each event out of a byte stream that
//! arrives in chunks of any size. A pure function of the bytes, apart from the
//! connection, so the fuzzer can feed it what a hostile server could send.

/// Accumulates a stream's chunks and hands out each complete event's data.
#[derive(Debug, Default)]
pub struct SseFramer {
    buf: String,
}

impl SseFramer {
    /// Adds the next chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.push_str(&String::from_utf8_lossy(chunk));
    }

    /// The data of the next complete event (its `data: ` lines joined), skipping
    /// events without data (comments, keep-alives); `None` until one is complete.
    pub fn next_data(&mut self) -> Option<String> {
        while let Some(end) = self.buf.find("\n\n") {
            let block: String = self.buf.drain(..end + 2).collect();
            let data: String = block
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
