//! When traces are on, and where they go: the standard `OTEL_*` variables, read
//! through a lookup function so the rules can be tested without touching the
//! process environment.
//!
//! Traces are **off** unless an endpoint is named (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or `OTEL_TRACES_EXPORTER=otlp` asks for the
//! default one (`http://localhost:4318`). The specification's default exporter is
//! `otlp`, but a storage node must not start sending data anywhere because nobody set
//! anything. `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn them off
//! whatever else is set.
//!
//! Only OTLP over HTTP with protobuf bodies is built in: a protocol variable naming
//! another (`grpc`, `http/json`) is an error, not a silent fallback.

use std::time::Duration;

use crate::TelemetryError;

/// `OTEL_EXPORTER_OTLP_TIMEOUT`'s default (the specification's): ten seconds per
/// export.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where `OTEL_TRACES_EXPORTER=otlp` with no endpoint sends spans (the
/// specification's default for OTLP/HTTP).
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
/// The path of traces under a base endpoint.
const TRACES_PATH: &str = "/v1/traces";

/// Where and how to export, resolved from the variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The full URL spans are posted to (`.../v1/traces`).
    pub endpoint: String,
    /// How long one export may take.
    pub timeout: Duration,
    /// The service name, when `OTEL_SERVICE_NAME` sets it; `None` leaves it to
    /// `OTEL_RESOURCE_ATTRIBUTES` or the binary's default.
    pub service_name: Option<String>,
    /// Whether `OTEL_RESOURCE_ATTRIBUTES` names the service (so the binary's
    /// default must not override it).
    pub resource_names_service: bool,
}

impl Settings {
    /// Settings that send to `endpoint` (a base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// takes), with the defaults for everything else.
    ///
    /// # Errors
    /// [`TelemetryError::Invalid`] if `endpoint` is not an `http` or `https` URL.
    pub fn otlp_http(endpoint: &str) -> Result<Self, TelemetryError> {
        Self::from_lookup(|name| (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.into()))?
            .ok_or(TelemetryError::Invalid {
                variable: "OTEL_EXPORTER_OTLP_ENDPOINT",
                reason: "empty".into(),
            })
    }

    /// The settings the variables give, or `None` when traces are off. An empty
    /// variable counts as unset, as the specification says.
    ///
    /// # Errors
    /// [`TelemetryError`] for an unsupported exporter or protocol, an endpoint that is
    /// not an `http`/`https` URL, or a timeout that is not a positive number of
    /// milliseconds.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, TelemetryError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let exporter = get("OTEL_TRACES_EXPORTER");
        match exporter.as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(TelemetryError::Unsupported {
                    variable: "OTEL_TRACES_EXPORTER",
                    value: other.into(),
                    supported: "only otlp (or none) is supported",
                });
            }
        }
        for variable in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            match get(variable) {
                None => {}
                Some(p) if p == "http/protobuf" => break,
                Some(other) => {
                    return Err(TelemetryError::Unsupported {
                        variable,
                        value: other,
                        supported: "only http/protobuf is supported",
                    });
                }
            }
        }
        let (variable, endpoint) = if let Some(url) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            // The per-signal variable is the whole URL, used as it is.
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
        } else if let Some(base) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            ("OTEL_EXPORTER_OTLP_ENDPOINT", traces_url(&base))
        } else if exporter.is_some() {
            ("OTEL_TRACES_EXPORTER", traces_url(DEFAULT_ENDPOINT))
        } else {
            return Ok(None);
        };
        check_url(variable, &endpoint)?;
        let timeout = match (
            get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"),
            get("OTEL_EXPORTER_OTLP_TIMEOUT"),
        ) {
            (Some(ms), _) => millis("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", &ms)?,
            (None, Some(ms)) => millis("OTEL_EXPORTER_OTLP_TIMEOUT", &ms)?,
            (None, None) => DEFAULT_TIMEOUT,
        };
        Ok(Some(Self {
            endpoint,
            timeout,
            service_name: get("OTEL_SERVICE_NAME"),
            resource_names_service: get("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|attrs| {
                attrs
                    .split(',')
                    .any(|kv| kv.split('=').next().map(str::trim) == Some("service.name"))
            }),
        }))
    }

    /// The endpoint without any user name or password, for a log line.
    pub fn endpoint_for_log(&self) -> String {
        match self.endpoint.parse::<http::Uri>() {
            Ok(uri) => format!(
                "{}://{}{}{}",
                uri.scheme_str().unwrap_or("?"),
                uri.host().unwrap_or("?"),
                uri.port().map(|p| format!(":{p}")).unwrap_or_default(),
                uri.path()
            ),
            Err(_) => "?".into(),
        }
    }
}

/// A base endpoint's traces URL: the base with `/v1/traces` appended.
fn traces_url(base: &str) -> String {
    format!("{}{TRACES_PATH}", base.trim_end_matches('/'))
}

fn check_url(variable: &'static str, url: &str) -> Result<(), TelemetryError> {
    let invalid = |reason: &str| TelemetryError::Invalid {
        variable,
        reason: reason.into(),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|_| invalid("not a URL (want http://host:port or https://...)"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("the scheme must be http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(())
}

fn millis(variable: &'static str, value: &str) -> Result<Duration, TelemetryError> {
    match value.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(TelemetryError::Invalid {
            variable,
            reason: format!("{value:?} is not a positive number of milliseconds"),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<Settings>, TelemetryError> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_string())
        })
    }

    #[test]
    fn off_unless_an_endpoint_or_the_exporter_is_named() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(settings(&[("OTEL_SERVICE_NAME", "x")]).unwrap(), None);
        assert_eq!(
            settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]).unwrap(),
            None
        );
        let s = settings(&[("OTEL_TRACES_EXPORTER", "otlp")])
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint, "http://localhost:4318/v1/traces");
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_signal_endpoint_wins() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://b:2/custom"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint, "https://b:2/custom");
    }

    #[test]
    fn disabled_and_none_turn_everything_off() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1");
        assert_eq!(
            settings(&[on, ("OTEL_SDK_DISABLED", "TRUE")]).unwrap(),
            None
        );
        assert_eq!(
            settings(&[on, ("OTEL_TRACES_EXPORTER", "none")]).unwrap(),
            None
        );
        // Only "true" disables, as the specification says.
        assert!(
            settings(&[on, ("OTEL_SDK_DISABLED", "false")])
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn unsupported_exporters_protocols_and_bad_values_are_errors() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1");
        for vars in [
            &[on, ("OTEL_TRACES_EXPORTER", "console")][..],
            &[on, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
            &[on, ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")],
            &[on, ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")],
            &[on, ("OTEL_EXPORTER_OTLP_TIMEOUT", "0")],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://a:1")],
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http:///v1/traces")],
        ] {
            assert!(settings(vars).is_err(), "{vars:?}");
        }
        // The per-signal protocol, when right, settles it.
        assert!(
            settings(&[
                on,
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ])
            .unwrap()
            .is_some()
        );
        let s = settings(&[on, ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500")])
            .unwrap()
            .unwrap();
        assert_eq!(s.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn the_service_name_comes_from_its_variable_or_the_resource_attributes() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1");
        let s = settings(&[on]).unwrap().unwrap();
        assert_eq!((s.service_name, s.resource_names_service), (None, false));
        let s = settings(&[on, ("OTEL_SERVICE_NAME", "node-7")])
            .unwrap()
            .unwrap();
        assert_eq!(s.service_name.as_deref(), Some("node-7"));
        let s = settings(&[on, ("OTEL_RESOURCE_ATTRIBUTES", "a=b, service.name=n")])
            .unwrap()
            .unwrap();
        assert!(s.resource_names_service);
    }

    #[test]
    fn the_logged_endpoint_has_no_credentials() {
        let s = settings(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://user:secret@collector:4318",
        )])
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint_for_log(), "https://collector:4318/v1/traces");
    }
}
