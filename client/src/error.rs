//! The client's one error type.

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
