//! Share reads, both kinds: the whole share (200) without `Range`, else exactly one
//! `bytes=a-b` range: 206 with `Content-Range: bytes a-b'/*` clipped to the share, or
//! 204 when the range starts at or past the end. Reads of up to 1 MiB are first tried
//! on the request's own thread, from the page cache only (`backend/cached.rs`), into a
//! pooled buffer. Otherwise slots and ranges of up to 16 MiB are read with one
//! positioned read on the blocking pool (a file stream costs a blocking round trip per
//! chunk); larger immutable reads stream from the file in 1 MiB chunks.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use swamp_proto::range::ByteRange;
use swamp_proto::v1::ShareKind;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::error::ApiError;

/// Largest immutable read answered from one positioned read instead of a stream.
const WHOLE_READ_MAX: u64 = 16 * 1024 * 1024;
use super::{App, extract, read_pool};

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
    // One blocking call per request: a slot, or a range of up to `WHOLE_READ_MAX`, is
    // read with one positioned read (under the storage index's lock, so a slot read sees
    // one whole version); a larger immutable read streams from the file.
    let (first, size) = range.map_or((0, u64::MAX), |r| (r.first, r.end() - r.first));
    let cached = if size <= read_pool::MAX_POOLED as u64 {
        let mut buf = app.reads.take(size as usize);
        app.storage
            .read_share_cached(kind, &si, shnum, first, buf.space())?
            .map(|(length, n)| (length, Err(buf.into_bytes(n))))
    } else {
        None
    };
    let whole = kind == ShareKind::Mutable || size <= WHOLE_READ_MAX;
    let read = match cached {
        Some(read) => read,
        None => {
            app.blocking(move |s| {
                if whole {
                    s.read_share(kind, &si, shnum, first, size)
                        .map(|(length, data)| (length, Err(Bytes::from(data))))
                } else {
                    s.open_share(kind, &si, shnum)
                        .map(|share| (share.data_length, Ok(share)))
                }
            })
            .await?
        }
    };
    let (data_length, read) = read;
    let (start, len, status) = match range {
        None => (0, data_length, StatusCode::OK),
        Some(r) => {
            let end = r.end().min(data_length);
            if r.first >= end {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            (r.first, end - r.first, StatusCode::PARTIAL_CONTENT)
        }
    };
    let body = match read {
        Err(data) => Body::from(data),
        Ok(share) => {
            let mut file = tokio::fs::File::from_std(share.file);
            file.seek(std::io::SeekFrom::Start(share.data_offset + start))
                .await
                .map_err(|e| ApiError::Internal(format!("seek failed: {e}")))?;
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                file.take(len),
                1024 * 1024,
            ))
        }
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
