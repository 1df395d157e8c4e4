//! Change feeds: the history of published changes (`history.rs`, `index.rs`), the hub
//! that keeps it with every subscription and fans changes out (`hub.rs`, `outbox.rs`),
//! and the stream a transport reads (`stream.rs`). The changes come from the storage's
//! write-ahead log (`crate::wal`), once synced, through the one hook
//! [`crate::wal::Publisher`], which the [`Hub`] implements. The transports themselves
//! (WebSocket, SSE, long-poll) are HTTP's: `crate::http::feed`. Nothing here imports
//! from `crate::http`.
//!
//! # Layout
//! `hub.rs` ([`Hub`], [`Feeds`], [`Subscriber`]; the subscribe/publish invariant),
//! `history.rs` (exact ring and backlog answers), `index.rs` (latest-state index),
//! `outbox.rs` (a subscriber's bounded queue), `event.rs` (a committed change as the
//! wire's event), `encode.rs` (events encoded once per transport), `stream.rs` (what a transport reads), `token.rs` and `token_shares.rs`
//! (feed tokens and their connection limits).

pub mod encode;
pub mod event;
pub mod history;
#[cfg(test)]
mod history_tests;
pub mod hub;
pub mod index;
pub mod outbox;
pub mod stream;
pub mod token;
pub mod token_shares;

pub use history::Retention;
pub use hub::{FeedError, FeedFigures, FeedSettings, Feeds, Hub, SubscribeError, Transport};
pub use outbox::CloseReason;
