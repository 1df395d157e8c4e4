//! Server-sent events framing, with a bound: a feed server is another party, and
//! one that sends a line that never ends (or an event that never ends) must cost
//! the client a bounded buffer and a reconnect, not its memory.
//!
//! Lines end in `\n` (a `\r` before it is dropped), an empty line ends an event,
//! `data:` lines are the event's data (joined with `\n`), `:` lines are comments
//! (keep-alives); other fields (`id`, `event`, `retry`) are not needed: the data
//! carries the cursor and the event type.
//!
//! Public only so the `sse` fuzz target (`fuzz/`) can drive it.

/// Why a stream of events cannot be read on.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line, or an event's data, passed the bound.
    #[error("an event is over the {limit}-byte limit")]
    TooLarge {
        /// The bound.
        limit: usize,
    },
    /// An event's data is not UTF-8.
    #[error("an event is not UTF-8")]
    NotText,
}

/// Events being cut from a byte stream.
pub struct SseFrames {
    /// The line being read (no `\n` yet).
    line: Vec<u8>,
    /// The data of the event being read.
    data: Vec<u8>,
    /// Whether the event has had a `data:` line (an empty one counts).
    has_data: bool,
    /// The most bytes a line and the event's data may hold together.
    limit: usize,
}

impl SseFrames {
    /// Frames events of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            limit,
        }
    }

    /// Reads `chunk` and appends the data of every event it completes to `events`.
    /// What was held is bounded whatever the chunk: the error comes at the byte that
    /// crosses the bound.
    ///
    /// # Errors
    /// [`SseError`]; the framer is then unusable (reconnect).
    pub fn push(&mut self, chunk: &[u8], events: &mut Vec<String>) -> Result<(), SseError> {
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            let (text, ends) = match piece.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (piece, false),
            };
            if self.line.len() + self.data.len() + text.len() > self.limit {
                return Err(SseError::TooLarge { limit: self.limit });
            }
            self.line.extend_from_slice(text);
            if ends {
                let line = std::mem::take(&mut self.line);
                self.line_ended(line.strip_suffix(b"\r").unwrap_or(&line), events)?;
                // Keep the allocation for the next line.
                self.line = line;
                self.line.clear();
            }
        }
        Ok(())
    }

    fn line_ended(&mut self, line: &[u8], events: &mut Vec<String>) -> Result<(), SseError> {
        if line.is_empty() {
            if std::mem::take(&mut self.has_data) {
                let data = std::mem::take(&mut self.data);
                events.push(String::from_utf8(data).map_err(|_| SseError::NotText)?);
            }
            return Ok(());
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data
                .extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
            self.has_data = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(limit: usize, chunks: &[&[u8]]) -> Result<Vec<String>, SseError> {
        let mut frames = SseFrames::new(limit);
        let mut events = Vec::new();
        for chunk in chunks {
            frames.push(chunk, &mut events)?;
        }
        Ok(events)
    }

    #[test]
    fn events_are_cut_at_empty_lines_across_chunks() {
        let stream: &[&[u8]] = &[
            b"retry: 2000\n\n: keep-alive\n\nid: 1\nevent: x\ndata: {\"a\"",
            b":1}\n\ndata: one\r\ndata:two\r\n\r\n",
            b"data: \xc3",
            b"\xa9\n\ndata: unfinished",
        ];
        assert_eq!(frame(1024, stream).unwrap(), ["{\"a\":1}", "one\ntwo", "é"]);
    }

    #[test]
    fn a_line_that_never_ends_fails_at_the_bound() {
        let limit = 100;
        let mut frames = SseFrames::new(limit);
        let mut events = Vec::new();
        frames.push(b"data: ", &mut events).unwrap();
        let err = (0..1000)
            .find_map(|_| frames.push(&[b'x'; 7], &mut events).err())
            .expect("the bound is reached");
        assert_eq!(err, SseError::TooLarge { limit });
        assert!(
            frames.line.capacity() < 4 * limit,
            "nothing held past the bound"
        );
    }

    #[test]
    fn an_event_of_many_lines_is_bounded_too() {
        let line = b"data: 0123456789\n";
        let chunks: Vec<&[u8]> = vec![line; 20];
        assert_eq!(frame(100, &chunks), Err(SseError::TooLarge { limit: 100 }));
        // A line exactly at the bound is fine.
        assert_eq!(
            frame(16, &[b"data: 0123456789\n\n"]).unwrap(),
            ["0123456789"]
        );
    }

    #[test]
    fn data_that_is_not_text_is_an_error() {
        assert_eq!(frame(100, &[b"data: \xff\n\n"]), Err(SseError::NotText));
    }
}
