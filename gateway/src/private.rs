//! `/private`: what Tahoe serves only to holders of the node's API token
//! (`Authorization: tahoe-lafs <private/api_auth_token>`; 401 otherwise, as
//! Tahoe's `web/private.py`).
//!
//! `/private/logs/v1` is the WebSocket GridSync opens to follow the node's log: each
//! message a JSON text frame (`logs.rs`), until the client leaves.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};
use tokio::sync::broadcast::error::RecvError;

use crate::Gateway;
use crate::error::WebError;

/// Whether `given` is `expected`, in time independent of where they differ.
fn same(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Checks the node's API token: `Authorization: tahoe-lafs <token>`, or `query_token`
/// (for `t=watch`, whose browser clients cannot set headers) when there is no such
/// header. [`WebError::Unauthorized`] without a token, with a wrong one, or when the
/// node has none.
pub(crate) fn authorize(
    gateway: &Gateway,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(), WebError> {
    let expected = gateway.api_token.as_deref().ok_or(WebError::Unauthorized)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("tahoe-lafs"))
        .map(|(_, token)| token.trim())
        .or(query_token);
    if given.is_some_and(|t| same(t.as_bytes(), expected.as_bytes())) {
        Ok(())
    } else {
        Err(WebError::Unauthorized)
    }
}

/// Handles `/private/REST`.
pub(crate) async fn handle(
    gateway: &Arc<Gateway>,
    rest: &[&str],
    request: Request,
) -> Result<Response, WebError> {
    authorize(gateway, request.headers(), None)?;
    match rest {
        ["logs", "v1"] => {
            let (mut parts, _) = request.into_parts();
            let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &())
                .await
                .map_err(|e| WebError::bad(format!("a WebSocket is expected here: {e}")))?;
            let mut log = gateway.logs.follow();
            Ok(upgrade.on_upgrade(|mut socket| async move {
                loop {
                    tokio::select! {
                        message = log.recv() => {
                            let text = match message {
                                Ok(text) => text.to_string(),
                                Err(RecvError::Lagged(missed)) => serde_json::json!({
                                    "message_type": "swamp:log-skipped",
                                    "skipped": missed,
                                })
                                .to_string(),
                                Err(RecvError::Closed) => break,
                            };
                            if socket.send(Message::Text(text.into())).await.is_err() {
                                break;
                            }
                        }
                        // Pings are answered by axum; anything else is ignored.
                        incoming = socket.recv() => match incoming {
                            None | Some(Err(_) | Ok(Message::Close(_))) => break,
                            Some(Ok(_)) => {}
                        },
                    }
                }
            }))
        }
        _ => Err(WebError::NotFound("No such resource".into())),
    }
    .map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"ab", b"abc"));
    }
}
