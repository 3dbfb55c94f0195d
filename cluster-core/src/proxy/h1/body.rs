//! The body of a response read by the proxy's own HTTP/1.1 client, streamed frame by frame
//! from the worker's socket as the client's connection polls for it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};

use super::head::Framing;
use super::{H1Conn, H1Error};

/// Longest chunk-size line accepted (size, extensions and CRLF).
const MAX_CHUNK_LINE: usize = 4096;
/// Bytes a chunked body's trailer section may take.
const MAX_TRAILERS: usize = 64 * 1024;
/// Trailer fields accepted.
const MAX_TRAILER_FIELDS: usize = 64;

/// A worker's response body, read from its connection; the connection is handed back
/// ([`take_conn`](Self::take_conn)) once the body has ended cleanly, ready for the next
/// request.
#[derive(Debug)]
pub(crate) struct H1Body {
    conn: Option<H1Conn>,
    state: State,
    /// The connection may carry another request after this response, as far as the
    /// framing goes (not when the body ran to the end of the stream).
    reusable: bool,
    /// The worker keeps the connection open after this response, as far as its head
    /// goes (HTTP/1.1, no `Connection: close`); the head's hop-by-hop fields, which said
    /// so, are not passed on.
    keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This many bytes are still to come.
    Length(u64),
    /// Chunked: what comes next.
    Chunked(Chunk),
    /// Everything up to the end of the stream.
    Close,
    /// The body has ended.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// A chunk-size line.
    Size,
    /// This many bytes of chunk data.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// The trailer section after the last chunk.
    Trailers,
}

impl H1Body {
    pub(super) fn new(conn: H1Conn, framing: Framing, keep_alive: bool) -> Self {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::Close => State::Close,
        };
        H1Body { conn: Some(conn), state, reusable: framing != Framing::Close, keep_alive }
    }

    /// What the response head said about the connection: the worker keeps it open (see
    /// [`Finish::reusable`](crate::proxy::body::Finish)).
    pub(crate) fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The connection, when the body has ended and the connection may carry another
    /// request (nothing beyond the response was received); else `None`, and dropping the
    /// body closes it.
    pub(crate) fn take_conn(&mut self) -> Option<H1Conn> {
        let clean = self.state == State::Done
            && self.reusable
            && self.conn.as_ref().is_some_and(|c| c.buf.is_empty());
        if clean { self.conn.take() } else { None }
    }

    fn fail(&mut self, error: H1Error) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            let buf = &mut conn.buf;
            match this.state {
                State::Done => return Poll::Ready(None),
                State::Length(rest) if !buf.is_empty() => {
                    let n = rest.min(buf.len() as u64);
                    let data = buf.split_to(n as usize).freeze();
                    this.state = if n == rest { State::Done } else { State::Length(rest - n) };
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Close if !buf.is_empty() => {
                    let data = buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Chunked(chunk) => match chunked_step(buf, chunk) {
                    Ok(Step::Next(next)) => {
                        this.state = next;
                        continue;
                    }
                    Ok(Step::Frame(frame, next)) => {
                        this.state = next;
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Ok(Step::More) => {}
                    Err(error) => return this.fail(error),
                },
                State::Length(_) | State::Close => {}
            }
            // The buffer has nothing for the current state: read more.
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if this.state == State::Close => {
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return this.fail(H1Error::Body("the worker closed the connection mid-body"));
                }
                Ok(_) => {}
                Err(error) => return this.fail(error.into()),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            State::Chunked(_) | State::Close => SizeHint::default(),
        }
    }
}

/// What one step of chunked decoding found in the buffer.
enum Step {
    /// A state change with nothing to hand out.
    Next(State),
    /// Data or trailers to hand out, and the state after them.
    Frame(Frame<Bytes>, State),
    /// The buffer needs more bytes.
    More,
}

/// Decodes the next piece of a chunked body (RFC 9112 §7.1) from `buf`.
fn chunked_step(buf: &mut bytes::BytesMut, chunk: Chunk) -> Result<Step, H1Error> {
    match chunk {
        Chunk::Size => {
            let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                return if buf.len() > MAX_CHUNK_LINE {
                    Err(H1Error::Body("chunk-size line too long"))
                } else {
                    Ok(Step::More)
                };
            };
            let line = &buf[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let digits = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
            let size = parse_hex(digits).ok_or(H1Error::Body("bad chunk size"))?;
            buf.advance(end + 1);
            Ok(Step::Next(State::Chunked(if size == 0 {
                Chunk::Trailers
            } else {
                Chunk::Data(size)
            })))
        }
        Chunk::Data(rest) => {
            if buf.is_empty() {
                return Ok(Step::More);
            }
            let n = rest.min(buf.len() as u64);
            let data = buf.split_to(n as usize).freeze();
            let next = if n == rest { Chunk::DataEnd } else { Chunk::Data(rest - n) };
            Ok(Step::Frame(Frame::data(data), State::Chunked(next)))
        }
        Chunk::DataEnd => match buf.first() {
            None => Ok(Step::More),
            Some(b'\n') => {
                buf.advance(1);
                Ok(Step::Next(State::Chunked(Chunk::Size)))
            }
            Some(b'\r') if buf.len() < 2 => Ok(Step::More),
            Some(b'\r') if buf[1] == b'\n' => {
                buf.advance(2);
                Ok(Step::Next(State::Chunked(Chunk::Size)))
            }
            Some(_) => Err(H1Error::Body("no CRLF after chunk data")),
        },
        Chunk::Trailers => {
            if buf.starts_with(b"\r\n") || buf.starts_with(b"\n") {
                buf.advance(if buf[0] == b'\r' { 2 } else { 1 });
                return Ok(Step::Next(State::Done));
            }
            if buf.len() < 2 {
                return Ok(Step::More);
            }
            let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
            match httparse::parse_headers(buf, &mut fields) {
                Ok(httparse::Status::Complete((len, fields))) => {
                    let mut trailers = HeaderMap::with_capacity(fields.len());
                    for f in fields {
                        let name = HeaderName::from_bytes(f.name.as_bytes());
                        let value = HeaderValue::from_bytes(f.value);
                        if let (Ok(name), Ok(value)) = (name, value) {
                            trailers.append(name, value);
                        }
                    }
                    buf.advance(len);
                    Ok(Step::Frame(Frame::trailers(trailers), State::Done))
                }
                Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILERS => {
                    Err(H1Error::Body("trailer section too long"))
                }
                Ok(httparse::Status::Partial) => Ok(Step::More),
                Err(_) => Err(H1Error::Body("malformed trailer section")),
            }
        }
    }
}

/// A chunk size: hexadecimal digits, at most 15 of them.
fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| Some(n * 16 + u64::from((d as char).to_digit(16)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    /// Decodes a whole chunked body fed in pieces of `step` bytes.
    fn decode(text: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>, usize), H1Error> {
        let (mut buf, mut state, mut out, mut trailers) =
            (BytesMut::new(), Chunk::Size, Vec::new(), None);
        let mut fed = 0;
        loop {
            match chunked_step(&mut buf, state)? {
                Step::Next(State::Done) => return Ok((out, trailers, buf.len())),
                Step::Next(State::Chunked(c)) => state = c,
                Step::Frame(frame, next) => {
                    match frame.into_data() {
                        Ok(data) => out.extend_from_slice(&data),
                        Err(frame) => trailers = frame.into_trailers().ok(),
                    }
                    match next {
                        State::Chunked(c) => state = c,
                        _ => return Ok((out, trailers, buf.len())),
                    }
                }
                Step::More if fed < text.len() => {
                    let n = step.min(text.len() - fed);
                    buf.extend_from_slice(&text[fed..fed + n]);
                    fed += n;
                }
                Step::More => return Err(H1Error::Body("ended early")),
                Step::Next(_) => unreachable!(),
            }
        }
    }

    #[test]
    fn decodes_chunks_in_any_pieces() {
        let text = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
        for step in [1, 2, 3, 7, 100] {
            let (body, trailers, left) = decode(text, step).unwrap();
            assert_eq!(
                (body.as_slice(), trailers, left),
                (&b"hello, world"[..], None, 0),
                "{step}"
            );
        }
    }

    #[test]
    fn passes_trailers_on() {
        let text = b"3\r\nabc\r\n0\r\nx-checksum: 42\r\nx-other: a\r\n\r\n";
        for step in [1, 5, 100] {
            let (body, trailers, _) = decode(text, step).unwrap();
            let trailers = trailers.unwrap();
            assert_eq!(body.as_slice(), b"abc");
            assert_eq!(trailers["x-checksum"], "42");
        }
    }

    #[test]
    fn refuses_malformed_chunks() {
        for bad in [&b"zz\r\n"[..], b"3\r\nabcX", b"fffffffffffffffff\r\n", b"\r\n"] {
            assert!(matches!(decode(bad, 100), Err(H1Error::Body(_))), "{bad:?}");
        }
        let long = vec![b'1'; MAX_CHUNK_LINE + 10];
        assert!(matches!(decode(&long, 10_000), Err(H1Error::Body(_))));
    }
}
