//! Turning request parts into protocol values: path ids, secrets, CBOR bodies.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use serde::de::DeserializeOwned;
use swamp_proto::secrets::{PresentedSecrets, SecretKind};
use swamp_proto::{ShareNumber, StorageIndex};

use super::error::ApiError;
use super::negotiate;
use swamp_proto::v1::endpoint::SECRETS_HEADER;

/// Parses a storage index path segment; anything else matches no route.
///
/// # Errors
/// [`ApiError::NoRoute`].
pub fn storage_index(segment: &str) -> Result<StorageIndex, ApiError> {
    segment.parse().map_err(|_| ApiError::NoRoute)
}

/// Parses a share number path segment.
///
/// # Errors
/// [`ApiError::NoRoute`].
pub fn share_number(segment: &str) -> Result<ShareNumber, ApiError> {
    segment.parse().map_err(|_| ApiError::NoRoute)
}

/// The `X-Tahoe-Authorization` secrets, which must be exactly `required`.
///
/// # Errors
/// [`ApiError::BadSecrets`].
pub fn secrets(headers: &HeaderMap, required: &[SecretKind]) -> Result<PresentedSecrets, ApiError> {
    PresentedSecrets::parse(
        headers.get_all(SECRETS_HEADER).iter().map(|v| v.as_bytes()),
        required,
    )
    .map_err(ApiError::BadSecrets)
}

/// Reads a whole body of at most `limit` bytes.
///
/// # Errors
/// [`ApiError::BodyTooLarge`] (checked against Content-Length first, so nothing is
/// read), or [`ApiError::BadBody`] if the connection fails mid-body.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    if let Some(len) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(ApiError::BodyTooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| {
            s.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
        }) || e.to_string().contains("length limit");
        if too_large {
            ApiError::BodyTooLarge { limit }
        } else {
            ApiError::BadBody(format!("could not read the request body: {e}"))
        }
    })
}

/// Reads and decodes a CBOR body of at most `limit` bytes, in Tahoe's order: content
/// type (415), size (413), schema (400).
///
/// # Errors
/// As above.
pub async fn cbor_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    negotiate::require_cbor_content_type(headers)?;
    let bytes = read_body(headers, body, limit).await?;
    swamp_proto::v1::decode(&bytes).map_err(|e| ApiError::BadBody(e.to_string()))
}

/// A `200 OK` CBOR response.
pub fn cbor_response(status: axum::http::StatusCode, body: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            swamp_proto::v1::CBOR_MEDIA_TYPE,
        )],
        body,
    )
        .into_response()
}
