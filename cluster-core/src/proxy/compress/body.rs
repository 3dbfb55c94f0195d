//! A worker's response body, compressed as it streams.
//!
//! Each chunk from the worker goes through the encoder as it arrives; compressed bytes are
//! passed on as soon as the encoder hands them out, and whenever the worker pauses (its body
//! has nothing ready) the encoder is flushed, so the client can decode everything sent so
//! far. Nothing waits for the end of a long or slow response.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};

use super::encoder::Encoder;
use crate::proxy::body::{Finish, UpstreamBody};
use crate::proxy::front::BoxError;

/// The state of one compressed response body (see the module documentation).
///
/// Not `Clone`: it owns the request's [`Finish`] (in-flight guard and connection).
#[derive(Debug)]
pub(crate) struct Compressed {
    body: UpstreamBody,
    encoder: Encoder,
    /// `Some` until the compressed stream ends (then completed, with the compressed bytes
    /// counted) or fails (then dropped).
    finish: Option<Finish>,
    /// Input written since the last flush.
    unflushed: bool,
    /// Set once the encoder's trailer has been handed out.
    done: bool,
    /// The worker's trailers, passed on after the last compressed bytes.
    trailers: Option<HeaderMap>,
}

impl Compressed {
    pub(crate) fn new(body: UpstreamBody, encoder: Encoder, finish: Finish) -> Self {
        Compressed {
            body,
            encoder,
            finish: Some(finish),
            unflushed: false,
            done: false,
            trailers: None,
        }
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
        }
        loop {
            let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) else {
                // The worker paused: flush what it sent so far to the client.
                if !self.unflushed {
                    return Poll::Pending;
                }
                self.unflushed = false;
                return match self.step(Encoder::flush) {
                    Ok(out) if out.is_empty() => Poll::Pending,
                    Ok(out) => self.data(out),
                    Err(error) => Poll::Ready(Some(Err(error))),
                };
            };
            match frame {
                None => return self.end(),
                Some(Err(error)) => {
                    self.fail();
                    return Poll::Ready(Some(Err(error)));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        if !data.is_empty() {
                            if let Err(error) = self.encoder.write(&data) {
                                self.fail();
                                return Poll::Ready(Some(Err(error.into())));
                            }
                            self.unflushed = true;
                        }
                        // hyper stops polling once `is_end_stream` is true, so the end is
                        // detected after the last frame as well as on `None`.
                        if self.body.is_end_stream() {
                            return self.end();
                        }
                        let out = self.encoder.take();
                        if !out.is_empty() {
                            return self.data(out);
                        }
                    }
                    Err(frame) => {
                        self.trailers = frame.into_trailers().ok();
                        return self.end();
                    }
                },
            }
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.done && self.trailers.is_none()
    }

    /// Flushes or finishes the encoder and takes all its output; an error ends the body.
    fn step(&mut self, op: fn(&mut Encoder) -> std::io::Result<()>) -> Result<Bytes, BoxError> {
        match op(&mut self.encoder) {
            Ok(()) => Ok(self.encoder.take()),
            Err(error) => {
                self.fail();
                Err(error.into())
            }
        }
    }

    /// The worker's body is over: the encoder's last bytes go out and the exchange is
    /// complete (connection back to the pool, bytes counted, guard released), once.
    fn end(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let out = match self.step(Encoder::finish) {
            Ok(out) => out,
            Err(error) => return Poll::Ready(Some(Err(error))),
        };
        self.done = true;
        if let Some(mut finish) = self.finish.take() {
            finish.bytes += out.len() as u64;
            finish.complete(&mut self.body);
        }
        if out.is_empty() {
            return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
        }
        Poll::Ready(Some(Ok(Frame::data(out))))
    }

    fn data(&mut self, out: Bytes) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(finish) = &mut self.finish {
            finish.bytes += out.len() as u64;
        }
        Poll::Ready(Some(Ok(Frame::data(out))))
    }

    /// The stream failed: the connection is not reused, the guard is released.
    fn fail(&mut self) {
        self.finish = None;
        self.done = true;
        self.trailers = None;
    }
}
