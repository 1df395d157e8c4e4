//! Requests in flight on one connection, and the idle bound built on it.
//!
//! A request counts from the moment hyper hands it over until its answer's body is
//! done (or dropped). A connection with none in flight for the idle timeout is closed:
//! hyper's own timers only cover HTTP/1.1 header reads and HTTP/2 pings, and an HTTP/2
//! client that answers pings but sends nothing, or any client that completes the TLS
//! handshake and then stays silent, would otherwise keep its connection for ever. A
//! long-poll or a slow download is in flight, so it is never cut by this bound.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::watch;

/// The count of one connection's requests in flight.
#[derive(Clone)]
pub struct InFlight(Arc<watch::Sender<usize>>);

impl Default for InFlight {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

/// One request in flight; dropping it ends it.
pub struct Guard(Arc<watch::Sender<usize>>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl InFlight {
    /// Counts a request until the guard is dropped.
    pub fn start(&self) -> Guard {
        self.0.send_modify(|n| *n += 1);
        Guard(Arc::clone(&self.0))
    }

    /// Resolves once no request has been in flight for `timeout` in a row.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut counts = self.0.subscribe();
        loop {
            // The sender lives in `self`, so neither wait can fail.
            drop(counts.wait_for(|n| *n == 0).await);
            if tokio::time::timeout(timeout, counts.changed())
                .await
                .is_err()
            {
                return;
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

    #[tokio::test]
    async fn idle_only_counts_time_without_requests() {
        let in_flight = InFlight::default();
        let guard = in_flight.start();
        let idle = in_flight.idle_for(Duration::from_millis(100));
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut idle)
                .await
                .is_err(),
            "a request in flight is not idle, however long it takes"
        );
        drop(guard);
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), idle)
            .await
            .expect("idle once the request ended");
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
