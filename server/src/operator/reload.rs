//! `POST /reload` on the operator listener: reloads the node's configuration
//! (`crate::reload`) and answers with what changed, for `swamp-server reload DIR`.
//!
//! Authorised by the operator secret in the `Authorization` header only, not by the
//! dashboard's cookie: a page on another site can make a browser send a POST with
//! the cookie, and a header it cannot add. The secret may be the one in force or the
//! one the node directory holds now: an operator who has just changed the secret
//! reloads to make it take effect, with the new one.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::http::App;

/// The answer when the configuration is refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct Refused {
    /// What is wrong, with its causes.
    pub error: String,
}

/// The handler.
pub(crate) async fn reload(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(reloader) = app.reload.get().cloned() else {
        return (
            StatusCode::NOT_FOUND,
            "this node was not started from a node directory: it has nothing to reload\n",
        )
            .into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Swamp-Operator "));
    let Some(presented) = presented else {
        return unauthorized();
    };
    if !app.operator_secret.get().matches(presented) && !reloader.is_secret_on_disk(presented) {
        return unauthorized();
    }
    match tokio::task::spawn_blocking(move || reloader.reload_now()).await {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(error)) => {
            tracing::error!(%error, "reload refused; the node keeps its configuration");
            (StatusCode::UNPROCESSABLE_ENTITY, Json(Refused { error })).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the reload failed: {e}\n"),
        )
            .into_response(),
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::CACHE_CONTROL, "no-store")],
        "reloading needs the operator secret: send Authorization: Swamp-Operator <secret>\n",
    )
        .into_response()
}
