//! `GET /storage/v1/feed`: one URL, three transports chosen by the request:
//! a WebSocket upgrade gets WebSocket, `Accept: text/event-stream` gets SSE, anything
//! else a long-poll answer. And `POST /storage/v1/feed/token` for browser tokens.
//!
//! Query parameters shared by all: `si` (base32 storage index; repeat it, or separate
//! with commas), `since` (a cursor), `snapshot` (`true`/`false`), `token` (instead of
//! the `Authorization` header); long-poll adds `wait` (seconds, at most 300).

mod longpoll;
mod sse;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use swamp_proto::StorageIndex;
use swamp_proto::feed::Cursor;
use swamp_proto::v1::endpoint::EVENT_STREAM_MEDIA_TYPE;

use crate::feeds::token::{self, Grant};
use crate::feeds::token_shares::TokenShare;
use crate::http::{ApiError, App};

/// The parsed query string.
#[derive(Debug, Default)]
pub struct FeedQuery {
    /// Storage indexes to follow.
    pub si: Vec<StorageIndex>,
    /// Resume after this cursor.
    pub since: Option<Cursor>,
    /// Send the current state first.
    pub snapshot: bool,
    /// Long-poll wait.
    pub wait: Option<Duration>,
    /// Browser token.
    pub token: Option<String>,
    /// Token lifetime asked for (token endpoint).
    pub ttl: Option<u64>,
}

/// The longest long-poll wait.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

impl FeedQuery {
    /// Parses `a=b&c=d`, with a clear error naming the bad parameter.
    ///
    /// # Errors
    /// [`ApiError::BadBody`] naming the parameter.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Self::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            let bad =
                |what: &str| ApiError::BadBody(format!("query parameter {key}={value:?}: {what}"));
            match key {
                "si" => {
                    for part in value.split(',').filter(|p| !p.is_empty()) {
                        q.si.push(
                            part.parse()
                                .map_err(|_| bad("not a storage index (26 base32 characters)"))?,
                        );
                    }
                }
                "since" | "last_event_id" => {
                    q.since = Some(value.parse().map_err(|_| bad("not a feed cursor"))?)
                }
                "snapshot" => {
                    q.snapshot = match value.as_str() {
                        "true" | "1" | "" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("expected true or false")),
                    }
                }
                "wait" => {
                    let secs: u64 = value
                        .parse()
                        .map_err(|_| bad("expected a number of seconds"))?;
                    q.wait = Some(Duration::from_secs(secs).min(MAX_WAIT));
                }
                "token" => q.token = Some(value),
                "ttl" => {
                    q.ttl = Some(
                        value
                            .parse()
                            .map_err(|_| bad("expected a number of seconds"))?,
                    )
                }
                _ => {
                    return Err(ApiError::BadBody(format!(
                        "unknown query parameter {key:?}"
                    )));
                }
            }
        }
        Ok(q)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the request may do.
#[derive(Clone, Debug)]
pub struct Access {
    /// When a token grant ends (`None` for the swissnum).
    pub expires_in: Option<Duration>,
    /// The storage indexes a token allows (`None`: any).
    pub allowed: Option<Vec<StorageIndex>>,
    /// A token's place in its share of the feed connections, held as long as the
    /// request or stream lives (`None` for the swissnum).
    #[expect(
        dead_code,
        reason = "never read: held for its Drop, which gives the place back"
    )]
    pub share: Option<Arc<TokenShare>>,
}

impl Access {
    /// Checks that every storage index is allowed.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] naming the first one that is not.
    pub fn check(&self, sis: &[StorageIndex]) -> Result<(), ApiError> {
        if let Some(allowed) = &self.allowed
            && let Some(si) = sis.iter().find(|si| !allowed.contains(si))
        {
            return Err(ApiError::Forbidden(format!(
                "the token does not cover storage index {si}"
            )));
        }
        Ok(())
    }
}

fn authorize(app: &App, headers: &HeaderMap, query: &FeedQuery) -> Result<Access, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return if app.swissnum.matches_header(value.as_bytes()) {
            Ok(Access {
                expires_in: None,
                allowed: None,
                share: None,
            })
        } else {
            Err(ApiError::Unauthorized)
        };
    }
    let Some(token) = &query.token else {
        return Err(ApiError::Unauthorized);
    };
    let now = app.storage.now();
    let grant = token::verify(&app.swissnum, token, now).map_err(ApiError::BadToken)?;
    let share = app.feeds.token_shares().acquire(token)?;
    Ok(Access {
        expires_in: Some(Duration::from_secs(grant.expires.saturating_sub(now))),
        allowed: grant.storage_indexes,
        share: Some(Arc::new(share)),
    })
}

fn is_websocket(parts: &Parts) -> bool {
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    upgrade || parts.method == axum::http::Method::CONNECT
}

fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|m| m.trim().starts_with(EVENT_STREAM_MEDIA_TYPE))
        })
}

/// `GET /storage/v1/feed`
pub async fn feed(State(app): State<App>, request: Request) -> Response {
    let mut response = match route(app, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    // Browser pages on any origin may read the feed: access needs the swissnum or a
    // token in the URL, never a cookie, so allowing every origin grants nothing extra.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        axum::http::HeaderValue::from_static("*"),
    );
    response
}

async fn route(app: App, request: Request) -> Result<Response, ApiError> {
    let (mut parts, _body) = request.into_parts();
    let query = FeedQuery::parse(parts.uri.query())?;
    let access = authorize(&app, &parts.headers, &query)?;
    access.check(&query.si)?;
    if is_websocket(&parts) {
        let upgrade = axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .map_err(|e| ApiError::BadBody(format!("bad WebSocket upgrade: {}", e.body_text())))?;
        return Ok(ws::upgrade(app, upgrade, query, access));
    }
    if query.si.is_empty() {
        return Err(ApiError::BadBody(
            "name at least one storage index with ?si=".into(),
        ));
    }
    if wants_sse(&parts.headers) {
        let mut query = query;
        if query.since.is_none()
            && let Some(last) = parts
                .headers
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
        {
            query.since = Some(last.parse().map_err(|_| {
                ApiError::BadBody(format!("Last-Event-ID {last:?} is not a feed cursor"))
            })?);
        }
        return sse::stream(app, query, access).await;
    }
    longpoll::answer(app, &parts.headers, query, access).await
}

/// `POST /storage/v1/feed/token?ttl=SECONDS[&si=...]` (swissnum only).
pub async fn issue_token(State(app): State<App>, request: Request) -> Result<Response, ApiError> {
    let (parts, _body) = request.into_parts();
    let query = FeedQuery::parse(parts.uri.query())?;
    let ttl = query.ttl.unwrap_or(600).clamp(1, token::MAX_TTL_SECS);
    let grant = Grant {
        expires: app.storage.now() + ttl,
        storage_indexes: (!query.si.is_empty()).then_some(query.si),
    };
    let token = token::issue(&app.swissnum, &grant);
    let body = serde_json::json!({ "token": token, "expires": grant.expires });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}
