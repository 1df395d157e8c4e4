//! Connections to the server: WebSocket feeds over TLS pinned by the NURL's SPKI hash
//! (HTTP/1.1 in ALPN, as an upgrade needs), optionally spread over several loopback
//! source addresses; a cheap reader for the server's JSON events; and the operator's
//! activity counters.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use swamp_proto::Nurl;
use swamp_proto::v1::endpoint::FEED_JSON_PROTOCOL;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A feed connection.
pub type Ws = WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// How long one connection attempt (TCP, TLS, upgrade) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The server, and how to reach it.
pub struct Target {
    /// Its NURL.
    pub nurl: Nurl,
    addr: SocketAddr,
    connector: TlsConnector,
    /// The same offering only HTTP/2 (WebSocket streams by extended CONNECT).
    h2_connector: TlsConnector,
    authorization: HeaderValue,
    sources: Vec<Ipv4Addr>,
    next_source: AtomicUsize,
    ws_config: WebSocketConfig,
    operator_secret: Option<String>,
}

/// A connected feed and how its TLS handshake went.
pub struct Connected {
    /// The WebSocket.
    pub ws: Ws,
    /// True when TLS resumed an earlier session (no certificate or signature).
    pub tls_resumed: bool,
}

impl Target {
    /// Targets the loopback server at `nurl`; `source_ips` > 1 binds client sockets
    /// round-robin to 127.0.0.1 .. 127.0.0.<source_ips> (more source ports).
    ///
    /// # Errors
    /// If the NURL's host is not a loopback address.
    pub fn new(
        nurl: Nurl,
        source_ips: u8,
        operator_secret: Option<String>,
    ) -> anyhow::Result<Arc<Self>> {
        let ip: IpAddr = if nurl.host == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            nurl.host
                .parse()
                .context("the NURL's host is not an IP address")?
        };
        anyhow::ensure!(
            ip.is_loopback(),
            "{ip} is not a loopback address: swamp-feed-load only loads servers on this machine"
        );
        let sources = if source_ips > 1 && ip.is_ipv4() {
            (1..=source_ips)
                .map(|n| Ipv4Addr::new(127, 0, 0, n))
                .collect()
        } else {
            Vec::new()
        };
        let config = swamp_client::tls::pinned_config(nurl.spki_hash, &[b"http/1.1"]);
        let h2_config = swamp_client::tls::pinned_config(nurl.spki_hash, &[b"h2"]);
        // Small client buffers: the generator holds as many connections as the server.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(4 << 20))
            .max_frame_size(Some(4 << 20));
        Ok(Arc::new(Self {
            addr: SocketAddr::new(ip, nurl.port),
            connector: TlsConnector::from(Arc::new(config)),
            h2_connector: TlsConnector::from(Arc::new(h2_config)),
            authorization: nurl
                .swissnum
                .authorization_header()
                .parse()
                .context("swissnum header")?,
            nurl,
            sources,
            next_source: AtomicUsize::new(0),
            ws_config,
            operator_secret,
        }))
    }

    async fn tcp(&self) -> anyhow::Result<tokio::net::TcpStream> {
        let socket = if self.addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if !self.sources.is_empty() {
            let n = self.next_source.fetch_add(1, Ordering::Relaxed) % self.sources.len();
            socket
                .bind(SocketAddr::new(IpAddr::V4(self.sources[n]), 0))
                .context("binding a source address")?;
        }
        let tcp = socket.connect(self.addr).await.context("TCP connect")?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    async fn tls(
        &self,
    ) -> anyhow::Result<(tokio_rustls::client::TlsStream<tokio::net::TcpStream>, bool)> {
        let tcp = self.tcp().await?;
        let name = rustls_pki_types::ServerName::IpAddress(self.addr.ip().into());
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        Ok((tls, resumed))
    }

    /// A TLS connection that speaks HTTP/2.
    ///
    /// # Errors
    /// Any failure to connect, or a server that did not choose HTTP/2.
    pub async fn tls_h2(
        &self,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = self.tcp().await?;
        let name = rustls_pki_types::ServerName::IpAddress(self.addr.ip().into());
        let tls = self
            .h2_connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        anyhow::ensure!(
            tls.get_ref().1.alpn_protocol() == Some(b"h2"),
            "the server did not choose HTTP/2"
        );
        Ok(tls)
    }

    /// `https://host:port`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The swissnum's `Authorization` header value.
    pub fn authorization(&self) -> HeaderValue {
        self.authorization.clone()
    }

    /// Opens `GET /storage/v1/feed?<query>` as a WebSocket with JSON frames.
    ///
    /// # Errors
    /// Any failure to connect, a refused upgrade, or the time limit.
    pub async fn connect(&self, query: &str) -> anyhow::Result<Connected> {
        let attempt = async {
            let (tls, tls_resumed) = self.tls().await?;
            let mut request = format!("wss://{}/storage/v1/feed?{query}", self.addr)
                .into_client_request()
                .context("request")?;
            let headers = request.headers_mut();
            headers.insert("authorization", self.authorization.clone());
            headers.insert(
                "sec-websocket-protocol",
                HeaderValue::from_static(FEED_JSON_PROTOCOL),
            );
            let (ws, _) =
                tokio_tungstenite::client_async_with_config(request, tls, Some(self.ws_config))
                    .await
                    .context("WebSocket upgrade")?;
            Ok(Connected { ws, tls_resumed })
        };
        tokio::time::timeout(CONNECT_TIMEOUT, attempt)
            .await
            .map_err(|_| anyhow::anyhow!("no connection within {CONNECT_TIMEOUT:?}"))?
    }

    /// Whether the operator's activity counters can be read.
    pub fn has_activity(&self) -> bool {
        self.operator_secret.is_some()
    }

    /// The server's feed counters from `GET /storage/v1/activity` (needs the operator
    /// secret): (connections, subscriptions, slow closes).
    ///
    /// # Errors
    /// No secret, or the request failed.
    pub async fn feed_counts(&self) -> anyhow::Result<FeedCounts> {
        let secret = self
            .operator_secret
            .as_deref()
            .context("no operator secret given")?;
        let exchange = async {
            let (mut tls, _) = self.tls().await?;
            let request = format!(
                "GET /storage/v1/activity HTTP/1.1\r\nHost: {}\r\nAuthorization: Swamp-Operator {secret}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                self.addr
            );
            tls.write_all(request.as_bytes()).await?;
            let mut answer = Vec::new();
            // The server may end without close_notify: keep what arrived.
            let _ = tls.read_to_end(&mut answer).await;
            anyhow::Ok(answer)
        };
        let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .map_err(|_| anyhow::anyhow!("activity: no answer within 10 s"))??;
        let text = String::from_utf8_lossy(&answer);
        let status_ok = text.starts_with("HTTP/1.1 200");
        let body = text.find("\r\n\r\n").map(|i| &text[i + 4..]).unwrap_or("");
        let (start, end) = (body.find('{'), body.rfind('}'));
        anyhow::ensure!(
            status_ok && start.is_some() && end.is_some(),
            "activity: unexpected answer {:?}",
            text.lines().next().unwrap_or("")
        );
        let json: serde_json::Value =
            serde_json::from_str(&body[start.unwrap_or(0)..=end.unwrap_or(0)])
                .context("activity JSON")?;
        let feeds = &json["feeds"];
        Ok(FeedCounts {
            connections: feeds["connections"].as_u64().unwrap_or(0),
            subscriptions: feeds["subscriptions"].as_u64().unwrap_or(0),
            slow_closes: feeds["slow_closes"].as_u64().unwrap_or(0),
        })
    }

    /// Waits (at most `limit`) until the server reports at most `connections` feed
    /// connections; without the operator secret, just sleeps a little.
    pub async fn settle(&self, connections: u64, limit: Duration) -> Option<FeedCounts> {
        if !self.has_activity() {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return None;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let counts = self.feed_counts().await.ok();
            if counts.is_some_and(|c| c.connections <= connections)
                || tokio::time::Instant::now() >= deadline
            {
                return counts;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The server's feed counters.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct FeedCounts {
    /// Open feed connections.
    pub connections: u64,
    /// Subscriptions of all of them.
    pub subscriptions: u64,
    /// Streams closed as slow since the server started.
    pub slow_closes: u64,
}

/// An event's type, as far as the benchmark cares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `slot_changed`.
    SlotChanged,
    /// `progress`.
    Progress,
    /// `reset`.
    Reset,
    /// `error`.
    Error,
    /// Anything else.
    Other,
}

/// The few fields of a JSON event the benchmark reads, borrowed from the frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Event<'a> {
    /// The type.
    pub kind: Kind,
    /// `si`, if present.
    pub si: Option<&'a str>,
    /// `seqnum`, if a number.
    pub seqnum: Option<u64>,
    /// `cursor`, if present.
    pub cursor: Option<&'a str>,
}

/// Reads an event without a full JSON parse: the generator shares the machine with the
/// server, so it spends as little CPU per delivery as it can. The server writes flat
/// objects of known members, none of whose string values holds a quote.
pub fn parse(text: &str) -> Event<'_> {
    let kind = match string_member(text, "type") {
        Some("slot_changed") => Kind::SlotChanged,
        Some("progress") => Kind::Progress,
        Some("reset") => Kind::Reset,
        Some("error") => Kind::Error,
        _ => Kind::Other,
    };
    Event {
        kind,
        si: string_member(text, "si"),
        seqnum: number_member(text, "seqnum"),
        cursor: string_member(text, "cursor"),
    }
}

fn member_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = text[from..].find(name) {
        let start = from + at;
        let end = start + name.len();
        from = end;
        if start == 0 || text.as_bytes()[start - 1] != b'"' {
            continue;
        }
        if let Some(rest) = text[end..].strip_prefix("\":") {
            return Some(rest);
        }
    }
    None
}

fn string_member<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let rest = member_value(text, name)?.strip_prefix('"')?;
    rest.find('"').map(|end| &rest[..end])
}

fn number_member(text: &str, name: &str) -> Option<u64> {
    let rest = member_value(text, name)?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use swamp_proto::feed::{Cursor, FeedEvent, RootHash};
    use swamp_proto::{ShareNumber, StorageIndex};

    #[test]
    fn reads_what_the_server_writes() {
        let si = StorageIndex::from_bytes([7; 16]);
        let event = FeedEvent::SlotChanged {
            cursor: Cursor {
                epoch: 0x3f2a,
                seq: 1042,
            },
            si,
            shnum: ShareNumber::new(3),
            seqnum: Some(17),
            root_hash: Some(RootHash([9; 32])),
            format: Some(1),
            length: 1837,
        };
        let text = serde_json::to_string(&event).unwrap();
        let si_text = si.to_string();
        assert_eq!(
            parse(&text),
            Event {
                kind: Kind::SlotChanged,
                si: Some(si_text.as_str()),
                seqnum: Some(17),
                cursor: Some("0000000000003f2a-1042"),
            }
        );
        let progress = serde_json::to_string(&FeedEvent::Progress {
            cursor: Cursor { epoch: 1, seq: 2 },
        })
        .unwrap();
        let parsed = parse(&progress);
        assert_eq!(parsed.kind, Kind::Progress);
        assert_eq!(parsed.cursor, Some("0000000000000001-2"));
        assert_eq!(parsed.si, None);
        let null_seq = text.replace("\"seqnum\":17", "\"seqnum\":null");
        assert_eq!(parse(&null_seq).seqnum, None);
    }
}
