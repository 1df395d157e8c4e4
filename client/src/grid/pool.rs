//! Reusable buffers for request bodies. A body handed to the HTTP client as [`Bytes`]
//! comes back to its pool when the client drops it (once it is sent), so an upload
//! reuses a few MiB of memory instead of touching as much fresh memory as its shares
//! hold. Fresh memory is not free: every 4 KiB page costs a fault and a clear, and on a
//! VM whose host reclaims freed guest memory, far more (`docs/benchmarks.md`).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// A pool of byte buffers (cheap to clone: clones share the pool).
#[derive(Clone, Default)]
pub(crate) struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

impl Pool {
    /// A buffer of `len` bytes, with arbitrary contents (zeros or an earlier body's
    /// bytes), and room for `spare` more.
    pub(crate) fn take(&self, len: usize, spare: usize) -> Vec<u8> {
        let mut buf = self.lock().pop().unwrap_or_default();
        buf.reserve((len + spare).saturating_sub(buf.len()));
        buf.resize(len, 0);
        buf
    }

    /// Adds `count` buffers with room for `capacity` bytes each, every page of them
    /// touched now (a page is only backed by memory when first written).
    pub(crate) fn fill(&self, count: usize, capacity: usize) {
        for _ in 0..count {
            let mut buf = Vec::with_capacity(capacity);
            buf.resize(capacity, 0x5a);
            buf.clear();
            self.give(buf);
        }
    }

    /// Gives `buf` back for reuse.
    pub(crate) fn give(&self, buf: Vec<u8>) {
        self.lock().push(buf);
    }

    /// `buf` as [`Bytes`] that give it back to this pool when the last clone drops.
    pub(crate) fn bytes(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A panic while holding the lock cannot leave the list inconsistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_comes_back_when_its_last_clone_drops() {
        let pool = Pool::default();
        let mut buf = pool.take(10, 5);
        buf.copy_from_slice(b"0123456789");
        let ptr = buf.as_ptr();
        let body = pool.bytes(buf);
        let clone = body.slice(2..4);
        drop(body);
        assert_eq!(&clone[..], b"23");
        assert!(pool.lock().is_empty(), "still referenced");
        drop(clone);
        let again = pool.take(3, 0);
        assert_eq!(again.as_ptr(), ptr, "the same memory, reused");
        assert_eq!(again.len(), 3);
        assert!(again.capacity() >= 15);
    }
}
