//! The daemon's push signal: its `/v1/status` WebSocket announces `folder-added` and
//! `folder-left` as they happen, so the folder list is read again at once instead of
//! at the next periodic refresh. The first message of each connection is the whole
//! state, which also asks for a refresh; a connection regained after a loss means
//! the daemon may have restarted, which the bridge answers with one poll per folder.
//! Only the `kind` of each event is looked at.

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::api::DaemonApi;

/// A status message larger than this ends the connection (the state of a daemon
/// with many folders and transfers is far smaller).
const MAX_MESSAGE: usize = 8 << 20;
/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the status stream tells the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusSignal {
    /// A folder was added or left: read the folder list again now.
    FoldersChanged,
    /// Connected again after losing the connection: the daemon may have restarted.
    Reconnected,
}

#[derive(Deserialize)]
struct Events {
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    kind: String,
}

/// Whether a status message announces a folder added or left.
pub fn announces_folder_change(text: &str) -> bool {
    serde_json::from_str::<Events>(text).is_ok_and(|m| {
        m.events
            .iter()
            .any(|e| e.kind == "folder-added" || e.kind == "folder-left")
    })
}

/// One connection: sends signals until it ends; returns why it ended.
async fn connect_once(
    api: &DaemonApi,
    signals: &mpsc::Sender<StatusSignal>,
    was_lost: bool,
) -> Result<(), String> {
    let config = api.config().map_err(|e| e.to_string())?;
    let url = config.base_url.replacen("http://", "ws://", 1).to_string() + "/v1/status";
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        config
            .token
            .bearer()
            .parse()
            .map_err(|_| "bad token header".to_string())?,
    );
    let connect = async {
        let tcp = tokio::net::TcpStream::connect((config.host.as_str(), config.port))
            .await
            .map_err(|e| e.to_string())?;
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        tokio_tungstenite::client_async_with_config(request, tcp, Some(ws_config))
            .await
            .map_err(|e| e.to_string())
    };
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| "status connection timed out".to_string())??;
    if was_lost && signals.send(StatusSignal::Reconnected).await.is_err() {
        return Ok(());
    }
    while let Some(message) = ws.next().await {
        let text = match message.map_err(|e| e.to_string())? {
            Message::Text(text) => text,
            Message::Close(_) => return Err("closed by the daemon".into()),
            _ => continue,
        };
        if announces_folder_change(text.as_str())
            && signals.send(StatusSignal::FoldersChanged).await.is_err()
        {
            return Ok(());
        }
    }
    Err("connection closed".into())
}

/// Follows the daemon's status until `signals` is closed, reconnecting with backoff.
pub async fn follow_status(api: DaemonApi, signals: mpsc::Sender<StatusSignal>) {
    let mut backoff = Duration::from_secs(1);
    let mut was_lost = false;
    while !signals.is_closed() {
        let started = tokio::time::Instant::now();
        if connect_once(&api, &signals, was_lost).await.is_ok() {
            return;
        }
        was_lost = true;
        // A connection that lived a while starts the backoff over.
        if started.elapsed() > MAX_BACKOFF {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff.mul_f64(0.5 + rand::random::<f64>())).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_events_are_recognised_and_others_ignored() {
        assert!(announces_folder_change(
            r#"{"events": [{"kind": "tahoe-connection-changed"}, {"kind": "folder-added", "folder": "x"}]}"#
        ));
        assert!(announces_folder_change(
            r#"{"events": [{"kind": "folder-left", "folder": "x"}]}"#
        ));
        assert!(!announces_folder_change(
            r#"{"events": [{"kind": "upload-queued", "folder": "x"}]}"#
        ));
        assert!(!announces_folder_change("not json"));
    }
}
