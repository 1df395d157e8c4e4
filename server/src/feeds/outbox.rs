//! A subscriber's outbound queue: bounded in bytes, coalescing before it gives up.
//!
//! Publishing never waits on a subscriber: the publisher pushes into the queue under a
//! short lock. When the queue passes its byte budget, queued events for the same share
//! are coalesced to the newest (a sync client only needs the latest version); if it is
//! still over budget, the queue closes with [`CloseReason::Slow`] and the subscriber's
//! connection ends with that reason, so the client resumes from its cursor.
//!
//! One task takes from a queue (the stream's own), so a single stored waker is all the
//! wake-up needs: waiting stores nothing in the waiting future, and a push costs a
//! lock and a wake.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use swamp_proto::feed::FeedEvent;

use super::encode::Shared;

/// Why a feed stream ended (documented in `docs/feeds.md`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CloseReason {
    /// The subscriber read too slowly and its queue overflowed.
    Slow,
    /// The server is shutting down.
    Shutdown,
    /// The access token expired.
    TokenExpired,
}

impl CloseReason {
    /// The reason's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Slow => "slow",
            Self::Shutdown => "shutdown",
            Self::TokenExpired => "token_expired",
        }
    }

    /// The WebSocket close code.
    pub const fn ws_code(self) -> u16 {
        match self {
            Self::Slow => 4008,
            Self::Shutdown => 1001,
            Self::TokenExpired => 4001,
        }
    }
}

/// The estimated size of an event on the wire, for the byte budget.
fn estimated_size(event: &FeedEvent) -> usize {
    match event {
        FeedEvent::SlotChanged { .. } | FeedEvent::Snapshot { .. } => 240,
        FeedEvent::SlotDeleted { .. }
        | FeedEvent::ShareAdded { .. }
        | FeedEvent::CorruptionAdvised { .. } => 160,
        FeedEvent::Synced { .. } | FeedEvent::Progress { .. } | FeedEvent::Reset { .. } => 80,
        FeedEvent::Error { message } => 40 + message.len(),
        FeedEvent::Close { .. } | FeedEvent::Unknown => 60,
    }
}

struct State {
    queue: VecDeque<Shared>,
    bytes: usize,
    closed: Option<CloseReason>,
}

/// The queue.
pub struct Outbox {
    state: Mutex<State>,
    /// The taking task, woken by a push or the close.
    waker: AtomicWaker,
    budget: usize,
}

impl Outbox {
    /// An empty queue with a byte budget.
    pub fn new(budget: usize) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                closed: None,
            }),
            waker: AtomicWaker::new(),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an event without waiting; coalesces or closes on overflow, and says
    /// which.
    pub fn push(&self, event: Shared) -> Pushed {
        let mut state = self.lock();
        let mut pushed = Pushed::default();
        if state.closed.is_some() {
            return pushed;
        }
        state.bytes += estimated_size(&event);
        state.queue.push_back(event);
        if state.bytes > self.budget {
            pushed.coalesced = coalesce(&mut state);
            if state.bytes > self.budget {
                state.queue.clear();
                state.bytes = 0;
                state.closed = Some(CloseReason::Slow);
                pushed.closed_slow = true;
            }
        }
        drop(state);
        self.waker.wake();
        pushed
    }

    /// Ends the stream with `reason` (events already queued are dropped).
    pub fn close(&self, reason: CloseReason) {
        let mut state = self.lock();
        if state.closed.is_none() {
            state.closed = Some(reason);
            state.queue.clear();
            state.bytes = 0;
        }
        drop(state);
        self.waker.wake();
    }

    /// Takes every queued event (waiting for at least one), or the close reason.
    ///
    /// # Errors
    /// The [`CloseReason`] once the queue is closed.
    pub async fn next_batch(&self) -> Result<Vec<Shared>, CloseReason> {
        std::future::poll_fn(|cx| self.poll_batch(cx)).await
    }

    /// Takes every queued event, or the close reason; when there is neither, the task
    /// of `cx` is woken by the next push or the close. One task at a time takes from a
    /// queue (a second one would take the first one's wake-up).
    pub fn poll_batch(&self, cx: &mut Context<'_>) -> Poll<Result<Vec<Shared>, CloseReason>> {
        // Registered before looking, so a push between the look and the return wakes.
        self.waker.register(cx.waker());
        match self.take_now() {
            Ok(events) if events.is_empty() => Poll::Pending,
            taken => Poll::Ready(taken),
        }
    }

    /// Takes whatever is queued now, without waiting.
    pub fn take_now(&self) -> Result<Vec<Shared>, CloseReason> {
        let mut state = self.lock();
        if let Some(reason) = state.closed {
            return Err(reason);
        }
        state.bytes = 0;
        Ok(state.queue.drain(..).collect())
    }

    /// Bytes queued now (for metrics and tests).
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// What a push did besides queueing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// This push closed the queue as slow.
    pub closed_slow: bool,
    /// Events it dropped by coalescing.
    pub coalesced: usize,
}

/// Keeps only the newest state event per share (advisories and markers stay);
/// returns how many it dropped.
fn coalesce(state: &mut State) -> usize {
    let before = state.queue.len();
    let mut seen = HashSet::new();
    let mut kept: Vec<Shared> = Vec::with_capacity(state.queue.len());
    for event in state.queue.drain(..).rev() {
        let key = match &event.event {
            FeedEvent::SlotChanged { si, shnum, .. } | FeedEvent::SlotDeleted { si, shnum, .. } => {
                Some((*si, *shnum))
            }
            _ => None,
        };
        if let Some(key) = key
            && !seen.insert(key)
        {
            continue;
        }
        kept.push(event);
    }
    kept.reverse();
    state.bytes = kept.iter().map(|e| estimated_size(e)).sum();
    let dropped = before - kept.len();
    state.queue = kept.into();
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use swamp_proto::feed::Cursor;
    use swamp_proto::{ShareNumber, StorageIndex};

    fn changed(si: u8, seq: u64) -> Shared {
        super::super::encode::shared(FeedEvent::SlotChanged {
            cursor: Cursor { epoch: 1, seq },
            si: StorageIndex::from_bytes([si; 16]),
            shnum: ShareNumber::new(0),
            seqnum: Some(seq),
            root_hash: None,
            format: None,
            length: 1,
        })
    }

    #[tokio::test]
    async fn coalesces_to_the_newest_then_closes_slow() {
        let outbox = Outbox::new(240 * 4);
        for seq in 1..=10 {
            outbox.push(changed(1, seq));
        }
        let batch = outbox.next_batch().await.unwrap();
        assert!(batch.len() <= 4, "coalesced to fit the budget: {batch:?}");
        assert_eq!(
            batch.last(),
            Some(&changed(1, 10)),
            "the newest version is kept"
        );
        for si in 0..10 {
            outbox.push(changed(si, 100 + u64::from(si)));
        }
        assert_eq!(
            outbox.next_batch().await,
            Err(CloseReason::Slow),
            "distinct slots cannot coalesce"
        );
        outbox.push(changed(1, 1000));
        assert_eq!(
            outbox.take_now(),
            Err(CloseReason::Slow),
            "a closed queue stays closed"
        );
    }
}
