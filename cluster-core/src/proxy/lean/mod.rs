//! The lean HTTP/1.1 server: the client side of the requests most traffic is made of,
//! served without hyper's server.
//!
//! hyper's HTTP/1 server dispatcher costs about a fifth of the proxy's instructions per
//! request (docs/benchmarks.md): a request head parsed into its own buffers, the response
//! head queued and encoded, the body moved through its write buffer, and a pass of its
//! state machine for each. For a plain `GET` or `HEAD` over HTTP/1.1 (no body, no upgrade,
//! see [`request::read`]) this module does the same work directly, the way the proxy's own
//! client ([`super::h1`]) does for the worker's side: it reads the head into the
//! connection's buffer, hands the handler a request whose fields are slices of it, writes
//! the response head with the first body bytes in one system call, and streams the rest.
//! The handler, and every stage on the request path, are the same as for hyper's requests.
//!
//! Any other request (a body, an upgrade, HTTP/1.0 or HTTP/2, a path the front door may
//! claim, a head hyper would refuse with its own 400 or 431) ends the lean path for that
//! connection: hyper's server takes it over from that request on, with the bytes read so
//! far handed back to it ([`Outcome::Handover`]). The response encoding follows hyper's
//! ([`response`]), and so do keep-alive, pipelining, graceful shutdown (the response in
//! flight says `Connection: close`) and a client that closes before its response (the
//! request is dropped, as hyper drops it).

mod date;
mod request;
mod response;

use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::Method;
use http_body::Body;

use super::body::ProxyBody;
use super::conn::{ConnCtx, H2_PREFACE_START, Watched};
use super::handler;
use request::{Head, Rules};
use response::Framing;

/// How the lean path left a connection.
pub(crate) enum Outcome {
    /// Done with: closed by either side, failed, or shut down.
    Done,
    /// A request the lean path does not serve: hyper serves the connection from it on,
    /// reading the bytes already received first.
    Handover(Watched),
}

/// Room kept in the read buffer before a read.
const READ_RESERVE: usize = 4096;

/// Serves `io` on the lean path until it closes or a request needs hyper.
pub(crate) async fn serve(mut io: Watched, ctx: Arc<ConnCtx>) -> Outcome {
    let cfg = &ctx.shared.cfg;
    let rules = Rules {
        max_fields: cfg.limits.max_headers,
        // hyper's read buffer limit (server.rs): a head that does not fit is its 431.
        max_head: cfg.limits.max_header_size.max(8 * 1024),
        front: cfg.front_door.as_deref(),
    };
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut first = true;
    loop {
        // A complete head.
        let req = loop {
            if first && !buf.is_empty() {
                let seen = buf.len().min(H2_PREFACE_START.len());
                if buf[..seen] == H2_PREFACE_START[..seen] {
                    if seen == H2_PREFACE_START.len() {
                        ctx.activity.h2.store(true, Ordering::Relaxed);
                        return Outcome::Handover(io.rewound(buf.freeze()));
                    }
                } else {
                    first = false;
                }
            }
            if !first && !buf.is_empty() {
                match request::read(&mut buf, rules) {
                    Head::Lean(req) => break req,
                    Head::Partial => {}
                    Head::Other => return Outcome::Handover(io.rewound(buf.freeze())),
                }
            }
            let shutdown = &ctx.activity.shutdown;
            let read = poll_fn(|cx| {
                if buf.is_empty() && shutdown.load(Ordering::Relaxed) {
                    // Shut down while idle: close now, as hyper does.
                    return Poll::Ready(Ok(0));
                }
                io.poll_read_into(cx, &mut buf, READ_RESERVE)
            });
            match read.await {
                // The end of the stream, mid-head or not, or a failed read: hyper closes
                // without an answer too.
                Ok(0) | Err(_) => return Outcome::Done,
                Ok(_) => {}
            }
        };

        // The response head, while watching the client: a client that closes first
        // drops the request (hyper's default, no half-close).
        let head_request = req.method() == Method::HEAD;
        let mut answer = pin!(handler::handle(Arc::clone(&ctx), req));
        let resp = poll_fn(|cx| {
            if let Poll::Ready(Ok(resp)) = answer.as_mut().poll(cx) {
                return Poll::Ready(Some(resp));
            }
            watch(&mut io, cx, &mut buf).map(|()| None)
        })
        .await;
        let Some(resp) = resp else { return Outcome::Done };
        let (mut parts, body) = resp.into_parts();
        let keep_alive = !ctx.activity.shutdown.load(Ordering::Relaxed);
        out.clear();
        let Ok(encoded) = response::encode(&mut out, &mut parts, &body, head_request, keep_alive)
        else {
            return Outcome::Done;
        };
        drop(parts);
        if send(&mut io, &out, body, encoded.framing, &mut buf).await.is_err() {
            return Outcome::Done;
        }
        if !buf.is_empty() {
            io.head_pending();
        }
        if encoded.last {
            io.shutdown_write();
            return Outcome::Done;
        }
    }
}

/// The client went away or failed, as far as a read shows: `Ready`. Reads what it sent
/// meanwhile (a pipelined request) into `buf`, while `buf` is empty: as hyper, once the next
/// request's bytes are in, the socket is left alone until the response is out (so a client
/// that pipelines and then closes its sending side still gets its answers).
fn watch(io: &mut Watched, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<()> {
    while buf.is_empty() {
        match io.poll_read_into(cx, buf, READ_RESERVE) {
            Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(()),
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Pending
}

/// The client went away while the response was sent, or the body failed: the connection
/// is closed, as hyper closes it.
#[derive(Debug)]
struct Cut;

/// Sends the response: `head`, then `body` as `framing` says, the head and the first body
/// bytes in one write when the body has them at once. Watches the client while the body
/// has nothing to send.
async fn send(
    io: &mut Watched,
    head: &[u8],
    mut body: ProxyBody,
    framing: Framing,
    buf: &mut BytesMut,
) -> Result<(), Cut> {
    let mut head = Some(head);
    let mut remaining = match framing {
        Framing::Length(0) => {
            // No body to send (`HEAD`, 204, 304, an empty body): the body is dropped
            // unread, as hyper drops it.
            drop(body);
            return write_data(io, head, &Bytes::new(), false, true).await;
        }
        Framing::Length(n) => Some(n),
        Framing::Chunked => None,
    };
    loop {
        let frame = match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                // Nothing to send yet: the head goes out now (a client may be waiting on
                // it, as for a stream of events).
                if let Some(h) = head.take() {
                    write_all(io, &mut [IoSlice::new(h)]).await?;
                }
                let next = poll_fn(|cx| match Pin::new(&mut body).poll_frame(cx) {
                    Poll::Ready(frame) => Poll::Ready(Some(frame)),
                    Poll::Pending => watch(io, cx, buf).map(|()| None),
                });
                next.await.ok_or(Cut)?
            }
        };
        let data = match frame {
            None => {
                if remaining.is_some_and(|r| r > 0) {
                    // Shorter than its `Content-Length`: the client must see it cut.
                    return Err(Cut);
                }
                return write_data(io, head, &Bytes::new(), remaining.is_none(), true).await;
            }
            Some(Err(_)) => return Err(Cut),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers go only to a client that asked for them (`TE: trailers`),
                // and such requests are hyper's.
                Err(_) => continue,
            },
        };
        let mut data = data;
        let mut end = body.is_end_stream();
        if let Some(r) = &mut remaining {
            // As hyper: bytes past the length are not sent, and the body is done with once
            // the length is reached.
            if data.len() as u64 >= *r {
                data.truncate(*r as usize);
                end = true;
            }
            *r -= data.len() as u64;
            if end && *r > 0 {
                return Err(Cut);
            }
        }
        if data.is_empty() && !end {
            continue;
        }
        write_data(io, head.take(), &data, remaining.is_none(), end).await?;
        if end {
            return Ok(());
        }
    }
}

/// Writes the head (if still unsent) and one data frame, framed as a chunk when
/// `chunked` (with the last chunk after it when `end`).
async fn write_data(
    io: &mut Watched,
    head: Option<&[u8]>,
    data: &Bytes,
    chunked: bool,
    end: bool,
) -> Result<(), Cut> {
    let mut size = [0; 18];
    let (prefix, suffix): (&[u8], &[u8]) = match (chunked, data.is_empty(), end) {
        (false, ..) => (b"", b""),
        (true, true, _) => (b"", b"0\r\n\r\n"),
        (true, false, false) => (response::chunk_size(data.len(), &mut size), b"\r\n"),
        (true, false, true) => (response::chunk_size(data.len(), &mut size), b"\r\n0\r\n\r\n"),
    };
    let mut slices = [
        IoSlice::new(head.unwrap_or_default()),
        IoSlice::new(prefix),
        IoSlice::new(data),
        IoSlice::new(suffix),
    ];
    write_all(io, &mut slices).await
}

/// Writes every byte of `slices`.
async fn write_all(io: &mut Watched, mut slices: &mut [IoSlice<'_>]) -> Result<(), Cut> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let n = poll_fn(|cx| io.poll_write_from(cx, slices)).await.map_err(|_| Cut)?;
        if n == 0 {
            return Err(Cut);
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}
