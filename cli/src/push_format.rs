//! How `tahoe magic-folder-push` prints a [`BridgeEvent`]: one line of text, or one
//! JSON object with the wall-clock time it was reported.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use swamp_client::magic_folder::BridgeEvent;

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
