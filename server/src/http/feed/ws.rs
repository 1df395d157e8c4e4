//! WebSocket: JSON text frames (subprotocol `swamp-feed.v1.json`, the default) or CBOR
//! binary frames (`swamp-feed.v1.cbor`). Clients send commands (subscribe,
//! unsubscribe, progress) at any time; the server ends the stream with a close frame
//! whose code and reason are documented in `docs/feeds.md`.
//!
//! Buffers are set small (256-byte read chunks, 8 KiB write) so an idle subscriber
//! costs kilobytes: tungstenite's defaults (128 KiB read) would cost a gigabyte per ten
//! thousand connections. For the same reason the session's task keeps only what the
//! stream needs between events (see [`session`]): 19,000 idle subscribers are measured
//! in `docs/benchmarks.md`.
//!
//! A client that stops reading is let go within a bound even when there is nothing to
//! send it: the server pings every `ping_interval`, and a pong not back within
//! `ping_timeout` ends the stream (close code 4008, `slow`). Every write (events,
//! replies, pings, the close frame) must finish within `write_timeout`.

use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use swamp_proto::feed::{FeedCommand, FeedEvent};
use tokio::time::Instant;

use super::{Access, FeedQuery};
use crate::connection::deadline::Deadline;
use crate::feeds::encode::{self, Encoded, Shared};
use crate::feeds::outbox::CloseReason;
use crate::feeds::stream::{FeedStream, Next};
use crate::http::App;
use swamp_proto::v1::endpoint::{FEED_CBOR_PROTOCOL, FEED_JSON_PROTOCOL};

/// Close code for a refused subscription (limits).
pub const CLOSE_LIMIT: u16 = 4029;

/// Bytes read from the connection at a time while a frame is assembled. Commands are a
/// few hundred bytes, pongs a few; a longer frame is read in several chunks (its whole
/// length is reserved once its header is read, up to the frame size limit). Each idle
/// connection holds one chunk.
const READ_CHUNK: usize = 256;

/// Frames are gathered up to this many bytes before they are written (a flush writes
/// them at once in any case).
const WRITE_BUFFER: usize = 8 * 1024;

/// The most a frame or message from the client may be; longer ones end the connection.
pub const MAX_INCOMING: usize = 1024 * 1024;

/// What the session needs from the upgrade request, boxed: until the socket is ready the
/// upgrade task holds a pointer, and once the stream is set up it is freed.
struct Start {
    app: App,
    query: FeedQuery,
    access: Access,
}

/// Accepts the upgrade.
pub fn upgrade(app: App, upgrade: WebSocketUpgrade, query: FeedQuery, access: Access) -> Response {
    let start = Box::new(Start { app, query, access });
    upgrade
        .protocols([FEED_JSON_PROTOCOL, FEED_CBOR_PROTOCOL])
        .read_buffer_size(READ_CHUNK)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| session(socket, start))
}

fn frame(event: &Encoded, cbor: bool) -> Message {
    if cbor {
        Message::Binary(event.cbor().clone())
    } else {
        Message::Text(event.json().clone())
    }
}

/// Sends `frames` with one flush: the frames of a batch share TLS records and system
/// calls. True when they were all written within `write_timeout` of waiting on the
/// client. The sink is driven by hand (no future per frame is kept), and a timer is
/// made only if a write has to wait: most writes finish at once.
async fn send(
    socket: &mut WebSocket,
    frames: impl IntoIterator<Item = Message>,
    write_timeout: Duration,
) -> bool {
    let mut frames = frames.into_iter();
    let mut deadline: Option<Deadline> = None;
    std::future::poll_fn(|cx| {
        let written = loop {
            match socket.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => break Poll::Ready(false),
                Poll::Pending => break Poll::Pending,
            }
            // Taken only once the sink is ready for it: none is lost.
            let Some(frame) = frames.next() else {
                break socket.poll_flush_unpin(cx).map(|r| r.is_ok());
            };
            if socket.start_send_unpin(frame).is_err() {
                break Poll::Ready(false);
            }
        };
        if written.is_ready() {
            return written;
        }
        let deadline = deadline.get_or_insert_with(|| {
            let mut deadline = Deadline::default();
            deadline.arm(write_timeout);
            deadline
        });
        if deadline.passed(cx) {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Sends events (see [`send`]).
async fn send_events(
    socket: &mut WebSocket,
    events: &[Shared],
    cbor: bool,
    write_timeout: Duration,
) -> bool {
    send(socket, frames(events, cbor), write_timeout).await
}

/// The frames of `events`.
fn frames(events: &[Shared], cbor: bool) -> impl Iterator<Item = Message> + '_ {
    events.iter().map(move |e| frame(e, cbor))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str, write_timeout: Duration) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    send(socket, [frame], write_timeout).await;
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

/// What a set-up stream keeps for its life.
struct Session {
    feed: FeedStream,
    /// Held while the stream lives (a token's place in its share of the limits).
    access: Access,
    cbor: bool,
    write_timeout: Duration,
    liveness: Liveness,
}

/// Subscribes as the request asked and sends the first events; `None` when the stream
/// ended (refused, with a close frame, or the client is gone).
async fn open(socket: &mut WebSocket, start: Box<Start>) -> Option<Session> {
    let Start { app, query, access } = *start;
    let cbor = socket.protocol().and_then(|p| p.to_str().ok()) == Some(FEED_CBOR_PROTOCOL);
    let limits = app.limits.get();
    let write_timeout = limits.write_timeout;
    let subscriber = match app.feeds.open(crate::feeds::Transport::WebSocket) {
        Ok(s) => s,
        Err(e) => {
            close(socket, CLOSE_LIMIT, &e.to_string(), write_timeout).await;
            return None;
        }
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
                close(socket, CLOSE_LIMIT, &e.to_string(), write_timeout).await;
                return None;
            }
        }
    };
    let initial: Vec<Shared> = initial.into_iter().map(encode::shared).collect();
    if !send_events(socket, &initial, cbor, write_timeout).await {
        return None;
    }
    Some(Session {
        feed: FeedStream::new(
            subscriber,
            app.feeds.settings().progress_interval,
            access.expires_in,
        ),
        access,
        cbor,
        write_timeout,
        liveness: Liveness::new(limits.ping_interval, limits.ping_timeout),
    })
}

/// What woke a session.
enum Wake {
    Feed(Next),
    Ping,
    Incoming(Option<Result<Message, axum::Error>>),
}

/// One WebSocket stream. An idle subscriber's whole state is this future (in its task)
/// and what it points to, so set-up and rare paths run boxed and are freed when done,
/// and the wait polls the queue, the ping timer and the socket in place (no future per
/// source, as `select!` would keep): what stays is the socket, the [`Session`] and the
/// ping timer.
///
/// Not an `async fn`: that would keep its arguments twice (as passed, and as the
/// body's locals), and the socket is a third of the task; the block below uses the
/// captured socket in place.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep the socket twice"
)]
fn session(mut socket: WebSocket, start: Box<Start>) -> impl Future<Output = ()> + Send {
    async move {
        let Some(mut session) = Box::pin(open(&mut socket, start)).await else {
            return;
        };
        serve(&mut socket, &mut session).await;
    }
}

/// The session's loop, from the first live event to the end of the stream.
async fn serve(socket: &mut WebSocket, session: &mut Session) {
    let ping = tokio::time::sleep_until(session.liveness.deadline);
    tokio::pin!(ping);
    let write_timeout = session.write_timeout;
    // Which of the socket and the queue is looked at first, in turns, so that neither a
    // client that never stops sending nor a queue that is never empty starves the other.
    let mut socket_first = false;
    loop {
        socket_first = !socket_first;
        let wake = std::future::poll_fn(|cx| {
            if ping.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Ping);
            }
            if socket_first && let Poll::Ready(m) = socket.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Incoming(m));
            }
            if let Poll::Ready(next) = session.feed.poll_next(cx) {
                return Poll::Ready(Wake::Feed(next));
            }
            if !socket_first && let Poll::Ready(m) = socket.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Incoming(m));
            }
            Poll::Pending
        })
        .await;
        match wake {
            Wake::Feed(Next::Events(events)) => {
                if !send_events(socket, &events, session.cbor, write_timeout).await {
                    return;
                }
            }
            Wake::Feed(Next::Close(reason)) => {
                let (code, reason) = (reason.ws_code(), reason.as_str());
                return Box::pin(close(socket, code, reason, write_timeout)).await;
            }
            Wake::Ping => {
                if session.liveness.awaiting_pong {
                    let reason = CloseReason::Slow;
                    tracing::debug!("feed WebSocket sent no pong in time; closing it");
                    let (code, reason) = (reason.ws_code(), reason.as_str());
                    return Box::pin(close(socket, code, reason, write_timeout)).await;
                }
                let ping_frame = Message::Ping(bytes::Bytes::new());
                if !send(socket, [ping_frame], write_timeout).await {
                    return;
                }
                session.liveness.pinged();
                ping.as_mut().reset(session.liveness.deadline);
            }
            Wake::Incoming(incoming) => {
                let Some(Ok(message)) = incoming else { return };
                let command = match message {
                    Message::Text(text) => serde_json::from_str::<FeedCommand>(text.as_str())
                        .map_err(|e| e.to_string()),
                    Message::Binary(bytes) => {
                        swamp_proto::v1::decode::<FeedCommand>(&bytes).map_err(|e| e.to_string())
                    }
                    Message::Close(_) => return,
                    Message::Pong(_) => {
                        session.liveness.ponged();
                        ping.as_mut().reset(session.liveness.deadline);
                        continue;
                    }
                    Message::Ping(_) => continue,
                };
                let replies = match command {
                    Err(e) => vec![FeedEvent::Error {
                        message: format!("bad command: {e}"),
                    }],
                    Ok(command) => Box::pin(handle(&session.feed, &session.access, command)).await,
                };
                let replies: Vec<Shared> = replies.into_iter().map(encode::shared).collect();
                if !send_events(socket, &replies, session.cbor, write_timeout).await {
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
