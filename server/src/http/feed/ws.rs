//! WebSocket: JSON text frames (subprotocol `swamp-feed.v1.json`, the default) or CBOR
//! binary frames (`swamp-feed.v1.cbor`). Clients send commands (subscribe,
//! unsubscribe, progress) at any time; the server ends the stream with a close frame
//! whose code and reason are documented in `docs/feeds.md`.
//!
//! Buffers are set small (1 KiB read chunks, 8 KiB write) so an idle subscriber costs
//! kilobytes: tungstenite's defaults (128 KiB read) would cost a gigabyte per ten
//! thousand connections.
//!
//! A client that stops reading is let go within a bound even when there is nothing to
//! send it: the server pings every `ping_interval`, and a pong not back within
//! `ping_timeout` ends the stream (close code 4008, `slow`). Every write (events,
//! replies, pings, the close frame) must finish within `write_timeout`.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::SinkExt;
use swamp_proto::feed::{FeedCommand, FeedEvent};
use tokio::time::Instant;

use super::{Access, FeedQuery};
use crate::feeds::encode::{self, Encoded, Shared};
use crate::feeds::outbox::CloseReason;
use crate::feeds::stream::{FeedStream, Next};
use crate::http::App;
use swamp_proto::v1::endpoint::{FEED_CBOR_PROTOCOL, FEED_JSON_PROTOCOL};

/// Close code for a refused subscription (limits).
pub const CLOSE_LIMIT: u16 = 4029;

/// Accepts the upgrade.
pub fn upgrade(app: App, upgrade: WebSocketUpgrade, query: FeedQuery, access: Access) -> Response {
    upgrade
        .protocols([FEED_JSON_PROTOCOL, FEED_CBOR_PROTOCOL])
        .read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(1024 * 1024)
        .max_frame_size(1024 * 1024)
        .on_upgrade(move |socket| async move {
            let cbor = socket.protocol().and_then(|p| p.to_str().ok()) == Some(FEED_CBOR_PROTOCOL);
            run(app, socket, query, access, cbor).await;
        })
}

fn frame(event: &Encoded, cbor: bool) -> Message {
    if cbor {
        Message::Binary(event.cbor().clone())
    } else {
        Message::Text(event.json().clone())
    }
}

/// Sends a batch of events with one flush: the frames share TLS records and system
/// calls (one `send` per event would flush, and so write to the socket, every time).
async fn send_all(
    socket: &mut WebSocket,
    events: &[Shared],
    cbor: bool,
) -> Result<(), axum::Error> {
    if events.is_empty() {
        return Ok(());
    }
    for event in events {
        socket.feed(frame(event, cbor)).await?;
    }
    socket.flush().await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str, write_timeout: Duration) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(write_timeout, socket.send(frame)).await;
}

/// Whether `write` finished, successfully, within `write_timeout`.
async fn written(
    write_timeout: Duration,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> bool {
    matches!(tokio::time::timeout(write_timeout, write).await, Ok(Ok(())))
}

/// When the next ping is due, or the pong to the last one.
struct Liveness {
    every: Duration,
    within: Duration,
    deadline: Instant,
    awaiting_pong: bool,
}

impl Liveness {
    fn new(every: Duration, within: Duration) -> Self {
        Self {
            every,
            within,
            deadline: Instant::now() + every,
            awaiting_pong: false,
        }
    }

    fn pinged(&mut self) {
        self.awaiting_pong = true;
        self.deadline = Instant::now() + self.within;
    }

    fn ponged(&mut self) {
        self.awaiting_pong = false;
        self.deadline = Instant::now() + self.every;
    }
}

async fn run(app: App, mut socket: WebSocket, query: FeedQuery, access: Access, cbor: bool) {
    let write_timeout = app.limits.write_timeout;
    let subscriber = match app.feeds.open() {
        Ok(s) => s,
        Err(e) => return close(&mut socket, CLOSE_LIMIT, &e.to_string(), write_timeout).await,
    };
    let initial = if query.si.is_empty() && query.since.is_none() {
        Vec::new()
    } else {
        match subscriber
            .subscribe(&query.si, query.since, query.snapshot)
            .await
        {
            Ok(events) => events,
            Err(e) => {
                return close(&mut socket, CLOSE_LIMIT, &e.to_string(), write_timeout).await;
            }
        }
    };
    let initial: Vec<Shared> = initial.into_iter().map(encode::shared).collect();
    if !written(write_timeout, send_all(&mut socket, &initial, cbor)).await {
        return;
    }
    let mut feed = FeedStream::new(
        subscriber,
        app.feeds.settings().progress_interval,
        access.expires_in,
    );
    let mut liveness = Liveness::new(app.limits.ping_interval, app.limits.ping_timeout);
    loop {
        tokio::select! {
            next = feed.next() => match next {
                Next::Events(events) => {
                    if !written(write_timeout, send_all(&mut socket, &events, cbor)).await {
                        return;
                    }
                }
                Next::Close(reason) => {
                    return close(&mut socket, reason.ws_code(), reason.as_str(), write_timeout).await;
                }
            },
            () = tokio::time::sleep_until(liveness.deadline) => {
                if liveness.awaiting_pong {
                    let reason = CloseReason::Slow;
                    tracing::debug!("feed WebSocket sent no pong in time; closing it");
                    return close(&mut socket, reason.ws_code(), reason.as_str(), write_timeout).await;
                }
                if !written(write_timeout, socket.send(Message::Ping(bytes::Bytes::new()))).await {
                    return;
                }
                liveness.pinged();
            }
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                let command = match message {
                    Message::Text(text) => serde_json::from_str::<FeedCommand>(text.as_str()).map_err(|e| e.to_string()),
                    Message::Binary(bytes) => swamp_proto::v1::decode::<FeedCommand>(&bytes).map_err(|e| e.to_string()),
                    Message::Close(_) => return,
                    Message::Pong(_) => {
                        liveness.ponged();
                        continue;
                    }
                    Message::Ping(_) => continue,
                };
                let replies = match command {
                    Err(e) => vec![FeedEvent::Error { message: format!("bad command: {e}") }],
                    Ok(command) => handle(&feed, &access, command).await,
                };
                let replies: Vec<Shared> = replies.into_iter().map(encode::shared).collect();
                if !written(write_timeout, send_all(&mut socket, &replies, cbor)).await {
                    return;
                }
            }
        }
    }
}

async fn handle(feed: &FeedStream, access: &Access, command: FeedCommand) -> Vec<FeedEvent> {
    match command {
        FeedCommand::Subscribe {
            si,
            since,
            snapshot,
        } => {
            if let Err(e) = access.check(&si) {
                return vec![FeedEvent::Error {
                    message: e.to_string(),
                }];
            }
            feed.subscriber
                .subscribe(&si, since, snapshot)
                .await
                .unwrap_or_else(|e| {
                    vec![FeedEvent::Error {
                        message: e.to_string(),
                    }]
                })
        }
        FeedCommand::Unsubscribe { si } => {
            feed.subscriber.unsubscribe(&si);
            Vec::new()
        }
        FeedCommand::Progress => {
            feed.subscriber.request_progress();
            Vec::new()
        }
    }
}
