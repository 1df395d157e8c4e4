//! One span per request: method, route, storage index, share number, status, bytes in
//! and out, duration. No headers and no bodies are recorded, so no secret can leak.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The middleware.
pub async fn trace_request(
    State(app): State<super::App>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The route with its ids replaced, so logs group by endpoint; the ids (public
    // names, not secrets) go in their own fields.
    let (mut si, mut shnum) = (String::new(), String::new());
    let route: Vec<String> = request
        .uri()
        .path()
        .split('/')
        .enumerate()
        .map(|(i, seg)| match i {
            4 if seg.len() == 26 => {
                si = seg.to_string();
                "{si}".to_string()
            }
            5 if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) => {
                shnum = seg.to_string();
                "{shnum}".to_string()
            }
            _ => seg.chars().take(64).collect(),
        })
        .collect();
    let route = route.join("/");
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
        a.add(Counter::for_request(&method, &route), 1);
        a.add(Counter::BytesIn, bytes_in);
        a.add(Counter::BytesOut, bytes_out);
        if response.status().is_client_error() {
            a.add(Counter::ClientErrors, 1);
        } else if response.status().is_server_error() {
            a.add(Counter::ServerErrors, 1);
        }
    }
    let micros = started.elapsed().as_micros() as u64;
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
