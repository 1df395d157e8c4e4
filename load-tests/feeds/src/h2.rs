//! The `idle-h2` scenario: idle WebSocket subscribers as streams of shared HTTP/2
//! connections (RFC 8441 extended CONNECT), so their number is not bounded by file
//! descriptors. Server memory per stream is read as in `idle.rs`: VmRSS before and
//! once every stream has had its first `progress`, over the count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use swamp_proto::StorageIndex;
use swamp_proto::v1::endpoint::FEED_JSON_PROTOCOL;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::conn::{Kind, Target, parse};
use crate::report::Outcome;
use crate::stats::memory;

type Empty = http_body_util::Empty<bytes::Bytes>;
/// A WebSocket stream of a shared HTTP/2 connection.
type H2Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Parameters.
#[derive(Clone, Debug, serde::Serialize)]
pub struct H2Plan {
    /// HTTP/2 connections.
    pub connections: usize,
    /// WebSocket streams on each (at most the server's 256 concurrent streams).
    pub streams: usize,
    /// Pause before each memory reading.
    pub settle_seconds: f64,
}

/// One HTTP/2 connection whose server SETTINGS have arrived (an ordinary request was
/// answered), ready for extended CONNECTs.
async fn connection(
    target: &Target,
) -> anyhow::Result<hyper::client::conn::http2::SendRequest<Empty>> {
    let tls = target.tls_h2().await?;
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty>(
        TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .context("HTTP/2 handshake")?;
    tokio::spawn(conn);
    let version = hyper::Request::get(format!("{}/storage/v1/version", target.base_url()))
        .header("authorization", target.authorization())
        .body(Empty::new())?;
    let status = sender.send_request(version).await?.status();
    anyhow::ensure!(status.is_success(), "GET /version: {status}");
    Ok(sender)
}

async fn stream(
    target: &Target,
    sender: &mut hyper::client::conn::http2::SendRequest<Empty>,
) -> anyhow::Result<H2Ws> {
    let si = StorageIndex::from_bytes(rand::random());
    let mut request = hyper::Request::builder()
        .method(hyper::Method::CONNECT)
        .uri(format!("{}/storage/v1/feed?si={si}", target.base_url()))
        .header("authorization", target.authorization())
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", FEED_JSON_PROTOCOL)
        .body(Empty::new())?;
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "extended CONNECT: {}",
        response.status()
    );
    let upgraded = hyper::upgrade::on(response).await?;
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("no first progress within 30 s")?
            .context("stream ended")??;
        if let Message::Text(text) = &message
            && parse(text.as_str()).kind == Kind::Progress
        {
            return Ok(ws);
        }
    }
}

/// Runs the scenario against the server process `pid`.
///
/// # Errors
/// If the server's memory cannot be read, or a connection or stream fails.
pub async fn run(target: &Arc<Target>, plan: &H2Plan, pid: u32) -> anyhow::Result<Outcome> {
    let mut out = Outcome::new("idle-h2", serde_json::to_value(plan)?);
    let settle = Duration::from_secs_f64(plan.settle_seconds);
    // Warm-up: one connection, one stream, closed.
    {
        let mut sender = connection(target).await?;
        drop(stream(target, &mut sender).await?);
    }
    target.settle(0, Duration::from_secs(10)).await;
    tokio::time::sleep(settle).await;
    let m0 = memory(pid)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..plan.connections {
        let target = Arc::clone(target);
        let streams = plan.streams;
        tasks.push(tokio::spawn(async move {
            let mut sender = connection(&target).await?;
            let mut held = Vec::with_capacity(streams);
            for _ in 0..streams {
                held.push(stream(&target, &mut sender).await?);
            }
            anyhow::Ok((sender, held))
        }));
    }
    let mut held = Vec::new();
    let mut ready = 0;
    for task in tasks {
        let (sender, streams) = task.await??;
        ready += streams.len();
        held.push((sender, streams));
    }
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let m1 = memory(pid)?;
    let counts = target.feed_counts().await.ok();
    eprintln!(
        "idle-h2: {ready} streams ready in {open_seconds:.1} s, server RSS {} KiB",
        m1.rss_kib
    );
    drop(held);
    target.settle(0, Duration::from_secs(30)).await;
    let per = (m1.rss_kib as f64 - m0.rss_kib as f64) / ready.max(1) as f64;
    out.add("server RSS at rest", m0.rss_kib as f64 / 1024.0, "MiB");
    out.add(
        &format!("server RSS with {ready} streams"),
        m1.rss_kib as f64 / 1024.0,
        "MiB",
    );
    out.add(
        "server memory per idle WebSocket stream (incl. its 1 subscription)",
        per,
        "KiB",
    );
    out.add("HTTP/2 connections", plan.connections as f64, "");
    out.add("streams ready", ready as f64, "");
    out.add(
        "stream set-up rate (extended CONNECT + first progress)",
        ready as f64 / open_seconds.max(1e-9),
        "streams/s",
    );
    if let Some(c) = counts {
        out.add("server-reported feed connections", c.connections as f64, "");
    }
    out.note("VmRSS of the server process (user space); kernel socket buffers are not included");
    Ok(out)
}
