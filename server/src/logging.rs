//! The node's log output: lines on stderr, as text or JSON, filtered by
//! `log_filter`, with colour codes only when stderr is a terminal (a file, a pipe or a
//! container's log collector gets plain text); and the request spans exported to
//! OpenTelemetry when `OTEL_*` asks for them, filtered on their own (the log filter
//! does not turn traces off, nor the reverse).
//!
//! Why two writers: a reload may switch between text and JSON, and `tracing` cannot
//! swap a layer in a running subscriber, but it can swap a filter. So both writers are
//! installed, each behind a filter that can be replaced, and the one not in use has a
//! filter that lets nothing through.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::node::LogFormat;

/// A layer over the bare registry, as the exporter's is.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The handles a reload changes the log output through.
pub struct Logs {
    text: reload::Handle<EnvFilter, Registry>,
    json: reload::Handle<EnvFilter, Registry>,
}

/// Installs the process's log output. `traces` is the OpenTelemetry layer, if on.
///
/// # Errors
/// If `filter` is not a filter (the configuration checks it first), or a subscriber is
/// already installed.
pub fn init(format: LogFormat, filter: &str, traces: Option<BoxedLayer>) -> Result<Logs, String> {
    let (text_filter, text) = reload::Layer::new(EnvFilter::new("off"));
    let (json_filter, json) = reload::Layer::new(EnvFilter::new("off"));
    let stderr = || {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
    };
    let mut layers: Vec<BoxedLayer> = vec![
        stderr().with_filter(text_filter).boxed(),
        stderr().json().with_filter(json_filter).boxed(),
    ];
    layers.extend(traces);
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| e.to_string())?;
    let logs = Logs { text, json };
    logs.apply(format, filter)?;
    Ok(logs)
}

impl Logs {
    /// Writes lines in `format`, those `filter` lets through, from now on.
    ///
    /// # Errors
    /// If `filter` is not a filter (nothing changes then).
    pub fn apply(&self, format: LogFormat, filter: &str) -> Result<(), String> {
        let chosen =
            EnvFilter::try_new(filter).map_err(|e| format!("log filter {filter:?}: {e}"))?;
        let (on, off) = match format {
            LogFormat::Text => (&self.text, &self.json),
            LogFormat::Json => (&self.json, &self.text),
        };
        // Turn the other writer off first: no line is written twice.
        off.reload(EnvFilter::new("off"))
            .map_err(|e| e.to_string())?;
        on.reload(chosen).map_err(|e| e.to_string())
    }
}
