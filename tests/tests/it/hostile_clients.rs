//! Hostile clients over real TLS: each one must fail to hurt the node, and a
//! well-behaved client must keep getting answers. The servers here run with bounds of
//! about a second (the defaults are in `docs/configuration.md`); time is asserted only
//! as an upper bound with generous slack.

use std::time::Duration;

use futures::StreamExt;
use swamp_proto::secrets::{SecretKind, format_secret_header};
use swamp_proto::v1;
use swamp_server::node::Limits;
use swamp_server::testing::FeedSettings;
use swamp_server::testing::token::{self, Grant};
use swamp_tests::feed::{tls_http1, ws_connect, ws_next};
use swamp_tests::{TestOptions, TestServer, random_si};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// The bound every short timeout below is set to.
const BOUND: Duration = Duration::from_secs(1);
/// Slack on top of a bound before a test calls it broken.
const SLACK: Duration = Duration::from_secs(5);

fn short_limits() -> Limits {
    Limits {
        handshake_timeout: BOUND,
        header_read_timeout: BOUND,
        idle_timeout: BOUND,
        body_read_timeout: BOUND,
        write_timeout: BOUND,
        ping_interval: BOUND / 2,
        ping_timeout: BOUND / 2,
        ..Limits::default()
    }
}

async fn start(limits: Limits) -> TestServer {
    TestServer::start_with(TestOptions {
        limits,
        ..TestOptions::default()
    })
    .await
}

/// A version request that must be answered within `bound` plus slack.
async fn answered_within(server: &TestServer, bound: Duration) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(bound + SLACK, server.client.general().version())
        .await
        .expect("a well-behaved client is answered within the bound")
        .expect("version");
    started.elapsed()
}

/// Reads until the peer closes (clean or not); fails the test if it stays open.
async fn closed_by_server(mut stream: impl AsyncRead + Unpin, within: Duration) {
    let mut sink = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection within the bound");
}

#[tokio::test]
async fn silent_sockets_after_the_handshake_cannot_lock_others_out() {
    let server = start(Limits {
        max_connections: 4,
        ..short_limits()
    })
    .await;
    // Every slot is taken by a client that completes TLS and sends nothing: two that
    // chose HTTP/1.1 and two that chose HTTP/2.
    let mut silent = Vec::new();
    for alpn in [&b"http/1.1"[..], b"http/1.1", b"h2", b"h2"] {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let config = swamp_client::tls::pinned_config(server.nurl.spki_hash, &[alpn]);
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        silent.push(connector.connect(name, tcp).await.unwrap());
    }
    let waited = answered_within(&server, BOUND).await;
    assert!(waited < BOUND + SLACK, "{waited:?}");
    for stream in silent {
        closed_by_server(stream, SLACK).await;
    }
    // Nothing is left over: the next client is answered at once.
    answered_within(&server, Duration::ZERO).await;
}

#[tokio::test]
async fn silent_sockets_before_the_handshake_cannot_lock_others_out() {
    let server = start(Limits {
        max_connections: 4,
        ..short_limits()
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    answered_within(&server, BOUND).await;
    for stream in silent {
        closed_by_server(stream, SLACK).await;
    }
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_bound_but_a_long_poll_is_not() {
    let server = start(short_limits()).await;
    // An HTTP/1.1 connection that asked once, then went quiet.
    let mut conn = Http1::open(&server).await;
    let (status, _, _) = conn.exchange(&version_request(&server)).await;
    assert_eq!(status, 200);
    closed_by_server(conn.tls, BOUND + SLACK).await;
    // A long-poll waits three times the idle bound with nothing sent either way, and
    // gets its answer.
    let si = random_si();
    let started = Instant::now();
    let response = server
        .client
        .request(
            http::Method::GET,
            &format!("/storage/v1/feed?si={si}&wait=3"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test]
async fn kept_alive_connections_stay_while_there_is_room_and_make_room_when_full() {
    let server = start(Limits {
        max_connections: 2,
        idle_timeout: Duration::from_secs(3600),
        ..short_limits()
    })
    .await;
    let request = version_request(&server);
    let mut first = Http1::open(&server).await;
    assert_eq!(first.exchange(&request).await.0, 200);
    // Idle for twice the short bound: the node has room, so the long bound applies.
    tokio::time::sleep(2 * BOUND).await;
    assert_eq!(
        first.exchange(&request).await.0,
        200,
        "kept while there is room"
    );
    let mut second = Http1::open(&server).await;
    assert_eq!(second.exchange(&request).await.0, 200);
    // Both places are taken by idle connections: a new client is served once they
    // have been idle for the short bound.
    answered_within(&server, BOUND).await;
    closed_by_server(first.tls, SLACK).await;
    closed_by_server(second.tls, SLACK).await;
}

#[tokio::test]
async fn a_slow_body_is_not_cut_but_a_stalled_one_is() {
    let server = start(short_limits()).await;
    let si = random_si();
    let body = v1::encode(&v1::AllocateRequest {
        share_numbers: v1::ShareSet([swamp_proto::ShareNumber::new(0)].into()),
        allocated_size: 100,
    });
    let head = allocate_head(&server, &si, "application/cbor", body.len());
    // Three pieces, each half a bound apart: the whole request takes longer than the
    // header and body bounds, but the client never goes silent for a whole bound.
    let mut conn = Http1::open(&server).await;
    conn.send(head.as_bytes()).await;
    let third = body.len() / 3;
    for piece in [&body[..third], &body[third..2 * third], &body[2 * third..]] {
        tokio::time::sleep(BOUND / 2).await;
        conn.send(piece).await;
    }
    let (status, _, text) = conn.response().await.expect("an answer");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
    // Announces a body and sends none of it.
    let mut conn = Http1::open(&server).await;
    let head = allocate_head(&server, &random_si(), "application/cbor", 1000);
    conn.send(head.as_bytes()).await;
    let started = Instant::now();
    let (status, _, _) = conn.response().await.expect("an answer");
    assert_eq!(status, 400);
    assert!(started.elapsed() < BOUND + SLACK);
    closed_by_server(conn.tls, SLACK).await;
    answered_within(&server, Duration::ZERO).await;
}

#[tokio::test]
async fn a_websocket_client_that_stops_reading_is_let_go() {
    let server = start(short_limits()).await;
    let si = random_si();
    // Reads its first event (so it is subscribed), then stops reading, with a tiny
    // receive buffer: it never sees a ping.
    let mut stalled = ws_connect(&server, &format!("si={si}"), false, Some(4096)).await;
    ws_next(&mut stalled).await;
    assert_eq!(server.feeds.counts().0, 1);
    let started = Instant::now();
    let bound = short_limits().ping_interval + short_limits().ping_timeout + BOUND;
    while server.feeds.counts().0 != 0 {
        assert!(
            started.elapsed() < bound + SLACK,
            "the stalled subscriber is still open after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stalled);
    // A client that reads (and so answers pings) stays, several ping rounds long.
    let mut reading = ws_connect(&server, &format!("si={si}"), false, None).await;
    ws_next(&mut reading).await;
    let until = Instant::now() + 4 * short_limits().ping_interval;
    while let Ok(message) = tokio::time::timeout_at(until, reading.next()).await {
        let message = message.expect("still open").expect("a frame");
        assert!(
            !message.is_close(),
            "a reading client was closed: {message:?}"
        );
    }
    assert_eq!(
        server.feeds.counts().0,
        1,
        "the reading client is still subscribed"
    );
    answered_within(&server, Duration::ZERO).await;
}

#[tokio::test]
async fn a_download_that_stops_being_read_gives_its_connection_back() {
    let server = start(Limits {
        max_connections: 1,
        ..short_limits()
    })
    .await;
    let (si, secrets) = (random_si(), swamp_tests::Secrets::random());
    let share = swamp_tests::random_bytes(16 << 20);
    swamp_tests::upload_share(&server.client, &si, &secrets, 0, &share).await;
    // Asks for the whole share with a tiny receive buffer, and never reads it: the
    // answer stops at the socket and holds the only connection slot.
    let mut stalled = tls_http1(&server, Some(4096)).await;
    let request = format!(
        "GET /storage/v1/immutable/{si}/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nRange: bytes=0-{}\r\n\r\n",
        server.nurl.swissnum.authorization_header(),
        share.len() - 1
    );
    send_all(&mut stalled, request.as_bytes()).await;
    // A fresh client is served once the write timeout frees the slot.
    let fresh = server.client_with(&swamp_client::ClientOptions {
        http1_only: true,
        ..Default::default()
    });
    let started = Instant::now();
    tokio::time::timeout(BOUND + SLACK, fresh.general().version())
        .await
        .expect("answered once the stalled download was let go")
        .unwrap();
    assert!(started.elapsed() < BOUND + SLACK);
    drop(stalled);
}

/// Cases of an answer given before the body was read: (what, request head), for a
/// body of `len` bytes.
fn early_answers(server: &TestServer, len: usize) -> Vec<(u16, String)> {
    let si = random_si();
    vec![
        (415, allocate_head(server, &si, "text/plain", len)),
        (
            401,
            format!(
                "POST /storage/v1/immutable/{si} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Tahoe-LAFS wrong\r\nContent-Length: {len}\r\n\r\n"
            ),
        ),
        (
            400,
            format!(
                "POST /storage/v1/immutable/{si} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nContent-Type: application/cbor\r\nContent-Length: {len}\r\n\r\n",
                server.nurl.swissnum.authorization_header()
            ),
        ),
        (
            404,
            format!(
                "POST /storage/v1/nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nContent-Length: {len}\r\n\r\n",
                server.nurl.swissnum.authorization_header()
            ),
        ),
    ]
}

#[tokio::test]
async fn an_early_answer_keeps_the_connection_when_the_rest_of_the_body_is_small() {
    let server = TestServer::start().await;
    let len = 20_000;
    for (expected, head) in early_answers(&server, len) {
        let mut conn = Http1::open(&server).await;
        conn.send(head.as_bytes()).await;
        // The answer comes before the body is sent...
        let (status, headers, _) = conn.response().await.expect("an early answer");
        assert_eq!(status, expected, "{head}");
        assert!(
            !header_is(&headers, "connection", "close"),
            "{expected}: a small body is read, not refused: {headers:?}"
        );
        // ...then the body comes in a second write, and the next request on the same
        // connection is answered.
        conn.send(&vec![b'x'; len]).await;
        let (status, _, _) = conn.exchange(&version_request(&server)).await;
        assert_eq!(status, 200, "the request after a {expected}");
    }
}

#[tokio::test]
async fn an_early_answer_says_connection_close_when_the_rest_is_large() {
    let server = TestServer::start().await;
    for (expected, head) in early_answers(&server, 1 << 30) {
        let mut conn = Http1::open(&server).await;
        conn.send(head.as_bytes()).await;
        conn.send(&vec![b'x'; 64 * 1024]).await;
        let (status, headers, _) = conn.response().await.expect("an early answer");
        assert_eq!(status, expected, "{head}");
        assert!(
            header_is(&headers, "connection", "close"),
            "{expected}: {headers:?}"
        );
        // The client may still be sending: the node reads and drops it while it
        // closes, so the close is clean (TLS close_notify, then end of stream) rather
        // than a reset.
        conn.send(&vec![b'x'; 64 * 1024]).await;
        let mut rest = Vec::new();
        tokio::time::timeout(SLACK, conn.tls.read_to_end(&mut rest))
            .await
            .expect("closed within the bound")
            .expect("a clean close, not a reset");
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }
    answered_within(&server, Duration::ZERO).await;
}

#[tokio::test]
async fn a_token_with_an_absurd_expiry_is_refused_not_a_crash() {
    let server = TestServer::start().await;
    let si = random_si();
    let forged = token::issue(
        &server.nurl.swissnum,
        &Grant {
            expires: u64::MAX,
            storage_indexes: None,
        },
    );
    let url = format!(
        "https://127.0.0.1:{}/storage/v1/feed?si={si}&token={forged}",
        server.addr.port()
    );
    for accept in ["application/cbor", "text/event-stream"] {
        let response = server
            .raw_client()
            .get(&url)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{accept}");
        let text = response.text().await.unwrap();
        assert!(text.contains("hours"), "{text}");
    }
    answered_within(&server, Duration::ZERO).await;
}

#[tokio::test]
async fn one_token_cannot_take_every_feed_connection() {
    let server = TestServer::start_with(TestOptions {
        feeds: FeedSettings {
            max_connections_per_token: 2,
            ..FeedSettings::default()
        },
        ..TestOptions::default()
    })
    .await;
    let si = random_si();
    let issue = |ttl_marker: u64| {
        token::issue(
            &server.nurl.swissnum,
            &Grant {
                expires: server.clock.now() + 600 + ttl_marker,
                storage_indexes: None,
            },
        )
    };
    let (leaked, other) = (issue(0), issue(1));
    let open = |token: String| {
        let client = server.raw_client();
        let url = format!(
            "https://127.0.0.1:{}/storage/v1/feed?si={si}&token={token}",
            server.addr.port()
        );
        async move {
            client
                .get(&url)
                .header("accept", "text/event-stream")
                .send()
                .await
                .unwrap()
        }
    };
    let first = open(leaked.clone()).await;
    let second = open(leaked.clone()).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let refused = open(leaked.clone()).await;
    assert_eq!(refused.status(), 429);
    let text = refused.text().await.unwrap();
    assert!(text.contains("this token"), "{text}");
    assert_eq!(
        open(other).await.status(),
        200,
        "other tokens keep their share"
    );
    // A place given back can be taken again.
    drop(first);
    let started = Instant::now();
    loop {
        let again = open(leaked.clone()).await;
        if again.status() == 200 {
            break;
        }
        assert!(started.elapsed() < SLACK, "the place never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_empty_operator_secret_stops_the_node_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    swamp_server::node::create::create_node(&node, &Default::default()).unwrap();
    let secret = node.join("private/operator.secret");
    assert!(secret.exists());
    for text in ["", "\n", "tooshort\n"] {
        std::fs::write(&secret, text).unwrap();
        let clock = swamp_tests::TestClock::new(1_700_000_000).as_clock();
        let Err(e) = swamp_server::start::load_node(&node, |_| None, clock) else {
            panic!("a node with operator secret {text:?} started");
        };
        let e = e.to_string();
        assert!(
            e.contains("operator.secret") && e.contains("at least 16"),
            "{e}"
        );
    }
}

/// A raw HTTP/1.1 connection over TLS.
struct Http1 {
    tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    buf: Vec<u8>,
}

type Headers = Vec<(String, String)>;

impl Http1 {
    async fn open(server: &TestServer) -> Self {
        Self {
            tls: tls_http1(server, None).await,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        send_all(&mut self.tls, bytes).await;
    }

    async fn exchange(&mut self, request: &str) -> (u16, Headers, Vec<u8>) {
        self.send(request.as_bytes()).await;
        self.response().await.expect("an answer")
    }

    /// The next response (status, headers, body), or `None` if the connection ended.
    async fn response(&mut self) -> Option<(u16, Headers, Vec<u8>)> {
        let head_end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8(self.buf.drain(..head_end + 4).collect()).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        while self.buf.len() < len {
            if !self.fill().await {
                return None;
            }
        }
        let body = self.buf.drain(..len).collect();
        Some((status, headers, body))
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(SLACK * 2, self.tls.read(&mut chunk))
            .await
            .expect("the server answers or closes")
        {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }
}

async fn send_all(stream: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) {
    tokio::time::timeout(SLACK * 2, async {
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
    })
    .await
    .expect("the server takes the bytes");
}

fn header_is(headers: &Headers, name: &str, value: &str) -> bool {
    headers
        .iter()
        .any(|(k, v)| k == name && v.eq_ignore_ascii_case(value))
}

fn version_request(server: &TestServer) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nAccept: application/cbor\r\n\r\n",
        v1::VERSION_PATH,
        server.nurl.swissnum.authorization_header()
    )
}

/// An allocate request's head, with all its secrets and the given content type.
fn allocate_head(
    server: &TestServer,
    si: &swamp_proto::StorageIndex,
    content_type: &str,
    len: usize,
) -> String {
    let secret = |kind, bytes: &[u8]| {
        format!(
            "X-Tahoe-Authorization: {}\r\n",
            format_secret_header(kind, bytes)
        )
    };
    format!(
        "POST /storage/v1/immutable/{si} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nAccept: application/cbor\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n{}{}{}\r\n",
        server.nurl.swissnum.authorization_header(),
        secret(SecretKind::LeaseRenew, &rand::random::<[u8; 32]>()),
        secret(SecretKind::LeaseCancel, &rand::random::<[u8; 32]>()),
        secret(SecretKind::Upload, &rand::random::<[u8; 32]>()),
    )
}
