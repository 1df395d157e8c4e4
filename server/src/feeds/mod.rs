//! Change feeds: the journal of committed changes (`journal.rs`), the hub that fans
//! them out to subscribers (`hub.rs`, `outbox.rs`), and the stream a transport reads
//! (`stream.rs`). The transports themselves (WebSocket, SSE, long-poll) are HTTP's:
//! `crate::http::feed`. Nothing here imports from `crate::http`.

pub mod appender;
pub mod compact;
pub mod durable;
pub mod encode;
pub mod hub;
pub mod index;
pub mod journal;
#[cfg(test)]
mod journal_tests;
pub mod outbox;
pub mod records;
pub mod stream;
pub mod token;
pub mod token_shares;
#[cfg(test)]
mod wal_tests;

pub use hub::{FeedError, FeedSettings, Feeds, SubscribeError, Subscriber};
pub use outbox::CloseReason;
