//! Body types of the proxy: what goes to the worker and what comes back to the client.
//!
//! Both stream frame by frame; nothing is buffered. The response body also carries the
//! request's bookkeeping: the in-flight guard (so least-connections counts a streaming
//! response until its last byte, as tower's `PendingRequests` does) and the pooled connection
//! to the worker, which goes back to the pool only once the body has been read to its end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use cluster_balancer::InFlight;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use super::compress::{Compressed, Encoder};
use super::conn::{ConnCtx, Exchange};
use super::front::{BoxError, FrontBody, FrontDoor, FrontFuture, FrontPeer};
use super::h1::{H1Body, H1Conn};
use super::limits::BodyBudget;
use super::pool;
use crate::access_log::{End, Entry};
use crate::routing::Backend;

/// The body of a request forwarded to a worker: the client's own body, streamed as it
/// arrives, or nothing (a request without a body, or a retried one, which by construction
/// had none).
#[derive(Debug)]
pub(crate) enum ReqBody {
    /// The client's body, forwarded frame by frame and counted in the bytes-in of the
    /// worker it goes to; it fails with
    /// [`BodyTooLarge`](super::limits::BodyTooLarge) once past its budget.
    Stream(Incoming, BytesIn, BodyBudget),
    /// No body.
    Empty,
}

/// A client request's body as the handler receives it: hyper's ([`Incoming`]), or none
/// at all ([`NoBody`], the requests of the lean HTTP/1.1 path, [`super::lean`]).
pub(crate) trait ClientBody: Body<Data = Bytes> + Send + Unpin + Sized + 'static {
    /// The body to forward to `backend`, within `budget`.
    fn forward(self, backend: &Arc<Backend>, budget: BodyBudget) -> ReqBody;

    /// Whether `front` claims `req`.
    fn front_claims(req: &Request<Self>, front: &dyn FrontDoor) -> bool;

    /// Hands a request [`front_claims`](Self::front_claims) said yes to over to `front`.
    fn call_front(req: Request<Self>, front: &dyn FrontDoor, peer: FrontPeer) -> FrontFuture;
}

impl ClientBody for Incoming {
    fn forward(self, backend: &Arc<Backend>, budget: BodyBudget) -> ReqBody {
        ReqBody::stream(self, backend, budget)
    }

    fn front_claims(req: &Request<Self>, front: &dyn FrontDoor) -> bool {
        front.claims(req)
    }

    fn call_front(req: Request<Self>, front: &dyn FrontDoor, peer: FrontPeer) -> FrontFuture {
        front.call(req, peer)
    }
}

/// The body of a request that has none: the lean path only serves those.
pub(crate) type NoBody = http_body_util::Empty<Bytes>;

impl ClientBody for NoBody {
    fn forward(self, _backend: &Arc<Backend>, _budget: BodyBudget) -> ReqBody {
        ReqBody::Empty
    }

    /// Never: the lean path serves no request whose path the front door
    /// [may claim](FrontDoor::may_claim).
    fn front_claims(_req: &Request<Self>, _front: &dyn FrontDoor) -> bool {
        false
    }

    /// Not called ([`front_claims`](Self::front_claims) is never true); a 404 if it were.
    fn call_front(_req: Request<Self>, _front: &dyn FrontDoor, _peer: FrontPeer) -> FrontFuture {
        Box::pin(async {
            let mut resp = http::Response::new(FrontBody::default());
            *resp.status_mut() = http::StatusCode::NOT_FOUND;
            resp
        })
    }
}

/// Request body bytes forwarded to one worker, added to its metrics once, when the body is
/// done with (one atomic add per request, not per frame).
#[derive(Debug)]
pub(crate) struct BytesIn {
    backend: Arc<Backend>,
    bytes: u64,
}

impl Drop for BytesIn {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.backend.metrics().add_bytes_in(self.bytes);
        }
    }
}

impl ReqBody {
    /// The client's body, going to `backend`, allowed `budget` bytes; [`ReqBody::Empty`]
    /// when it has already ended (most requests), which costs nothing.
    pub(crate) fn stream(body: Incoming, backend: &Arc<Backend>, budget: BodyBudget) -> Self {
        if body.is_end_stream() {
            ReqBody::Empty
        } else {
            ReqBody::Stream(body, BytesIn { backend: Arc::clone(backend), bytes: 0 }, budget)
        }
    }

    /// The same body sent to another worker instead (a retry of a request not yet sent).
    pub(crate) fn retarget(mut self, backend: &Arc<Backend>) -> Self {
        if let ReqBody::Stream(_, counted, _) = &mut self {
            counted.backend = Arc::clone(backend);
        }
        self
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    /// The client's body failing (hyper's error), or
    /// [`BodyTooLarge`](super::limits::BodyTooLarge).
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ReqBody::Stream(b, counted, budget) => {
                let frame = ready!(Pin::new(b).poll_frame(cx));
                if let Some(Ok(Some(data))) =
                    frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref))
                {
                    counted.bytes += data.len() as u64;
                    if let Err(too_large) = budget.check(counted.bytes) {
                        return Poll::Ready(Some(Err(too_large.into())));
                    }
                }
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            ReqBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Stream(b, ..) => b.is_end_stream(),
            ReqBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Stream(b, ..) => b.size_hint(),
            ReqBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A worker's response body, from hyper's client or from our own ([`super::h1`]).
#[derive(Debug)]
pub(crate) enum UpstreamBody {
    /// Read by hyper's connection task.
    Hyper(Incoming),
    /// Read from the socket by our own client, which holds the connection until the end.
    H1(H1Body),
}

impl UpstreamBody {
    /// Our own client's connection, once the body has ended cleanly and it may be reused.
    fn take_conn(&mut self) -> Option<H1Conn> {
        match self {
            UpstreamBody::H1(body) => body.take_conn(),
            UpstreamBody::Hyper(_) => None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Hyper(b) => {
                Pin::new(b).poll_frame(cx).map(|f| f.map(|f| f.map_err(BoxError::from)))
            }
            UpstreamBody::H1(b) => {
                Pin::new(b).poll_frame(cx).map(|f| f.map(|f| f.map_err(BoxError::from)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Hyper(b) => b.is_end_stream(),
            UpstreamBody::H1(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Hyper(b) => b.size_hint(),
            UpstreamBody::H1(b) => b.size_hint(),
        }
    }
}

/// What to do when a worker's response body has been streamed to its end.
#[derive(Debug)]
pub(crate) struct Finish {
    /// Counts the request as in flight on the worker until dropped.
    pub(crate) guard: InFlight,
    /// The worker whose pool takes the connection back.
    pub(crate) backend: Arc<Backend>,
    /// hyper's connection (our own client's is inside the body).
    pub(crate) sender: Option<SendRequest<ReqBody>>,
    /// The connection may be reused: the worker did not ask to close it.
    pub(crate) reusable: bool,
    /// Body bytes passed on so far.
    pub(crate) bytes: u64,
}

impl Finish {
    /// The exchange is complete: the connection (hyper's, or our own client's inside
    /// `body`) goes back to the pool when it is reusable, the guard drops.
    pub(crate) fn complete(self, body: &mut UpstreamBody) {
        let Finish { guard, backend, sender, reusable, bytes } = self;
        backend.metrics().add_bytes_out(bytes);
        if reusable {
            if let Some(conn) = body.take_conn() {
                backend.pool.put_h1(conn);
            }
            if let Some(sender) = sender {
                pool::release(backend, sender);
            }
        }
        drop(guard);
    }
}

/// The body of a response to the client.
///
/// Not `Clone`: it owns the request's in-flight guard and connection.
#[derive(Debug)]
pub(crate) struct ProxyBody {
    kind: Kind,
    /// The request's access log record, when the access log is on: it counts the bytes
    /// passed on and is queued when the body ends, fails or is dropped.
    log: Option<Entry>,
    /// The exchange on the client's connection, which ends when this body is dropped (hyper
    /// drops it once the last frame is out, or when the connection fails).
    _exchange: Option<Exchange>,
}

#[derive(Debug)]
enum Kind {
    Empty,
    Text(Option<Bytes>),
    Upstream {
        body: UpstreamBody,
        /// `Some` until the body ends (then completed) or fails (then dropped).
        finish: Option<Finish>,
    },
    /// A worker's response body compressed as it streams (boxed: the codec state is
    /// large, and most bodies are not compressed).
    Compressed(Box<Compressed>),
    /// A front door's response, and (held for as long as it lives) its place among the
    /// connection's open streams.
    Front {
        body: FrontBody,
        _stream: Option<StreamGuard>,
    },
}

/// Counts a streaming front door response among its connection's open streams while it
/// lives (see [`EndsOnDrain`](super::EndsOnDrain)).
#[derive(Debug)]
pub(crate) struct StreamGuard(Arc<ConnCtx>);

impl StreamGuard {
    pub(crate) fn new(conn: &Arc<ConnCtx>) -> Self {
        conn.open_streams.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(Arc::clone(conn))
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl ProxyBody {
    /// An empty body (the 101 of a tunnel, or a response the worker sent without one).
    pub(crate) fn empty() -> Self {
        ProxyBody { kind: Kind::Empty, log: None, _exchange: None }
    }

    /// A short body generated by the proxy itself (error pages).
    pub(crate) fn text(text: Bytes) -> Self {
        ProxyBody { kind: Kind::Text(Some(text)), log: None, _exchange: None }
    }

    /// A front door's response body; `stream` when it streams until the proxy drains.
    pub(crate) fn front(body: FrontBody, stream: Option<StreamGuard>) -> Self {
        ProxyBody { kind: Kind::Front { body, _stream: stream }, log: None, _exchange: None }
    }

    /// A worker's response body, streamed frame by frame; `finish` runs when it ends.
    ///
    /// If the body is dropped before its end (the client went away), the connection is
    /// dropped with it (hyper then closes it: it is mid-response) and the guard is released.
    pub(crate) fn upstream(body: UpstreamBody, finish: Finish) -> Self {
        ProxyBody {
            kind: Kind::Upstream { body, finish: Some(finish) },
            log: None,
            _exchange: None,
        }
    }

    /// The same body, ending `exchange` when it is dropped.
    pub(crate) fn within(mut self, exchange: Exchange) -> Self {
        self._exchange = Some(exchange);
        self
    }

    /// The same body, carrying the request's access log record to the body's end.
    pub(crate) fn logged(mut self, entry: Entry) -> Self {
        self.log = Some(entry);
        self
    }

    /// A worker's response body compressed with `encoder` as it streams; `finish` runs once
    /// the last compressed bytes are handed out, counting the compressed bytes.
    pub(crate) fn compressed(body: UpstreamBody, encoder: Encoder, finish: Finish) -> Self {
        ProxyBody {
            kind: Kind::Compressed(Box::new(Compressed::new(body, encoder, finish))),
            log: None,
            _exchange: None,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    /// A worker's body failing (hyper's error), or a front door's body ending a stream that
    /// must not wait for a slow client: either way hyper drops the connection.
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = ready!(this.kind.poll_frame(cx));
        if let Some(entry) = &mut this.log {
            let record = entry.record();
            match &frame {
                Some(Ok(f)) => {
                    record.bytes += f.data_ref().map_or(0, |d| d.len() as u64);
                    if this.kind.is_end_stream() {
                        record.end = End::Complete;
                        this.log = None;
                    }
                }
                None => {
                    record.end = End::Complete;
                    this.log = None;
                }
                Some(Err(_)) => {
                    record.end = End::Failed;
                    this.log = None;
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.kind.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.kind.size_hint()
    }
}

impl Drop for ProxyBody {
    /// Queues the access log line of a body that did not reach its end while polled: one
    /// that never needed polling (empty) is complete, any other was cut off by the client.
    fn drop(&mut self) {
        if let Some(entry) = &mut self.log {
            entry.record().end =
                if self.kind.is_end_stream() { End::Complete } else { End::Aborted };
        }
    }
}

impl Kind {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self {
            Kind::Empty => Poll::Ready(None),
            Kind::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
            Kind::Front { body, .. } => Poll::Ready(ready!(Pin::new(body).poll_frame(cx))),
            Kind::Compressed(body) => body.poll_frame(cx),
            Kind::Upstream { body, finish } => {
                let frame = ready!(Pin::new(&mut *body).poll_frame(cx));
                if let (Some(Ok(f)), Some(fin)) = (&frame, finish.as_mut()) {
                    fin.bytes += f.data_ref().map_or(0, |d| d.len() as u64);
                }
                match &frame {
                    // hyper stops polling once `is_end_stream` is true, so the end is
                    // detected after the last frame as well as on `None`.
                    Some(Ok(_)) if !body.is_end_stream() => {}
                    Some(Ok(_)) | None => {
                        if let Some(f) = finish.take() {
                            f.complete(body);
                        }
                    }
                    Some(Err(_)) => *finish = None,
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Kind::Empty => true,
            Kind::Text(text) => text.is_none(),
            Kind::Upstream { body, .. } => body.is_end_stream(),
            Kind::Compressed(body) => body.is_end_stream(),
            Kind::Front { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Text(text) => SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64)),
            Kind::Upstream { body, .. } => body.size_hint(),
            Kind::Compressed(_) => SizeHint::default(),
            Kind::Front { body, .. } => body.size_hint(),
        }
    }
}
