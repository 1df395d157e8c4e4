//! What the bridge tells its user: one line per poll it asks for (folder, causes,
//! latency from the first cause to the request), and info lines for everything that
//! changes what it follows or reaches (folders added, daemon away and back, feeds
//! lost and regained). `tahoe magic-folder-push` prints them, as text or as one JSON
//! object per line.

use std::time::Duration;

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
