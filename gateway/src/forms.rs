//! HTML forms posted to `/uri` and `/uri/$CAP[/PATH]`, read as Tahoe reads them,
//! and the redirects a form asks for (`when_done=`, `redirect_to_result=`).
//!
//! Tahoe (`TahoeLAFSRequest` in `webish.py`) parses the body of any `POST` sent as
//! `multipart/form-data` or `application/x-www-form-urlencoded`, and `get_arg`
//! reads an argument from the query first, then from the form's fields; its own
//! pages send `t=`, `name=` and `when_done=` as fields. So a form is read before the
//! request is routed, and its fields follow the query's arguments.
//!
//! Bounds: a form has at most [`MAX_PARTS`](crate::multipart::MAX_PARTS) parts; a
//! field holds at most [`MAX_FIELD`] bytes and all fields together [`MAX_FIELDS`]
//! (413 beyond); the one file part, named `file`, is spooled to disk as it arrives
//! (at most `Limits::max_upload`), never held in memory. A URL-encoded body is read
//! whole (at most `Limits::max_json`, as the JSON bodies it may really be) and its
//! fields are read only when it is at most [`MAX_FIELDS`] bytes.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use percent_encoding::{CONTROLS, utf8_percent_encode};
use swamp_formats::cap::Cap;

use crate::Gateway;
use crate::args::Args;
use crate::body::{read_bounded, spool_stream};
use crate::error::WebError;
use crate::multipart::{Multipart, boundary};
use crate::reply::{encode_segment, text};

/// Bytes of one form field at most.
pub(crate) const MAX_FIELD: usize = 64 * 1024;
/// Bytes of all of a form's fields together at most.
pub(crate) const MAX_FIELDS: usize = 256 * 1024;

/// The file a form carried (its part named `file`), spooled.
pub(crate) struct Upload {
    /// The spool file, removed when dropped.
    pub(crate) file: tempfile::NamedTempFile,
    /// The name the browser gave it (`filename=`), if any.
    pub(crate) filename: Option<String>,
}

/// A request once its form, if any, is read.
pub(crate) struct Posted {
    /// The query's arguments, then the form's fields.
    pub(crate) args: Args,
    /// What is left of the body for the handler (a URL-encoded body stays whole, as
    /// Tahoe keeps `req.content`; a multipart one is used up).
    pub(crate) body: Body,
    pub(crate) file: Option<Upload>,
}

/// Reads a `POST`'s form, if it is one.
pub(crate) async fn read(
    gateway: &Arc<Gateway>,
    method: &Method,
    headers: &HeaderMap,
    args: Args,
    body: Body,
) -> Result<Posted, WebError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if *method != Method::POST {
        return Ok(Posted {
            args,
            body,
            file: None,
        });
    }
    match kind.as_str() {
        "multipart/form-data" => {
            let (fields, file) = read_multipart(gateway, content_type, body).await?;
            Ok(Posted {
                args: args.with_fields(fields),
                body: Body::empty(),
                file,
            })
        }
        "application/x-www-form-urlencoded" => {
            let raw = read_bounded(body, gateway.limits.max_json).await?;
            let fields = if raw.len() <= MAX_FIELDS {
                form_urlencoded::parse(&raw)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            } else {
                Vec::new()
            };
            Ok(Posted {
                args: args.with_fields(fields),
                body: Body::from(raw),
                file: None,
            })
        }
        _ => Ok(Posted {
            args,
            body,
            file: None,
        }),
    }
}

async fn read_multipart(
    gateway: &Arc<Gateway>,
    content_type: &str,
    body: Body,
) -> Result<(Vec<(String, String)>, Option<Upload>), WebError> {
    let mut form = Multipart::new(body.into_data_stream(), &boundary(content_type)?);
    let mut fields = Vec::new();
    let mut file = None;
    let mut total = 0;
    while let Some(head) = form.next_part().await? {
        if head.name == "file" {
            if file.is_some() {
                return Err(WebError::bad("a form may have only one part named file"));
            }
            let pieces = futures::stream::try_unfold(&mut form, |form| async move {
                Ok(form.chunk().await?.map(|chunk| (chunk, form)))
            });
            let spooled = spool_stream(
                Box::pin(pieces),
                &gateway.spool_dir,
                gateway.limits.max_upload,
            )
            .await?;
            file = Some(Upload {
                file: spooled,
                filename: head.filename,
            });
            continue;
        }
        let mut value = Vec::new();
        while let Some(chunk) = form.chunk().await? {
            total += chunk.len();
            if value.len() + chunk.len() > MAX_FIELD || total > MAX_FIELDS {
                return Err(WebError::Oversized(format!(
                    "form fields may hold at most {MAX_FIELD} bytes each, {MAX_FIELDS} together"
                )));
            }
            value.extend_from_slice(&chunk);
        }
        // Files under other names are not Tahoe's arguments: read (bounded), dropped.
        if head.filename.is_some() {
            continue;
        }
        let value = String::from_utf8(value)
            .map_err(|_| WebError::bad(format!("form field {:?} is not UTF-8", head.name)))?;
        fields.push((head.name, value));
    }
    Ok((fields, file))
}

/// `when_done=`, where a `POST` asks to be sent once it succeeds (`None`: nowhere,
/// answer as usual).
///
/// Tahoe follows any URL given; this node follows only a reference to itself: a
/// relative one (a path, `.`), or an absolute `http(s)` URL whose host is the
/// request's `Host`. Anything else (another site, `//host`, another scheme, spaces
/// or backslashes, which browsers read loosely) is a 400, before the request does
/// anything: an open redirect lets another site borrow this node's name.
pub(crate) fn when_done(args: &Args, headers: &HeaderMap) -> Result<Option<String>, WebError> {
    let Some(target) = args.get("when_done").filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !is_local(target, host) {
        return Err(WebError::bad(
            "when_done= must be a path on this node (or a URL with this node's host), \
             not another site",
        ));
    }
    Ok(Some(target.to_string()))
}

fn is_local(target: &str, host: Option<&str>) -> bool {
    if target
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        || target.starts_with("//")
    {
        return false;
    }
    let first = target.split(['/', '?', '#']).next().unwrap_or("");
    let Some((scheme, _)) = first.split_once(':') else {
        return true;
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return false;
    }
    let Some(rest) = target[scheme.len() + 1..].strip_prefix("//") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.is_some_and(|host| !host.is_empty() && host.eq_ignore_ascii_case(authority))
}

/// A 302 to `target` (Twisted's `redirectTo`, which Tahoe's `when_done=` uses).
pub(crate) fn redirect(status: StatusCode, target: &str) -> Response {
    let location = utf8_percent_encode(target, CONTROLS).to_string();
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            let mut response = text(status, format!("Redirecting to {location}\n"));
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => WebError::bad("when_done= is not a valid URL").into_response(),
    }
}

/// A `POST`'s answer, or, when it succeeded and `when_done=` was given, a 302 there
/// (Tahoe's `handle_when_done`).
pub(crate) fn finish(
    result: Result<Response, WebError>,
    when_done: Option<&str>,
) -> Result<Response, WebError> {
    match (result, when_done) {
        (Ok(response), Some(target)) if response.status().is_success() => {
            Ok(redirect(StatusCode::FOUND, target))
        }
        (other, _) => other,
    }
}

/// The answer to a `POST /uri?t=mkdir*`: the new directory's cap, or with
/// `redirect_to_result=true` a 303 to it (`uri/$CAP`, relative, as Tahoe sends).
pub(crate) fn new_dir(method: &Method, args: &Args, dir: &Cap) -> Result<Response, WebError> {
    if *method == Method::POST && args.boolean("redirect_to_result", false)? {
        let target = format!("uri/{}", encode_segment(&dir.to_string()));
        return Ok(redirect(StatusCode::SEE_OTHER, &target));
    }
    Ok(text(StatusCode::OK, dir.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_references_to_this_node_are_followed() {
        let host = Some("127.0.0.1:3456");
        for local in [
            ".",
            "/uri/URI%3ADIR2%3Aabc/",
            "../x?t=json",
            "uri/%(uri)s",
            "http://127.0.0.1:3456/uri",
            "HTTPS://127.0.0.1:3456",
        ] {
            assert!(is_local(local, host), "{local}");
        }
        for far in [
            "http://example.org/",
            "https://evil@127.0.0.1:3456/",
            "//example.org/x",
            "/\\example.org",
            " //example.org",
            "javascript:alert(1)",
            "URI:DIR2:abc",
            "http:/127.0.0.1:3456/",
            "ftp://127.0.0.1:3456/",
            "/a\r\nSet-Cookie: x",
        ] {
            assert!(!is_local(far, host), "{far}");
        }
        assert!(!is_local("http://127.0.0.1:3456/", None));
    }
}
