//! The guarded stream: what lapin reads passes a [`Scanner`] first.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::{repaired_frames, Scanner, KEEP};

/// A stream from the broker with a [`Scanner`] on what it reads; writes
/// pass through.
pub(crate) struct Guarded<S> {
    inner: S,
    scanner: Scanner,
    /// Checked bytes waiting for lapin, from `pos` on.
    out: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Which connection this is, for the log.
    role: &'static str,
}

impl<S> Guarded<S> {
    /// Guards `inner`, the stream of the `role` connection.
    pub(crate) fn new(inner: S, role: &'static str) -> Self {
        Guarded {
            inner,
            scanner: Scanner::default(),
            out: Vec::new(),
            pos: 0,
            eof: false,
            role,
        }
    }

    fn report(&mut self) {
        if !self.scanner.has_repairs() {
            return;
        }
        for repair in self.scanner.take_repairs() {
            let dropped = repair.faults.dropped();
            tracing::warn!(
                connection = self.role,
                channel = repair.channel,
                queue = repair.queue.as_deref().unwrap_or("?"),
                frame = repair.frame,
                fault = %repair.faults,
                total = repaired_frames(),
                "malformed message from the broker repaired before lapin parses it ({}); the agent gets it as bad input",
                if dropped { "invalid parts dropped" } else { "invalid bytes replaced by `?`" },
            );
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.out.len() {
                let n = buf.len().min(this.out.len() - this.pos);
                buf[..n].copy_from_slice(&this.out[this.pos..this.pos + n]);
                this.pos += n;
                if this.pos == this.out.len() {
                    this.out.clear();
                    this.pos = 0;
                    if this.out.capacity() > KEEP {
                        this.out = Vec::new();
                    }
                }
                return Poll::Ready(Ok(n));
            }
            if this.eof || buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let n = ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            if n == 0 {
                this.eof = true;
                this.scanner.finish(&mut this.out);
                continue;
            }
            let ready = this.scanner.feed(&mut buf[..n], &mut this.out);
            this.report();
            if ready > 0 {
                return Poll::Ready(Ok(ready));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
