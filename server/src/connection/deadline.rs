//! A timer for hand-written `poll` functions: armed when a wait starts, polled while it
//! lasts, its allocation made once and reused.

use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A deadline that may be set or not.
#[derive(Default)]
pub struct Deadline(Option<Pin<Box<Sleep>>>);

impl Deadline {
    /// Sets the deadline `after` from now.
    pub fn arm(&mut self, after: Duration) {
        let at = Instant::now() + after;
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.0 = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Whether the deadline has passed; if not, `cx` is woken when it does.
    pub fn passed(&mut self, cx: &mut Context<'_>) -> bool {
        self.0
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
    }
}
