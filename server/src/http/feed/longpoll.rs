//! Long-poll: one answer per request, `{events, cursor}`, as soon as there is anything
//! to say, or after `wait` seconds with no events and the current cursor.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use swamp_proto::feed::{FeedBatch, FeedEvent};

use super::{Access, FeedQuery};
use crate::http::{ApiError, App};
use swamp_proto::v1::CBOR_MEDIA_TYPE;

const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Answers one poll.
///
/// # Errors
/// Limits and bad subscriptions.
pub async fn answer(
    app: App,
    headers: &HeaderMap,
    query: FeedQuery,
    access: Access,
) -> Result<Response, ApiError> {
    let cbor = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(CBOR_MEDIA_TYPE));
    let subscriber = app.feeds.open(crate::feeds::Transport::LongPoll)?;
    let mut events = subscriber
        .subscribe(&query.si, query.since, query.snapshot)
        .await?;
    let mut cursor = app.feeds.head();
    // A lone progress event means "nothing yet": wait for live events.
    if let [FeedEvent::Progress { cursor: c }] = events.as_slice() {
        cursor = *c;
        events.clear();
    }
    if events.is_empty() {
        let mut wait = query.wait.unwrap_or(DEFAULT_WAIT);
        if let Some(expires_in) = access.expires_in {
            wait = wait.min(expires_in);
        }
        if let Ok(Ok(batch)) = tokio::time::timeout(wait, subscriber.outbox().next_batch()).await {
            subscriber.delivered(&batch);
            events = batch.iter().map(|e| e.event.clone()).collect();
        }
    }
    if let Some(last) = events.iter().rev().find_map(FeedEvent::cursor) {
        cursor = last;
    }
    let batch = FeedBatch { events, cursor };
    Ok(if cbor {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, CBOR_MEDIA_TYPE)],
            swamp_proto::v1::encode(&batch),
        )
            .into_response()
    } else {
        let json = serde_json::to_string(&batch).map_err(|e| ApiError::Internal(e.to_string()))?;
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response()
    })
}
