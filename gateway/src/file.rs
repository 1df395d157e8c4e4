//! Reading a file: `GET` and `HEAD` of `/uri/$FILECAP`, `/uri/$DIRCAP/PATH`,
//! `/file/$FILECAP/NAME`, with Tahoe's headers (`FileDownloader.render` in
//! `web/filenode.py`): a content type guessed from the name (`text/plain` when
//! nothing matches), `Accept-Ranges: bytes`, and for a `Range` (only its first
//! range, as Tahoe) 206 with `Content-Range`, or 416 when it starts past the end. A
//! `Range` that does not parse is ignored, as Tahoe ignores it.
//!
//! Immutable files stream a segment at a time (`transfer.rs`); the status is sent
//! only once the first plaintext (or the failure) is known, so a file with too few
//! shares gets its 410 rather than a truncated 200. Mutable files are read whole.

use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use swamp_formats::cap::Cap;

use crate::Gateway;
use crate::error::WebError;
use crate::statistics::Counter;
use crate::transfer;

/// Content types by file-name extension (the common part of Twisted's table).
const TYPES: &[(&str, &str)] = &[
    ("txt", "text/plain"),
    ("html", "text/html"),
    ("htm", "text/html"),
    ("css", "text/css"),
    ("js", "application/javascript"),
    ("json", "application/json"),
    ("xml", "text/xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("svg", "image/svg+xml"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/x-gzip"),
    ("tar", "application/x-tar"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
];

fn content_type(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    ext.and_then(|ext| TYPES.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t))
        .unwrap_or("text/plain")
}

/// The first range of a `Range` header as `first..last+1` within `size`, `Ok(None)`
/// for no header or one that does not parse, 416 when it starts at or past the end.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<Range<u64>>, WebError> {
    let Some(text) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(set) = text.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    let first_range = set.split(',').next().unwrap_or("").trim();
    let Some((a, b)) = first_range.split_once('-') else {
        return Ok(None);
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    let (first, last) = match (a.trim(), b.trim()) {
        ("", suffix) => match number(suffix) {
            Some(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            None => return Ok(None),
        },
        (a, "") => match number(a) {
            Some(a) => (a, size.saturating_sub(1)),
            None => return Ok(None),
        },
        (a, b) => match (number(a), number(b)) {
            (Some(a), Some(b)) if b >= a => (a, b),
            _ => return Ok(None),
        },
    };
    if first >= size {
        return Err(WebError::RangeNotSatisfiable { size });
    }
    Ok(Some(first..last.min(size - 1) + 1))
}

/// The answer to `GET` (or, with `head`, `HEAD`) of the file `cap`.
pub(crate) async fn read(
    gateway: &Arc<Gateway>,
    cap: &Cap,
    filename: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, WebError> {
    // Mutable files are read first: their size is only known from a version.
    let (size, whole) = match cap {
        Cap::Chk(c) => (c.size, None),
        Cap::Lit(data) => (data.len() as u64, Some(Bytes::from(data.clone()))),
        Cap::Mutable(m) => {
            let version = gateway.grid.read_mutable(m).await?;
            gateway.statistics.count_file(
                Counter::FilesRetrieved,
                Counter::BytesRetrieved,
                version.data.len() as u64,
            );
            (version.data.len() as u64, Some(Bytes::from(version.data)))
        }
        _ => return Err(WebError::bad("not a file cap")),
    };
    let range = parse_range(headers, size)?;
    let partial = range.is_some();
    let range = range.unwrap_or(0..size);
    let mut response = Response::builder()
        .status(if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_TYPE, content_type(filename))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, range.end - range.start);
    if partial {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", range.start, range.end - 1),
        );
    }
    let body = if head || range.is_empty() {
        Body::empty()
    } else if let Some(data) = whole {
        Body::from(data.slice(range.start as usize..range.end as usize))
    } else if let Cap::Chk(c) = cap {
        stream(gateway, *c, range).await?
    } else {
        Body::empty()
    };
    response
        .body(body)
        .map_err(|e| WebError::Internal(format!("building a response: {e}")))
}

/// A body streaming `range` of an immutable file, once its first part is in.
async fn stream(
    gateway: &Arc<Gateway>,
    cap: swamp_formats::cap::ChkCap,
    range: Range<u64>,
) -> Result<Body, WebError> {
    let mut rx = transfer::download(gateway, cap, range).await?;
    let first = match rx.recv().await {
        Some(Ok(first)) => first,
        Some(Err(e)) => return Err(e),
        None => return Err(WebError::Internal("download ended before its data".into())),
    };
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let all = futures::StreamExt::chain(futures::stream::once(async { Ok(first) }), rest);
    Ok(Body::from_stream(all))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn range(h: &str, size: u64) -> Result<Option<Range<u64>>, WebError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(h).expect("header"));
        parse_range(&headers, size)
    }

    #[test]
    fn ranges_are_read_as_tahoe_reads_them() {
        assert_eq!(range("bytes=0-9", 100).expect("ok"), Some(0..10));
        assert_eq!(range("bytes=90-", 100).expect("ok"), Some(90..100));
        assert_eq!(range("bytes=-10", 100).expect("ok"), Some(90..100));
        assert_eq!(range("bytes=5-500", 100).expect("ok"), Some(5..100));
        assert_eq!(range("bytes=1-2,5-6", 100).expect("ok"), Some(1..3));
        assert_eq!(range("items=1-2", 100).expect("ok"), None);
        assert_eq!(range("bytes=9-2", 100).expect("ok"), None);
        assert!(matches!(
            range("bytes=100-", 100),
            Err(WebError::RangeNotSatisfiable { size: 100 })
        ));
        assert_eq!(content_type("a.PNG"), "image/png");
        assert_eq!(content_type("unknown"), "text/plain");
    }
}
