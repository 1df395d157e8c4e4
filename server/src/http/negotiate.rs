//! Content negotiation exactly as Tahoe does it: request bodies must be CBOR (or carry
//! no Content-Type), and the first `Accept` header's best match must be literally
//! `application/cbor`, where "best" is Werkzeug's: most specific first, then highest
//! quality, then first written.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use swamp_proto::v1::CBOR_MEDIA_TYPE;

use super::error::ApiError;

/// Checks that the client accepts a CBOR answer.
///
/// # Errors
/// [`ApiError::NotAcceptable`].
pub fn require_cbor_accept(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(first) = headers.get(ACCEPT) else {
        return Ok(());
    };
    let value = first.to_str().map_err(|_| ApiError::NotAcceptable)?;
    if best_accept(value).as_deref() == Some(CBOR_MEDIA_TYPE) {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable)
    }
}

/// Checks a request body's Content-Type: absent, or CBOR with any parameters.
///
/// # Errors
/// [`ApiError::UnsupportedMediaType`].
pub fn require_cbor_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(CONTENT_TYPE) {
        None => Ok(()),
        Some(v) => {
            let essence = v
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence == CBOR_MEDIA_TYPE {
                Ok(())
            } else {
                Err(ApiError::UnsupportedMediaType)
            }
        }
    }
}

/// Werkzeug's `MIMEAccept.best` for one header value.
pub fn best_accept(header: &str) -> Option<String> {
    let mut entries: Vec<(String, (bool, bool, bool), f32)> = Vec::new();
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut pieces = part.split(';').map(str::trim);
        let media = pieces.next().unwrap_or("").to_string();
        let mut quality = 1.0f32;
        let mut params = Vec::new();
        for p in pieces {
            match p.strip_prefix("q=") {
                Some(q) => quality = q.parse().unwrap_or(1.0),
                None => params.push(p.to_string()),
            }
        }
        let (ty, sub) = media.split_once('/').unwrap_or((media.as_str(), ""));
        let specificity = (ty != "*", sub != "*", !params.is_empty());
        let value = if params.is_empty() {
            media.clone()
        } else {
            format!("{media}; {}", params.join("; "))
        };
        entries.push((value, specificity, quality));
    }
    // Stable sort, descending by (specificity, quality).
    entries.sort_by(|a, b| {
        (b.1, b.2)
            .partial_cmp(&(a.1, a.2))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    entries.into_iter().next().map(|(v, _, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_werkzeug_best() {
        // Each pair was checked with Werkzeug 3.1.9's parse_accept_header(h, MIMEAccept).best.
        let cases = [
            ("application/cbor", Some("application/cbor")),
            ("*/*", Some("*/*")),
            ("application/*", Some("application/*")),
            (
                "application/json, application/cbor",
                Some("application/json"),
            ),
            ("application/cbor, */*;q=0.1", Some("application/cbor")),
            ("*/*, application/cbor;q=0.1", Some("application/cbor")),
            (
                "application/cbor;q=0.1, application/json",
                Some("application/json"),
            ),
            ("application/cbor;q=0", Some("application/cbor")),
            (
                "application/cbor; charset=utf-8",
                Some("application/cbor; charset=utf-8"),
            ),
            ("text/html;q=0.5, application/cbor;q=0.5", Some("text/html")),
            (
                "application/cbor;q=0.5, text/html;q=0.5",
                Some("application/cbor"),
            ),
            ("", None),
        ];
        for (header, best) in cases {
            assert_eq!(best_accept(header).as_deref(), best, "{header:?}");
        }
    }
}
