//! Every way a web-API request fails, and the one place each becomes a status.
//!
//! Tahoe answers errors with a short `text/plain` body and a status chosen by
//! `humanize_exception` (`web/common.py`); the clients in front of us (Tahoe's CLI,
//! magic-folder, GridSync) branch on the status, so the statuses follow Tahoe's.
//! Server-side failures (5xx) are logged here with their cause; their body is short.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use swamp_client::grid::{FileError, GridError};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebError {
    /// The request is malformed or asks for something this resource cannot do.
    #[error("{0}")]
    BadRequest(String),
    /// `/private` (or `t=watch`) without the node's API token (`api_auth_token`).
    #[error("Unauthorized")]
    Unauthorized,
    /// A path names a child that does not exist, or no resource lives here.
    #[error("{0}")]
    NotFound(String),
    /// The method is not one this resource answers.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The name is taken and the request may not replace it, or a file is in the way.
    #[error("{0}")]
    Conflict(String),
    /// Too few shares to read the file or directory.
    #[error("{0}")]
    Gone(String),
    /// A request body larger than its bound.
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The bound.
        limit: u64,
    },
    /// A part of a request beyond its bound (an HTML form's parts, fields, headers).
    #[error("{0}")]
    Oversized(String),
    /// A `Range` starting at or past the end of the file.
    #[error("First beyond end of file")]
    RangeNotSatisfiable {
        /// The file's size, for `Content-Range: bytes */size`.
        size: u64,
    },
    /// A Tahoe feature this gateway does not have (yet).
    #[error("{0}")]
    NotImplemented(String),
    /// The grid could not take the write now (too few servers).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a local failure (spool file, thread): logged, answered generically.
    #[error("{0}")]
    Internal(String),
}

impl WebError {
    pub(crate) fn bad(text: impl Into<String>) -> Self {
        Self::BadRequest(text.into())
    }

    /// The status, and the body a client sees.
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            // ExistingChildError, "a file was in the way".
            Self::Conflict(_) => StatusCode::CONFLICT,
            // NotEnoughSharesError, NoSharesError, UnrecoverableFileError.
            Self::Gone(_) => StatusCode::GONE,
            Self::TooLarge { .. } | Self::Oversized(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "web API request failed");
                "Internal Server Error\n".to_string()
            }
            other if status.is_server_error() => {
                tracing::warn!(%status, error = %other, "web API request failed");
                format!("{other}\n")
            }
            other => {
                tracing::debug!(%status, error = %other, "web API request refused");
                format!("{other}\n")
            }
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if matches!(self, Self::Unauthorized) {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("tahoe-lafs"),
            );
        }
        if let Self::RangeNotSatisfiable { size } = self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            headers.insert(header::CONTENT_RANGE, value);
        }
        response
    }
}

impl From<GridError> for WebError {
    fn from(e: GridError) -> Self {
        match e {
            GridError::NotEnoughShares { found: 0, .. } => Self::Gone(format!(
                "NoSharesError: no shares could be found. Zero shares usually indicates a \
                 corrupt URI, or that no servers were connected, but it might also indicate \
                 severe corruption. You should perform a filecheck on this object to learn \
                 more.\n\nThe full error message is:\n{e}"
            )),
            GridError::NotEnoughShares { .. } => Self::Gone(format!(
                "NotEnoughSharesError: This indicates that some servers were unavailable, or \
                 that shares have been lost to server departure, hard drive failure, or disk \
                 corruption. You should perform a filecheck on this object to learn more.\n\n\
                 The full error message is:\n{e}"
            )),
            GridError::NoSuchChild { path } => {
                let name = path.rsplit('/').next().unwrap_or(&path).to_string();
                Self::NotFound(format!("No such child: {name}"))
            }
            GridError::ChildExists { .. } => Self::Conflict(
                "There was already a child by that name, and you asked me to not replace it."
                    .into(),
            ),
            GridError::NotADirectory { path } => {
                Self::BadRequest(format!("{path}: not a directory"))
            }
            GridError::ReadOnlyDirectory { .. } | GridError::NotWritable { .. } => {
                Self::BadRequest(format!("NotWriteableError: {e}"))
            }
            GridError::NotHappy { .. } => Self::Unavailable(format!("UploadUnhappinessError: {e}")),
            GridError::UncoordinatedWrite { .. } => {
                Self::Unavailable(format!("UncoordinatedWriteError: {e}"))
            }
            GridError::Format(_) => Self::BadRequest(e.to_string()),
            GridError::Server { .. } => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<FileError> for WebError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Grid(e) => e.into(),
            FileError::Io(e) => Self::Internal(format!("local file: {e}")),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<swamp_proto::DecodeError> for WebError {
    fn from(e: swamp_proto::DecodeError) -> Self {
        Self::BadRequest(e.to_string())
    }
}
