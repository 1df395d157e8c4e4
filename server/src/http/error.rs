//! `ApiError`, and the one place errors become HTTP statuses.
//!
//! Statuses follow Tahoe 1.20's `http_server.py` (the code, where the spec differs; see
//! `docs/compat.md`). 4xx bodies are a short text a person can act on; 5xx bodies are
//! generic and the cause is logged once, inside the request's span.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use swamp_proto::DecodeError;

use crate::backend::StorageError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No route: unknown path, or a storage index / share number that does not parse.
    #[error("no such resource")]
    NoRoute,
    /// Missing or wrong swissnum.
    #[error("missing or wrong Authorization: Tahoe-LAFS <swissnum>")]
    Unauthorized,
    /// An `Authorization` header that is not UTF-8.
    #[error("the Authorization header is not valid UTF-8")]
    BadAuthorizationHeader,
    /// Wrong set of `X-Tahoe-Authorization` secrets, or undecodable ones.
    #[error("{0}")]
    BadSecrets(DecodeError),
    /// A request body that is not CBOR.
    #[error("request bodies must be application/cbor")]
    UnsupportedMediaType,
    /// The client does not accept CBOR.
    #[error("responses are application/cbor; the Accept header must prefer it")]
    NotAcceptable,
    /// A body over the endpoint's limit.
    #[error("request body is larger than the {limit} bytes this endpoint accepts")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A body that does not match the schema, or has the wrong length.
    #[error("{0}")]
    BadBody(String),
    /// A malformed or unsupported `Range`/`Content-Range`.
    #[error("{0}")]
    BadRange(String),
    /// A feed token that is malformed, forged or expired.
    #[error("feed token refused: {0}")]
    BadToken(String),
    /// A feed token that does not cover what was asked.
    #[error("{0}")]
    Forbidden(String),
    /// A feed limit was reached.
    #[error(transparent)]
    FeedLimit(#[from] crate::feeds::FeedError),
    /// Request bodies in flight already fill `max_bodies_in_flight`.
    #[error("the server is busy receiving other requests; try again shortly")]
    Busy,
    /// The storage layer refused or failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A task of ours failed (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The status for this error. One exhaustive match: adding a variant anywhere
    /// fails the build here until it has a status.
    pub fn status(&self) -> StatusCode {
        match self {
            // Unmatched routes and unparseable path segments: Klein's 404.
            Self::NoRoute => StatusCode::NOT_FOUND,
            // spec "Server Versions"/auth: missing or wrong swissnum.
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            // http_server.py: a non-UTF-8 Authorization header is a 400.
            Self::BadAuthorizationHeader | Self::BadSecrets(_) | Self::BadBody(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRange(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            // Feeds (docs/feeds.md): a bad token is like a bad swissnum; a token used
            // beyond its scope is forbidden; limits ask the client to back off.
            Self::BadToken(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::FeedLimit(crate::feeds::FeedError::TooManyConnections(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::FeedLimit(
                crate::feeds::FeedError::TooManySubscriptions(_)
                | crate::feeds::FeedError::TooManyForToken(_),
            ) => StatusCode::TOO_MANY_REQUESTS,
            Self::Storage(e) => match e {
                StorageError::NotFound => StatusCode::NOT_FOUND,
                // Wrong upload secret on PATCH/abort; wrong write enabler on RTW.
                StorageError::UploadSecretMismatch | StorageError::BadWriteEnabler => {
                    StatusCode::UNAUTHORIZED
                }
                // A slot rewritten under a chunked read (http/read.rs): read again.
                StorageError::Conflict { .. } | StorageError::Changed => StatusCode::CONFLICT,
                // Abort of a complete share.
                StorageError::AlreadyComplete => StatusCode::METHOD_NOT_ALLOWED,
                // Tahoe answers 500 here; a write outside the allocation is the
                // client's error (docs/compat.md).
                StorageError::PastAllocation { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
                StorageError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                // RFC 4918's 507: the request is fine, the disk is full; retry later.
                StorageError::NoSpace => StatusCode::INSUFFICIENT_STORAGE,
                // A sync failed: nothing is acknowledged until a restart (durability.md).
                StorageError::NeedsRestart => StatusCode::SERVICE_UNAVAILABLE,
                // Client-named sizes past a documented bound (docs/security.md).
                StorageError::TooManyPieces { .. } => StatusCode::BAD_REQUEST,
                StorageError::AnswerTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                // A cap on work in progress: come back later.
                StorageError::TooManyUploads { .. } => StatusCode::SERVICE_UNAVAILABLE,
                StorageError::Damaged { .. } | StorageError::Io { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            // http/budget.rs: memory for bodies is full; come back later.
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Only a 500 hides its cause (paths, OS errors) from the client; a limit (503)
        // or a full disk (507) is the client's to know, in words.
        let body = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, cause = ?std::error::Error::source(&self).map(ToString::to_string), "request failed");
            "internal server error\n".to_string()
        } else {
            format!("{self}\n")
        };
        let mut response = (status, body).into_response();
        // Tahoe sets no content type on errors; the Python client never decodes them.
        response
            .headers_mut()
            .remove(axum::http::header::CONTENT_TYPE);
        response
    }
}

impl From<crate::feeds::SubscribeError> for ApiError {
    fn from(e: crate::feeds::SubscribeError) -> Self {
        match e {
            crate::feeds::SubscribeError::Limit(l) => Self::FeedLimit(l),
            crate::feeds::SubscribeError::Storage(s) => Self::Storage(s),
            crate::feeds::SubscribeError::Task(t) => Self::Internal(t),
        }
    }
}
