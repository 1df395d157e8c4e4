//! Settings the node changes while it runs (`reload`): each is one shared cell that
//! readers copy an `Arc` of when they start a piece of work (a connection, a request, a
//! sweep), so a reload never changes a value under work in progress, and work started
//! after it sees the new value. Tasks that sleep on a setting (lease expiry, the
//! certificate watch) wait for its next change as well as their timer.

use std::sync::Arc;

use tokio::sync::watch;

/// One live setting, shared by cloning.
pub struct Live<T>(Arc<watch::Sender<Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: Default> Default for Live<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> Live<T> {
    /// A cell holding `value`.
    pub fn new(value: T) -> Self {
        Self(Arc::new(watch::Sender::new(Arc::new(value))))
    }

    /// The value now.
    pub fn get(&self) -> Arc<T> {
        Arc::clone(&self.0.borrow())
    }

    /// Replaces the value; work already holding the old one keeps it.
    pub fn set(&self, value: T) {
        self.0.send_replace(Arc::new(value));
    }

    /// A receiver that wakes at each later [`Live::set`].
    pub fn changes(&self) -> watch::Receiver<Arc<T>> {
        self.0.subscribe()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Live").field(&self.get()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readers_keep_their_copy_and_watchers_wake() {
        let live = Live::new(1u32);
        let held = live.get();
        let mut changes = live.changes();
        let other = live.clone();
        other.set(2);
        assert_eq!(*held, 1, "a copy taken before the change keeps its value");
        assert_eq!(*live.get(), 2, "every clone shares the cell");
        tokio::time::timeout(std::time::Duration::from_secs(5), changes.changed())
            .await
            .expect("woken by the change")
            .expect("cell alive");
        assert_eq!(**changes.borrow(), 2);
    }
}
