//! Answers given before the request body was read, on HTTP/1.1.
//!
//! A 401, 404, 413 or 415 is decided from the head alone, and the handler drops the
//! body unread. Left to itself, hyper then reads what is already buffered, gives up on
//! the rest and closes the connection after the answer, without saying so: the
//! client, which sent the rest of its body and then its next request on the same
//! connection, meets a closed connection (or a reset that eats the answer).
//!
//! Here the unread body comes back to us instead of being dropped, and once the answer
//! is known:
//! - if at most [`DRAIN_LIMIT`] bytes remain (by `Content-Length`), they are read and
//!   thrown away beside the answer, within the body read timeout, and the connection
//!   stays open for the next request;
//! - otherwise (more, an unknown length, or `Expect: 100-continue`) the answer says
//!   `Connection: close`, and the connection ends after it with a lingering close
//!   (`io.rs`), so the client reads the answer rather than a reset.
//!
//! HTTP/2 needs none of this: an unread stream is reset on its own, the connection
//! goes on.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, Version, header};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};

/// The most a connection reads and discards to stay open after an early answer.
pub const DRAIN_LIMIT: u64 = 64 * 1024;

type Slot = Arc<Mutex<Option<Body>>>;

fn take(slot: &Slot) -> Option<Body> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// The request body as the handler sees it: whatever it leaves unread goes back to the
/// slot when it is dropped.
struct ReturningBody {
    inner: Option<Body>,
    slot: Slot,
}

impl hyper::body::Body for ReturningBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.get_mut().inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for ReturningBody {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take()
            && !inner.is_end_stream()
        {
            *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(inner);
        }
    }
}

/// A request whose unread body is to be settled once its answer is known.
pub struct Unread {
    slot: Slot,
    expects_continue: bool,
}

/// Wraps an HTTP/1.x request's body; `None` when there is nothing to settle (HTTP/2,
/// or no body).
pub fn watch(request: Request<Body>) -> (Request<Body>, Option<Unread>) {
    if request.version() >= Version::HTTP_2 || request.body().is_end_stream() {
        return (request, None);
    }
    let expects_continue = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let slot = Slot::default();
    let request = request.map(|inner| {
        Body::new(ReturningBody {
            inner: Some(inner),
            slot: Arc::clone(&slot),
        })
    });
    (
        request,
        Some(Unread {
            slot,
            expects_continue,
        }),
    )
}

impl Unread {
    /// Drains a small rest beside `response`, or marks it `Connection: close`. A body
    /// the handler still holds (read on after the answer) is left alone.
    pub fn settle<B>(self, response: &mut Response<B>, drain_within: Duration) {
        let Some(rest) = take(&self.slot) else {
            return;
        };
        match rest.size_hint().exact() {
            Some(remaining) if remaining <= DRAIN_LIMIT && !self.expects_continue => {
                tokio::spawn(drain(rest, drain_within));
            }
            _ => {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
        }
    }
}

/// Reads and discards `body`. If it does not end in time, dropping it makes hyper
/// close the connection: the client did not send what it announced.
async fn drain(mut body: Body, within: Duration) {
    let _ = tokio::time::timeout(within, async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
}
