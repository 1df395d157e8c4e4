//! The byte-range dialect of GBS.
//!
//! Reads send `Range: bytes=<first>-<last>` (one range, both ends, inclusive) and get
//! `Content-Range: bytes <first>-<last>/*` back; immutable writes send
//! `Content-Range: bytes <first>-<last>/<total or *>`. Tahoe refuses every other form
//! (open-ended, suffix, multiple ranges, other units) with 416, and so do we.

use crate::DecodeError;

/// An inclusive byte range `[first, last]` with `first <= last`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ByteRange {
    /// The first byte's offset.
    pub first: u64,
    /// The last byte's offset (inclusive).
    pub last: u64,
}

impl ByteRange {
    /// The range covering `len` bytes from `offset`, or `None` for an empty or
    /// overflowing one (which cannot be written in this dialect).
    pub fn from_offset_len(offset: u64, len: u64) -> Option<Self> {
        if len == 0 {
            return None;
        }
        let last = offset.checked_add(len - 1)?;
        Some(Self {
            first: offset,
            last,
        })
    }

    /// Number of bytes covered.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Always false: a `ByteRange` covers at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The end offset, exclusive (saturating at `u64::MAX`).
    pub fn end(&self) -> u64 {
        self.last.saturating_add(1)
    }

    /// Parses a `Range` request header value.
    ///
    /// # Errors
    /// [`DecodeError::Header`] for anything but `bytes=<first>-<last>` with
    /// `first <= last`.
    pub fn parse_range_header(value: &str) -> Result<Self, DecodeError> {
        let spec = value
            .trim()
            .strip_prefix("bytes=")
            .ok_or_else(|| range_err("Range", "only 'bytes=<first>-<last>' is supported"))?;
        parse_pair(spec, "Range")
    }

    /// Formats this range as a `Range` request header value.
    pub fn to_range_header(&self) -> String {
        format!("bytes={}-{}", self.first, self.last)
    }

    /// Parses a `Content-Range` header value (`bytes a-b/*` or `bytes a-b/total`); the
    /// total is not used, as in Tahoe.
    ///
    /// # Errors
    /// [`DecodeError::Header`] for other forms, including `bytes */total`.
    pub fn parse_content_range(value: &str) -> Result<Self, DecodeError> {
        let rest = value
            .trim()
            .strip_prefix("bytes ")
            .ok_or_else(|| range_err("Content-Range", "must start with 'bytes '"))?;
        let (pair, total) = rest
            .split_once('/')
            .ok_or_else(|| range_err("Content-Range", "missing '/<total>' or '/*'"))?;
        if total != "*" && total.parse::<u64>().is_err() {
            return Err(range_err("Content-Range", "total must be a number or '*'"));
        }
        parse_pair(pair, "Content-Range")
    }

    /// Formats this range as a `Content-Range` value with an unknown total, as GBS does.
    pub fn to_content_range(&self) -> String {
        format!("bytes {}-{}/*", self.first, self.last)
    }
}

fn range_err(header: &'static str, reason: &str) -> DecodeError {
    DecodeError::Header {
        header,
        reason: reason.to_string(),
    }
}

fn parse_pair(spec: &str, header: &'static str) -> Result<ByteRange, DecodeError> {
    let (first, last) = spec
        .split_once('-')
        .ok_or_else(|| range_err(header, "expected '<first>-<last>'"))?;
    let number = |s: &str| -> Result<u64, DecodeError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(range_err(
                header,
                "both ends must be given as decimal numbers",
            ));
        }
        s.parse()
            .map_err(|_| range_err(header, "offset out of range"))
    };
    let (first, last) = (number(first)?, number(last)?);
    if first > last {
        return Err(range_err(header, "first byte is after last byte"));
    }
    // 0-(2^64-1) is 2^64 bytes: its length does not fit the u64 that `len` returns.
    if first == 0 && last == u64::MAX {
        return Err(range_err(header, "a range cannot cover all 2^64 offsets"));
    }
    Ok(ByteRange { first, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header() {
        assert_eq!(
            ByteRange::parse_range_header("bytes=0-9").unwrap(),
            ByteRange { first: 0, last: 9 }
        );
        for bad in [
            "bytes=0-",
            "bytes=-5",
            "bytes=5-2",
            "items=0-9",
            "bytes=0-1,3-4",
            "bytes=a-b",
            "",
        ] {
            assert!(ByteRange::parse_range_header(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_range() {
        assert_eq!(
            ByteRange::parse_content_range("bytes 10-19/*").unwrap(),
            ByteRange {
                first: 10,
                last: 19
            }
        );
        assert!(ByteRange::parse_content_range("bytes 10-19/100").is_ok());
        for bad in [
            "bytes */48",
            "bytes 5-1/*",
            "bytes 1-2",
            "octets 1-2/*",
            "bytes 1-2/x",
        ] {
            assert!(ByteRange::parse_content_range(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ByteRange { first: 3, last: 4 }.to_content_range(),
            "bytes 3-4/*"
        );
    }

    #[test]
    fn a_range_of_2_pow_64_bytes_is_refused() {
        // `len` overflowed for it: a panic in debug builds, and in release a
        // `Content-Range` covering every offset passed the PATCH size check as 0 bytes.
        assert!(ByteRange::parse_content_range("bytes 0-18446744073709551615/*").is_err());
        assert!(ByteRange::parse_range_header("bytes=0-18446744073709551615").is_err());
        let widest = ByteRange::parse_range_header("bytes=1-18446744073709551615").unwrap();
        assert_eq!(widest.len(), u64::MAX);
    }

    #[test]
    fn offset_len() {
        assert_eq!(ByteRange::from_offset_len(5, 0), None);
        assert_eq!(
            ByteRange::from_offset_len(5, 2),
            Some(ByteRange { first: 5, last: 6 })
        );
        assert_eq!(ByteRange::from_offset_len(u64::MAX, 2), None);
    }
}
