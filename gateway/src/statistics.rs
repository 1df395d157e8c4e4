//! `/statistics`: the node's counters and gauges under Tahoe's client names
//! (`uploader.files_uploaded`, `downloader.bytes_downloaded`,
//! `mutable.files_published`, ..., `node.uptime`, `cpu_monitor.total`), as JSON
//! (`t=json`, what `tahoe status` reads), as OpenMetrics (`t=openmetrics`, with
//! Tahoe's `tahoe_counters_` and `tahoe_stats_` names, for a Prometheus that
//! scraped a Python client node) or as a short page.
//!
//! Counted where the web API does the work: immutable uploads and downloads (a
//! download counts when it starts, with the bytes asked for, as Tahoe counts each
//! read), and the mutable files it creates, overwrites and reads. Unlike Tahoe, the
//! mutable files behind directories are not counted, and every counter is reported
//! from the start (Tahoe leaves a counter out until it is first counted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::response::{Html, IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Map, Value, json};

use crate::args::Args;
use crate::error::WebError;
use crate::listing::to_text;
use crate::reply::escape;

/// What the web API counts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    FilesUploaded,
    BytesUploaded,
    FilesDownloaded,
    BytesDownloaded,
    FilesPublished,
    BytesPublished,
    FilesRetrieved,
    BytesRetrieved,
}

/// Tahoe's names, in [`Counter`] order.
const NAMES: [&str; 8] = [
    "uploader.files_uploaded",
    "uploader.bytes_uploaded",
    "downloader.files_downloaded",
    "downloader.bytes_downloaded",
    "mutable.files_published",
    "mutable.bytes_published",
    "mutable.files_retrieved",
    "mutable.bytes_retrieved",
];

/// The node's counters, and when it started.
pub(crate) struct Statistics {
    counters: [AtomicU64; 8],
    started: Instant,
}

impl Default for Statistics {
    fn default() -> Self {
        Self {
            counters: Default::default(),
            started: Instant::now(),
        }
    }
}

impl Statistics {
    pub(crate) fn count(&self, counter: Counter, by: u64) {
        self.counters[counter as usize].fetch_add(by, Ordering::Relaxed);
    }

    /// A file and its bytes: `files` counted once, `bytes` by `size`.
    pub(crate) fn count_file(&self, files: Counter, bytes: Counter, size: u64) {
        self.count(files, 1);
        self.count(bytes, size);
    }

    /// Tahoe's `get_stats()`: `{"counters": {...}, "stats": {...}}`.
    fn to_json(&self) -> Value {
        let mut counters = Map::new();
        for (name, counter) in NAMES.iter().zip(&self.counters) {
            counters.insert((*name).into(), json!(counter.load(Ordering::Relaxed)));
        }
        let mut stats = Map::new();
        if let Some(cpu) = process_cpu_seconds() {
            stats.insert("cpu_monitor.total".into(), json!(cpu));
        }
        stats.insert(
            "node.uptime".into(),
            json!(self.started.elapsed().as_secs_f64()),
        );
        json!({"counters": counters, "stats": stats})
    }
}

/// CPU seconds this process has used (user and system), from `/proc/self/stat`
/// (whose ticks are 1/100 s on Linux); `None` where there is no such file.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    #[allow(clippy::cast_precision_loss)]
    Some((utime + stime) as f64 / 100.0)
}

/// Tahoe's OpenMetrics: one `tahoe_counters_NAME value` or `tahoe_stats_NAME value`
/// line per entry (dots become underscores), sorted, then `# EOF`.
fn openmetrics(value: &Value) -> String {
    let mut lines = Vec::new();
    for (section, prefix) in [("counters", "tahoe_counters_"), ("stats", "tahoe_stats_")] {
        let mut entries: Vec<(&String, &Value)> = value[section]
            .as_object()
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (name, v) in entries {
            let number = match v {
                Value::Number(n) => n.to_string(),
                _ => "NaN".into(),
            };
            lines.push(format!("{prefix}{} {number}", name.replace('.', "_")));
        }
    }
    lines.push("# EOF\n".into());
    lines.join("\n")
}

/// `GET /statistics`.
pub(crate) fn render(statistics: &Statistics, args: &Args) -> Result<Response, WebError> {
    let value = statistics.to_json();
    match args.t() {
        "json" => Ok(crate::reply::text(StatusCode::OK, to_text(&value))),
        "openmetrics" => Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            openmetrics(&value),
        )
            .into_response()),
        "" => {
            let mut rows = String::new();
            for section in ["counters", "stats"] {
                if let Some(map) = value[section].as_object() {
                    for (name, v) in map {
                        rows.push_str(&format!(
                            "<tr><td>{}</td><td>{}</td></tr>\n",
                            escape(name),
                            escape(&v.to_string())
                        ));
                    }
                }
            }
            Ok(Html(format!(
                "<!DOCTYPE html>\n<html><head><title>Tahoe-LAFS - Operational Statistics</title></head>\
                 <body>\n<h1>Operational Statistics</h1>\n<table>\n{rows}</table>\n</body></html>\n"
            ))
            .into_response())
        }
        t => Err(WebError::bad(format!("GET /statistics: bad t={t}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_names_are_tahoes() {
        let stats = Statistics::default();
        stats.count_file(Counter::FilesUploaded, Counter::BytesUploaded, 1234);
        let text = openmetrics(&stats.to_json());
        assert!(
            text.contains("\ntahoe_counters_uploader_bytes_uploaded 1234\n"),
            "{text}"
        );
        assert!(
            text.starts_with("tahoe_counters_downloader_bytes_downloaded 0\n"),
            "{text}"
        );
        assert!(text.contains("\ntahoe_stats_node_uptime "), "{text}");
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert!(process_cpu_seconds().is_some());
    }
}
