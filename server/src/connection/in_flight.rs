//! Requests in flight on one connection, and the idle bound built on it.
//!
//! A request counts from the moment hyper hands it over (its head is complete) until
//! its answer's body is done or dropped. A connection with none in flight is idle, and
//! is closed after:
//! - `header_read_timeout` if it has never had a request (a client that completes the
//!   TLS handshake and then says nothing, or dribbles its first head), or while the
//!   node is full (all `max_connections` in use), so that silent or idle sockets give
//!   their places to the clients waiting for one;
//! - `idle_timeout` otherwise: a kept-alive connection of a client that will come back.
//!   It is longer than the pool timeout of Tahoe's HTTP client (Twisted's 240 s), so in
//!   normal times that client closes first and never sends a request into a connection
//!   the node is closing (which it could not retry for a POST).
//!
//! The idle time counts from the end of the last request, also when the node becomes
//! full meanwhile: a connection idle for longer than `header_read_timeout` is closed at
//! once then. A long-poll or a slow download is in flight, so neither bound cuts it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Clone, Copy, Default)]
struct Counts {
    in_flight: usize,
    started: u64,
}

/// The count of one connection's requests in flight.
#[derive(Clone)]
pub struct InFlight(Arc<watch::Sender<Counts>>);

impl Default for InFlight {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(Counts::default())))
    }
}

/// One request in flight; dropping it ends it.
pub struct Guard(Arc<watch::Sender<Counts>>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0
            .send_modify(|c| c.in_flight = c.in_flight.saturating_sub(1));
    }
}

/// The two idle bounds (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct IdleBounds {
    /// For a connection that never had a request, and for all while the node is full.
    pub short: Duration,
    /// For a kept-alive connection while the node has room.
    pub long: Duration,
}

impl InFlight {
    /// Counts a request until the guard is dropped.
    pub fn start(&self) -> Guard {
        self.0.send_modify(|c| {
            c.in_flight += 1;
            c.started += 1;
        });
        Guard(Arc::clone(&self.0))
    }

    /// Requests in flight now.
    pub fn count(&self) -> usize {
        self.0.borrow().in_flight
    }

    /// Resolves once the connection has been idle for longer than its bound; `full`
    /// says whether the node has all its connections in use.
    pub async fn idle(&self, bounds: IdleBounds, mut full: watch::Receiver<bool>) {
        let mut counts = self.0.subscribe();
        let mut full_open = true;
        loop {
            // The sender lives in `self`, so this wait cannot fail.
            drop(counts.wait_for(|c| c.in_flight == 0).await);
            let idle_since = Instant::now();
            loop {
                let short = counts.borrow().started == 0 || *full.borrow_and_update();
                let bound = if short { bounds.short } else { bounds.long };
                tokio::select! {
                    () = tokio::time::sleep_until(idle_since + bound) => return,
                    _ = counts.changed() => break,
                    // Closed when the node stops accepting: the last value stays.
                    changed = full.changed(), if full_open => full_open = changed.is_ok(),
                }
            }
        }
    }
}

/// An answer's body that keeps its request in flight until it is done.
pub struct GuardedBody<B> {
    inner: B,
    _guard: Guard,
}

impl<B> GuardedBody<B> {
    /// Ties `guard` to `inner`.
    pub fn new(inner: B, guard: Guard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl<B: Body + Unpin> Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: IdleBounds = IdleBounds {
        short: Duration::from_millis(100),
        long: Duration::from_secs(3600),
    };

    async fn idle_within(
        in_flight: &InFlight,
        full: &watch::Sender<bool>,
        within: Duration,
    ) -> bool {
        tokio::time::timeout(within, in_flight.idle(BOUNDS, full.subscribe()))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn idle_only_counts_time_without_requests() {
        let in_flight = InFlight::default();
        let full = watch::Sender::new(false);
        assert!(
            idle_within(&in_flight, &full, Duration::from_secs(5)).await,
            "a connection that never asked anything has the short bound"
        );
        let guard = in_flight.start();
        assert!(
            !idle_within(&in_flight, &full, Duration::from_millis(500)).await,
            "a request in flight is not idle, however long it takes"
        );
        drop(guard);
        assert!(
            !idle_within(&in_flight, &full, Duration::from_millis(500)).await,
            "a kept-alive connection has the long bound while the node has room"
        );
        let idle = in_flight.idle(BOUNDS, full.subscribe());
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut idle)
                .await
                .is_err()
        );
        full.send_replace(true);
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), idle)
            .await
            .expect("closed once the node is full");
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "idle for longer than the short bound already: closed at once"
        );
    }
}
