//! The client's one error type.

use std::time::Duration;

use swamp_proto::DecodeError;

/// Why a storage request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("server answered {status}: {body}")]
    Http {
        /// The status.
        status: http::StatusCode,
        /// The start of the body (the server's explanation).
        body: String,
    },
    /// Connecting, TLS (a wrong pin included) or the transfer failed.
    #[error("request failed")]
    Transport(#[source] reqwest::Error),
    /// The server did not answer in time: the connection (TCP and TLS) was not up
    /// within [`ClientOptions::connect_timeout`](crate::ClientOptions::connect_timeout),
    /// or no answer, or no further bytes of one, came within
    /// [`ClientOptions::read_timeout`](crate::ClientOptions::read_timeout).
    #[error("timed out {} after {after:?}", if *connecting { "connecting" } else { "waiting for the server's answer" })]
    Timeout {
        /// True if the connection was never made.
        connecting: bool,
        /// The bound that ran out.
        after: Duration,
    },
    /// The server sent (or announced) more bytes than the client asked for or accepts
    /// for this kind of answer; reading stopped there.
    #[error("the server's {what} is over the limit of {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: &'static str,
        /// The bound.
        limit: u64,
    },
    /// The answer did not decode.
    #[error("the server's answer does not decode")]
    Decode(#[source] DecodeError),
    /// The answer broke the protocol (wrong content type, wrong length...).
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The HTTP status, for errors that have one.
    pub fn status(&self) -> Option<http::StatusCode> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        Self::Transport(e)
    }
}
