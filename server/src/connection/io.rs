//! The socket under TLS, with the two bounds only the byte level can enforce.
//!
//! - **Write timeout.** A write that makes no progress for `write_timeout` fails the
//!   connection. This is what frees a connection whose client stopped reading, whatever
//!   runs on it: a download, an SSE or long-poll feed, an upgraded WebSocket, HTTP/2.
//!   Only time spent blocked on the client counts, so a slow link that keeps taking
//!   bytes is never cut.
//! - **Lingering close.** When the node closes a connection (`shutdown`), it sends its
//!   FIN and then reads and discards what the client still sends, for a short while,
//!   before the socket is dropped. Closing a socket with unread bytes makes the kernel
//!   answer with a reset, which can destroy the answer the client has not read yet
//!   (after a `Connection: close` for a body the node did not want, say).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::deadline::Deadline;

/// The most the node reads and discards after closing its side.
const LINGER_BYTES: usize = 1 << 20;
/// The longest it waits for the client to close its side in turn.
const LINGER_TIME: Duration = Duration::from_secs(2);

enum Linger {
    /// The connection is open.
    Open,
    /// Our FIN is sent; discarding what still comes.
    Draining { discarded: usize },
    /// Closed.
    Done,
}

/// A byte stream with a write timeout and a lingering close.
pub struct TimedIo<T> {
    inner: T,
    write_timeout: Duration,
    /// The write-stall deadline, then the linger deadline.
    timer: Deadline,
    stalled: bool,
    linger: Linger,
}

impl<T> TimedIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, write_timeout: Duration) -> Self {
        Self {
            inner,
            write_timeout,
            timer: Deadline::default(),
            stalled: false,
            linger: Linger::Open,
        }
    }

    /// A write is blocked on the client: starts the clock, or fails once it ran out.
    fn stall(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.stalled {
            self.stalled = true;
            self.timer.arm(self.write_timeout);
        }
        if self.timer.passed(cx) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client took no bytes for {} s (write timeout)",
                    self.write_timeout.as_secs_f32()
                ),
            ));
        }
        Ok(())
    }

    fn progress<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match poll {
            Poll::Pending => {
                self.stall(cx)?;
                Poll::Pending
            }
            ready => {
                self.stalled = false;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut discarded = match this.linger {
            Linger::Done => return Poll::Ready(Ok(())),
            Linger::Draining { discarded } => discarded,
            Linger::Open => {
                let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
                if let Err(e) = ready!(this.progress(cx, poll)) {
                    this.linger = Linger::Done;
                    return Poll::Ready(Err(e));
                }
                this.timer.arm(LINGER_TIME);
                0
            }
        };
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    discarded += buf.filled().len();
                    if discarded >= LINGER_BYTES {
                        break;
                    }
                }
                // The client's FIN, or an error: nothing more will come.
                Poll::Ready(_) => break,
                Poll::Pending => {
                    if this.timer.passed(cx) {
                        break;
                    }
                    this.linger = Linger::Draining { discarded };
                    return Poll::Pending;
                }
            }
        }
        this.linger = Linger::Done;
        Poll::Ready(Ok(()))
    }
}
