//! One connection of the proxy's own HTTP/1.1 client: the socket, shared with the pool
//! (which shuts it down when the worker is cut off), and the read buffer.

use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;

use super::head::{ResponseHead, parse_response};
use super::{H1Body, H1Error};
use crate::endpoint::Stream;

/// Bytes added to the read buffer when it runs low: enough for most responses' head and
/// body in one read, and shared by the frames split from it, so a block is allocated once
/// for many small responses.
const READ_BLOCK: usize = 16 * 1024;
/// Room below which the buffer grows before a read.
const MIN_SPARE: usize = 4 * 1024;

/// An open HTTP/1.1 connection to a worker, idle between requests.
///
/// The socket is behind an `Arc` so that the pool can keep a `Weak` of every connection
/// it opened and shut them all down at once ([`UpstreamPool::cut`](super::super::UpstreamPool)),
/// whoever holds them: a request waiting for its response then fails at once.
#[derive(Debug)]
pub(crate) struct H1Conn {
    stream: Arc<Stream>,
    /// Bytes read and not yet consumed.
    pub(super) buf: BytesMut,
}

impl H1Conn {
    /// A new connection over `stream`.
    pub(crate) fn new(stream: Stream) -> Self {
        Self { stream: Arc::new(stream), buf: BytesMut::new() }
    }

    /// A handle that lets the pool shut the socket down while it lives.
    pub(crate) fn handle(&self) -> Weak<Stream> {
        Arc::downgrade(&self.stream)
    }

    /// Whether an idle connection may carry a request: nothing arrived on it while idle
    /// (no end of stream, no stray bytes). Costs no system call unless the socket was
    /// signalled readable.
    pub(crate) fn is_reusable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readiness may be left over from the last response's read: look.
            Poll::Ready(Ok(())) => {
                self.buf.reserve(1);
                matches!(self.stream.try_read_buf(&mut self.buf),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes all of `bytes`.
    pub(crate) async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.stream.try_write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    poll_fn(|cx| self.stream.poll_write_ready(cx)).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the stream.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < MIN_SPARE {
            self.buf.reserve(READ_BLOCK);
        }
        loop {
            if let Err(e) = std::task::ready!(self.stream.poll_read_ready(cx)) {
                return Poll::Ready(Err(e));
            }
            match self.stream.try_read_drain(&mut self.buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl H1Conn {
    /// Sends a request head (a bodiless request) and reads the response head; the body
    /// follows in the returned [`H1Body`], which gives the connection back at its end.
    ///
    /// # Errors
    ///
    /// [`H1Error::Io`] when the socket fails, [`H1Error::Closed`] when the worker closes the
    /// connection before a complete head, [`H1Error::Head`] or
    /// [`H1Error::HeadTooLarge`] for a head that is not valid.
    pub(crate) async fn request(
        mut self,
        head: &[u8],
        head_request: bool,
    ) -> Result<http::Response<H1Body>, H1Error> {
        self.write_all(head).await.map_err(H1Error::NoResponse)?;
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = parse_response(&mut self.buf, head_request)? {
                    let ResponseHead { response, framing, keep_alive } = head;
                    return Ok(response.map(|()| H1Body::new(self, framing, keep_alive)));
                }
            }
            match poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(0) if self.buf.is_empty() => {
                    return Err(H1Error::NoResponse(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(0) => return Err(H1Error::Closed),
                Ok(_) => {}
                Err(e) if self.buf.is_empty() => return Err(H1Error::NoResponse(e)),
                Err(e) => return Err(H1Error::Io(e)),
            }
        }
    }
}
