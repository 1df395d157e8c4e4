//! Slots: read-test-write, list, advise corrupt (reads are in `read.rs`).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_bytes::ByteBuf;
use swamp_proto::secrets::SecretKind;
use swamp_proto::v1::{ReadTestWriteRequest, ReadTestWriteResponse, ShareKind, encode};

use super::error::ApiError;
use super::{App, extract, immutable, lease, negotiate};
use crate::backend::slots_inline;

/// `POST /storage/v1/mutable/:si/read-test-write`: always 200 when it ran; `success`
/// says whether the tests passed and the writes happened.
pub async fn read_test_write(
    State(app): State<App>,
    Path(si): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let si = extract::storage_index(&si)?;
    let mut secrets = extract::secrets(
        &headers,
        &[
            SecretKind::WriteEnabler,
            SecretKind::LeaseRenew,
            SecretKind::LeaseCancel,
        ],
    )?;
    negotiate::require_cbor_accept(&headers)?;
    let request: ReadTestWriteRequest =
        extract::cbor_body(&headers, body, app.limits.get().max_read_test_write_size).await?;
    let request = request
        .validated()
        .map_err(|e| ApiError::BadBody(e.to_string()))?;
    let write_enabler = secrets
        .write_enabler
        .take()
        .ok_or_else(|| ApiError::Internal("write enabler missing".into()))?;
    let grant = lease::lease_grant(&app, 1, secrets)?;
    // Small ones on this thread but for the sync, large ones on the blocking pool
    // (`backend/slots_inline.rs`).
    let outcome = if slots_inline::is_small(&request) {
        app.storage
            .read_test_write_inline(si, write_enabler, grant, request)
            .await?
    } else {
        app.blocking(move |s| s.read_test_write(&si, &write_enabler, &grant, &request))
            .await?
    };
    let data: BTreeMap<u64, Vec<ByteBuf>> = outcome
        .reads
        .into_iter()
        .map(|(n, reads)| {
            (
                u64::from(n.get()),
                reads.into_iter().map(ByteBuf::from).collect(),
            )
        })
        .collect();
    let body = ReadTestWriteResponse {
        success: outcome.success,
        data,
    };
    Ok(extract::cbor_response(StatusCode::OK, encode(&body)))
}

/// `GET /storage/v1/mutable/:si/shares`
pub async fn list_shares(
    State(app): State<App>,
    Path(si): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    immutable::list(app, &si, &headers).await
}

/// `POST /storage/v1/mutable/:si/:shnum/corrupt`
pub async fn advise_corrupt(
    State(app): State<App>,
    Path((si, shnum)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    immutable::corrupt(app, ShareKind::Mutable, &si, &shnum, &headers, body).await
}
