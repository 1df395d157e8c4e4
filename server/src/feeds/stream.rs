//! What every streaming transport does between writes: wait for queued events, send a
//! `progress` checkpoint when the stream has been quiet for the progress interval, and
//! end the stream when the queue closes or the access token expires.

use std::time::Duration;

use tokio::time::Instant;

use super::encode::Shared;
use super::hub::Subscriber;
use super::outbox::CloseReason;

/// The next thing to send.
pub enum Next {
    /// Events, in order.
    Events(Vec<Shared>),
    /// End the stream with this reason.
    Close(CloseReason),
}

/// A subscriber's stream state.
pub struct FeedStream {
    /// The subscriber.
    pub subscriber: Subscriber,
    progress_every: Duration,
    next_progress: Instant,
    expires_at: Option<Instant>,
}

impl FeedStream {
    /// A stream for `subscriber`; `expires_in` ends it with `token_expired`.
    pub fn new(
        subscriber: Subscriber,
        progress_every: Duration,
        expires_in: Option<Duration>,
    ) -> Self {
        Self {
            subscriber,
            progress_every,
            next_progress: Instant::now() + progress_every,
            // An expiry beyond what the clock can hold is none at all (tokens are
            // checked to end within a day; this is never reached).
            expires_at: expires_in.and_then(|d| Instant::now().checked_add(d)),
        }
    }

    /// Waits for the next events (or a progress checkpoint, or the end).
    pub async fn next(&mut self) -> Next {
        let expiry = async {
            match self.expires_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            batch = self.subscriber.outbox().next_batch() => match batch {
                Ok(events) => {
                    self.next_progress = Instant::now() + self.progress_every;
                    Next::Events(events)
                }
                Err(reason) => Next::Close(reason),
            },
            () = tokio::time::sleep_until(self.next_progress) => {
                self.next_progress = Instant::now() + self.progress_every;
                self.subscriber.request_progress();
                match self.subscriber.outbox().take_now() {
                    Ok(events) => Next::Events(events),
                    Err(reason) => Next::Close(reason),
                }
            }
            () = expiry => Next::Close(CloseReason::TokenExpired),
        }
    }
}
