//! The W3C trace context (`traceparent`, `tracestate`) in a request's headers: written
//! by the client from its request span, read by the server into its request span.
//!
//! The propagator reads and writes those two headers and no other. A malformed
//! `traceparent` (every request is hostile) yields no context, and the span simply
//! starts a trace of its own.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header that carries the trace context.
const TRACEPARENT: &str = "traceparent";

/// Makes `span` (not yet entered) the child of the trace context `headers` carry,
/// if traces are on in this process ([`crate::enabled`]) and the request carries one.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !crate::enabled() || !headers.contains_key(TRACEPARENT) {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        // Fails only when the span is disabled or already started: then it keeps
        // the parent it has.
        let _ = span.set_parent(parent);
    }
}

/// Writes `span`'s trace context into `headers`, so that the server's span becomes
/// its child. Writes nothing when `span` is not exported (traces off, or a
/// subscriber without the OpenTelemetry layer).
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}
