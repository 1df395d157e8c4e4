//! The client against storage servers that misbehave on purpose. A hostile server here
//! is a small GBS server written for the test: real TLS with a fresh self-signed
//! certificate pinned by its NURL, on 127.0.0.1:0, speaking HTTP/1.1 by hand so that it
//! can say anything: never answer, send more than asked, announce absurd sizes, stream
//! a line without end. Each attack must end in a clear, typed error (or a reconnect)
//! within its bound, and a download must go on around a hostile or damaged share and
//! report it, as Tahoe's downloader does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use swamp_client::feed::{FeedItem, FeedOptions, FeedRequest, Transport, follow};
use swamp_client::grid::{Grid, GridError, Server};
use swamp_client::{ClientError, ClientOptions, StorageClient};
use swamp_formats::cap::{Cap, MutableFormat};
use swamp_formats::chk::{DEFAULT_MAX_SEGMENT_SIZE, Params};
use swamp_proto::{Nurl, ShareNumber};
use swamp_server::node::NodeIdentity;
use swamp_server::node::settings::LocationHint;
use swamp_tests::{TestServer, grid_of, random_bytes, random_si, share_file};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request as the hostile server read it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    /// `(first, last)` of a `Range: bytes=first-last` header.
    range: Option<(u64, u64)>,
}

/// What the hostile server does after writing an answer's first bytes.
enum Then {
    /// Reads the next request on the connection.
    KeepAlive,
    /// Writes nothing more, ever (the connection stays open).
    Hang,
    /// Writes this chunk (in chunked encoding) again and again until the client
    /// goes away.
    Endless(Vec<u8>),
}

/// An answer: bytes written as they are (status line, headers, body), then what next.
struct Reply(Vec<u8>, Then);

impl Reply {
    /// A complete answer, the connection kept.
    fn full(status: &str, headers: &[(&str, String)], body: &[u8]) -> Self {
        let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Self(bytes, Then::KeepAlive)
    }

    /// A head announcing a chunked body, then `chunk` without end.
    fn endless(status: &str, headers: &[(&str, String)], chunk: &[u8]) -> Self {
        let mut head = format!("HTTP/1.1 {status}\r\ntransfer-encoding: chunked\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        Self(head.into_bytes(), Then::Endless(chunk.to_vec()))
    }

    /// Nothing at all.
    fn silent() -> Self {
        Self(Vec::new(), Then::Hang)
    }
}

type Answer = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A running hostile server.
struct Hostile {
    nurl: Nurl,
    tubid: [u8; 20],
    /// Every request read, in order.
    seen: Arc<Mutex<Vec<Seen>>>,
    /// TLS connections accepted.
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A NURL for a fresh identity at `port` on 127.0.0.1.
fn identity_at(port: u16) -> (Arc<NodeIdentity>, Nurl) {
    let identity = Arc::new(NodeIdentity::ephemeral().unwrap());
    let nurl = identity
        .nurls(&[LocationHint {
            host: "127.0.0.1".into(),
            port,
        }])
        .remove(0);
    (identity, nurl)
}

/// A listener on 127.0.0.1:0 with a fresh identity, its NURL, and a TLS acceptor for
/// it that offers HTTP/1.1 only (the client then speaks what a test writes by hand).
async fn tls_listener() -> (
    TcpListener,
    Arc<NodeIdentity>,
    Nurl,
    tokio_rustls::TlsAcceptor,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (identity, nurl) = identity_at(listener.local_addr().unwrap().port());
    let mut config = (*swamp_server::tls::server_config(&identity).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    (listener, identity, nurl, acceptor)
}

impl Hostile {
    async fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let (listener, identity, nurl, acceptor) = tls_listener().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let answer: Answer = Arc::new(answer);
        let task = {
            let (seen, connections) = (Arc::clone(&seen), Arc::clone(&connections));
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, answer, seen) =
                        (acceptor.clone(), Arc::clone(&answer), Arc::clone(&seen));
                    connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            serve_connection(tls, answer, seen).await;
                        }
                    });
                }
            })
        };
        Self {
            nurl,
            tubid: identity.tubid,
            seen,
            connections,
            task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A client with short bounds, so that the tests run in seconds.
    fn client(&self) -> StorageClient {
        StorageClient::with_options(&self.nurl, &quick_options()).unwrap()
    }
}

fn quick_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(1),
        max_cbor_answer: 64 * 1024,
        ..ClientOptions::default()
    }
}

/// Reads requests on one connection and answers each as told.
async fn serve_connection(
    mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    answer: Answer,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.lines();
        let mut words = lines.next().unwrap_or("").split(' ');
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let mut request = Seen {
            method: method.into(),
            path: path.into(),
            range: None,
        };
        let mut body_len = 0usize;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => body_len = value.parse().unwrap_or(0),
                "range" => {
                    request.range = value.strip_prefix("bytes=").and_then(|r| {
                        let (a, b) = r.split_once('-')?;
                        Some((a.parse().ok()?, b.parse().ok()?))
                    });
                }
                _ => {}
            }
        }
        while buf.len() < head_end + body_len {
            let mut chunk = [0u8; 4096];
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + body_len);
        seen.lock().unwrap().push(request.clone());
        let Reply(bytes, then) = answer(&request);
        if tls.write_all(&bytes).await.is_err() {
            return;
        }
        let _ = tls.flush().await;
        match then {
            Then::KeepAlive => {}
            Then::Hang => std::future::pending::<()>().await,
            Then::Endless(chunk) => {
                let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                framed.extend_from_slice(&chunk);
                framed.extend_from_slice(b"\r\n");
                while tls.write_all(&framed).await.is_ok() {}
                return;
            }
        }
    }
}

/// Runs `f` with a failure guard far above every bound under test.
async fn guarded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the client gave up within its bounds, not the test's")
}

const CBOR: &str = "application/cbor";

/// `cbor2.dumps({0})`: a share set holding share 0.
const SHARE_ZERO: &[u8] = &[0xd9, 0x01, 0x02, 0x81, 0x00];

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout_not_a_hang() {
    let server = Hostile::start(|_| Reply::silent()).await;
    let client = server.client();
    let si = random_si();
    let started = Instant::now();
    let err = guarded(client.immutable().list_shares(&si))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                connecting: false,
                after
            } if after == Duration::from_secs(1)
        ),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        err.to_string(),
        "timed out waiting for the server's answer after 1s"
    );
    // Share reads and the version too; and a server that stops in the middle of a
    // body times out just the same.
    let err = guarded(
        client
            .immutable()
            .read_share_chunk(&si, ShareNumber::new(0), 0, 10),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    let err = guarded(client.general().version()).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");

    let stalls = Hostile::start(|_| {
        let Reply(mut bytes, _) = Reply::full("200 OK", &[("content-type", CBOR.into())], b"");
        // Announce 100 bytes, send 2, stop.
        let head = String::from_utf8(bytes.clone()).unwrap();
        bytes = head
            .replace("content-length: 0", "content-length: 100")
            .into_bytes();
        bytes.extend_from_slice(&SHARE_ZERO[..2]);
        Reply(bytes, Then::Hang)
    })
    .await;
    let err = guarded(stalls.client().immutable().list_shares(&si))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "timed out waiting for the server's answer after 1s"
    );
}

#[tokio::test]
async fn a_server_that_never_completes_tls_is_a_connect_timeout() {
    // Accepts TCP connections and holds them, silent.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_identity, nurl) = identity_at(listener.local_addr().unwrap().port());
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    // The connect bound is shorter than the answer bound: the error must name it.
    let options = ClientOptions {
        read_timeout: Duration::from_secs(5),
        ..quick_options()
    };
    let client = StorageClient::with_options(&nurl, &options).unwrap();
    let started = Instant::now();
    let err = guarded(client.general().version()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                connecting: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "timed out connecting after 1s");
    assert!(started.elapsed() < Duration::from_secs(5));
    held.abort();
}

/// A 206 for the range asked, with `body` (whatever its length) and
/// `Content-Range: bytes first-last/*` for `content_range`.
fn partial(content_range: (u64, u64), body: &[u8]) -> Reply {
    Reply::full(
        "206 Partial Content",
        &[(
            "content-range",
            format!("bytes {}-{}/*", content_range.0, content_range.1),
        )],
        body,
    )
}

#[tokio::test]
async fn a_server_never_gets_more_bytes_read_than_were_asked_for() {
    let si = random_si();
    let read = |server: &Hostile| {
        let client = server.client();
        async move {
            guarded(
                client
                    .immutable()
                    .read_share_chunk(&si, ShareNumber::new(0), 0, 100),
            )
            .await
        }
    };
    // Longer than asked, announced by Content-Length: refused before the body is read.
    let longer = Hostile::start(|_| partial((0, 99), &[7; 1000])).await;
    let err = read(&longer).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::TooLarge {
                what: "share data",
                limit: 100
            }
        ),
        "{err:?}"
    );
    // Longer than asked, without end: refused at the chunk that crosses the length.
    let endless = Hostile::start(|_| {
        Reply::endless(
            "206 Partial Content",
            &[("content-range", "bytes 0-99/*".into())],
            &[7; 64],
        )
    })
    .await;
    let err = read(&endless).await.unwrap_err();
    assert!(
        matches!(err, ClientError::TooLarge { limit: 100, .. }),
        "{err:?}"
    );
    // A wider range than asked is refused from its header.
    let wider = Hostile::start(|_| partial((0, 999), &[7; 1000])).await;
    let err = read(&wider).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    // A range clipped at the share's end is what servers do, and fine.
    let clipped = Hostile::start(|_| partial((0, 49), &[7; 50])).await;
    assert_eq!(read(&clipped).await.unwrap(), vec![7u8; 50]);
}

#[tokio::test]
async fn sizes_a_server_announces_are_bounded_before_anything_is_allocated() {
    let si = random_si();
    // A CBOR answer announcing a terabyte, then nothing: refused at once, from the
    // header alone (not after a timeout, and without waiting for the body).
    let huge = Hostile::start(|_| {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {CBOR}\r\ncontent-length: 1000000000000\r\n\r\n"
        );
        Reply(head.into_bytes(), Then::Hang)
    })
    .await;
    // The body never comes: reading it would end in a timeout, not this.
    let err = guarded(huge.client().immutable().list_shares(&si))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::TooLarge {
                what: "CBOR answer",
                limit: 65536
            }
        ),
        "{err:?}"
    );
    // A CBOR answer without end stops at the bound.
    let endless =
        Hostile::start(|_| Reply::endless("200 OK", &[("content-type", CBOR.into())], &[0; 4096]))
            .await;
    let err = guarded(endless.client().immutable().list_shares(&si))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::TooLarge { .. }), "{err:?}");
    // CBOR lengths are sizes too: a set claiming 2^64-1 members, an upload progress
    // claiming a 2^64-1-byte list, decode to a clean error.
    let liar = Hostile::start(|seen: &Seen| {
        let body: &[u8] = if seen.method == "PATCH" {
            &[
                0xa1, 0x68, b'r', b'e', b'q', b'u', b'i', b'r', b'e', b'd', 0x9b, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff,
            ]
        } else {
            &[
                0xd9, 0x01, 0x02, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ]
        };
        Reply::full("200 OK", &[("content-type", CBOR.into())], body)
    })
    .await;
    let client = liar.client();
    let err = guarded(client.immutable().list_shares(&si))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
    let secret = swamp_proto::secrets::UploadSecret::new(vec![1; 32]).unwrap();
    let err = guarded(client.immutable().write_share_chunk(
        &si,
        ShareNumber::new(0),
        &secret,
        0,
        vec![1u8; 10],
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
    // An error answer without end: the status, with the start of its body.
    let error =
        Hostile::start(|_| Reply::endless("500 Internal Server Error", &[], b"oops ")).await;
    let err = guarded(error.client().immutable().list_shares(&si))
        .await
        .unwrap_err();
    match err {
        ClientError::Http { status, body } => {
            assert_eq!(status, 500);
            assert!(
                body.starts_with("oops oops") && body.len() <= 1000,
                "{body}"
            );
        }
        other => panic!("expected the 500, got {other:?}"),
    }
}

fn quick_feed(transport: Transport) -> FeedOptions {
    FeedOptions {
        transports: vec![transport],
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(1),
        // Long enough that a loaded machine does not mistake a busy hostile server
        // for a silent one; short enough for a quick test of silence.
        idle_timeout: Duration::from_secs(2),
        max_event_bytes: 64 * 1024,
        ..FeedOptions::default()
    }
}

async fn next_item(stream: &mut (impl futures::Stream<Item = FeedItem> + Unpin)) -> FeedItem {
    guarded(stream.next()).await.expect("the stream goes on")
}

/// Follows a fresh storage index on `nurl` over `transport`, with short bounds.
fn feed_on(nurl: &Nurl, transport: Transport) -> futures::stream::BoxStream<'static, FeedItem> {
    let request = FeedRequest {
        storage_indexes: vec![random_si()],
        since: None,
        snapshot: false,
    };
    follow(nurl, request, quick_feed(transport)).boxed()
}

/// The next item, which must be a disconnect: its error.
async fn next_disconnect(stream: &mut (impl futures::Stream<Item = FeedItem> + Unpin)) -> String {
    match next_item(stream).await {
        FeedItem::Disconnected { error, .. } => error,
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

#[tokio::test]
async fn an_endless_sse_line_ends_the_connection_and_the_client_reconnects() {
    let server = Hostile::start(|_| {
        Reply::endless(
            "200 OK",
            &[("content-type", "text/event-stream".into())],
            b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        )
    })
    .await;
    let mut stream = feed_on(&server.nurl, Transport::Sse);
    assert_eq!(
        next_item(&mut stream).await,
        FeedItem::Connected(Transport::Sse)
    );
    assert_eq!(
        next_disconnect(&mut stream).await,
        "an event is over the 65536-byte limit"
    );
    assert_eq!(
        next_item(&mut stream).await,
        FeedItem::Connected(Transport::Sse)
    );
    assert!(server.connections.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_silent_feed_server_is_left_after_the_idle_timeout() {
    let server = Hostile::start(|seen: &Seen| {
        if seen.path.starts_with("/storage/v1/feed") {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            Reply(head.as_bytes().to_vec(), Then::Hang)
        } else {
            Reply::silent()
        }
    })
    .await;
    let mut stream = feed_on(&server.nurl, Transport::Sse);
    assert_eq!(
        next_item(&mut stream).await,
        FeedItem::Connected(Transport::Sse)
    );
    assert_eq!(next_disconnect(&mut stream).await, "no data in 2s");
    // A server that never answers the request at all: the same, from the connect
    // bound.
    let mute = Hostile::start(|_| Reply::silent()).await;
    let mut stream = feed_on(&mute.nurl, Transport::Sse);
    assert_eq!(next_disconnect(&mut stream).await, "no answer in 1s");
}

/// A newer server may add event types and members (docs/feeds.md section 1): the
/// client skips the types it does not know, ignores the members, and goes on, over SSE
/// and long-poll alike.
#[tokio::test]
async fn event_types_and_members_a_newer_server_adds_are_skipped() {
    let cursor = "0000000000000001-5";
    let unknown = r#"{"type":"slot_renamed","cursor":"0000000000000001-4","si":"x","to":{"a":1}}"#;
    let progress = format!(r#"{{"type":"progress","cursor":"{cursor}","server_load":0.5}}"#);
    let sse = format!("event: slot_renamed\ndata: {unknown}\n\ndata: {progress}\n\n");
    let poll = format!(r#"{{"events":[{unknown},{progress}],"cursor":"{cursor}","more":false}}"#);
    let server = Hostile::start(move |seen: &Seen| {
        if seen.path.contains("wait=") {
            Reply::full(
                "200 OK",
                &[("content-type", "application/json".into())],
                poll.as_bytes(),
            )
        } else {
            Reply::full(
                "200 OK",
                &[("content-type", "text/event-stream".into())],
                sse.as_bytes(),
            )
        }
    })
    .await;
    let expected = FeedItem::Event(swamp_proto::feed::FeedEvent::Progress {
        cursor: cursor.parse().unwrap(),
    });
    for transport in [Transport::Sse, Transport::LongPoll] {
        let mut stream = feed_on(&server.nurl, transport);
        assert_eq!(next_item(&mut stream).await, FeedItem::Connected(transport));
        assert_eq!(next_item(&mut stream).await, expected, "{transport:?}");
    }
}

/// A WebSocket feed server that accepts every upgrade, sends one text message of
/// `first` bytes if asked, and then neither reads nor writes (so it never answers a
/// ping). Returns its NURL and a count of upgrades.
async fn hostile_websocket(first: Option<usize>) -> (Nurl, Arc<AtomicUsize>, JoinHandle<()>) {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    let (listener, _identity, nurl, acceptor) = tls_listener().await;
    let upgrades = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&upgrades);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, upgrades) = (acceptor.clone(), Arc::clone(&counted));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                #[allow(
                    clippy::result_large_err,
                    reason = "tungstenite's handshake callback fixes the error type"
                )]
                let protocol = |_: &Request, mut response: Response| {
                    response.headers_mut().insert(
                        "sec-websocket-protocol",
                        http::HeaderValue::from_static("swamp-feed.v1.json"),
                    );
                    Ok::<_, ErrorResponse>(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, protocol).await else {
                    return;
                };
                upgrades.fetch_add(1, Ordering::SeqCst);
                if let Some(len) = first {
                    let _ = ws.send(Message::Text("x".repeat(len).into())).await;
                }
                std::future::pending::<()>().await;
                drop(ws);
            });
        }
    });
    (nurl, upgrades, task)
}

/// A WebSocket message over the bound ends the connection (the client reconnects);
/// a WebSocket server that stops answering pings is left after the idle timeout.
#[tokio::test]
async fn websocket_feeds_are_bounded_in_size_and_silence() {
    let feed = |nurl: &Nurl| feed_on(nurl, Transport::WebSocket);
    let (nurl, upgrades, task) = hostile_websocket(Some(1024 * 1024)).await;
    let mut stream = feed(&nurl);
    assert_eq!(
        next_item(&mut stream).await,
        FeedItem::Connected(Transport::WebSocket)
    );
    let error = next_disconnect(&mut stream).await;
    assert!(error.contains("Message too long"), "{error}");
    assert_eq!(
        next_item(&mut stream).await,
        FeedItem::Connected(Transport::WebSocket)
    );
    assert!(upgrades.load(Ordering::SeqCst) >= 2);
    task.abort();

    let (nurl, _upgrades, task) = hostile_websocket(None).await;
    let mut stream = feed(&nurl);
    assert_eq!(
        next_item(&mut stream).await,
        FeedItem::Connected(Transport::WebSocket)
    );
    assert_eq!(next_disconnect(&mut stream).await, "no frame in 2s");
    task.abort();
}

/// A grid of `real` servers and `hostile` ones (Swamp's default 2-of-3 parameters).
fn mixed_grid(real: &[&TestServer], hostile: &[&Hostile]) -> Grid {
    let mut servers: Vec<Server> = real
        .iter()
        .map(|s| Server {
            nurl: s.nurl.clone(),
            tubid: s.identity.tubid,
            permutation_seed: s.identity.tubid.to_vec(),
            client: s.client.clone(),
        })
        .collect();
    servers.extend(hostile.iter().map(|h| Server {
        nurl: h.nurl.clone(),
        tubid: h.tubid,
        permutation_seed: h.tubid.to_vec(),
        client: h.client(),
    }));
    let params = Params {
        needed: 2,
        total: 3,
        max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
    };
    Grid::new(servers, vec![7; 32], vec![9; 32], params, 3)
}

/// Uploads a file to `servers` (2-of-3, one share each) and returns its cap, its
/// bytes, and the two servers that do not hold share 0.
async fn uploaded_without_share_zero(
    servers: &[TestServer],
) -> (swamp_formats::cap::ChkCap, Vec<u8>, Vec<&TestServer>) {
    let data = random_bytes(300_000);
    let Cap::Chk(chk) = grid_of(servers).upload(&data).await.unwrap() else {
        panic!("expected a CHK cap")
    };
    let mut others = Vec::new();
    for server in servers {
        if only_share(server, &chk.storage_index(), false).await != ShareNumber::new(0) {
            others.push(server);
        }
    }
    assert_eq!(others.len(), 2);
    (chk, data, others)
}

/// The one share of `si` that `server` holds (immutable, or a slot's).
async fn only_share(
    server: &TestServer,
    si: &swamp_proto::StorageIndex,
    mutable: bool,
) -> ShareNumber {
    let held = if mutable {
        server.client.mutable().list_shares(si).await
    } else {
        server.client.immutable().list_shares(si).await
    };
    let held: Vec<ShareNumber> = held.unwrap().into_iter().collect();
    assert_eq!(held.len(), 1, "one share per server");
    held[0]
}

/// A hostile server claims share 0 of every file, with a header whose offsets put its
/// hash trees and UEB a terabyte away. The downloader asks it for no more than a UEB's
/// worth, blames the share, tells the server so, and reads the file from the others.
#[tokio::test]
async fn a_share_with_absurd_offsets_is_blamed_reported_and_replaced() {
    let servers = TestServer::three().await;
    let (chk, data, others) = uploaded_without_share_zero(&servers).await;
    let si = chk.storage_index();
    let hostile = Hostile::start(|seen: &Seen| {
        if seen.method == "POST" {
            return Reply::full("200 OK", &[], b"");
        }
        if seen.path.ends_with("/shares") {
            return Reply::full("200 OK", &[("content-type", CBOR.into())], SHARE_ZERO);
        }
        match seen.range {
            Some((0, last)) if last < 0x44 => {
                // Layout 2: block size, data size, then the offsets of data, plaintext
                // tree, ciphertext tree, block tree, share hashes, UEB.
                let far = 1u64 << 39;
                let mut header = 2u32.to_be_bytes().to_vec();
                for field in [
                    1 << 20,
                    far,
                    0x44,
                    0x44 + far,
                    0x44 + far,
                    0x64 + far,
                    0x84 + far,
                    1 << 40,
                ] {
                    header.extend_from_slice(&u64::to_be_bytes(field));
                }
                partial((0, last), &header[..=last as usize])
            }
            // Anything else: zeros, at most 1000 of them.
            Some((first, last)) => {
                let last = last.min(first + 999);
                partial((first, last), &vec![0; (last - first + 1) as usize])
            }
            None => Reply::full("400 Bad Request", &[], b""),
        }
    })
    .await;
    let grid = mixed_grid(&others, &[&hostile]);
    assert!(guarded(grid.download(&chk)).await.unwrap() == data);
    let seen = hostile.seen();
    let largest = seen
        .iter()
        .filter_map(|s| s.range.map(|(a, b)| b - a + 1))
        .max()
        .unwrap();
    assert!(
        largest <= 8 + swamp_formats::chk::MAX_UEB_LEN,
        "asked for {largest} bytes"
    );
    let advised = format!("/storage/v1/immutable/{si}/0/corrupt");
    assert!(
        seen.iter().any(|s| s.method == "POST" && s.path == advised),
        "no corruption advisory in {seen:?}"
    );
}

/// A server that lists share 0 and then never answers a read of it costs the download
/// one read timeout: the share is dropped (not reported: a silent server is not a
/// corrupt share) and the file is read from the others.
#[tokio::test]
async fn a_hung_server_holding_a_share_costs_a_timeout_not_the_download() {
    let servers = TestServer::three().await;
    let (chk, data, others) = uploaded_without_share_zero(&servers).await;
    let hung = Hostile::start(|seen: &Seen| {
        if seen.path.ends_with("/shares") {
            Reply::full("200 OK", &[("content-type", CBOR.into())], SHARE_ZERO)
        } else {
            Reply::silent()
        }
    })
    .await;
    let grid = mixed_grid(&others, &[&hung]);
    let started = Instant::now();
    assert!(guarded(grid.download(&chk)).await.unwrap() == data);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the read was tried"
    );
    let seen = hung.seen();
    assert!(seen.iter().any(|s| s.range.is_some()), "{seen:?}");
    assert!(!seen.iter().any(|s| s.method == "POST"), "{seen:?}");
}

/// Caps are data too: absurd encoding parameters are refused before any server is
/// asked, and an absurd size costs nothing before a share is found.
#[tokio::test]
async fn absurd_caps_are_refused_cleanly() {
    let server = TestServer::start().await;
    let grid = grid_of(std::slice::from_ref(&server));
    let cap = |needed: u16, total: u16, size: u64| swamp_formats::cap::ChkCap {
        key: [1; 16],
        ueb_hash: [2; 32],
        needed,
        total,
        size,
    };
    for (needed, total) in [(0, 3), (4, 3), (2, 300)] {
        match guarded(grid.download(&cap(needed, total, 1000))).await {
            Err(GridError::Format(e)) => assert!(e.to_string().contains("1 <= k <= N"), "{e}"),
            other => panic!("k={needed} N={total}: {:?}", other.map(|d| d.len())),
        }
    }
    match guarded(grid.download(&cap(2, 3, u64::MAX))).await {
        Err(GridError::NotEnoughShares { found: 0, .. }) => {}
        other => panic!("expected NotEnoughShares, got {:?}", other.map(|d| d.len())),
    }
}

fn advisories(server: &TestServer) -> usize {
    std::fs::read_dir(server.storage_dir.join("corruption-advisories")).map_or(0, |d| d.count())
}

/// Where a share's ciphertext tree leaves start, in its share data.
async fn crypttext_leaves(
    server: &TestServer,
    si: &swamp_proto::StorageIndex,
    shnum: ShareNumber,
) -> u64 {
    let header = server
        .client
        .immutable()
        .read_share_chunk(si, shnum, 0, swamp_formats::chk::HEADER_LEN)
        .await
        .unwrap();
    let offsets = swamp_formats::chk::parse_offsets(&header).unwrap();
    let nodes = (offsets.block_hashes - offsets.crypttext_hash_tree) / 32;
    offsets.crypttext_hash_tree + nodes / 2 * 32
}

/// Each share carries its own copy of the ciphertext hash tree. With one copy damaged
/// on disk (a leaf of a middle segment), the download still succeeds from the other
/// shares and the damaged share is reported to its server; with two of three shares
/// damaged, it fails saying how many good shares it found.
#[tokio::test]
async fn a_damaged_ciphertext_tree_is_blamed_on_its_share_and_reported() {
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    // Three segments (1 MiB each at most): the tree has leaves below its root.
    let data = random_bytes(2 * 1024 * 1024 + 100_000);
    let Cap::Chk(chk) = grid.upload(&data).await.unwrap() else {
        panic!("expected a CHK cap")
    };
    let si = chk.storage_index();
    let damage = |i: usize, shnum: ShareNumber, at: u64| {
        let path = share_file(&servers[i].shares_dir(), &si, shnum.get());
        let mut bytes = std::fs::read(&path).unwrap();
        // The container's 12-byte header comes before the share data.
        bytes[12 + at as usize + 32] ^= 0x01; // the second segment's leaf
        std::fs::write(&path, bytes).unwrap();
    };
    // The first server in permuted order is read first: its copy of the tree is the
    // one a decoder would have used.
    let first = grid.permuted(&si)[0].nurl.clone();
    let victim = servers.iter().position(|s| s.nurl == first).unwrap();
    let shnum = only_share(&servers[victim], &si, false).await;
    damage(
        victim,
        shnum,
        crypttext_leaves(&servers[victim], &si, shnum).await,
    );
    assert!(guarded(grid.download(&chk)).await.unwrap() == data);
    for (i, server) in servers.iter().enumerate() {
        assert_eq!(advisories(server), usize::from(i == victim), "server {i}");
    }
    // A second damaged share leaves one good one of the two needed.
    let second = (victim + 1) % 3;
    let shnum = only_share(&servers[second], &si, false).await;
    damage(
        second,
        shnum,
        crypttext_leaves(&servers[second], &si, shnum).await,
    );
    match guarded(grid.download(&chk)).await {
        Err(
            e @ GridError::NotEnoughShares {
                found: 1,
                needed: 2,
                corrupt: 2,
                ..
            },
        ) => assert_eq!(
            e.to_string(),
            format!(
                "found 1 good shares of the 2 needed for {si}; 2 failed verification \
                 and were reported to their servers"
            )
        ),
        other => panic!("expected NotEnoughShares, got {:?}", other.map(|d| d.len())),
    }
    assert_eq!(advisories(&servers[second]), 1);
}

/// A mutable file with one share damaged on disk still reads, and the damaged share
/// is reported to its server.
#[tokio::test]
async fn a_damaged_mutable_share_is_skipped_and_reported() {
    let servers = TestServer::three().await;
    let grid = grid_of(&servers);
    let data = random_bytes(200_000);
    let cap = grid
        .create_mutable(&data, MutableFormat::Mdmf)
        .await
        .unwrap();
    let si = cap.storage_index();
    let victim = 1;
    let shnum = only_share(&servers[victim], &si, true).await;
    // MDMF: the share data starts at the offset in header field 5.
    let header = servers[victim]
        .client
        .mutable()
        .read_share_chunk(&si, shnum, 0, 123)
        .await
        .unwrap();
    let data_at = u64::from_be_bytes(header[99..107].try_into().unwrap());
    let path = share_file(&servers[victim].shares_dir(), &si, shnum.get());
    let mut bytes = std::fs::read(&path).unwrap();
    // The slot container's 468-byte header comes first; then a byte of the first block.
    bytes[468 + data_at as usize + 16 + 5] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let read = guarded(grid.read_mutable(&cap)).await.unwrap();
    assert!(read.data == data);
    for (i, server) in servers.iter().enumerate() {
        assert_eq!(advisories(server), usize::from(i == victim), "server {i}");
    }
}
