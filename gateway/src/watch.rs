//! `GET /uri/$DIRCAP[/PATH]?t=watch`: a directory's changes pushed as they happen,
//! over Server-Sent Events, or over a WebSocket when the request asks for an upgrade.
//! Tahoe has no such endpoint; it is this node's, so a GUI or a sync tool can follow
//! a directory through plain HTTP (an `EventSource` in a browser), without Rust.
//!
//! The node runs the client library's watch (the one `tahoe watch` runs): storage
//! servers' change feeds are only triggers, the node reads and decrypts the directory
//! and sends entry-level changes, so servers never learn names. Each event is the
//! JSON object `tahoe watch --json` prints ([`swamp_client::watch::WatchEvent::to_json`])
//! plus a `cursor`; over SSE the cursor is also the event's `id`.
//!
//! - Authorisation: the node's API token, as `Authorization: tahoe-lafs <token>` or,
//!   because an `EventSource` cannot set headers, as `token=` (never logged: the
//!   router logs paths, not query strings). Without it: 401.
//! - Cross-origin: every `t=watch` answer carries `Access-Control-Allow-Origin: *`,
//!   and `OPTIONS` answers a preflight. The token, not the origin, is the credential
//!   (no cookies are involved), so a page from any origin that holds it may watch.
//! - Arguments: `recursive=`, `snapshot=` (booleans), `depth=` (with `recursive`,
//!   how deep), `cursor=` (or SSE's `Last-Event-ID` header, which wins).
//! - Resuming, bounds and lifetimes: `watch_session.rs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::json;
use swamp_client::watch::WatchOptions;
use swamp_formats::cap::Cap;
use swamp_formats::dirdiff::is_mutable_dir;
use swamp_formats::dirnode::normalize_name;

use crate::Gateway;
use crate::args::Args;
use crate::error::WebError;
use crate::node::{path_names, root_cap};
use crate::private::authorize;
use crate::watch_session::{Cursor, Reader, STALL, Target, resume, start};

/// Handles `t=watch` on `/uri/CAP/NAMES`: the answer (an error included) carries
/// `Access-Control-Allow-Origin: *`.
pub(crate) async fn handle(
    gateway: &Arc<Gateway>,
    parts: Parts,
    args: &Args,
    cap: &str,
    names: &[&str],
) -> Response {
    let mut response = match serve(gateway, parts, args, cap, names).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

async fn serve(
    gateway: &Arc<Gateway>,
    mut parts: Parts,
    args: &Args,
    cap: &str,
    names: &[&str],
) -> Result<Response, WebError> {
    if parts.method == Method::OPTIONS {
        return Ok(preflight());
    }
    if parts.method != Method::GET {
        return Err(WebError::MethodNotAllowed(format!(
            "t=watch is only for GET, not {}",
            parts.method
        )));
    }
    authorize(gateway, &parts.headers, args.get("token"))?;
    let options = options(args)?;
    let upgrade = if parts.headers.contains_key(header::UPGRADE) {
        let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .map_err(|e| WebError::bad(format!("a WebSocket upgrade was asked for: {e}")))?;
        Some(upgrade)
    } else {
        None
    };
    let root = root_cap(cap)?;
    let names: Vec<String> = path_names(names)?
        .iter()
        .map(|n| normalize_name(n))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let cap = gateway.grid.walk(&root, &names).await?;
    if !(is_mutable_dir(&cap) || matches!(cap, Cap::Mutable(_))) {
        return Err(WebError::bad(
            "t=watch needs a mutable directory (or a mutable file): this cannot change",
        ));
    }
    let mut target = Target { cap, options };
    let cursor = parts
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| args.get("cursor"))
        .filter(|c| !c.trim().is_empty());
    let reader = match cursor {
        None => start(gateway, target, None).await?,
        Some(text) => match Cursor::parse(text).and_then(|c| resume(gateway, &target, c)) {
            Some(reader) => reader,
            None => {
                // Whatever changed since is unknown: the whole state, then live.
                target.options.snapshot = true;
                let notice = json!({
                    "event": "notice",
                    "resync": true,
                    "message": "this cursor is not known here (expired, too old, or from \
                                before a restart): the whole current state follows as exists \
                                events, then ready",
                });
                start(gateway, target, Some(notice)).await?
            }
        },
    };
    let keep_alive = gateway.limits.watch.keep_alive;
    Ok(match upgrade {
        Some(upgrade) => upgrade
            .on_upgrade(move |socket| websocket(socket, reader, keep_alive))
            .into_response(),
        None => sse(reader, keep_alive),
    })
}

/// The watch's options from the query.
fn options(args: &Args) -> Result<WatchOptions, WebError> {
    let max_depth = match args.get("depth") {
        None => None,
        Some(d) => match d.trim().parse::<usize>() {
            Ok(d) if d > 0 => Some(d),
            _ => return Err(WebError::bad(format!("invalid depth= argument: {d:?}"))),
        },
    };
    Ok(WatchOptions {
        snapshot: args.boolean("snapshot", false)?,
        recursive: args.boolean("recursive", false)?,
        max_depth,
        ..WatchOptions::default()
    })
}

/// The answer to a CORS preflight (a page sending `Authorization` or
/// `Last-Event-ID` from another origin).
fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "authorization, last-event-id",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
        .into_response()
}

/// The events as Server-Sent Events: `id:` the cursor, `data:` the JSON object.
fn sse(reader: Reader, keep_alive: Duration) -> Response {
    let events = futures::stream::unfold(reader, |mut reader| async move {
        let sent = reader.next().await?;
        let mut event = Event::default().data(&*sent.json);
        if !sent.cursor.is_empty() {
            event = event.id(sent.cursor);
        }
        Some((Ok::<_, Infallible>(event), reader))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The events as WebSocket text frames, one JSON object each, with pings every
/// `keep_alive`; ends when the client closes, or a send takes longer than [`STALL`].
async fn websocket(mut socket: WebSocket, mut reader: Reader, keep_alive: Duration) {
    let mut ping = tokio::time::interval(keep_alive);
    ping.reset();
    loop {
        let message = tokio::select! {
            sent = reader.next() => match sent {
                Some(sent) => Message::Text(sent.json.as_ref().into()),
                None => Message::Close(None),
            },
            received = socket.recv() => match received {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => continue,
            },
            _ = ping.tick() => Message::Ping(Bytes::new()),
        };
        let closing = matches!(message, Message::Close(_));
        match tokio::time::timeout(STALL, socket.send(message)).await {
            Ok(Ok(())) if !closing => {}
            _ => break,
        }
    }
}
