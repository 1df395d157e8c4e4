//! What every streaming transport does between writes: wait for queued events, send a
//! `progress` checkpoint when the stream has been quiet for the progress interval, and
//! end the stream when the queue closes or the access token expires.
//!
//! One timer per stream, made once: it is set to the earlier of the next checkpoint and
//! the token's expiry, and moved only when it fires. A batch of events postpones the
//! checkpoint without touching the timer (the timer finds, when it fires, that the
//! checkpoint is not due yet, and sets itself again), so delivering events costs no
//! timer registration.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

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
    /// Fires at [`Self::due`] or earlier.
    timer: Pin<Box<Sleep>>,
}

impl FeedStream {
    /// A stream for `subscriber`; `expires_in` ends it with `token_expired`.
    pub fn new(
        subscriber: Subscriber,
        progress_every: Duration,
        expires_in: Option<Duration>,
    ) -> Self {
        let now = Instant::now();
        let next_progress = now + progress_every;
        // An expiry beyond what the clock can hold is none at all (tokens are checked to
        // end within a day; this is never reached).
        let expires_at = expires_in.and_then(|d| now.checked_add(d));
        Self {
            subscriber,
            progress_every,
            next_progress,
            expires_at,
            timer: Box::pin(tokio::time::sleep_until(due(next_progress, expires_at))),
        }
    }

    /// Waits for the next events (or a progress checkpoint, or the end).
    pub async fn next(&mut self) -> Next {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next events (or a progress checkpoint, or the end), if there are any now;
    /// else the task of `cx` is woken when there are. Stores nothing in the caller: a
    /// transport can wait on this and its own sources in one `poll_fn`.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        // The timer first: a stream that always has events still ends at its expiry.
        while self.timer.as_mut().poll(cx).is_ready() {
            if let Some(next) = self.on_timer() {
                return Poll::Ready(next);
            }
        }
        self.subscriber
            .outbox()
            .poll_batch(cx)
            .map(|batch| match batch {
                Ok(events) => {
                    self.next_progress = Instant::now() + self.progress_every;
                    self.subscriber.delivered(&events);
                    Next::Events(events)
                }
                Err(reason) => Next::Close(reason),
            })
    }

    /// The timer fired: the token expired, a checkpoint is due, or neither yet (events
    /// postponed the checkpoint), and the timer is set again.
    fn on_timer(&mut self) -> Option<Next> {
        let now = Instant::now();
        if self.expires_at.is_some_and(|at| at <= now) {
            return Some(Next::Close(CloseReason::TokenExpired));
        }
        let checkpoint = self.next_progress <= now;
        if checkpoint {
            self.next_progress = now + self.progress_every;
        }
        let at = due(self.next_progress, self.expires_at);
        self.timer.as_mut().reset(at);
        checkpoint.then(|| {
            self.subscriber.request_progress();
            match self.subscriber.outbox().take_now() {
                Ok(events) => {
                    self.subscriber.delivered(&events);
                    Next::Events(events)
                }
                Err(reason) => Next::Close(reason),
            }
        })
    }
}

/// When the stream's timer must fire next.
fn due(next_progress: Instant, expires_at: Option<Instant>) -> Instant {
    expires_at.map_or(next_progress, |at| at.min(next_progress))
}
