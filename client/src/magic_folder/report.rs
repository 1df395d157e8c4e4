//! What the bridge tells its user: one line per poll it asks for (folder, causes,
//! latency from the first cause to the request), and info lines for everything that
//! changes what it follows or reaches (folders added, daemon away and back, feeds
//! lost and regained). As text, or as one JSON object per line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// One thing the bridge reports.
#[derive(Clone, Debug, PartialEq)]
pub enum BridgeEvent {
    /// A poll of `folder` was requested from the daemon.
    PollRequested {
        /// The folder.
        folder: String,
        /// Participants whose directories changed, or `resync` and the like.
        causes: Vec<String>,
        /// From the first cause seen to the request.
        latency: Duration,
    },
    /// A poll request failed; its causes are kept and it is asked again.
    PollFailed {
        /// The folder.
        folder: String,
        /// Why.
        error: String,
        /// When it is asked again.
        retry_in: Duration,
    },
    /// A folder is now followed.
    Following {
        /// The folder.
        folder: String,
        /// Our participant name in it.
        author: String,
    },
    /// A folder is no longer followed (left, or changed in the daemon's list).
    Stopped {
        /// The folder.
        folder: String,
    },
    /// Anything else worth an info line.
    Info(String),
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// One line of text for `event`.
pub fn format_line(event: &BridgeEvent) -> String {
    match event {
        BridgeEvent::PollRequested {
            folder,
            causes,
            latency,
        } => format!(
            "poll {folder}: {} (latency {} ms)",
            causes.join(", "),
            millis(*latency)
        ),
        BridgeEvent::PollFailed {
            folder,
            error,
            retry_in,
        } => format!(
            "info: poll of {folder} failed ({error}); asking again in {:.1} s",
            retry_in.as_secs_f64()
        ),
        BridgeEvent::Following { folder, author } => {
            format!("info: following folder {folder} (as {author})")
        }
        BridgeEvent::Stopped { folder } => format!("info: no longer following folder {folder}"),
        BridgeEvent::Info(text) => format!("info: {text}"),
    }
}

/// One JSON object for `event`, with the wall-clock time it was reported.
pub fn json_line(event: &BridgeEvent) -> Value {
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut v = match event {
        BridgeEvent::PollRequested {
            folder,
            causes,
            latency,
        } => {
            json!({"event": "poll", "folder": folder, "causes": causes, "latency_ms": millis(*latency)})
        }
        BridgeEvent::PollFailed {
            folder,
            error,
            retry_in,
        } => json!({"event": "poll-failed", "folder": folder, "error": error,
                    "retry_in_ms": millis(*retry_in)}),
        BridgeEvent::Following { folder, author } => {
            json!({"event": "following", "folder": folder, "author": author})
        }
        BridgeEvent::Stopped { folder } => json!({"event": "stopped", "folder": folder}),
        BridgeEvent::Info(text) => json!({"event": "info", "message": text}),
    };
    v["time"] = json!(time);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_is_one_line_with_folder_causes_and_latency() {
        let event = BridgeEvent::PollRequested {
            folder: "docs".into(),
            causes: vec!["alice".into(), "carol (added)".into()],
            latency: Duration::from_micros(123_456),
        };
        assert_eq!(
            format_line(&event),
            "poll docs: alice, carol (added) (latency 123.5 ms)"
        );
        let json = json_line(&event);
        assert_eq!(json["event"], "poll");
        assert_eq!(json["folder"], "docs");
        assert_eq!(json["causes"][1], "carol (added)");
        assert_eq!(json["latency_ms"], 123.5);
        assert!(json["time"].as_f64().is_some_and(|t| t > 1e9));
    }
}
