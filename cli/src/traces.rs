//! OpenTelemetry traces of a command, when the `OTEL_*` environment variables ask for
//! them (`swamp_telemetry` says which): a span for the command, under it a span per
//! storage request (the library's), each sent to its server as W3C `traceparent` so
//! the server's span joins the same trace. Off, nothing is installed and nothing is
//! sent.
//!
//! A command never fails because of its traces: a bad `OTEL_*` setting or a
//! collector that is down is a warning on stderr.

use swamp_telemetry::Traces;
use tracing_subscriber::prelude::*;

/// Starts exporting if `OTEL_*` asks; the handle goes to [`finish`].
pub fn start() -> Option<Traces> {
    match Traces::from_env("tahoe", env!("CARGO_PKG_VERSION")) {
        Ok(Some(traces)) => {
            tracing_subscriber::registry()
                .with(traces.layer(&["swamp_client", "tahoe"]))
                .init();
            Some(traces)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("warning: no traces: {e}");
            None
        }
    }
}

/// The span of the whole command (`tahoe put`, ...).
pub fn command_span(command: &str) -> tracing::Span {
    tracing::info_span!(
        "command",
        otel.name = %format_args!("tahoe {command}"),
        command
    )
}

/// Sends the spans still queued (waiting at most `swamp_telemetry::SHUTDOWN_TIMEOUT`).
pub fn finish(traces: Option<Traces>) {
    if let Some(traces) = traces
        && let Err(e) = traces.shutdown()
    {
        eprintln!("warning: the last traces were not sent: {e}");
    }
}
