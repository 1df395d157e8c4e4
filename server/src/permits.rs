//! A semaphore whose size a reload changes: the connection limit and the request body
//! budget. Growing adds places at once. Shrinking takes the free places at once and
//! the rest as holders release them: until then the node is over its new limit, so
//! newcomers wait (tokio's semaphore is first come, first served, and the shrink
//! stands in the queue like any other waiter).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Semaphore;

/// The places, and how many there are meant to be.
pub(crate) struct Permits {
    semaphore: Arc<Semaphore>,
    /// Read on every request body ([`Permits::size`]), so not behind the lock.
    size: AtomicUsize,
    /// Taken by a resize: resizes take turns.
    resizing: Mutex<()>,
}

impl Permits {
    /// `size` places, at most tokio's limit.
    pub(crate) fn new(size: usize) -> Self {
        let size = size.min(Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(size)),
            size: AtomicUsize::new(size),
            resizing: Mutex::new(()),
        }
    }

    /// The semaphore to acquire from.
    pub(crate) fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }

    /// How many places there are meant to be.
    pub(crate) fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// Changes the number of places to `size`. Must run inside a tokio runtime when
    /// shrinking below what is held (a task waits for the places to come back).
    pub(crate) fn resize(&self, size: usize) {
        let size = size.min(Semaphore::MAX_PERMITS);
        let _turn = self.resizing.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.size.load(Ordering::Relaxed);
        if size > current {
            self.semaphore.add_permits(size - current);
        } else if size < current {
            let owed = (current - size) - self.semaphore.forget_permits(current - size);
            if owed > 0 {
                let semaphore = Arc::clone(&self.semaphore);
                // Whole u32 chunks: acquire_many takes at most u32::MAX at once.
                tokio::spawn(async move {
                    let mut owed = owed;
                    while owed > 0 {
                        let chunk = u32::try_from(owed).unwrap_or(u32::MAX);
                        match semaphore.acquire_many(chunk).await {
                            Ok(taken) => taken.forget(),
                            Err(_) => return,
                        }
                        owed -= chunk as usize;
                    }
                });
            }
        }
        self.size.store(size, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn growing_and_shrinking_under_load() {
        let permits = Permits::new(4);
        let held = Arc::clone(permits.semaphore())
            .acquire_many_owned(3)
            .await
            .unwrap();
        permits.resize(2);
        assert_eq!(permits.size(), 2);
        // The free one is gone at once; one more goes when the holder lets go.
        assert_eq!(permits.semaphore().available_permits(), 0);
        drop(held);
        let one = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if permits.semaphore().available_permits() == 2 {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(
            one.is_ok(),
            "after the release, exactly the new size is free"
        );
        permits.resize(5);
        assert_eq!(permits.semaphore().available_permits(), 5);
    }
}
