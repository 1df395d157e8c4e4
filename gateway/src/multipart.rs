//! A streaming `multipart/form-data` reader (RFC 7578), small on purpose.
//!
//! An HTML form's upload may be as large as any `PUT`, so its file part must go to
//! disk as it arrives, never whole into memory; the reader hands out a part's body
//! a piece at a time, keeping at most one read plus a delimiter's length buffered.
//! Everything else it holds is bounded: [`MAX_PARTS`] parts, [`MAX_HEADER`] bytes of
//! headers per part, [`MAX_PREAMBLE`] bytes before the first boundary. What a part's
//! body may hold is the caller's to bound (small fields, or the spooled file).
//!
//! Only what browsers send is read: each part's `Content-Disposition: form-data`
//! with its `name` and `filename`; other part headers are skipped, and a part
//! without a name is malformed.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use memchr::memmem::Finder;

use crate::error::WebError;

/// Parts in one form at most.
pub(crate) const MAX_PARTS: usize = 64;
/// Bytes of one part's header block at most.
pub(crate) const MAX_HEADER: usize = 8 * 1024;
/// Bytes before the first boundary at most (browsers send none).
pub(crate) const MAX_PREAMBLE: usize = 8 * 1024;

/// What a part says of itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PartHead {
    /// The form field's name.
    pub(crate) name: String,
    /// The file's name, for a file input (may be empty: no file chosen).
    pub(crate) filename: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter: a part's headers, or the close delimiter, follow.
    Delimiter,
    /// Inside a part's body.
    Body,
    /// After the close delimiter.
    Done,
}

fn malformed(why: &str) -> WebError {
    WebError::bad(format!("malformed multipart/form-data body: {why}"))
}

fn header_too_large() -> WebError {
    WebError::Oversized(format!(
        "a multipart part's headers are longer than {MAX_HEADER} bytes"
    ))
}

/// The boundary a `Content-Type: multipart/form-data; boundary=...` names.
pub(crate) fn boundary(content_type: &str) -> Result<String, WebError> {
    let mut params = content_type.split(';');
    let kind = params.next().unwrap_or("").trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return Err(malformed("not multipart/form-data"));
    }
    for (key, value) in params.filter_map(|p| p.split_once('=')) {
        if key.trim().eq_ignore_ascii_case("boundary") {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            // RFC 2046: 1 to 70 characters.
            if value.is_empty() || value.len() > 70 || !value.is_ascii() {
                return Err(malformed("the boundary must be 1 to 70 ASCII characters"));
            }
            return Ok(value.to_string());
        }
    }
    Err(malformed("no boundary= in Content-Type"))
}

/// A form being read from a body stream.
pub(crate) struct Multipart<S> {
    stream: S,
    buf: BytesMut,
    /// `\r\n--BOUNDARY`.
    delimiter: Finder<'static>,
    state: State,
    parts: usize,
    /// The stream has ended.
    eof: bool,
}

impl<S, E> Multipart<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    pub(crate) fn new(stream: S, boundary: &str) -> Self {
        let mut buf = BytesMut::new();
        // A leading CRLF lets the first delimiter match the same pattern as the rest.
        buf.extend_from_slice(b"\r\n");
        Self {
            stream,
            buf,
            delimiter: Finder::new(format!("\r\n--{boundary}").as_bytes()).into_owned(),
            state: State::Preamble,
            parts: 0,
            eof: false,
        }
    }

    fn delimiter_len(&self) -> usize {
        self.delimiter.needle().len()
    }

    /// Reads more of the body; false at its end.
    async fn fill(&mut self) -> Result<bool, WebError> {
        if self.eof {
            return Ok(false);
        }
        match self.stream.next().await {
            Some(Ok(chunk)) => {
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Some(Err(e)) => Err(WebError::bad(format!("reading the request body: {e}"))),
            None => {
                self.eof = true;
                Ok(false)
            }
        }
    }

    /// The next part's headers (after the rest of the current part is skipped), or
    /// `None` after the close delimiter.
    pub(crate) async fn next_part(&mut self) -> Result<Option<PartHead>, WebError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Body => while self.chunk().await?.is_some() {},
                State::Preamble => {
                    if let Some(at) = self.delimiter.find(&self.buf) {
                        self.buf.advance(at + self.delimiter_len());
                        self.state = State::Delimiter;
                    } else if self.buf.len() > MAX_PREAMBLE + self.delimiter_len() {
                        return Err(malformed("no boundary where the form should start"));
                    } else if !self.fill().await? {
                        return Err(malformed("no boundary in the body"));
                    }
                }
                State::Delimiter => return self.after_delimiter().await,
            }
        }
    }

    /// After a delimiter: `--` ends the form, else padding, CRLF and headers.
    async fn after_delimiter(&mut self) -> Result<Option<PartHead>, WebError> {
        while self.buf.len() < 2 {
            if !self.fill().await? {
                return Err(malformed("the body ends after a boundary"));
            }
        }
        if self.buf.starts_with(b"--") {
            // The epilogue, if any, is not read.
            self.state = State::Done;
            return Ok(None);
        }
        let block = loop {
            if let Some(end) = Finder::new(b"\r\n\r\n").find(&self.buf) {
                break self.buf.split_to(end + 4);
            }
            // An empty header block: CRLF right after the padding, then CRLF.
            if self.buf.len() > MAX_HEADER {
                return Err(header_too_large());
            }
            if !self.fill().await? {
                return Err(malformed("the body ends inside a part's headers"));
            }
        };
        if block.len() > MAX_HEADER {
            return Err(header_too_large());
        }
        self.parts += 1;
        if self.parts > MAX_PARTS {
            return Err(WebError::Oversized(format!(
                "a form may have at most {MAX_PARTS} parts"
            )));
        }
        self.state = State::Body;
        parse_head(&block).map(Some)
    }

    /// The next piece of the current part's body, `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, WebError> {
        if self.state != State::Body {
            return Ok(None);
        }
        loop {
            if let Some(at) = self.delimiter.find(&self.buf) {
                if at > 0 {
                    return Ok(Some(self.buf.split_to(at).freeze()));
                }
                self.buf.advance(self.delimiter_len());
                self.state = State::Delimiter;
                return Ok(None);
            }
            // All but a possible start of the delimiter is the part's.
            let safe = self.buf.len().saturating_sub(self.delimiter_len() - 1);
            if safe > 0 {
                return Ok(Some(self.buf.split_to(safe).freeze()));
            }
            if !self.fill().await? {
                return Err(malformed("the body ends before its closing boundary"));
            }
        }
    }
}

/// A part's header block (ending in CRLF CRLF): its `Content-Disposition`.
fn parse_head(block: &[u8]) -> Result<PartHead, WebError> {
    let text =
        std::str::from_utf8(block).map_err(|_| malformed("a part's headers are not UTF-8"))?;
    // Transport padding after the delimiter, then CRLF, then the header lines.
    let text = text
        .trim_start_matches([' ', '\t'])
        .strip_prefix("\r\n")
        .ok_or_else(|| malformed("no line break after a boundary"))?;
    let mut head = None;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| malformed("a part header without a colon"))?;
        if key.trim().eq_ignore_ascii_case("content-disposition") {
            head = Some(disposition(value)?);
        }
    }
    head.ok_or_else(|| malformed("a part without Content-Disposition"))
}

/// `form-data; name="x"; filename="y"`.
fn disposition(value: &str) -> Result<PartHead, WebError> {
    let mut params = Params::new(value);
    let kind = params.token();
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(malformed("a part that is not form-data"));
    }
    let (mut name, mut filename) = (None, None);
    while let Some((key, value)) = params.next_param()? {
        if key.eq_ignore_ascii_case("name") {
            name.get_or_insert(value);
        } else if key.eq_ignore_ascii_case("filename") {
            filename.get_or_insert(value);
        }
    }
    Ok(PartHead {
        name: name.ok_or_else(|| malformed("a part without a name"))?,
        filename,
    })
}

/// The parameters of a header value, read left to right.
struct Params {
    rest: VecDeque<char>,
}

impl Params {
    fn new(text: &str) -> Self {
        Self {
            rest: text.chars().collect(),
        }
    }

    fn skip_space(&mut self) {
        while self.rest.front().is_some_and(|c| c.is_whitespace()) {
            self.rest.pop_front();
        }
    }

    /// Characters up to `;`, `=` or the end, trimmed.
    fn token(&mut self) -> String {
        self.skip_space();
        let mut out = String::new();
        while let Some(&c) = self.rest.front() {
            if c == ';' || c == '=' {
                break;
            }
            out.push(c);
            self.rest.pop_front();
        }
        out.trim_end().to_string()
    }

    /// The next `; key=value` (value a token or a quoted string).
    fn next_param(&mut self) -> Result<Option<(String, String)>, WebError> {
        self.skip_space();
        match self.rest.pop_front() {
            None => return Ok(None),
            Some(';') => {}
            Some(_) => return Err(malformed("Content-Disposition parameters")),
        }
        let key = self.token();
        if self.rest.pop_front() != Some('=') {
            // A parameter without a value (`; foo`): skipped.
            return if key.is_empty() && self.rest.is_empty() {
                Ok(None)
            } else {
                Ok(Some((key, String::new())))
            };
        }
        self.skip_space();
        if self.rest.front() != Some(&'"') {
            return Ok(Some((key, self.token())));
        }
        self.rest.pop_front();
        let mut value = String::new();
        loop {
            match self.rest.pop_front() {
                None => return Err(malformed("an unterminated quoted string")),
                Some('"') => break,
                Some('\\') => match self.rest.pop_front() {
                    Some(c) => value.push(c),
                    None => return Err(malformed("an unterminated quoted string")),
                },
                Some(c) => value.push(c),
            }
        }
        Ok(Some((key, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pieces: Vec<&'static [u8]>) -> Multipart<impl Stream<Item = Result<Bytes, String>>> {
        let stream = futures::stream::iter(
            pieces
                .into_iter()
                .map(|p| Ok::<_, String>(Bytes::from_static(p))),
        );
        Multipart::new(stream, "XyZ")
    }

    async fn read_all(
        mut form: Multipart<impl Stream<Item = Result<Bytes, String>> + Unpin>,
    ) -> Result<Vec<(PartHead, Vec<u8>)>, WebError> {
        let mut out = Vec::new();
        while let Some(head) = form.next_part().await? {
            let mut body = Vec::new();
            while let Some(chunk) = form.chunk().await? {
                body.extend_from_slice(&chunk);
            }
            out.push((head, body));
        }
        Ok(out)
    }

    const FORM: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nupload\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".txt\"\r\n\
        Content-Type: text/plain\r\n\r\nline\r\n--XyYnot yet\r\n--Xy\r\n--XyZ--\r\nepilogue";

    #[tokio::test]
    async fn parts_read_whole_or_a_byte_at_a_time() {
        let whole = read_all(reader(vec![FORM])).await.expect("parses");
        let bytes: Vec<&'static [u8]> = FORM.chunks(1).collect();
        let split = read_all(reader(bytes)).await.expect("parses");
        assert_eq!(whole, split);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].0.name, "t");
        assert_eq!(whole[0].1, b"upload");
        assert_eq!(whole[1].0.filename.as_deref(), Some("a \"b\".txt"));
        assert_eq!(whole[1].1, b"line\r\n--XyYnot yet\r\n--Xy");
    }

    #[tokio::test]
    async fn a_large_part_passes_through_a_small_buffer() {
        let piece: &'static [u8] = Box::leak(vec![b'z'; 64 * 1024].into_boxed_slice());
        let mut pieces = vec![&b"--XyZ\r\nContent-Disposition: form-data; name=file\r\n\r\n"[..]];
        pieces.extend(std::iter::repeat_n(piece, 256));
        pieces.push(b"\r\n--XyZ--");
        let mut form = reader(pieces);
        assert!(form.next_part().await.expect("head").is_some());
        let mut total = 0;
        while let Some(chunk) = form.chunk().await.expect("chunk") {
            total += chunk.len();
            // At most one read plus a delimiter's length is ever held.
            assert!(form.buf.len() <= piece.len() + 16, "{}", form.buf.len());
        }
        assert_eq!(total, 256 * piece.len());
        assert!(form.next_part().await.expect("end").is_none());
    }

    #[tokio::test]
    async fn malformed_forms_are_refused() {
        for bad in [
            &b"no boundary at all"[..],
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunfinished",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--",
            b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--XyZ--",
            b"--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--XyZ--",
            b"--XyZ",
            // The boundary inside a body ends the part: what follows must be CRLF.
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZoops\r\n--XyZ--",
        ] {
            let got = read_all(reader(vec![bad])).await;
            assert!(
                matches!(got, Err(WebError::BadRequest(_))),
                "{:?}: {got:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn bounds_hold() {
        let mut many = Vec::new();
        for _ in 0..=MAX_PARTS {
            many.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n");
        }
        many.extend_from_slice(b"--XyZ--");
        let many: &'static [u8] = Box::leak(many.into_boxed_slice());
        assert!(matches!(
            read_all(reader(vec![many])).await,
            Err(WebError::Oversized(_))
        ));
        let mut long = b"--XyZ\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEADER));
        let long: &'static [u8] = Box::leak(long.into_boxed_slice());
        assert!(matches!(
            read_all(reader(vec![long])).await,
            Err(WebError::Oversized(_))
        ));
    }

    #[test]
    fn boundaries_come_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\"").expect("quoted"),
            "a b"
        );
        assert_eq!(
            boundary("Multipart/Form-Data;charset=x; boundary=----W").expect("plain"),
            "----W"
        );
        assert!(boundary("multipart/form-data").is_err());
        assert!(boundary("text/plain; boundary=x").is_err());
        assert!(boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))).is_err());
    }
}
