//! One client connection: what the handler knows about it, and the task that serves it
//! until it closes, stays idle too long, or the proxy stops.

use std::future::Future;
use std::future::poll_fn;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Shared;
use super::handler;
use super::headers::ClientInfo;
use super::lean;
use super::limits::REQUEST_TIMEOUT_RESPONSE;

/// The HTTP/1.1 + h2c server builder shared by every connection of one `serve` call.
pub(crate) type Http = auto::Builder<TokioExecutor>;

/// What the connections and tunnels of one `serve` call share.
#[derive(Debug, Default)]
pub(crate) struct ServeState {
    /// Set just before `drain` is cancelled, so a connection can tell, with one atomic load,
    /// whether the wake-up it got was the drain (polling the token itself takes its lock).
    draining: AtomicBool,
    /// Cancelled when connections must finish their requests and close.
    drain: CancellationToken,
    /// Cancelled when everything must end at once (`serve`'s future was dropped).
    kill: CancellationToken,
    /// Set when a new primary has taken over the front socket: every HTTP/1 request from now
    /// on is answered with `Connection: close`, and the connection closes after it.
    pub(crate) closing: AtomicBool,
    /// Every connection and tunnel task, so `serve` can wait for them.
    pub(crate) tasks: TaskTracker,
}

impl ServeState {
    /// Asks every connection to finish its requests and close.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.drain.cancel();
    }

    /// Lets the clients go after their next response (hot upgrade): see `closing`.
    pub(crate) fn let_clients_go(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Ends every connection and tunnel at once.
    pub(crate) fn kill(&self) {
        self.drain();
        self.kill.cancel();
    }

    /// A token cancelled by [`ServeState::kill`], for a tunnel to watch.
    pub(crate) fn kill_token(&self) -> CancellationToken {
        self.kill.child_token()
    }
}

/// What a request handler needs from its connection; one per connection, shared by its
/// requests through an `Arc`.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    /// The proxy's router, settings and counters.
    pub(crate) shared: Arc<Shared>,
    /// The peer, and whether its forwarding headers are trusted.
    pub(crate) client: ClientInfo,
    /// The `serve` call this connection belongs to.
    pub(crate) serve: Arc<ServeState>,
    /// Front door responses streaming on it that end when the proxy drains
    /// ([`EndsOnDrain`](super::EndsOnDrain)).
    pub(crate) open_streams: AtomicUsize,
    /// What the connection's task learns from its socket and its requests.
    pub(crate) activity: Activity,
}

impl ConnCtx {
    /// Context for a new connection from `client`.
    pub(crate) fn new(shared: Arc<Shared>, client: ClientInfo, serve: Arc<ServeState>) -> Self {
        ConnCtx {
            shared,
            client,
            serve,
            open_streams: AtomicUsize::new(0),
            activity: Activity::default(),
        }
    }
}

/// How long a connection with a streaming front door response gets, once the proxy drains,
/// to end it by itself before it is dropped (a client that stopped reading would otherwise
/// hold the drain until its deadline).
const STREAM_DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Serves one accepted connection to its end.
///
/// - [`ServeState::drain`] starts a graceful shutdown: in-flight requests finish, then the
///   connection closes.
/// - No byte read or written for `keep_alive_timeout` also starts a graceful shutdown: an
///   idle keep-alive connection closes at once, a busy one after its current response.
/// - HTTP/1: a request head not complete `header_read_timeout` after the proxy started
///   waiting for it (the connection opened, or the last response went out) ends the
///   connection, with a `408` when part of the head had arrived ([`HeadClock`]).
/// - [`ServeState::kill`] ends the connection at once.
pub(crate) async fn serve(http: Arc<Http>, tcp: TcpStream, ctx: Arc<ConnCtx>) {
    let idle = ctx.shared.cfg.keep_alive_timeout.max(Duration::from_millis(100));
    let head_timeout = ctx.shared.cfg.header_read_timeout;
    // The timer checks all three: often enough to end a slow head within a quarter of its
    // timeout, idle connections within a quarter of theirs, and to arm a request's response
    // timer well before its deadline (`Activity::within`).
    let tick = (head_timeout.min(idle).min(ctx.shared.cfg.request_timeout) / 4)
        .max(Duration::from_millis(10));
    let mut head_clock = HeadClock::new(head_timeout, tick);
    let state = Arc::clone(&ctx.serve);
    let conn_ctx = Arc::clone(&ctx);
    let io = Watched {
        inner: TokioIo::new(tcp),
        ctx: Arc::clone(&ctx),
        in_head: false,
        peeked: false,
        rewound: Bytes::new(),
    };
    let svc = {
        let ctx = Arc::clone(&ctx);
        service_fn(move |req| handler::handle(Arc::clone(&ctx), req))
    };
    let mut conn = Served {
        lean: None,
        hyper: None,
        make: |io| http.serve_connection_with_upgrades(io, svc.clone()),
        ctx: Arc::clone(&ctx),
    };
    if ctx.shared.cfg.keep_alive_timeout.is_zero() {
        // Without keep-alive every response closes its connection: hyper's rules for
        // that (`Connection: close` on every response) are left to hyper.
        conn.start_hyper(io);
    } else {
        conn.lean = Some(Box::pin(lean::serve(io, Arc::clone(&ctx))));
    }
    let mut timer = pin!(tokio::time::sleep(tick));
    let mut drain = pin!(state.drain.cancelled());
    let mut kill = pin!(state.kill.cancelled());
    let mut stream_grace = pin!(tokio::time::sleep(Duration::MAX));
    let mut stream_grace_armed = false;
    let mut armed = false;
    // The timer is polled once after each (re)arming, which registers this task's waker
    // with it; after that a wake-up only checks whether it fired (polling a `Sleep` at
    // every wake-up, several per request, re-registers the waker each time).
    let mut timer_polled = false;
    let mut draining = false;
    let mut seen = 0;
    let mut last_active = Instant::now();
    // A hand-written select: the connection is polled on every wake-up (several per request),
    // the drain token only once to register and then when the flag says it fired.
    let res = poll_fn(|cx| {
        loop {
            if let Poll::Ready(res) = conn.poll(cx) {
                return Poll::Ready(res);
            }
            if draining {
                if conn_ctx.open_streams.load(Ordering::Acquire) > 0 {
                    if !stream_grace_armed {
                        stream_grace_armed = true;
                        stream_grace.as_mut().reset(Instant::now() + STREAM_DRAIN_GRACE);
                    }
                    if stream_grace.as_mut().poll(cx).is_ready() {
                        // A stream its client does not read: drop the connection.
                        return Poll::Ready(Ok(()));
                    }
                }
                if timer.as_mut().poll(cx).is_ready() {
                    conn_ctx.activity.tick();
                    // A head still unfinished while draining gets its 408 all the same.
                    if head_clock.expired(&conn_ctx.activity) {
                        conn_ctx.activity.head_timed_out.store(true, Ordering::Relaxed);
                        return Poll::Ready(Ok(()));
                    }
                    timer.as_mut().reset(Instant::now() + tick);
                    continue;
                }
                return kill.as_mut().poll(cx).map(|()| Ok(()));
            }
            if !armed || state.draining.load(Ordering::Acquire) {
                armed = true;
                if drain.as_mut().poll(cx).is_ready() {
                    conn.graceful_shutdown();
                    draining = true;
                    continue;
                }
            }
            let fired = if timer_polled {
                timer.is_elapsed()
            } else {
                timer_polled = true;
                timer.as_mut().poll(cx).is_ready()
            };
            if !fired {
                return Poll::Pending;
            }
            let now = Instant::now();
            conn_ctx.activity.tick();
            if head_clock.expired(&conn_ctx.activity) {
                // The socket gets a 408 when it is dropped, just below, if part of a request
                // head had arrived.
                conn_ctx.activity.head_timed_out.store(true, Ordering::Relaxed);
                return Poll::Ready(Ok(()));
            }
            let ops = conn_ctx.activity.ops.load(Ordering::Relaxed);
            if ops != seen {
                seen = ops;
                last_active = now;
            } else if now.saturating_duration_since(last_active) >= idle {
                conn.graceful_shutdown();
                draining = true;
                continue;
            }
            timer.as_mut().reset(now + tick);
            timer_polled = false;
        }
    })
    .await;
    if let Err(error) = res {
        tracing::debug!(target: "cluster::proxy", %error, "client connection ended");
    }
}

/// A client connection's server: the lean path ([`lean`]) until a request needs hyper,
/// then hyper's.
struct Served<L, H, F> {
    lean: Option<Pin<Box<L>>>,
    hyper: Option<Pin<Box<H>>>,
    /// hyper's server for a connection.
    make: F,
    ctx: Arc<ConnCtx>,
}

impl<L, H, F> Served<L, H, F>
where
    L: Future<Output = lean::Outcome>,
    H: GracefulConnection,
    F: FnMut(Watched) -> H,
{
    /// hyper serves the connection from here on.
    fn start_hyper(&mut self, io: Watched) {
        let mut hyper = Box::pin((self.make)(io));
        // Shut down already: hyper, still to read the bytes handed back to it, would take
        // its graceful shutdown for an idle connection's and close it unanswered. An HTTP/1
        // request handed over is answered with `Connection: close` instead (the handler's
        // `let_go_after`), and hyper closes after it.
        let activity = &self.ctx.activity;
        if activity.shutdown.load(Ordering::Relaxed) && activity.h2.load(Ordering::Relaxed) {
            hyper.as_mut().graceful_shutdown();
        }
        self.hyper = Some(hyper);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), H::Error>> {
        loop {
            if let Some(hyper) = &mut self.hyper {
                return hyper.as_mut().poll(cx);
            }
            let Some(lean) = &mut self.lean else { return Poll::Ready(Ok(())) };
            match std::task::ready!(lean.as_mut().poll(cx)) {
                lean::Outcome::Done => {
                    self.lean = None;
                    return Poll::Ready(Ok(()));
                }
                lean::Outcome::Handover(io) => {
                    self.lean = None;
                    self.start_hyper(io);
                }
            }
        }
    }

    /// Finishes the request in flight, then closes; closes at once when idle.
    fn graceful_shutdown(&mut self) {
        self.ctx.activity.shutdown.store(true, Ordering::Relaxed);
        if let Some(hyper) = &mut self.hyper {
            hyper.as_mut().graceful_shutdown();
        }
    }
}

/// The header read timeout, checked at each tick of the connection's timer rather than with
/// a timer per request (hyper's own costs about 1,500 instructions per request: a timer
/// armed and cancelled, and a second pass of its dispatcher).
///
/// The proxy waits for a request head from the moment the connection opens and from the
/// end of each exchange (the response body handed to hyper in full, or dropped), as hyper
/// does. A tick that finds it waiting since before the previous tick counts one more
/// quarter of the timeout; the fifth such tick ends the connection: between `timeout` and
/// `timeout` and a quarter after the wait began. HTTP/2 connections (found by their
/// preface) have no request heads of their own and are left alone.
struct HeadClock {
    /// Ticks that make the timeout (4, or more when the keep-alive timeout makes the tick
    /// shorter).
    ticks: u32,
    /// Exchanges completed, at the last tick.
    exchanges: usize,
    /// Consecutive ticks that found the proxy waiting for the same head.
    waiting_ticks: u32,
}

impl HeadClock {
    fn new(timeout: Duration, tick: Duration) -> Self {
        let ticks = timeout.as_nanos().div_ceil(tick.as_nanos().max(1));
        HeadClock {
            ticks: u32::try_from(ticks).unwrap_or(u32::MAX),
            exchanges: 0,
            waiting_ticks: 0,
        }
    }

    /// Called at each tick: whether the head the proxy waits for is overdue.
    fn expired(&mut self, activity: &Activity) -> bool {
        if activity.h2.load(Ordering::Relaxed) {
            return false;
        }
        let exchanges = activity.exchanges.load(Ordering::Relaxed);
        // Not while response bytes wait for the client to read them: hyper only starts
        // waiting for the next head once the last response is written out.
        let waiting = !activity.in_exchange.load(Ordering::Relaxed)
            && !activity.write_blocked.load(Ordering::Relaxed);
        self.waiting_ticks = match (waiting, exchanges == self.exchanges) {
            (false, _) => 0,
            // Waiting since an exchange ended within the last tick: a partial quarter.
            (true, false) => 1,
            (true, true) => self.waiting_ticks + 1,
        };
        self.exchanges = exchanges;
        self.waiting_ticks > self.ticks
    }
}

/// What the connection task learns from its socket and its requests. Written and read by
/// the connection's own task only (the socket, hyper and the handler all run in it); the
/// atomics are there because the connection's future must be `Send`.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Completed reads and writes, so the task can tell an idle connection from a busy one.
    ops: AtomicUsize,
    /// Set from the moment hyper hands a request head to the handler until the response
    /// body is done with ([`Exchange`]): the proxy is not waiting for a head meanwhile.
    in_exchange: AtomicBool,
    /// Exchanges completed.
    exchanges: AtomicUsize,
    /// Set when the connection turned out to be HTTP/2 (prior knowledge): by its preface,
    /// or by its first request.
    pub(crate) h2: AtomicBool,
    /// The last write could not complete (the client is not reading): response bytes are
    /// still to go out.
    write_blocked: AtomicBool,
    /// Set when a request head took longer than `headerReadTimeout`.
    head_timed_out: AtomicBool,
    /// Ticks of the connection's timer so far.
    ticks: AtomicUsize,
    /// The connection is to close after the response in flight, or at once when idle
    /// (the lean path's graceful shutdown).
    pub(crate) shutdown: AtomicBool,
}

impl Activity {
    /// One more tick of the connection's timer. The connection's future is polled right
    /// after, and with it the request in flight (hyper polls its handler whenever the
    /// connection is polled while it waits for the response head).
    fn tick(&self) {
        self.ticks.store(self.ticks.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    /// `fut`, bounded by `deadline` (`Err` past it), for an HTTP/1 request on this
    /// connection: what `tokio::time::timeout` does, without a timer for the requests that
    /// finish between two ticks of the connection's timer (nearly all: the tick is at most a
    /// quarter of the timeout). A request still waiting at a tick gets a timer for the same
    /// deadline then, so the timeout is exact. That saves arming and cancelling a timer per
    /// request (about 680 instructions of 20,000). Not for HTTP/2, whose requests are polled
    /// by tasks of their own.
    pub(crate) async fn within<F: Future>(
        &self,
        deadline: Instant,
        fut: F,
    ) -> Result<F::Output, ()> {
        let mut fut = pin!(fut);
        let started = self.ticks.load(Ordering::Relaxed);
        let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            if timer.is_none() && self.ticks.load(Ordering::Relaxed) != started {
                timer = Some(Box::pin(tokio::time::sleep_until(deadline)));
            }
            match timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(())),
                _ => Poll::Pending,
            }
        })
        .await
    }
}

/// One request's exchange on its connection, from the request head handed to the handler
/// to the end of the response body, which carries it: dropped with the body.
#[derive(Debug)]
pub(crate) struct Exchange(Arc<ConnCtx>);

impl Exchange {
    /// A request head was received in full: the proxy stops waiting for one until this is
    /// dropped.
    pub(crate) fn begin(conn: &Arc<ConnCtx>) -> Self {
        conn.activity.in_exchange.store(true, Ordering::Relaxed);
        Exchange(Arc::clone(conn))
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let activity = &self.0.activity;
        activity.in_exchange.store(false, Ordering::Relaxed);
        let done = activity.exchanges.load(Ordering::Relaxed).wrapping_add(1);
        activity.exchanges.store(done, Ordering::Relaxed);
    }
}

/// A client socket that counts its completed reads and writes, so the connection task can
/// tell an idle connection from a busy one, and one waiting for a request head, without a
/// timer per request.
///
/// hyper 1 has no idle timeout between keep-alive requests of its own, and none at all for
/// HTTP/2 or while the protocol is still being detected.
///
/// It also remembers whether anything was read since the last write: when the header read
/// timeout ends the connection, that tells a client stuck in the middle of a request head
/// (it gets `408 Request Timeout`, written as the socket is dropped) from an idle keep-alive
/// connection (simply closed).
pub(crate) struct Watched {
    inner: TokioIo<TcpStream>,
    ctx: Arc<ConnCtx>,
    /// Bytes arrived since the last response bytes went out: a request head (or body) is
    /// being received.
    in_head: bool,
    /// The first bytes have been looked at for the HTTP/2 preface.
    peeked: bool,
    /// Bytes the lean path read and left for hyper, read before the socket.
    rewound: Bytes,
}

/// How an HTTP/2 connection with prior knowledge starts (RFC 9113 §3.4); no HTTP/1 method
/// is `PRI`.
pub(crate) const H2_PREFACE_START: &[u8] = b"PRI ";

impl Watched {
    /// The same socket, with `bytes` (read from it already) to be read again first: the
    /// lean path hands the connection to hyper.
    pub(crate) fn rewound(mut self, bytes: Bytes) -> Self {
        self.rewound = bytes;
        // The lean path looked for the preface itself.
        self.peeked = true;
        self
    }

    /// Reads what the socket has into `buf` (with at least `reserve` bytes of room);
    /// `Ok(0)` at the end of the stream. For the lean path.
    pub(crate) fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        reserve: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            let tcp = self.inner.inner();
            std::task::ready!(tcp.poll_read_ready(cx))?;
            buf.reserve(reserve);
            // A short read clears the readiness, as tokio's own reads do: the next read
            // waits for the next event instead of costing a system call that finds nothing.
            let read = crate::endpoint::read_drain(
                buf,
                |buf| tcp.try_read_buf(buf),
                |f| tcp.try_io(tokio::io::Interest::READABLE, f),
            );
            match read {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                res => {
                    self.in_head = true;
                    self.touch();
                    return Poll::Ready(res);
                }
            }
        }
    }

    /// Writes what the socket takes of `bufs`. For the lean path.
    pub(crate) fn poll_write_from(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            if let Err(e) = std::task::ready!(self.inner.inner().poll_write_ready(cx)) {
                self.wrote(true);
                return Poll::Ready(Err(e));
            }
            match self.inner.inner().try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wrote(false),
                res => {
                    self.wrote(true);
                    return Poll::Ready(res);
                }
            }
        }
    }

    /// Bytes of the next request head are waiting (read while the last response was on
    /// its way): the header read timeout answers `408` if it does not complete. For the
    /// lean path.
    pub(crate) fn head_pending(&mut self) {
        self.in_head = true;
    }

    /// Ends the sending side (the client reads the end of the stream after the last
    /// response). For the lean path.
    pub(crate) fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(self.inner.inner()).shutdown(std::net::Shutdown::Write);
    }

    fn touch(&self) {
        // One writer (the task that owns the socket), so a load and a store suffice.
        let ops = &self.ctx.activity.ops;
        ops.store(ops.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    /// A write returned: `done` when it completed, else the socket is full.
    fn wrote(&mut self, done: bool) {
        self.ctx.activity.write_blocked.store(!done, Ordering::Relaxed);
        if done {
            self.in_head = false;
            self.touch();
        }
    }

    /// Looks at the connection's first bytes, without taking them, for the HTTP/2 preface.
    fn peek_preface(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut first = [0u8; H2_PREFACE_START.len()];
        let mut buf = tokio::io::ReadBuf::new(&mut first);
        match self.inner.inner().poll_peek(cx, &mut buf) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(_)) => {
                if buf.filled() == H2_PREFACE_START {
                    self.ctx.activity.h2.store(true, Ordering::Relaxed);
                }
            }
            // The read that follows reports it.
            Poll::Ready(Err(_)) => {}
        }
        self.peeked = true;
        Poll::Ready(())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.in_head && self.ctx.activity.head_timed_out.load(Ordering::Relaxed) {
            // Best effort, without blocking: a fresh 100-byte write fits in any socket
            // buffer. hyper has not shut the socket down (it just returned the error).
            let _ = self.inner.inner().try_write(REQUEST_TIMEOUT_RESPONSE);
        }
    }
}

impl Read for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.rewound.is_empty() {
            let n = this.rewound.len().min(buf.remaining());
            buf.put_slice(&this.rewound.split_to(n));
            return Poll::Ready(Ok(()));
        }
        if !this.peeked && this.peek_preface(cx).is_pending() {
            return Poll::Pending;
        }
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if res.is_ready() {
            // A completed read brought bytes, or the end of the stream (after which the
            // connection ends without any timeout).
            this.in_head = true;
            this.touch();
        }
        res
    }
}

impl Write for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(res.is_ready());
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(res.is_ready());
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
