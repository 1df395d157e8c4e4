//! OpenTelemetry traces for Swamp's binaries (`swamp-server`, `tahoe`), off unless the
//! standard `OTEL_*` environment variables ask for them, and the W3C trace context
//! (`traceparent`) a client sends and a server continues.
//!
//! Why a crate of its own: the server and the client both export traces, and neither
//! may depend on the other; `swamp-proto`, which both do depend on, has no I/O. So the
//! few dozen lines that read the environment, build the exporter and move the trace
//! context live here, once, below both.
//!
//! What it does:
//! - [`Traces::from_env`] reads the switches and the endpoint ([`settings`]) and, when
//!   traces are on, builds an OTLP/HTTP (protobuf) exporter behind the SDK's batch
//!   processor ([`export`]) and returns the handle; [`Traces::layer`] is the
//!   `tracing` layer that turns a binary's own spans into OpenTelemetry spans, and
//!   [`Traces::shutdown`] flushes what is queued (bounded in time).
//! - [`inject`] writes a span's trace context into a request's headers (client);
//!   [`continue_trace`] makes a span the child of the context a request carries
//!   (server). Only `traceparent` and `tracestate` are read or written: no other
//!   header, so no secret, goes near a span.
//!
//! Off (the default), the binaries install no layer, [`continue_trace`] returns after
//! one relaxed atomic load, and [`inject`] finds no context and writes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Level;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::registry::LookupSpan;

mod export;
mod propagate;
pub mod settings;

pub use propagate::{continue_trace, inject};
pub use settings::Settings;

/// The longest [`Traces::shutdown`] waits for the last spans to be sent: a collector
/// that is down must not hold up a server's exit or a command's.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Set once traces are on in this process: the server continues incoming trace
/// contexts only then, so with traces off a request costs one atomic load more.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether [`Traces`] were started in this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Why traces could not be started or flushed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An `OTEL_*` variable asks for something this build does not do (a protocol
    /// other than `http/protobuf`, an exporter other than `otlp`).
    #[error("{variable}={value}: {supported}")]
    Unsupported {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is supported instead.
        supported: &'static str,
    },
    /// An `OTEL_*` variable does not parse. The value is not repeated: an endpoint
    /// may carry credentials.
    #[error("{variable}: {reason}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The exporter's TLS setup (the platform's certificate verifier) failed.
    #[error("TLS for the OTLP exporter: {0}")]
    Tls(#[from] rustls::Error),
    /// The exporter's HTTP client could not be built.
    #[error("the OTLP exporter's HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// The exporter's I/O runtime could not be started.
    #[error("the OTLP exporter's runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The OTLP exporter rejected its configuration.
    #[error("the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// Flushing and stopping the exporter failed or timed out.
    #[error("flushing traces: {0}")]
    Shutdown(#[from] opentelemetry_sdk::error::OTelSdkError),
}

/// Traces being exported: keep it for the life of the process, then call
/// [`Traces::shutdown`].
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
    /// The instrumentation scope spans are reported under (the binary's crate).
    scope: &'static str,
    /// Where spans go, for one log line (no user or password).
    endpoint: String,
}

impl Traces {
    /// Starts traces if the process environment asks for them (see [`settings`]),
    /// naming the service `service` unless `OTEL_SERVICE_NAME` (or `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`) names it; `Ok(None)` when they are off.
    ///
    /// The SDK reads the rest of the standard variables itself:
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, `OTEL_RESOURCE_ATTRIBUTES`,
    /// `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS` (and `..._TRACES_HEADERS`).
    ///
    /// # Errors
    /// [`TelemetryError`] when the variables ask for something unsupported or do not
    /// parse, or the exporter cannot be built.
    pub fn from_env(
        service: &'static str,
        version: &'static str,
    ) -> Result<Option<Self>, TelemetryError> {
        match Settings::from_lookup(|name| std::env::var(name).ok())? {
            Some(settings) => Self::start(&settings, service, version).map(Some),
            None => Ok(None),
        }
    }

    /// Starts traces with `settings` (from [`Settings::from_lookup`], for callers
    /// that must not read or change the process environment, such as tests).
    ///
    /// # Errors
    /// [`TelemetryError`] if the exporter cannot be built.
    pub fn start(
        settings: &Settings,
        service: &'static str,
        version: &'static str,
    ) -> Result<Self, TelemetryError> {
        let provider = export::provider(settings, service, version)?;
        ENABLED.store(true, Ordering::Relaxed);
        Ok(Self {
            provider,
            scope: service,
            endpoint: settings.endpoint_for_log(),
        })
    }

    /// Where spans are sent, without any user name or password: for a log line.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The `tracing` layer that exports the spans of `targets` (crate names, as
    /// `tracing` targets) at `INFO` and above, with the events inside them (at `INFO`
    /// and above) as span events. Its filter is its own: the log filter does not
    /// decide what is traced, nor the reverse.
    ///
    /// Source locations, thread names and the `tracing` target are left out: every
    /// attribute is one of the span's own fields (plus its busy and idle time).
    pub fn layer<S>(
        &self,
        targets: &[&'static str],
    ) -> Filtered<OpenTelemetryLayer<S, SdkTracer>, Targets, S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let filter = Targets::new().with_targets(targets.iter().map(|t| (*t, Level::INFO)));
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(self.scope))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_filter(filter)
    }

    /// Sends the spans still queued and stops the exporter, waiting at most
    /// [`SHUTDOWN_TIMEOUT`]. Spans ended after this are dropped.
    ///
    /// # Errors
    /// [`TelemetryError::Shutdown`] if the last export failed or timed out.
    pub fn shutdown(self) -> Result<(), TelemetryError> {
        self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)?;
        Ok(())
    }
}
