//! `GET /storage/v1/version`: polled by every Tahoe client about once a second, so it
//! does one `statvfs` and nothing else.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use swamp_proto::v1::{StorageVersion, VersionResponse};

use super::error::ApiError;
use super::{App, extract, negotiate};

/// The application version we report.
pub fn application_version() -> Vec<u8> {
    format!("swamp/{}", env!("CARGO_PKG_VERSION")).into_bytes()
}

/// The handler.
pub async fn version(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    extract::secrets(&headers, &[])?;
    negotiate::require_cbor_accept(&headers)?;
    let available = app.blocking(|s| Ok(s.available_space())).await?;
    let body = VersionResponse {
        storage: StorageVersion {
            // Tahoe reports its free space as the largest immutable share it takes.
            maximum_immutable_share_size: available,
            maximum_mutable_share_size: app.storage.limits().max_mutable_share_size,
            available_space: available,
        },
        application_version: application_version(),
    };
    Ok(extract::cbor_response(StatusCode::OK, body.to_cbor()))
}
