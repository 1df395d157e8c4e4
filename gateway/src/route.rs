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
use crate::{form_upload, forms, node, private, unlinked, watch, welcome};

/// Bytes of request path read at most.
pub(crate) const MAX_PATH: usize = 64 * 1024;

/// Every request comes here. Each is logged once it is answered, at information
/// level, by its kind of resource and `t=` only: paths carry caps and names, which
/// are secrets and never logged.
pub(crate) async fn dispatch(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let resource = resource_kind(request.uri().path());
    let t = request
        .uri()
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "t")
                .map(|(_, v)| v.chars().take(40).collect::<String>())
        })
        .unwrap_or_default();
    let response = match route(&gateway, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    tracing::info!(
        %method,
        resource,
        t,
        status = response.status().as_u16(),
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "web API request"
    );
    response
}

/// What a path names, without any cap or name in it.
fn resource_kind(path: &str) -> &'static str {
    match path.split('/').nth(1).unwrap_or("") {
        "" => "/",
        "uri" | "cap" => "/uri",
        "file" | "named" => "/file",
        "private" => "/private",
        "statistics" => "/statistics",
        "operations" => "/operations",
        _ => "other",
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
    // A form posted to /uri or below carries arguments in its body (forms.rs).
    let (args, body, file, when_done) = if matches!(segments.first(), Some(&("uri" | "cap"))) {
        let posted = forms::read(gateway, &parts.method, &parts.headers, args, body).await?;
        let when_done = if parts.method == Method::POST {
            forms::when_done(&posted.args, &parts.headers)?
        } else {
            None
        };
        (posted.args, posted.body, posted.file, when_done)
    } else {
        (args, body, None, None)
    };
    let post = parts.method == Method::POST;
    match segments.as_slice() {
        [""] => match parts.method {
            Method::GET | Method::HEAD => Ok(welcome::welcome(gateway, &args).await),
            _ => Err(WebError::MethodNotAllowed(format!(
                "{} is not allowed on /",
                parts.method
            ))),
        },
        ["uri" | "cap"] | ["uri" | "cap", ""] if post && matches!(args.t(), "" | "upload") => {
            form_upload::unlinked(gateway, &args, file, when_done.as_deref()).await
        }
        ["uri" | "cap"] | ["uri" | "cap", ""] => {
            unlinked::handle(gateway, &parts.method, &parts.headers, &args, body).await
        }
        ["uri" | "cap", cap, names @ ..] if args.t() == "watch" => {
            Ok(watch::handle(gateway, parts, &args, cap, names).await)
        }
        ["uri" | "cap", cap, names @ ..] if post && args.t() == "upload" => forms::finish(
            form_upload::into_dir(gateway, cap, names, &args, file).await,
            when_done.as_deref(),
        ),
        ["uri" | "cap", cap, names @ ..] => {
            let request = node::NodeRequest {
                method: &parts.method,
                headers: &parts.headers,
                args: &args,
                cap,
                names,
                filename: None,
            };
            forms::finish(
                node::handle(gateway, request, body).await,
                when_done.as_deref(),
            )
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
        ["status"] | ["status", ""] => crate::status::handle(&parts.method, &args),
        ["statistics"] | ["statistics", ""] => {
            // Tahoe's `tahoe status` asks with a POST.
            if !matches!(parts.method, Method::GET | Method::HEAD | Method::POST) {
                return Err(WebError::MethodNotAllowed(
                    "only GET or POST on /statistics".into(),
                ));
            }
            crate::statistics::render(&gateway.statistics, &args)
        }
        ["operations", handle] => crate::operations::status(gateway, &parts.method, handle, &args),
        ["private", rest @ ..] => {
            let request = Request::from_parts(parts, body);
            private::handle(gateway, rest, request).await
        }
        _ => Err(WebError::NotFound("No such resource".into())),
    }
}
