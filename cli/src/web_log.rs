//! `tahoe run`'s log, as `/private/logs/v1` streams it to GridSync: a tracing layer
//! that turns each event into one JSON object shaped like an eliot message (the
//! log Tahoe streams there), `timestamp`, `message_type`, `task_uuid`, `task_level`,
//! then the event's level, target, message and fields, and publishes it on the
//! gateway's [`LogFeed`]. With nobody following, events are not even formatted.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use swamp_gateway::LogFeed;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Publishes events on a [`LogFeed`].
pub struct WebLog {
    feed: LogFeed,
}

impl WebLog {
    pub fn new(feed: LogFeed) -> Self {
        Self { feed }
    }
}

/// An event's fields as JSON.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), json!(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), json!(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), json!(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), json!(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), json!(value));
    }
}

/// A random version-4 UUID, as eliot names each task.
fn task_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl<S: Subscriber> Layer<S> for WebLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !self.feed.followed() {
            return;
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let meta = event.metadata();
        let mut message = Map::new();
        message.insert("timestamp".into(), json!(timestamp));
        message.insert("message_type".into(), json!("swamp:log"));
        message.insert("task_uuid".into(), json!(task_uuid()));
        message.insert("task_level".into(), json!([1]));
        message.insert("level".into(), json!(meta.level().as_str()));
        message.insert("target".into(), json!(meta.target()));
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        message.extend(fields.0);
        self.feed.publish(&Value::Object(message));
    }
}
