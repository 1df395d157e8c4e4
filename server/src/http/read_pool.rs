//! Reused buffers for share reads answered from the page cache.
//!
//! A fresh buffer per read has to be zeroed (or faulted in) before the read fills it,
//! which on the benchmark VM cost more than the read. These stay initialised and warm:
//! each goes back to the pool when the response body that carries it is dropped. At
//! most [`KEEP`] buffers of at most [`MAX_POOLED`] bytes wait here.

use std::sync::Arc;

use bytes::Bytes;

use super::buffers::FreeList;

/// Buffers kept at most.
const KEEP: usize = 32;
/// Largest read served from a pooled buffer.
pub const MAX_POOLED: usize = 1 << 20;

/// The pool.
#[derive(Default)]
pub struct ReadPool {
    free: FreeList,
}

/// A buffer from the pool, of which the first `len` bytes are the read.
pub struct PooledRead {
    buf: Vec<u8>,
    len: usize,
    pool: Arc<ReadPool>,
}

impl ReadPool {
    /// A buffer of `len` bytes (at most [`MAX_POOLED`] are ever kept).
    pub fn take(self: &Arc<Self>, len: usize) -> PooledRead {
        let mut buf = self.free.pop();
        if buf.len() < len {
            // Zeroes only memory this buffer never had.
            buf.resize(len, 0);
        }
        PooledRead {
            buf,
            len,
            pool: Arc::clone(self),
        }
    }

    fn give(&self, buf: Vec<u8>) {
        if buf.capacity() <= MAX_POOLED {
            self.free.push(buf, KEEP);
        }
    }
}

impl PooledRead {
    /// The buffer to read into.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// The first `n` bytes as a response body (the buffer returns to the pool when the
    /// body is dropped).
    pub fn into_bytes(mut self, n: usize) -> Bytes {
        self.len = self.len.min(n);
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for PooledRead {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledRead {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_the_body_is_dropped() {
        let pool = Arc::new(ReadPool::default());
        let mut read = pool.take(100);
        read.space()[..3].copy_from_slice(b"abc");
        let body = read.into_bytes(3);
        assert_eq!(&body[..], b"abc");
        assert!(pool.free.is_empty(), "in use while the body lives");
        let copy = body.clone();
        drop(body);
        assert!(pool.free.is_empty(), "a clone still holds it");
        drop(copy);
        assert_eq!(pool.free.len(), 1);
        // Reused: the old bytes are still there, and a larger request grows it.
        let mut again = pool.take(200);
        assert_eq!(&again.space()[..3], b"abc");
        assert_eq!(again.space().len(), 200);
    }

    #[test]
    fn oversized_buffers_are_not_kept() {
        let pool = Arc::new(ReadPool::default());
        drop(pool.take(MAX_POOLED + 1));
        assert!(pool.free.is_empty());
    }
}
