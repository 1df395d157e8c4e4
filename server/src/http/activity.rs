//! `GET /storage/v1/activity`: the operator's view of server activity. With
//! `Accept: text/event-stream`, an `activity` event every `interval` seconds (default 1,
//! between 1 and 60) with the counters' deltas over the interval and their totals, plus
//! the feed connection and subscription counts; otherwise the totals once, as JSON.
//!
//! Authorization: `Authorization: Swamp-Operator <operator secret>` or `?key=<secret>`
//! (for dashboards using `EventSource`); the secret is `private/operator.secret`. The
//! operator listener serves the same stream at `/activity` (`respond`), where a
//! browser uses the session cookie its login set instead of a key in the URL.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{ApiError, App};
use crate::activity::Reading;
use swamp_proto::v1::endpoint::EVENT_STREAM_MEDIA_TYPE;

fn authorized(app: &App, request: &Request) -> bool {
    if let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value
            .strip_prefix("Swamp-Operator ")
            .is_some_and(|s| app.operator_secret.get().matches(s));
    }
    query_value(request, "key").is_some_and(|k| app.operator_secret.get().matches(&k))
}

fn query_value(request: &Request, name: &str) -> Option<String> {
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| {
            pair.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
        })
        .map(str::to_string)
}

fn snapshot(app: &App, delta: Option<&Reading>, interval: Duration) -> serde_json::Value {
    let (connections, subscriptions) = app.feeds.counts();
    serde_json::json!({
        "type": "activity",
        "interval_seconds": interval.as_secs(),
        "delta": delta,
        "totals": app.activity.read(),
        "feeds": {
            "connections": connections,
            "subscriptions": subscriptions,
            "slow_closes": app.feeds.slow_closes(),
        },
        "uploads_in_progress": app.storage.uploads_in_progress(),
    })
}

/// The handler.
pub async fn activity(State(app): State<App>, request: Request) -> Result<Response, ApiError> {
    if !authorized(&app, &request) {
        return Err(ApiError::Unauthorized);
    }
    respond(app, &request)
}

/// The stream (or the totals) for a request already authorized; the operator listener
/// serves it too, behind its own guard (`crate::operator::session`).
///
/// # Errors
/// [`ApiError::BadBody`] for an `interval` that is not a number.
pub(crate) fn respond(app: App, request: &Request) -> Result<Response, ApiError> {
    let interval = match query_value(request, "interval") {
        None => Duration::from_secs(1),
        Some(v) => Duration::from_secs(
            v.parse::<u64>()
                .map_err(|_| {
                    ApiError::BadBody(format!("interval={v:?} is not a number of seconds"))
                })?
                .clamp(1, 60),
        ),
    };
    let sse = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(EVENT_STREAM_MEDIA_TYPE));
    if !sse {
        let body = snapshot(&app, None, interval).to_string();
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response());
    }
    // One event per interval: deltas against the previous reading, so the stream
    // aggregates by itself and can never build a backlog. It ends at shutdown.
    let baseline = app.activity.read();
    let stream = futures::stream::unfold((app, baseline), move |(app, last)| async move {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = app.feeds.closing() => return None,
        }
        let now = app.activity.read();
        let delta = now.since(&last);
        let frame = format!(
            "event: activity\ndata: {}\n\n",
            snapshot(&app, Some(&delta), interval)
        );
        Some((Ok::<_, Infallible>(Bytes::from(frame)), (app, now)))
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, EVENT_STREAM_MEDIA_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
