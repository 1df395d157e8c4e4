//! Each feed token's share of the feed limits.
//!
//! A token is handed to a browser page, where it can leak; whoever holds it could open
//! feed connections until `feed_max_connections` is used up for every client. So each
//! token (told apart by a digest of its text: two tokens differ in payload or
//! signature) may hold at most `feed_max_connections_per_token` feed connections at
//! once, long-polls included. With the per-connection subscription limit, that also
//! bounds its subscriptions. Clients holding the swissnum are not counted here: they
//! can mint tokens at will, and they are already trusted to write to the node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::FeedError;

type TokenKey = [u8; 32];

/// Feed connections open per token.
#[derive(Debug)]
pub struct TokenShares {
    open: Mutex<HashMap<TokenKey, usize>>,
    max_per_token: AtomicUsize,
}

/// One connection's hold on its token's share; dropping it gives the place back.
#[derive(Debug)]
pub struct TokenShare {
    shares: Arc<TokenShares>,
    key: TokenKey,
}

impl TokenShares {
    /// At most `max_per_token` connections per token.
    pub fn new(max_per_token: usize) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(HashMap::new()),
            max_per_token: AtomicUsize::new(max_per_token),
        })
    }

    /// Changes the limit (a reload); connections over a lowered one stay open.
    pub fn set_max_per_token(&self, max_per_token: usize) {
        self.max_per_token.store(max_per_token, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for one connection opened with `token`.
    ///
    /// # Errors
    /// [`FeedError::TooManyForToken`] when the token holds all its places.
    pub fn acquire(self: &Arc<Self>, token: &str) -> Result<TokenShare, FeedError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let mut open = self.lock();
        let count = open.entry(key).or_insert(0);
        let max = self.max_per_token.load(Ordering::Relaxed);
        if *count >= max {
            return Err(FeedError::TooManyForToken(max));
        }
        *count += 1;
        Ok(TokenShare {
            shares: Arc::clone(self),
            key,
        })
    }

    /// Tokens with a connection open (for tests).
    pub fn tokens(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for TokenShare {
    fn drop(&mut self) {
        let mut open = self.shares.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_token_cannot_take_more_than_its_share() {
        let shares = TokenShares::new(2);
        let a1 = shares.acquire("a").unwrap();
        let _a2 = shares.acquire("a").unwrap();
        assert_eq!(
            shares.acquire("a").unwrap_err(),
            FeedError::TooManyForToken(2)
        );
        let _b = shares
            .acquire("b")
            .expect("another token has its own share");
        drop(a1);
        let _a3 = shares
            .acquire("a")
            .expect("a place given back is free again");
        drop((_a2, _a3, _b));
        assert_eq!(shares.tokens(), 0, "no entry outlives its connections");
    }
}
