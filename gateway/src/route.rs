//! Which resource a request is for. Tahoe's web API is a tree walked segment by
//! segment (`/uri/$CAP/name/name`), where caps carry `:` and names may carry an
//! escaped `/` (`%2F`); so the path is split on `/` first and each segment decoded
//! after, rather than matched by a router that would decode first.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::Method;
use percent_encoding::percent_decode_str;

use crate::Gateway;
use crate::args::Args;
use crate::error::WebError;
use crate::{node, private, unlinked, welcome};

/// Bytes of request path read at most.
pub(crate) const MAX_PATH: usize = 64 * 1024;

/// Every request comes here.
pub(crate) async fn dispatch(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let result = route(&gateway, request).await;
    match result {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(%method, path = %path.chars().take(200).collect::<String>(), "refused");
            e.into_response()
        }
    }
}

async fn route(gateway: &Arc<Gateway>, request: Request) -> Result<Response, WebError> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if path.len() > MAX_PATH {
        return Err(WebError::bad(format!(
            "request path longer than {MAX_PATH} bytes"
        )));
    }
    let args = Args::parse(parts.uri.query())?;
    let raw: Vec<&str> = path.split('/').skip(1).collect();
    let segments = raw
        .iter()
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| WebError::bad("a path segment is not UTF-8"))
        })
        .collect::<Result<Vec<String>, WebError>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        [""] => match parts.method {
            Method::GET | Method::HEAD => Ok(welcome::welcome(gateway, &args).await),
            _ => Err(WebError::MethodNotAllowed(format!(
                "{} is not allowed on /",
                parts.method
            ))),
        },
        ["uri" | "cap"] | ["uri" | "cap", ""] => {
            unlinked::handle(gateway, &parts.method, &parts.headers, &args, body).await
        }
        ["uri" | "cap", cap, names @ ..] => {
            let request = node::NodeRequest {
                method: &parts.method,
                headers: &parts.headers,
                args: &args,
                cap,
                names,
                filename: None,
            };
            node::handle(gateway, request, body).await
        }
        ["file" | "named", cap, names @ ..] => {
            if !matches!(parts.method, Method::GET | Method::HEAD) {
                return Err(WebError::bad("/file can only be used with GET or HEAD"));
            }
            let request = node::NodeRequest {
                method: &parts.method,
                headers: &parts.headers,
                args: &args,
                cap,
                names: &[],
                filename: Some(names.last().copied().unwrap_or("unknown")),
            };
            node::handle(gateway, request, body).await
        }
        [which @ ("status" | "statistics")] => crate::status::handle(&parts.method, which, &args),
        ["operations", handle] => crate::operations::status(gateway, &parts.method, handle, &args),
        ["private", rest @ ..] => {
            let request = Request::from_parts(parts, body);
            private::handle(gateway, rest, request).await
        }
        _ => Err(WebError::NotFound("No such resource".into())),
    }
}
