//! The one error type of this crate: input that does not decode; and how any error
//! is told to a person on one line ([`chain`]).

/// Why some bytes or text could not be decoded into a protocol value.
///
/// The message is meant for a person reading an HTTP 400 body or a CLI error, so it
/// says what was expected, never echoes secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Text that is not Tahoe base32 (lowercase `a-z2-7`, no padding, canonical tail).
    #[error("not valid base32: {0}")]
    Base32(String),
    /// A value of the wrong length.
    #[error("{what} must be {expected} bytes, got {actual}")]
    Length {
        /// What was being decoded.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// A CBOR body that does not match the endpoint's schema.
    #[error("invalid CBOR body: {0}")]
    Cbor(String),
    /// A malformed header value.
    #[error("invalid {header} header: {reason}")]
    Header {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A malformed NURL.
    #[error("invalid NURL: {0}")]
    Nurl(String),
    /// Any other malformed value, described.
    #[error("{0}")]
    Invalid(String),
}

/// An error and its causes on one line (`outer: cause: root cause`), leaving out a
/// cause whose text the line already holds (wrappers often repeat their source's).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}
