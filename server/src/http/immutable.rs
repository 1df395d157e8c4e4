//! Immutable uploads: allocate, write, abort, list, advise corrupt.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use swamp_proto::range::ByteRange;
use swamp_proto::secrets::SecretKind;
use swamp_proto::v1::{
    AdviseCorruptRequest, AllocateRequest, AllocateResponse, MAX_ADVISE_CORRUPT_BODY,
    MAX_ALLOCATE_BODY, RequiredRange, ShareKind, ShareSet, UploadProgress, encode,
};

use super::error::ApiError;
use super::{App, extract, lease, negotiate};

/// `POST /storage/v1/immutable/:si`
pub async fn allocate(
    State(app): State<App>,
    Path(si): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let si = extract::storage_index(&si)?;
    let mut secrets = extract::secrets(
        &headers,
        &[
            SecretKind::LeaseRenew,
            SecretKind::LeaseCancel,
            SecretKind::Upload,
        ],
    )?;
    negotiate::require_cbor_accept(&headers)?;
    let request: AllocateRequest = extract::cbor_body(&headers, body, MAX_ALLOCATE_BODY).await?;
    let upload_secret = secrets
        .upload
        .take()
        .ok_or_else(|| ApiError::Internal("upload secret missing".into()))?;
    let grant = lease::lease_grant(&app, 0, secrets)?;
    let allocation = app
        .blocking(move |s| {
            s.allocate(
                &si,
                &request.share_numbers.0,
                request.allocated_size,
                &grant,
                &upload_secret,
            )
        })
        .await?;
    app.activity.add(
        crate::activity::Counter::UploadsStarted,
        allocation.allocated.len() as u64,
    );
    let response = AllocateResponse {
        already_have: ShareSet(allocation.already_have),
        allocated: ShareSet(allocation.allocated),
    };
    Ok(extract::cbor_response(StatusCode::OK, encode(&response)))
}

/// `PATCH /storage/v1/immutable/:si/:shnum`: 200 while incomplete, 201 when complete.
pub async fn write(
    State(app): State<App>,
    Path((si, shnum)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (si, shnum) = (extract::storage_index(&si)?, extract::share_number(&shnum)?);
    let mut secrets = extract::secrets(&headers, &[SecretKind::Upload])?;
    let range = headers
        .get(axum::http::header::CONTENT_RANGE)
        .ok_or_else(|| {
            ApiError::BadRange("a write needs Content-Range: bytes <first>-<last>/*".into())
        })?
        .to_str()
        .map_err(|_| ApiError::BadRange("Content-Range is not ASCII".into()))
        .and_then(|v| {
            ByteRange::parse_content_range(v).map_err(|e| ApiError::BadRange(e.to_string()))
        })?;
    negotiate::require_cbor_accept(&headers)?;
    let limit = app.limits.get().max_patch_size;
    if range.len() > limit as u64 {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let phase = crate::backend::uploads::body_phase(range.first);
    let data = app.buffers.read_body(&headers, body, limit, phase).await?;
    if data.len() as u64 != range.len() {
        let message = format!(
            "the body has {} bytes but Content-Range covers {}",
            data.len(),
            range.len()
        );
        app.buffers.give(data);
        return Err(ApiError::BadBody(message));
    }
    let Some(secret) = secrets.upload.take() else {
        app.buffers.give(data);
        return Err(ApiError::Internal("upload secret missing".into()));
    };
    let (status, data) = app
        .blocking(move |s| {
            Ok((
                s.write_immutable(&si, shnum, &secret, range.first, &data),
                data,
            ))
        })
        .await?;
    app.buffers.give(data);
    let status = status.map_err(ApiError::from)?;
    let progress = UploadProgress {
        required: status
            .required
            .iter()
            .map(|&(begin, end)| RequiredRange { begin, end })
            .collect(),
    };
    let code = if status.complete {
        app.activity
            .add(crate::activity::Counter::UploadsCompleted, 1);
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(extract::cbor_response(code, encode(&progress)))
}

/// `PUT /storage/v1/immutable/:si/:shnum/abort`
pub async fn abort(
    State(app): State<App>,
    Path((si, shnum)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (si, shnum) = (extract::storage_index(&si)?, extract::share_number(&shnum)?);
    let mut secrets = extract::secrets(&headers, &[SecretKind::Upload])?;
    let secret = secrets
        .upload
        .take()
        .ok_or_else(|| ApiError::Internal("upload secret missing".into()))?;
    app.blocking(move |s| s.abort_immutable(&si, shnum, &secret))
        .await?;
    app.activity
        .add(crate::activity::Counter::UploadsAborted, 1);
    Ok(StatusCode::OK)
}

/// `GET /storage/v1/immutable/:si/shares`
pub async fn list_shares(
    State(app): State<App>,
    Path(si): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    list(app, &si, &headers).await
}

/// `POST /storage/v1/immutable/:si/:shnum/corrupt`
pub async fn advise_corrupt(
    State(app): State<App>,
    Path((si, shnum)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    corrupt(app, ShareKind::Immutable, &si, &shnum, &headers, body).await
}

/// The share list, shared by both kinds (Tahoe lists every numbered file either way).
pub(crate) async fn list(app: App, si: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let si = extract::storage_index(si)?;
    extract::secrets(headers, &[])?;
    negotiate::require_cbor_accept(headers)?;
    let shares = app.blocking(move |s| s.list_shares(&si)).await?;
    Ok(extract::cbor_response(
        StatusCode::OK,
        encode(&ShareSet(shares)),
    ))
}

/// A corruption advisory, shared by both kinds: 404 for an unknown share, checked
/// before the body is read (as Tahoe does).
pub(crate) async fn corrupt(
    app: App,
    kind: ShareKind,
    si: &str,
    shnum: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let (si, shnum) = (extract::storage_index(si)?, extract::share_number(shnum)?);
    extract::secrets(headers, &[])?;
    let held = app.blocking(move |s| s.list_shares(&si)).await?;
    if !held.contains(&shnum) {
        return Err(ApiError::Storage(crate::backend::StorageError::NotFound));
    }
    let request: AdviseCorruptRequest =
        extract::cbor_body(headers, body, MAX_ADVISE_CORRUPT_BODY).await?;
    request
        .validate()
        .map_err(|e| ApiError::BadBody(e.to_string()))?;
    tracing::warn!(%si, %shnum, kind = kind.as_str(), "client advises share corruption");
    app.blocking(move |s| s.advise_corrupt(kind, &si, shnum, &request.reason))
        .await?;
    Ok(StatusCode::OK)
}
