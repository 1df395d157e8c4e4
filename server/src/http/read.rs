//! Share reads, both kinds: the whole share (200) without `Range`, else exactly one
//! `bytes=a-b` range: 206 with `Content-Range: bytes a-b'/*` clipped to the share, or
//! 204 when the range starts at or past the end. Ranges of up to 8 MiB are read in one
//! go; longer ones (and whole shares) stream from the file.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use swamp_proto::range::ByteRange;
use swamp_proto::v1::ShareKind;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::error::ApiError;
use super::{App, extract};

/// Ranges up to this size are read whole, in one go; longer ones stream.
const READ_AT_ONCE: u64 = 8 * 1024 * 1024;

/// `GET /storage/v1/immutable/:si/:shnum`
pub async fn immutable(
    State(app): State<App>,
    Path((si, shnum)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    octet_stream(read(app, ShareKind::Immutable, &si, &shnum, &headers).await)
}

/// `GET /storage/v1/mutable/:si/:shnum`
pub async fn mutable(
    State(app): State<App>,
    Path((si, shnum)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    octet_stream(read(app, ShareKind::Mutable, &si, &shnum, &headers).await)
}

/// Every answer of a read route, errors included, says `application/octet-stream`:
/// Tahoe's server does so, and its client checks the content type before the status,
/// so a 404 without it would surface as a confusing type error instead of "not found".
fn octet_stream(result: Result<Response, ApiError>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/octet-stream"
            .parse()
            .expect("invariant: valid header"),
    );
    response
}

async fn read(
    app: App,
    kind: ShareKind,
    si: &str,
    shnum: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let (si, shnum) = (extract::storage_index(si)?, extract::share_number(shnum)?);
    extract::secrets(headers, &[])?;
    let range = match headers.get(RANGE) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::BadRange("Range is not ASCII".into()))
                .and_then(|v| {
                    ByteRange::parse_range_header(v).map_err(|e| ApiError::BadRange(e.to_string()))
                })?,
        ),
    };
    let share = app
        .blocking(move |s| s.open_share(kind, &si, shnum))
        .await?;
    let (start, len, status) = match range {
        None => (0, share.data_length, StatusCode::OK),
        Some(r) => {
            let end = r.end().min(share.data_length);
            if r.first >= end {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            (r.first, end - r.first, StatusCode::PARTIAL_CONTENT)
        }
    };
    let body = if len <= READ_AT_ONCE {
        // One positioned read on the blocking pool, not one pool round trip per
        // buffer: on a busy machine each round trip can cost milliseconds.
        let (file, at) = (share.file, share.data_offset + start);
        let data = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, at).map(|()| buf)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("read task failed: {e}")))?
        .map_err(|e| ApiError::Internal(format!("read failed: {e}")))?;
        Body::from(data)
    } else {
        let mut file = tokio::fs::File::from_std(share.file);
        file.seek(std::io::SeekFrom::Start(share.data_offset + start))
            .await
            .map_err(|e| ApiError::Internal(format!("seek failed: {e}")))?;
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(len),
            1024 * 1024,
        ))
    };
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_LENGTH, len.into());
    if status == StatusCode::PARTIAL_CONTENT {
        let content_range = ByteRange {
            first: start,
            last: start + len - 1,
        }
        .to_content_range();
        h.insert(
            CONTENT_RANGE,
            content_range.parse().expect("invariant: valid header"),
        );
    }
    Ok(response)
}
