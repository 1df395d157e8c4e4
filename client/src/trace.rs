//! One span per storage request, and its W3C trace context sent along.
//!
//! The span is named by the endpoint table (as the server's is), and carries the
//! method, the storage index, the share number, the server's address and the answer's
//! status: the request's path and nothing else, never a header, so neither the
//! swissnum nor a lease, upload or write-enabler secret reaches it. `traceparent`
//! (and `tracestate`) is written into the request from the span, so with OpenTelemetry
//! on at both ends the server's request span is this span's child.
//!
//! The span lives as long as the answer: it is kept in the response's extensions and
//! ends when the caller has read the body and dropped the response. With no
//! `tracing` subscriber (the `tahoe` command line without `OTEL_*`), making it costs
//! next to nothing and no header is added.

use reqwest::Request;
use swamp_proto::v1::endpoint;
use tracing::Span;
use tracing::field::{Empty, display};

/// The span for `request`, its trace context written into the request's headers.
pub(crate) fn start(request: &mut Request) -> Span {
    let matched = endpoint::find(request.method().as_str(), request.url().path());
    let name = matched.as_ref().map_or("other", |m| m.endpoint.name);
    let server = match (request.url().host_str(), request.url().port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => String::new(),
    };
    let span = tracing::info_span!(
        "storage request",
        otel.name = name,
        otel.kind = "client",
        otel.status_code = Empty,
        method = %request.method(),
        route = name,
        si = Empty,
        shnum = Empty,
        server,
        status = Empty,
    );
    if let Some(m) = &matched {
        if let Some(si) = &m.si {
            span.record("si", display(si));
        }
        if let Some(shnum) = m.shnum {
            span.record("shnum", display(shnum));
        }
    }
    swamp_telemetry::inject(&span, request.headers_mut());
    span
}

/// Records the answer's status (and an error status for anything but success).
pub(crate) fn answered(span: &Span, status: http::StatusCode) {
    // As i64: the OpenTelemetry layer keeps that a number (a u64 becomes text).
    span.record("status", i64::from(status.as_u16()));
    if !status.is_success() {
        span.record("otel.status_code", "ERROR");
    }
}

/// Records that no answer came (a transport failure or a timeout).
pub(crate) fn failed(span: &Span) {
    span.record("otel.status_code", "ERROR");
}
