//! One span per request: method, route, storage index, share number, status, bytes in
//! and out, duration. No headers and no bodies are recorded, so no secret can leak.
//!
//! With OpenTelemetry traces on (`swamp_telemetry`, `OTEL_*`), the same span is the
//! exported one: named by the endpoint, of kind server, its fields as attributes, and
//! the child of the W3C `traceparent` the request carries (that header alone is read).

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use swamp_proto::v1::endpoint;
use tracing::Instrument;
use tracing::field::Empty;

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
    let bytes_in = content_length(request.headers());
    let version = format!("{:?}", request.version());
    // The `otel.*` fields name the exported span; they are declared only when traces
    // are on, so that logs do not carry them (recording an undeclared field is a no-op).
    macro_rules! request_span {
        ($($otel:tt)*) => {
            tracing::info_span!("request", $($otel)* %method, route, si = Empty, shnum = Empty, http = version, status = Empty)
        };
    }
    let span = if swamp_telemetry::enabled() {
        request_span!(
            otel.name = route,
            otel.kind = "server",
            otel.status_code = Empty,
        )
    } else {
        request_span!()
    };
    if let Some(m) = &matched {
        if let Some(si) = &m.si {
            span.record("si", tracing::field::display(si));
        }
        if let Some(shnum) = m.shnum {
            span.record("shnum", tracing::field::display(shnum));
        }
    }
    swamp_telemetry::continue_trace(&span, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    // As i64: the OpenTelemetry layer keeps that a number (a u64 becomes text).
    span.record("status", i64::from(status));
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
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
