//! One span per request: method, route, storage index, share number, status, bytes in
//! and out, duration. No headers and no bodies are recorded, so no secret can leak.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use swamp_proto::v1::endpoint;
use tracing::Instrument;

/// The middleware.
pub async fn trace_request(
    State(app): State<super::App>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // Named by the endpoint table, so logs and counters group by endpoint; the ids
    // (public names, not secrets) go in their own fields. A path that is no endpoint's
    // is logged as `other`, never echoed (it is the client's text).
    let matched = endpoint::find(method.as_str(), request.uri().path());
    let route = matched.as_ref().map_or("other", |m| m.endpoint.name);
    let si = matched
        .as_ref()
        .and_then(|m| m.si)
        .map(|si| si.to_string())
        .unwrap_or_default();
    let shnum = matched
        .as_ref()
        .and_then(|m| m.shnum)
        .map(|n| n.to_string())
        .unwrap_or_default();
    let bytes_in = content_length(request.headers());
    let version = format!("{:?}", request.version());
    let span = tracing::info_span!("request", %method, route, si, shnum, http = version, status = tracing::field::Empty);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    let bytes_out = content_length(response.headers());
    {
        use crate::activity::Counter;
        let a = &app.activity;
        a.add(Counter::for_endpoint(matched.map(|m| m.endpoint)), 1);
        a.add(Counter::BytesIn, bytes_in);
        a.add(Counter::BytesOut, bytes_out);
        if response.status().is_client_error() {
            a.add(Counter::ClientErrors, 1);
        } else if response.status().is_server_error() {
            a.add(Counter::ServerErrors, 1);
        }
    }
    let took = started.elapsed();
    app.metrics
        .request(route, status, took, (bytes_in, bytes_out));
    let micros = took.as_micros() as u64;
    span.in_scope(|| {
        if response.status().is_server_error() {
            tracing::warn!(status, bytes_in, bytes_out, micros, "request done");
        } else {
            tracing::debug!(status, bytes_in, bytes_out, micros, "request done");
        }
    });
    response
}

fn content_length(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
