//! The welcome page, `GET /` and `GET /?t=json` (`Root.render_JSON` in
//! `web/root.py`): the node's storage servers and whether each is connected.
//!
//! magic-folder counts servers whose status, lowercased, starts with "connected";
//! GridSync counts those whose status starts with "Connected" (capital C), and sums
//! their `available_space`. Tahoe 1.20 itself says "connected" for HTTP servers,
//! which GridSync misses; "Connected to HOST:PORT via HTTP" satisfies both.
//!
//! A server is connected when its `GET /storage/v1/version` answered within
//! [`VERSION_TIMEOUT`] (Tahoe's rule for HTTP servers). Both programs poll every
//! few seconds (GridSync every 0.2 s while it starts), so answers are kept for
//! [`FRESH_FOR`] rather than asking every server on every request.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, header};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::Gateway;
use crate::args::Args;
use crate::listing::to_text;
use crate::reply::escape;

/// How long a server has to answer its version request.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// What was last learned of one server.
#[derive(Clone, Debug, Default)]
struct Seen {
    connected: bool,
    /// Why it is not connected, when it is not.
    problem: String,
    available_space: Option<u64>,
    version: Option<String>,
    /// When it last answered (seconds since the epoch).
    last_received: Option<f64>,
}

/// The servers' statuses, refreshed at most every [`FRESH_FOR`].
#[derive(Default)]
pub(crate) struct StatusCache(Mutex<Option<(Instant, Vec<Seen>)>>);

async fn statuses(gateway: &Arc<Gateway>) -> Vec<Seen> {
    let mut cache = gateway.status.0.lock().await;
    if let Some((at, seen)) = cache.as_ref()
        && at.elapsed() < FRESH_FOR
    {
        return seen.clone();
    }
    let previous = cache.take().map(|(_, seen)| seen).unwrap_or_default();
    let asks = gateway
        .grid
        .servers()
        .iter()
        .enumerate()
        .map(|(i, server)| {
            let before = previous.get(i).cloned().unwrap_or_default();
            async move {
                match tokio::time::timeout(VERSION_TIMEOUT, server.client.general().version()).await
                {
                    Ok(Ok(version)) => Seen {
                        connected: true,
                        problem: String::new(),
                        available_space: Some(version.storage.available_space),
                        version: Some(
                            String::from_utf8_lossy(&version.application_version).into_owned(),
                        ),
                        last_received: Some(
                            SystemTime::now()
                                .duration_since(UNIX_EPOCH)
                                .map_or(0.0, |d| d.as_secs_f64()),
                        ),
                    },
                    Ok(Err(e)) => Seen {
                        connected: false,
                        problem: e.to_string(),
                        ..before
                    },
                    Err(_) => Seen {
                        connected: false,
                        problem: format!("no answer within {} s", VERSION_TIMEOUT.as_secs()),
                        ..before
                    },
                }
            }
        });
    let seen = futures::future::join_all(asks).await;
    *cache = Some((Instant::now(), seen.clone()));
    seen
}

fn status_line(gateway: &Gateway, i: usize, seen: &Seen) -> String {
    let nurl = &gateway.grid.servers()[i].nurl;
    if seen.connected {
        format!("Connected to {}:{} via HTTP", nurl.host, nurl.port)
    } else {
        format!(
            "Disconnected from {}:{}: {}",
            nurl.host, nurl.port, seen.problem
        )
    }
}

/// `GET /` (HTML) and `GET /?t=json`.
pub(crate) async fn welcome(gateway: &Arc<Gateway>, args: &Args) -> Response {
    let seen = statuses(gateway).await;
    let servers: Vec<Value> = seen
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = gateway.names.get(i);
            json!({
                "nodeid": name.map_or("", |n| n.id.as_str()),
                "connection_status": status_line(gateway, i, s),
                "available_space": s.available_space,
                "nickname": name.map_or("", |n| n.nickname.as_str()),
                "version": s.version,
                "last_received_data": s.last_received,
            })
        })
        .collect();
    if args.t() == "json" {
        let body = json!({"introducers": {"statuses": []}, "servers": servers});
        let mut response = to_text(&body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        return response;
    }
    let connected = seen.iter().filter(|s| s.connected).count();
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><title>Tahoe-LAFS - Welcome</title></head><body>\n\
         <h1>Swamp client node</h1>\n<p>Connected to {connected} of {} storage servers</p>\n<ul>\n",
        seen.len()
    );
    for (i, s) in seen.iter().enumerate() {
        let name = gateway.names.get(i).map_or("", |n| n.nickname.as_str());
        page.push_str(&format!(
            "<li>{}: {}</li>\n",
            escape(name),
            escape(&status_line(gateway, i, s))
        ));
    }
    page.push_str("</ul>\n");
    page.push_str(&crate::form_pages::welcome_forms());
    page.push_str("</body></html>\n");
    Html(page).into_response()
}
