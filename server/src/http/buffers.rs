//! Reused upload body buffers.
//!
//! Each `PATCH` body (up to 1 MiB by default) used to be gathered into a fresh
//! allocation, which glibc serves with a fresh `mmap`: about 100,000 page faults per
//! GiB uploaded, expensive on VMs (`docs/benchmarks.md`). Buffers are kept here
//! between requests instead, a few at most, so memory stays bounded.
//!
//! A body is placed in its buffer at the alignment its file offset will have (the
//! caller's `phase`), so the storage backend can write its whole blocks around the
//! page cache straight from this memory (`backend/staging.rs`).

use std::ops::Deref;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use http_body_util::BodyExt;

use super::ApiError;
use crate::backend::staging::{BLOCK, phase_gap};

/// Buffers kept at most.
const KEEP: usize = 16;

/// A request body in a pooled buffer, starting `start` bytes in.
pub struct PooledBody {
    buf: Vec<u8>,
    start: usize,
}

impl Deref for PooledBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Byte buffers kept between requests, at most a fixed number (shared by the body
/// pool here and the read pool in `read_pool.rs`).
#[derive(Default)]
pub struct FreeList {
    free: Mutex<Vec<Vec<u8>>>,
}

impl FreeList {
    /// A kept buffer, or a new empty one.
    pub fn pop(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    /// Keeps `buf` unless `keep` buffers are kept already.
    pub fn push(&self, buf: Vec<u8>, keep: usize) {
        let mut free = self.lock();
        if free.len() < keep {
            free.push(buf);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// A pool of body buffers.
#[derive(Default)]
pub struct BufferPool {
    free: FreeList,
}

impl BufferPool {
    /// Returns a body's buffer for reuse.
    pub fn give(&self, body: PooledBody) {
        let mut buf = body.buf;
        buf.clear();
        self.free.push(buf, KEEP);
    }

    /// Reads a body of at most `limit` bytes into a pooled buffer, its first byte at
    /// an address whose offset within a [`BLOCK`] is `phase` (give it back with
    /// [`BufferPool::give`]).
    ///
    /// # Errors
    /// [`ApiError::BodyTooLarge`], or [`ApiError::BadBody`] if the body fails.
    pub async fn read_body(
        &self,
        headers: &HeaderMap,
        mut body: Body,
        limit: usize,
        phase: usize,
    ) -> Result<PooledBody, ApiError> {
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ApiError::BodyTooLarge { limit });
        }
        let mut buf = self.free.pop();
        buf.reserve(declared.unwrap_or(0) as usize + BLOCK);
        let start = phase_gap(buf.as_ptr(), phase);
        buf.resize(start, 0);
        let mut body_buf = PooledBody { buf, start };
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    self.give(body_buf);
                    return Err(ApiError::BadBody(format!(
                        "could not read the request body: {e}"
                    )));
                }
            };
            if let Ok(data) = frame.into_data() {
                if body_buf.len() + data.len() > limit {
                    self.give(body_buf);
                    return Err(ApiError::BodyTooLarge { limit });
                }
                body_buf.buf.extend_from_slice(&data);
            }
        }
        body_buf.realign(phase);
        Ok(body_buf)
    }
}

impl PooledBody {
    /// Moves the body back to `phase` if its buffer grew (and moved) while it was read:
    /// only bodies without a Content-Length, or longer than it said.
    fn realign(&mut self, phase: usize) {
        let mut start = phase_gap(self.buf.as_ptr(), phase);
        if start == self.start {
            return;
        }
        let len = self.buf.len() - self.start;
        if start + len > self.buf.capacity() {
            // Growing may move the buffer, and the gap depends on its address: make
            // room for the largest gap first, then measure it where the buffer is.
            self.buf.reserve(BLOCK);
            start = phase_gap(self.buf.as_ptr(), phase);
        }
        if start > self.start {
            self.buf.resize(start + len, 0);
        }
        self.buf.copy_within(self.start..self.start + len, start);
        self.buf.truncate(start + len);
        self.start = start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realigned_body_keeps_its_bytes() {
        for phase in [0, 12, 4095] {
            let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
            let mut buf = Vec::with_capacity(16);
            buf.extend_from_slice(&[0xee; 5]);
            buf.extend_from_slice(&data);
            let mut body = PooledBody { buf, start: 5 };
            body.realign(phase);
            assert_eq!(&*body, &data[..]);
            assert_eq!(phase_gap(body.as_ptr(), phase), 0);
        }
    }
}
