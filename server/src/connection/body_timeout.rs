//! A request body that stops arriving fails after the body read timeout.
//!
//! The clock runs only while the handler is waiting for the next bytes: time the
//! server spends on its own work (a slow disk between two reads) never counts against
//! the client, and a slow link that keeps sending is never cut.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};

use super::deadline::Deadline;

/// Why a request body ended early.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no body bytes for {} s (body read timeout)", .0.as_secs_f32())]
pub struct BodyTimedOut(Duration);

/// A body whose silences are bounded.
pub struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    timer: Deadline,
    waiting: bool,
}

impl<B> TimedBody<B> {
    /// Bounds each wait for `inner`'s next frame by `timeout`.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            timer: Deadline::default(),
            waiting: false,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    this.timer.arm(this.timeout);
                }
                if this.timer.passed(cx) {
                    this.waiting = false;
                    return Poll::Ready(Some(Err(BodyTimedOut(this.timeout).into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
