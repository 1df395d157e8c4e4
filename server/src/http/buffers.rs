//! Reused upload body buffers.
//!
//! Each `PATCH` body (up to 1 MiB by default) used to be gathered into a fresh
//! allocation, which glibc serves with a fresh `mmap`: about 100,000 page faults per
//! GiB uploaded, expensive on VMs (`docs/benchmarks.md`). Buffers are kept here
//! between requests instead, a few at most, so memory stays bounded.

use std::sync::Mutex;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use http_body_util::BodyExt;

use super::ApiError;

/// Buffers kept at most.
const KEEP: usize = 16;

/// A pool of body buffers.
#[derive(Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// Returns a buffer for reuse.
    pub fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < KEEP {
            free.push(buf);
        }
    }

    /// Reads a body of at most `limit` bytes into a pooled buffer (give it back
    /// with [`BufferPool::give`]).
    ///
    /// # Errors
    /// [`ApiError::BodyTooLarge`], or [`ApiError::BadBody`] if the body fails.
    pub async fn read_body(
        &self,
        headers: &HeaderMap,
        mut body: Body,
        limit: usize,
    ) -> Result<Vec<u8>, ApiError> {
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ApiError::BodyTooLarge { limit });
        }
        let mut buf = self.take();
        if let Some(len) = declared {
            buf.reserve(len as usize);
        }
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    self.give(buf);
                    return Err(ApiError::BadBody(format!(
                        "could not read the request body: {e}"
                    )));
                }
            };
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    self.give(buf);
                    return Err(ApiError::BodyTooLarge { limit });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf)
    }
}
