//! The exporter: OTLP over HTTP with protobuf bodies, posted from the SDK's batch
//! processor thread by a reqwest client on ring.
//!
//! Why a client of our own: opentelemetry-otlp's default is reqwest's blocking client
//! (a thread of its own, and reqwest's default TLS provider, aws-lc, which this
//! workspace keeps out); its async reqwest and hyper clients need a Tokio runtime,
//! and the SDK's batch processor runs each export with a plain `block_on` on a thread
//! of its own, outside any runtime. So [`OwnRuntime`] drives a current-thread Tokio
//! runtime of its own, on the processor's thread, for the length of each export: no
//! extra thread, and no dependence on the application's runtime, which may be gone by
//! the time the last spans are flushed.
//!
//! Bounds: the SDK's queue holds at most `OTEL_BSP_MAX_QUEUE_SIZE` spans (2048; more
//! are dropped, never buffered); each export takes at most the OTLP timeout (connect
//! included); an answer's body is read up to 4 MiB (opentelemetry-http's limit).

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use rustls_platform_verifier::BuilderVerifierExt;

use crate::{Settings, TelemetryError};

/// The tracer provider for `settings`: a batch processor in front of the OTLP/HTTP
/// exporter, the service named `service` unless the environment names it.
pub(crate) fn provider(
    settings: &Settings,
    service: &'static str,
    version: &'static str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let client = OwnRuntime::new(settings)?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(settings.endpoint.clone())
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(settings.timeout)
        .build()?;
    // Resource::builder() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the
    // binary's name is only the fallback.
    let mut resource = Resource::builder();
    match (&settings.service_name, settings.resource_names_service) {
        (Some(name), _) => resource = resource.with_service_name(name.clone()),
        (None, true) => {}
        (None, false) => resource = resource.with_service_name(service),
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            resource
                .with_attribute(KeyValue::new("service.version", version))
                .build(),
        )
        .build())
}

/// A reqwest client with a current-thread runtime to run it on (see the module docs).
#[derive(Debug)]
struct OwnRuntime {
    client: reqwest::Client,
    /// `Some` until dropped: dropping takes it out to shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl OwnRuntime {
    fn new(settings: &Settings) -> Result<Self, TelemetryError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?;
        let mut tls = if settings.endpoint.starts_with("https:") {
            // A collector's certificate is checked as a browser would: the system's
            // roots and the name in the URL.
            builder.with_platform_verifier()?.with_no_client_auth()
        } else {
            // Plain http: reqwest still wants a TLS configuration; this one trusts
            // nothing and loads no roots.
            builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        };
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .http1_only()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            // The runtime runs only during an export, so an idle pooled connection
            // would not notice its peer closing it: open one per export (at most one
            // every OTEL_BSP_SCHEDULE_DELAY, five seconds by default).
            .pool_max_idle_per_host(0)
            // A POST that is redirected becomes a GET: a redirect is a wrong endpoint.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            client,
            runtime: Some(runtime),
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for OwnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        // The batch processor's thread is outside any runtime; anywhere else (a
        // simple processor called from async code) `block_on` would panic.
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("the OTLP exporter must run on the batch processor's thread".into());
        }
        let runtime = self.runtime.as_ref().ok_or("the exporter is shut down")?;
        runtime.block_on(self.client.send_bytes(request))
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        // Without blocking, so that dropping is safe anywhere (even in async code,
        // where dropping a runtime the ordinary way panics).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
