//! Share reads, both kinds: the whole share (200) without `Range`, else exactly one
//! `bytes=a-b` range: 206 with `Content-Range: bytes a-b'/*` clipped to the share, or
//! 204 when the range starts at or past the end. Reads of up to 1 MiB are first tried
//! on the request's own thread, from the page cache only (`backend/cached.rs`), into a
//! pooled buffer. Otherwise ranges of up to 16 MiB are read with one positioned read on
//! the blocking pool (a file stream costs a blocking round trip per chunk); larger
//! immutable reads stream from the file in 1 MiB chunks. Larger slot reads go in 1 MiB
//! chunks too, each under the storage index's lock, and end the stream early (the
//! client sees a short body and reads again) if the slot changes between two chunks:
//! what a read holds in memory is bounded, and no read ever mixes two versions.

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
    let whole = size <= WHOLE_READ_MAX;
    if kind == ShareKind::Mutable && !whole && cached.is_none() {
        return slot_in_chunks(app, si, shnum, range).await;
    }
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
    Ok(with_length(status, body, start, len))
}

/// The response to a read of `len` bytes at `start`.
fn with_length(status: StatusCode, body: Body, start: u64, len: u64) -> Response {
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
    response
}

/// Bytes of a slot read at a time when the whole read is too large to hold.
const SLOT_CHUNK: u64 = 1024 * 1024;

/// A large slot read, in chunks that each see the version the first one saw.
async fn slot_in_chunks(
    app: App,
    si: swamp_proto::StorageIndex,
    shnum: swamp_proto::ShareNumber,
    range: Option<ByteRange>,
) -> Result<Response, ApiError> {
    let first = range.map_or(0, |r| r.first);
    let (data_length, head, stamp) = app
        .blocking(move |s| s.read_slot_chunk(&si, shnum, first, SLOT_CHUNK, None))
        .await?;
    let (status, end) = match range {
        None => (StatusCode::OK, data_length),
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end().min(data_length)),
    };
    if first >= end {
        return Ok(if range.is_some() {
            StatusCode::NO_CONTENT.into_response()
        } else {
            with_length(status, Body::empty(), 0, 0)
        });
    }
    let next = first + head.len() as u64;
    let rest = futures::stream::try_unfold(next, move |at| {
        let app = app.clone();
        async move {
            if at >= end {
                return Ok(None);
            }
            let size = (end - at).min(SLOT_CHUNK);
            let (_, data, _) = app
                .blocking(move |s| s.read_slot_chunk(&si, shnum, at, size, Some(stamp)))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if data.is_empty() {
                return Err(std::io::Error::other(
                    "the slot shrank while it was being read",
                ));
            }
            let next = at + data.len() as u64;
            Ok(Some((Bytes::from(data), next)))
        }
    });
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) });
    let body = Body::from_stream(futures::StreamExt::chain(head, rest));
    Ok(with_length(status, body, first, end - first))
}
