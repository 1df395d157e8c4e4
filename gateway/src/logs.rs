//! The node's log as `/private/logs/v1` streams it: each message a JSON object in
//! a WebSocket text frame, as Tahoe streams its eliot log to GridSync.
//!
//! The gateway does not read its own log: whoever runs it (`tahoe run`) installs a
//! log layer that [`LogFeed::publish`]es each message. The feed is a bounded
//! broadcast: a follower that falls [`BACKLOG`] messages behind skips the ones it
//! missed (and is told how many) rather than making the node hold them, and with
//! nobody following a message costs nothing but its formatting.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// Messages held for the slowest follower.
pub const BACKLOG: usize = 1024;

/// Where the node's log messages go for `/private/logs/v1`.
#[derive(Clone)]
pub struct LogFeed {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for LogFeed {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl LogFeed {
    /// Whether anybody follows the log now (so a caller may skip formatting).
    pub fn followed(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Sends `message` to whoever follows the log now.
    pub fn publish(&self, message: &Value) {
        if self.followed() {
            // No receiver left between the check and the send: nothing to do.
            let _ = self.tx.send(Arc::from(message.to_string()));
        }
    }

    pub(crate) fn follow(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }
}
