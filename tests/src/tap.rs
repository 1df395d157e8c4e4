//! One view of a change feed over any of its transports, so that each feed behaviour
//! (live events, snapshot, resume, restart, reset, shutdown) is tested on every one:
//! WebSocket with JSON frames, WebSocket with CBOR frames, SSE and long-poll.
//!
//! A long-poll "stream" is a chain of polls, each resuming from the cursor of the one
//! before, which is exactly what a long-poll client does.

use std::collections::VecDeque;

use swamp_proto::feed::{Cursor, FeedEvent};

use crate::TestServer;
use crate::feed::{Sse, Ws, poll_with, sse_connect, tls_http1, ws_connect, ws_next_or_close};

/// A feed transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// WebSocket, `swamp-feed.v1.json`.
    WsJson,
    /// WebSocket, `swamp-feed.v1.cbor`.
    WsCbor,
    /// Server-sent events.
    Sse,
    /// Long-poll (CBOR batches).
    LongPoll,
}

impl Wire {
    /// Every transport.
    pub const ALL: [Wire; 4] = [Wire::WsJson, Wire::WsCbor, Wire::Sse, Wire::LongPoll];
}

/// How a feed ended when the server stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// A WebSocket close frame: (code, reason).
    WsClose(u16, String),
    /// An SSE `close` event with this reason, then the end of the response.
    SseClose(String),
    /// The waiting poll was answered with no events.
    PollAnswered,
}

enum Inner {
    Ws(Box<Ws>),
    Sse(Sse),
    Poll(LongPoll),
}

/// A chain of long polls, each from the cursor the one before answered.
struct LongPoll {
    client: swamp_client::StorageClient,
    /// The `si=` parameters, repeated on every poll.
    follow: String,
    /// The first poll's whole query (it may ask for a snapshot or resume).
    first: Option<String>,
    /// Where the next poll resumes: the last answer's cursor.
    cursor: Option<Cursor>,
    queue: VecDeque<FeedEvent>,
}

impl LongPoll {
    /// One poll: the first query, then from the last cursor, waiting up to 20 s.
    async fn poll_once(&mut self) {
        let query = match (self.first.take(), self.cursor) {
            (Some(q), _) => q,
            (None, Some(c)) => format!("{}&since={c}&wait=20", self.follow),
            (None, None) => format!("{}&wait=20", self.follow),
        };
        let batch = poll_with(&self.client, &query).await;
        self.cursor = Some(batch.cursor);
        self.queue.extend(batch.events);
    }

    /// The next event, polling (once) if none is queued.
    async fn next(&mut self) -> Option<FeedEvent> {
        if self.queue.is_empty() {
            self.poll_once().await;
        }
        self.queue.pop_front()
    }
}

/// An open feed on one transport.
pub struct Tap {
    wire: Wire,
    inner: Inner,
    last_cursor: Option<Cursor>,
}

impl Tap {
    /// Opens a feed following `sis`; `extra` is more query (`since=...`,
    /// `snapshot=true`), or empty.
    pub async fn open(
        server: &TestServer,
        wire: Wire,
        sis: &[swamp_proto::StorageIndex],
        extra: &str,
    ) -> Tap {
        let follow = sis
            .iter()
            .map(|si| format!("si={si}"))
            .collect::<Vec<_>>()
            .join("&");
        let query = if extra.is_empty() {
            follow.clone()
        } else {
            format!("{follow}&{extra}")
        };
        let inner = match wire {
            Wire::WsJson | Wire::WsCbor => Inner::Ws(Box::new(
                ws_connect(server, &query, wire == Wire::WsCbor, None).await,
            )),
            Wire::Sse => Inner::Sse(sse_connect(server, &query, &[]).await),
            Wire::LongPoll => {
                // A long-poll client's position is its cursor: a fresh one first asks
                // where the feed is now (an immediate answer), then polls from there.
                let first = if extra.is_empty() {
                    format!("{query}&wait=0")
                } else {
                    query
                };
                let mut poll = LongPoll {
                    client: server.client.clone(),
                    follow,
                    first: Some(first),
                    cursor: None,
                    queue: VecDeque::new(),
                };
                if extra.is_empty() {
                    poll.poll_once().await;
                }
                Inner::Poll(poll)
            }
        };
        Tap {
            wire,
            inner,
            last_cursor: None,
        }
    }

    /// Where to resume: the cursor of the last event received (for long-poll, of the
    /// last answer).
    pub fn cursor(&self) -> Option<Cursor> {
        match &self.inner {
            Inner::Poll(poll) => poll.cursor,
            Inner::Ws(_) | Inner::Sse(_) => self.last_cursor,
        }
    }

    /// The next event other than `progress` (checkpoints are transport-specific: a
    /// long-poll swallows the lone one a stream starts with).
    pub async fn next(&mut self) -> FeedEvent {
        loop {
            let event = self.next_any().await;
            if let Some(cursor) = event.cursor() {
                self.last_cursor = Some(cursor);
            }
            if !matches!(event, FeedEvent::Progress { .. }) {
                return event;
            }
        }
    }

    async fn next_any(&mut self) -> FeedEvent {
        let wire = self.wire;
        match &mut self.inner {
            Inner::Ws(ws) => match ws_next_or_close(ws).await {
                Ok(event) => event,
                Err(close) => panic!("{wire:?}: stream closed: {close:?}"),
            },
            Inner::Sse(sse) => {
                let frame = sse
                    .next()
                    .await
                    .unwrap_or_else(|| panic!("{wire:?}: stream ended"));
                assert_eq!(
                    frame.id,
                    frame.data.cursor().map(|c| c.to_string()),
                    "SSE ids are cursors"
                );
                frame.data
            }
            Inner::Poll(poll) => poll
                .next()
                .await
                .unwrap_or_else(|| panic!("{wire:?}: no event within 20 s")),
        }
    }

    /// Waits for the end of a streaming feed while the server stops, and says how it
    /// ended (a long poll ends differently: see [`waiting_poll_ends`]).
    pub async fn ending(&mut self) -> Ending {
        match &mut self.inner {
            Inner::Ws(ws) => loop {
                match ws_next_or_close(ws).await {
                    Ok(FeedEvent::Progress { .. }) => continue,
                    Ok(other) => panic!("expected the close, got {other:?}"),
                    Err((code, reason)) => return Ending::WsClose(code, reason),
                }
            },
            Inner::Sse(sse) => loop {
                match sse.next().await.map(|f| f.data) {
                    Some(FeedEvent::Progress { .. }) => continue,
                    Some(FeedEvent::Close { reason }) => {
                        assert!(sse.next().await.is_none(), "the response ends after close");
                        return Ending::SseClose(reason);
                    }
                    other => panic!("expected the close event, got {other:?}"),
                }
            },
            Inner::Poll(_) => panic!("long-poll: use waiting_poll_ends"),
        }
    }
}

/// Sends one long poll (`wait` long) on `server`'s feed and returns how it ended,
/// while `stop` stops the server: the server must answer it rather than wait it out.
pub async fn waiting_poll_ends(
    client: &swamp_client::StorageClient,
    query: &str,
    is_waiting: impl Fn() -> bool,
    stop: impl std::future::Future<Output = ()>,
) -> Ending {
    let polling = poll_with(client, query);
    tokio::pin!(polling);
    // Drive the poll until the server holds it open (its subscriber is registered),
    // then stop the server while it waits.
    loop {
        tokio::select! {
            biased;
            batch = &mut polling => panic!("the poll was answered before shutdown: {batch:?}"),
            () = tokio::task::yield_now() => {}
        }
        if is_waiting() {
            break;
        }
    }
    let (batch, ()) = tokio::join!(polling, stop);
    assert!(batch.events.is_empty(), "{:?}", batch.events);
    Ending::PollAnswered
}

/// Opens a feed the way `wire` does, with `query` and the given `Authorization`
/// header (none if `None`), expecting a refusal: returns its HTTP status and body, or
/// for a WebSocket refused after the upgrade, the close frame's code and reason.
pub async fn refusal(
    server: &TestServer,
    wire: Wire,
    query: &str,
    authorization: Option<&str>,
) -> (u16, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let url = format!("{}/storage/v1/feed?{query}", server.nurl.base_url());
    if let Wire::WsJson | Wire::WsCbor = wire {
        let tls = tls_http1(server, None).await;
        let mut request = url
            .replacen("https://", "wss://", 1)
            .into_client_request()
            .unwrap();
        if let Some(auth) = authorization {
            request
                .headers_mut()
                .insert("authorization", auth.parse().unwrap());
        }
        return match tokio_tungstenite::client_async(request, tls).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => (
                response.status().as_u16(),
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .into_owned(),
            ),
            Err(other) => panic!("{wire:?} {query}: {other}"),
            // Refused after the upgrade: the close frame's code and reason.
            Ok((ws, _)) => {
                let mut ws: Ws = ws;
                match ws_next_or_close(&mut ws).await {
                    Err(close) => close,
                    Ok(event) => panic!("{wire:?} {query}: accepted, first event {event:?}"),
                }
            }
        };
    }
    let mut request = server.raw_client().get(&url);
    if wire == Wire::Sse {
        request = request.header("accept", "text/event-stream");
    }
    if let Some(auth) = authorization {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// An SSE stream on its own HTTP/1.1 connection with a small receive buffer, that the
/// test reads only when it chooses to: a subscriber that has stopped reading.
pub struct StalledSse {
    tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
}

impl StalledSse {
    /// Opens the stream (`query` without `?`) and reads nothing.
    pub async fn open(server: &TestServer, query: &str, recv_buffer: u32) -> StalledSse {
        use tokio::io::AsyncWriteExt;

        let mut tls = tls_http1(server, Some(recv_buffer)).await;
        let request = format!(
            "GET /storage/v1/feed?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: {}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n",
            server.nurl.swissnum.authorization_header()
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        StalledSse { tls }
    }

    /// Reads everything up to the end of the response and returns the `close` event's
    /// reason (panics if the stream ends without one).
    pub async fn close_reason(mut self) -> String {
        use tokio::io::AsyncReadExt;

        let mut raw = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            self.tls.read_to_end(&mut raw),
        )
        .await
        .expect("the stream ends within 20 s")
        .unwrap();
        let text = dechunk(&raw);
        let close = text
            .split("\n\n")
            .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter_map(|data| serde_json::from_str::<FeedEvent>(data).ok())
            .last();
        match close {
            Some(FeedEvent::Close { reason }) => reason,
            other => panic!("the stream ended with {other:?}, not a close event"),
        }
    }
}

/// The body of a chunked HTTP/1.1 response (headers dropped).
fn dechunk(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (_, mut rest) = text.split_once("\r\n\r\n").expect("response headers");
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}
