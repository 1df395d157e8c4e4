//! `/uri` itself (`URIHandler` in `web/root.py`, `web/unlinked.py`): files and
//! directories not linked anywhere, and the old `GET /uri?uri=$CAP` form.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, header};
use swamp_formats::cap::{Cap, MutableFormat};

use crate::Gateway;
use crate::args::{Args, Format};
use crate::body::{read_bounded, spool};
use crate::error::WebError;
use crate::reply::{encode_segment, text};
use crate::statistics::Counter;
use crate::{children, edit, forms, transfer};

/// Handles a request for `/uri`.
pub(crate) async fn handle(
    gateway: &Arc<Gateway>,
    method: &Method,
    headers: &HeaderMap,
    args: &Args,
    body: Body,
) -> Result<Response, WebError> {
    let t = args.t();
    match (method.as_str(), t) {
        ("GET" | "HEAD", _) => redirect(headers, args),
        ("PUT", "") => {
            if headers.contains_key(header::CONTENT_RANGE) {
                return Err(WebError::NotImplemented(
                    "Content-Range in PUT not yet supported".into(),
                ));
            }
            let cap = upload(gateway, args, body).await?;
            Ok(text(StatusCode::OK, cap.to_string()))
        }
        ("PUT" | "POST", "mkdir") => {
            let body = read_bounded(body, gateway.limits.max_json).await?;
            if *method == Method::POST && !body.iter().all(u8::is_ascii_whitespace) {
                return Err(WebError::bad(
                    "t=mkdir does not accept children=, try t=mkdir-with-children instead",
                ));
            }
            let key = args.private_key()?;
            let dir = edit::create_dir(gateway, Vec::new(), false, args.dir_format()?, key).await?;
            forms::new_dir(method, args, &dir)
        }
        ("POST", "mkdir-with-children" | "mkdir-immutable") => {
            let immutable = t == "mkdir-immutable";
            let body = read_bounded(body, gateway.limits.max_json).await?;
            let kids = children::parse(&body, immutable)?;
            let key = if immutable { None } else { args.private_key()? };
            let dir = edit::create_dir(gateway, kids, immutable, args.dir_format()?, key).await?;
            forms::new_dir(method, args, &dir)
        }
        ("PUT" | "POST", _) => Err(WebError::bad(
            "/uri accepts only PUT, PUT?t=mkdir, POST?t=upload, and POST?t=mkdir",
        )),
        _ => Err(WebError::MethodNotAllowed(format!(
            "{method} is not allowed on /uri"
        ))),
    }
}

/// Uploads a request body as a new file of the format `args` ask for (CHK when
/// they name none; a mutable file signed with `private-key=` when given).
pub(crate) async fn upload(
    gateway: &Arc<Gateway>,
    args: &Args,
    body: Body,
) -> Result<Cap, WebError> {
    match args.format(Some(Format::Chk))? {
        Some(Format::Mutable(format)) => {
            let data = read_bounded(body, gateway.limits.max_mutable).await?;
            publish_mutable(gateway, args, format, &data).await
        }
        Some(Format::Chk) | None => {
            let spooled = spool(body, &gateway.spool_dir, gateway.limits.max_upload).await?;
            transfer::upload_file(gateway, spooled.path().to_path_buf()).await
        }
    }
}

/// A new mutable file of `format` holding `data`, signed with `private-key=` when
/// given.
pub(crate) async fn publish_mutable(
    gateway: &Arc<Gateway>,
    args: &Args,
    format: MutableFormat,
    data: &[u8],
) -> Result<Cap, WebError> {
    let file = match args.private_key()? {
        Some(key) => {
            gateway
                .grid
                .create_mutable_with_key(data, format, key)
                .await?
        }
        None => gateway.grid.create_mutable(data, format).await?,
    };
    gateway.statistics.count_file(
        Counter::FilesPublished,
        Counter::BytesPublished,
        data.len() as u64,
    );
    Ok(Cap::Mutable(file))
}

/// `GET /uri?uri=$CAP[&more]`: a redirect to `/uri/$CAP[?more]`.
fn redirect(headers: &HeaderMap, args: &Args) -> Result<Response, WebError> {
    let cap = args
        .get("uri")
        .ok_or_else(|| WebError::bad("GET /uri requires uri="))?;
    if matches!(Cap::parse_lenient(cap), Ok(Cap::Unknown(_)) | Err(_)) {
        return Err(WebError::bad("Invalid capability"));
    }
    let mut location = String::new();
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        location.push_str("http://");
        location.push_str(host);
    }
    location.push_str("/uri/");
    location.push_str(&encode_segment(cap));
    let rest: Vec<String> = args
        .without("uri")
        .map(|(k, v)| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair(k, v)
                .finish()
        })
        .collect();
    if !rest.is_empty() {
        location.push('?');
        location.push_str(&rest.join("&"));
    }
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}
