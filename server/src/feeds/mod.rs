//! Change feeds: the journal of committed changes (`journal.rs`), the hub that fans
//! them out to subscribers (`hub.rs`, `outbox.rs`), and the three transports on
//! `GET /storage/v1/feed` (`http.rs`: WebSocket, SSE, long-poll).

pub mod appender;
pub mod compact;
pub mod durable;
pub mod encode;
pub mod http;
pub mod hub;
pub mod index;
pub mod journal;
#[cfg(test)]
mod journal_tests;
pub mod longpoll;
pub mod outbox;
pub mod records;
pub mod sse;
pub mod stream;
pub mod token;
pub mod token_shares;
#[cfg(test)]
mod wal_tests;
pub mod ws;

pub use hub::{FeedError, FeedSettings, Feeds, SubscribeError, Subscriber};
pub use outbox::CloseReason;
