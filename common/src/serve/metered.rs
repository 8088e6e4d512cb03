//! A byte stream that reports what passes through it: the one wrapper behind the serve loop's
//! idle tracking and the loopback relay's flow counters.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a [`Metered`] stream tells: the bytes each successful read and write moved (zero-byte
/// reads included; a meter that only cares about data ignores them).
pub trait Meter: Unpin {
    fn read(&self, _bytes: usize) {}
    fn written(&self, _bytes: usize) {}
}

/// `inner`, reporting its reads and writes to `meter`.
pub struct Metered<S, M> {
    pub inner: S,
    pub meter: M,
}

impl<S: AsyncRead + Unpin, M: Meter> AsyncRead for Metered<S, M> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.meter.read(buf.filled().len() - before);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin, M: Meter> AsyncWrite for Metered<S, M> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.meter.written(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.meter.written(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Default)]
    struct Counts {
        read: AtomicUsize,
        written: AtomicUsize,
    }

    impl Meter for &Counts {
        fn read(&self, bytes: usize) {
            self.read.fetch_add(bytes, Ordering::Relaxed);
        }
        fn written(&self, bytes: usize) {
            self.written.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Reads and writes reach the other end unchanged and are counted by direction.
    #[tokio::test]
    async fn counts_what_passes_each_way() {
        let (a, mut b) = tokio::io::duplex(64);
        let counts = Counts::default();
        let mut metered = Metered {
            inner: a,
            meter: &counts,
        };
        metered.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        b.write_all(b"abc").await.unwrap();
        let mut back = [0u8; 3];
        metered.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"abc");
        assert_eq!(counts.written.load(Ordering::Relaxed), 5);
        assert_eq!(counts.read.load(Ordering::Relaxed), 3);
    }
}
