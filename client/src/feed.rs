//! The change-feed client: WebSocket first, then SSE, then long-poll; resumes from its
//! last cursor after any disconnect, with jittered exponential backoff; passes `reset`
//! on (the caller re-reads) and continues from it; yields a `Stream` of typed events.
//!
//! One stream follows one server; [`crate::watch`] follows a slot on every server of
//! a grid (its shares live on several) and reports each version once.
//!
//! Every wait is bounded ([`FeedOptions::connect_timeout`],
//! [`FeedOptions::idle_timeout`]) and so is every buffer
//! ([`FeedOptions::max_event_bytes`], [`FeedOptions::max_poll_answer`]): a feed server
//! that hangs, or sends a line or a message without end, costs a reconnect after
//! backoff, never a hung watcher or unbounded memory.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, Stream, StreamExt};
use http::header::{ACCEPT, AUTHORIZATION};
use swamp_proto::feed::{Cursor, FeedBatch, FeedCommand, FeedEvent};
use swamp_proto::v1::endpoint;
use swamp_proto::{Nurl, StorageIndex};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::tls::pinned_config;

pub mod sse_frames;

use sse_frames::SseFrames;

/// The three ways to follow a feed, in order of preference.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transport {
    /// WebSocket (JSON frames).
    WebSocket,
    /// Server-sent events.
    Sse,
    /// Repeated long polls.
    LongPoll,
}

/// What the feed stream yields.
#[derive(Clone, PartialEq, Debug)]
pub enum FeedItem {
    /// An event from the server.
    Event(FeedEvent),
    /// Connected (again) with this transport.
    Connected(Transport),
    /// The connection ended; reconnecting after `retry_in`.
    Disconnected {
        /// Why.
        error: String,
        /// Backoff before the next attempt.
        retry_in: Duration,
    },
    /// The server has no change feed (e.g. a Python Tahoe server); the stream ends.
    Unsupported,
}

/// Feed client settings.
#[derive(Clone, Debug)]
pub struct FeedOptions {
    /// Transports to try, in order.
    pub transports: Vec<Transport>,
    /// First backoff after a failure.
    pub min_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Long-poll wait.
    pub poll_wait: Duration,
    /// Longest wait for a connection (TCP, TLS, and the WebSocket handshake or the
    /// SSE answer's headers). Default 10 s.
    pub connect_timeout: Duration,
    /// Longest silence on an open WebSocket or SSE stream before the connection is
    /// taken for dead and replaced. The server sends an SSE keep-alive every 15 s,
    /// and the client pings a quiet WebSocket every third of this. Default 45 s.
    pub idle_timeout: Duration,
    /// Largest WebSocket message, or SSE event (a line and the event's data held
    /// together), read; a larger one ends the connection. The server's events are a
    /// few hundred bytes. Default 1 MiB.
    pub max_event_bytes: usize,
    /// Largest long-poll answer read (a batch of events, a snapshot of every storage
    /// index asked for). Default 16 MiB.
    pub max_poll_answer: usize,
}

impl Default for FeedOptions {
    fn default() -> Self {
        Self {
            transports: vec![Transport::WebSocket, Transport::Sse, Transport::LongPoll],
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            poll_wait: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
            max_event_bytes: 1024 * 1024,
            max_poll_answer: 16 * 1024 * 1024,
        }
    }
}

/// What to follow.
#[derive(Clone, Debug)]
pub struct FeedRequest {
    /// Storage indexes.
    pub storage_indexes: Vec<StorageIndex>,
    /// Resume after this cursor.
    pub since: Option<Cursor>,
    /// Start with a snapshot (when `since` is `None`).
    pub snapshot: bool,
}

/// Follows a server's feed; the returned stream ends only when dropped (or when the
/// server has no feed).
pub fn follow(
    nurl: &Nurl,
    request: FeedRequest,
    options: FeedOptions,
) -> impl Stream<Item = FeedItem> + Send + 'static {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(run(nurl.clone(), request, options, tx));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Why one connection attempt ended.
enum Ended {
    /// Try the next transport (this one is not served).
    NotServed,
    /// Reconnect after backoff.
    Retry(String),
    /// The consumer went away.
    Stop,
}

struct State {
    request: FeedRequest,
    /// Last cursor processed.
    cursor: Option<Cursor>,
    /// A snapshot was asked for and its `synced` has not arrived yet.
    snapshot_pending: bool,
}

impl State {
    fn query(&self, with_wait: Option<Duration>) -> String {
        let mut q: Vec<String> = self
            .request
            .storage_indexes
            .iter()
            .map(|si| format!("si={si}"))
            .collect();
        match self.cursor {
            Some(c) => q.push(format!("since={c}")),
            None if self.snapshot_pending => q.push("snapshot=true".into()),
            None => {}
        }
        if let Some(wait) = with_wait {
            q.push(format!("wait={}", wait.as_secs()));
        }
        q.join("&")
    }

    /// Notes an event's cursor; returns false if the consumer is gone. Events of a
    /// type this version does not know are skipped (`docs/feeds.md` section 1).
    async fn deliver(&mut self, event: FeedEvent, tx: &mpsc::Sender<FeedItem>) -> bool {
        if event == FeedEvent::Unknown {
            return true;
        }
        if let Some(c) = event.cursor() {
            self.cursor = Some(c);
        }
        if matches!(event, FeedEvent::Synced { .. }) {
            self.snapshot_pending = false;
        }
        tx.send(FeedItem::Event(event)).await.is_ok()
    }
}

async fn run(nurl: Nurl, request: FeedRequest, options: FeedOptions, tx: mpsc::Sender<FeedItem>) {
    let mut state = State {
        cursor: request.since,
        snapshot_pending: request.since.is_none() && request.snapshot,
        request,
    };
    let http = match reqwest::Client::builder()
        .tls_backend_preconfigured(pinned_config(nurl.spki_hash, &[b"h2", b"http/1.1"]))
        .connect_timeout(options.connect_timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            let _ = tx
                .send(FeedItem::Disconnected {
                    error: e.to_string(),
                    retry_in: Duration::ZERO,
                })
                .await;
            return;
        }
    };
    let mut transports = options.transports.clone();
    let mut backoff = options.min_backoff;
    loop {
        let Some(&transport) = transports.first() else {
            let _ = tx.send(FeedItem::Unsupported).await;
            return;
        };
        let ended = match transport {
            Transport::WebSocket => websocket(&nurl, &mut state, &tx, &mut backoff, &options).await,
            Transport::Sse => sse(&nurl, &http, &mut state, &tx, &mut backoff, &options).await,
            Transport::LongPoll => {
                long_poll(&nurl, &http, &mut state, &tx, &mut backoff, &options).await
            }
        };
        match ended {
            Ended::Stop => return,
            Ended::NotServed => {
                transports.remove(0);
            }
            Ended::Retry(error) => {
                let retry_in = jitter(backoff);
                if tx
                    .send(FeedItem::Disconnected { error, retry_in })
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(retry_in).await;
                backoff = (backoff * 2).min(options.max_backoff);
            }
        }
    }
}

/// 50% to 150% of `d`, so that clients dropped together do not return together.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + rand::random::<f64>())
}

fn feed_url(nurl: &Nurl, scheme: &str, query: &str) -> String {
    let base = nurl.base_url();
    let base = base.strip_prefix("https").unwrap_or(&base);
    format!("{scheme}{base}{}?{query}", endpoint::FEED.pattern)
}

/// Why opening a WebSocket failed: the server's answer to the upgrade, which decides
/// whether to try another transport, or anything else (network, TLS, timeout).
#[derive(Debug)]
enum ConnectError {
    /// The server answered the upgrade request with this status instead of 101.
    Status(http::StatusCode),
    /// What went wrong otherwise, for the log.
    Other(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(status) => write!(f, "http {}", status.as_u16()),
            Self::Other(message) => f.write_str(message),
        }
    }
}

impl ConnectError {
    fn other(e: impl std::fmt::Display) -> Self {
        Self::Other(e.to_string())
    }
}

/// Status codes that mean "this server does not serve this transport or any feed".
fn not_served(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 404 | 405 | 406 | 415 | 426 | 501)
}

async fn websocket(
    nurl: &Nurl,
    state: &mut State,
    tx: &mpsc::Sender<FeedItem>,
    backoff: &mut Duration,
    options: &FeedOptions,
) -> Ended {
    let connect = async {
        let tcp = tokio::net::TcpStream::connect((nurl.host.as_str(), nurl.port))
            .await
            .map_err(ConnectError::other)?;
        // An upgrade needs HTTP/1.1: offer only that.
        let connector = tokio_rustls::TlsConnector::from(Arc::new(pinned_config(
            nurl.spki_hash,
            &[b"http/1.1"],
        )));
        let name = rustls::pki_types::ServerName::try_from(nurl.host.clone())
            .map_err(ConnectError::other)?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(ConnectError::other)?;
        let mut request = feed_url(nurl, "wss", &state.query(None))
            .into_client_request()
            .map_err(ConnectError::other)?;
        let headers = request.headers_mut();
        headers.insert(
            AUTHORIZATION,
            nurl.swissnum
                .authorization_header()
                .parse()
                .map_err(|_| ConnectError::other("bad header"))?,
        );
        headers.insert(
            "sec-websocket-protocol",
            http::HeaderValue::from_static(endpoint::FEED_JSON_PROTOCOL),
        );
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(options.max_event_bytes))
            .max_frame_size(Some(options.max_event_bytes));
        tokio_tungstenite::client_async_with_config(request, tls, Some(config))
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    ConnectError::Status(response.status())
                }
                other => ConnectError::other(other),
            })
    };
    let connected = tokio::time::timeout(options.connect_timeout, connect)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Other(format!(
                "no connection in {:?}",
                options.connect_timeout
            )))
        });
    let (mut ws, _) = match connected {
        Ok(pair) => pair,
        Err(ConnectError::Status(status)) if not_served(status) => return Ended::NotServed,
        Err(e) => return Ended::Retry(e.to_string()),
    };
    if tx
        .send(FeedItem::Connected(Transport::WebSocket))
        .await
        .is_err()
    {
        return Ended::Stop;
    }
    *backoff = options.min_backoff;
    if state.request.storage_indexes.is_empty() {
        let _ = ws
            .send(Message::Text(
                serde_json::to_string(&FeedCommand::Progress)
                    .unwrap_or_default()
                    .into(),
            ))
            .await;
    }
    // A quiet feed is pinged every third of the idle timeout; any frame (a pong
    // included) shows the server is there.
    let ping_every = options.idle_timeout / 3;
    let mut silent = Duration::ZERO;
    loop {
        let message = match tokio::time::timeout(ping_every, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Ended::Retry(e.to_string()),
            Ok(None) => return Ended::Retry("connection closed".into()),
            Err(_) => {
                silent += ping_every;
                if silent >= options.idle_timeout {
                    return Ended::Retry(format!("no frame in {:?}", options.idle_timeout));
                }
                let ping =
                    tokio::time::timeout(ping_every, ws.send(Message::Ping(Vec::new().into())));
                if !matches!(ping.await, Ok(Ok(()))) {
                    return Ended::Retry("the ping could not be sent".into());
                }
                continue;
            }
        };
        silent = Duration::ZERO;
        let event = match message {
            Message::Text(text) => serde_json::from_str::<FeedEvent>(text.as_str()),
            Message::Close(frame) => {
                let why = frame
                    .map(|f| format!("closed: {} {}", u16::from(f.code), f.reason))
                    .unwrap_or_else(|| "closed".into());
                return Ended::Retry(why);
            }
            _ => continue,
        };
        match event {
            Ok(event) => {
                if !state.deliver(event, tx).await {
                    return Ended::Stop;
                }
            }
            Err(e) => return Ended::Retry(format!("undecodable event: {e}")),
        }
    }
}

async fn sse(
    nurl: &Nurl,
    http: &reqwest::Client,
    state: &mut State,
    tx: &mpsc::Sender<FeedItem>,
    backoff: &mut Duration,
    options: &FeedOptions,
) -> Ended {
    let response = http
        .get(feed_url(nurl, "https", &state.query(None)))
        .header(AUTHORIZATION, nurl.swissnum.authorization_header())
        .header(ACCEPT, endpoint::EVENT_STREAM_MEDIA_TYPE)
        .send();
    let response = match tokio::time::timeout(options.connect_timeout, response).await {
        Ok(response) => response,
        Err(_) => {
            return Ended::Retry(format!("no answer in {:?}", options.connect_timeout));
        }
    };
    let response = match response {
        Ok(r)
            if r.status().is_success()
                && r.headers().get("content-type").is_some_and(|v| {
                    v.as_bytes()
                        .starts_with(endpoint::EVENT_STREAM_MEDIA_TYPE.as_bytes())
                }) =>
        {
            r
        }
        Ok(r) if not_served(r.status()) || r.status().is_success() => return Ended::NotServed,
        Ok(r) => return Ended::Retry(format!("http {}", r.status())),
        Err(e) => return Ended::Retry(e.to_string()),
    };
    if tx.send(FeedItem::Connected(Transport::Sse)).await.is_err() {
        return Ended::Stop;
    }
    *backoff = options.min_backoff;
    let mut body = response.bytes_stream();
    let mut frames = SseFrames::new(options.max_event_bytes);
    let mut events: Vec<String> = Vec::new();
    loop {
        for data in events.drain(..) {
            match serde_json::from_str::<FeedEvent>(&data) {
                Ok(FeedEvent::Close { reason }) => {
                    return Ended::Retry(format!("closed: {reason}"));
                }
                Ok(event) => {
                    if !state.deliver(event, tx).await {
                        return Ended::Stop;
                    }
                }
                Err(e) => return Ended::Retry(format!("undecodable event: {e}")),
            }
        }
        match tokio::time::timeout(options.idle_timeout, body.next()).await {
            Ok(Some(Ok(chunk))) => {
                if let Err(e) = frames.push(&chunk, &mut events) {
                    return Ended::Retry(e.to_string());
                }
            }
            Ok(Some(Err(e))) => return Ended::Retry(e.to_string()),
            Ok(None) => return Ended::Retry("stream ended".into()),
            Err(_) => return Ended::Retry(format!("no data in {:?}", options.idle_timeout)),
        }
    }
}

async fn long_poll(
    nurl: &Nurl,
    http: &reqwest::Client,
    state: &mut State,
    tx: &mpsc::Sender<FeedItem>,
    backoff: &mut Duration,
    options: &FeedOptions,
) -> Ended {
    let mut announced = false;
    loop {
        let response = http
            .get(feed_url(
                nurl,
                "https",
                &state.query(Some(options.poll_wait)),
            ))
            .header(AUTHORIZATION, nurl.swissnum.authorization_header())
            .header(ACCEPT, "application/json")
            .timeout(options.poll_wait + Duration::from_secs(30))
            .send()
            .await;
        let response = match response {
            Ok(r) if r.status().is_success() => r,
            Ok(r) if not_served(r.status()) => return Ended::NotServed,
            Ok(r) => return Ended::Retry(format!("http {}", r.status())),
            Err(e) => return Ended::Retry(e.to_string()),
        };
        let body = match read_bounded(response, options.max_poll_answer).await {
            Ok(body) => body,
            Err(e) => return Ended::Retry(e),
        };
        let batch: FeedBatch = match serde_json::from_slice(&body) {
            Ok(batch) => batch,
            Err(e) => return Ended::Retry(format!("undecodable answer: {e}")),
        };
        if !announced {
            announced = true;
            *backoff = options.min_backoff;
            if tx
                .send(FeedItem::Connected(Transport::LongPoll))
                .await
                .is_err()
            {
                return Ended::Stop;
            }
        }
        for event in batch.events {
            if !state.deliver(event, tx).await {
                return Ended::Stop;
            }
        }
        state.cursor = Some(batch.cursor);
    }
}

/// A response body, at most `limit` bytes of it (an announced length over it fails
/// before anything is read).
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("an answer over the {limit}-byte limit");
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
