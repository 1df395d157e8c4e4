//! What one connection serves, between the TLS stream and the router, and the bounds
//! that hold per connection rather than per request (see `docs/configuration.md` for
//! the values):
//! - `io.rs`: the write timeout and the lingering close, at the socket;
//! - `in_flight.rs`: requests in flight, so an idle connection can be closed;
//! - `body_timeout.rs`: a request body that stops arriving fails;
//! - `early_answer.rs`: an answer given before the body was read never leaves the
//!   connection in a state the client cannot see.

pub mod body_timeout;
pub mod deadline;
pub mod early_answer;
pub mod in_flight;
pub mod io;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;

use in_flight::{GuardedBody, InFlight};

/// The router, as one connection serves it.
#[derive(Clone)]
pub struct ConnectionService {
    router: Router,
    in_flight: InFlight,
    body_read_timeout: Duration,
}

impl ConnectionService {
    /// Serves `router`, counting requests in `in_flight`.
    pub fn new(router: Router, in_flight: InFlight, body_read_timeout: Duration) -> Self {
        Self {
            router,
            in_flight,
            body_read_timeout,
        }
    }
}

impl tower::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<GuardedBody<Body>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let guard = self.in_flight.start();
        let timeout = self.body_read_timeout;
        let request = request.map(|body| Body::new(body_timeout::TimedBody::new(body, timeout)));
        let (request, unread) = early_answer::watch(request);
        let answer = tower::Service::call(&mut self.router, request);
        Box::pin(async move {
            let mut response = answer.await?;
            if let Some(unread) = unread {
                unread.settle(&mut response, timeout);
            }
            Ok(response.map(|body| GuardedBody::new(body, guard)))
        })
    }
}
