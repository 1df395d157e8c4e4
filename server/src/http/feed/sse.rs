//! Server-sent events: `id:` is the cursor (so `EventSource` resumes with
//! `Last-Event-ID` by itself), a comment line every 15 seconds keeps proxies from
//! closing an idle stream, and the stream ends with a `close` event naming the reason.
//!
//! A client that stops reading stops taking frames: once a frame has waited for the
//! write timeout, the stream ends (on HTTP/1.1 the socket's own write timeout usually
//! comes first; on HTTP/2 one stalled stream does not block the socket, so this is
//! what frees the subscriber).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use swamp_proto::feed::FeedEvent;
use tokio::sync::mpsc;

use super::{Access, FeedQuery};
use crate::feeds::encode::{shared, sse_frame};
use crate::feeds::stream::{FeedStream, Next};
use crate::http::{ApiError, App};
use swamp_proto::v1::endpoint::EVENT_STREAM_MEDIA_TYPE;

const COMMENT_EVERY: Duration = Duration::from_secs(15);

/// Opens the stream.
///
/// # Errors
/// Limits and bad subscriptions, before any byte is sent.
pub async fn stream(app: App, query: FeedQuery, access: Access) -> Result<Response, ApiError> {
    let subscriber = app.feeds.open(crate::feeds::Transport::Sse)?;
    let initial = subscriber
        .subscribe(&query.si, query.since, query.snapshot)
        .await?;
    let mut feed = FeedStream::new(
        subscriber,
        app.feeds.settings().progress_interval,
        access.expires_in,
    );
    // A small channel: the stream's backlog lives in the subscriber's outbox, where it
    // is bounded and coalesced; this only decouples the socket from the pump.
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let write_timeout = app.limits.get().write_timeout;
    tokio::spawn(async move {
        // Held for the stream's life: a token's place in its share of the limits.
        let _access = access;
        let send = |frame: Bytes| tx.send_timeout(frame, write_timeout);
        let mut frames: String = initial.into_iter().map(|e| sse_frame(&shared(e))).collect();
        frames.insert_str(0, "retry: 2000\n\n");
        if send(Bytes::from(frames)).await.is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                next = feed.next() => next,
                () = tokio::time::sleep(COMMENT_EVERY) => {
                    if send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() { return; }
                    continue;
                }
                () = tx.closed() => return,
            };
            match next {
                Next::Events(events) => {
                    let frames: String = events.iter().map(|e| sse_frame(e)).collect();
                    if send(Bytes::from(frames)).await.is_err() {
                        return;
                    }
                }
                Next::Close(reason) => {
                    let close = FeedEvent::Close {
                        reason: reason.as_str().to_string(),
                    };
                    let _ = send(Bytes::from(sse_frame(&shared(close)))).await;
                    return;
                }
            }
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    }));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, EVENT_STREAM_MEDIA_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}
