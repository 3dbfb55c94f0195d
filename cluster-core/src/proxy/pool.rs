//! Keep-alive connections to one worker: lock-free pools of idle HTTP/1.1 connections, and
//! sending one request over a pooled or a new connection.
//!
//! Two kinds of connection, each with its own idle queue:
//! - the proxy's own client ([`H1Conn`], see [`super::h1`]) for bodiless `GET` and `HEAD`,
//!   driven by the request's task; taken for one request and put back by the response body
//!   once it has been read to its end;
//! - hyper's `client::conn::http1` for every other request, driven by its own task
//!   (spawned `with_upgrades`, so a 101 can hand the socket to a tunnel). Its
//!   [`SendRequest`] handle is taken from the pool for one request and put back when the
//!   response body has been read to its end, never before; so a handle in the pool is
//!   always idle.
//!
//! Both are cheaper than hyper-util's legacy client (no pool lock, no key hashing, no
//! spawned task per request; see PERFORMANCE.md).

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::body::{ReqBody, UpstreamBody};
use super::error::ProxyError;
use super::h1::{H1Body, H1Conn};
use crate::endpoint::{Endpoint, Stream};
use crate::routing::Backend;

/// Idle connections kept per worker and proxy thread; more are closed when they come back.
const MAX_IDLE: usize = 256;
/// Proxy threads with a pool shard of their own; more threads share shards.
const MAX_SHARDS: usize = 8;

thread_local! {
    /// The pool shard of the proxy thread running on this OS thread.
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread use pool shard `index`: each proxy thread (one single-threaded
/// runtime each) keeps its idle connections to itself, so a connection is driven and used
/// on the same thread and no request wakes another thread.
pub(crate) fn set_thread_shard(index: usize) {
    SHARD.with(|s| s.set(index % MAX_SHARDS));
}
/// Time allowed to open a connection to a worker on this machine.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time a returned connection may take to become ready again before it is dropped.
const READY_WAIT: Duration = Duration::from_secs(1);
/// Pooled connections tried before opening a new one (each failure drops a dead one).
const MAX_STALE_TRIES: usize = 8;

/// One shard's idle connections of one kind, each with the time it went idle.
type Shard<C> = OnceLock<ArrayQueue<(C, Instant)>>;

/// Keeps `conn` in the calling thread's shard, unless it is full (`push` then hands it
/// back, and dropping it closes the connection).
fn push<C>(shards: &[Shard<C>; MAX_SHARDS], conn: C) {
    let own = SHARD.with(Cell::get);
    let idle = shards[own].get_or_init(|| ArrayQueue::new(MAX_IDLE));
    let _ = idle.push((conn, Instant::now()));
}

/// The first connection of `idle` idle for at most `max_idle` and `usable`; the others
/// popped on the way are dropped (closed).
fn pop<C>(
    idle: &ArrayQueue<(C, Instant)>,
    max_idle: Duration,
    now: &mut Option<Instant>,
    mut usable: impl FnMut(&mut C) -> bool,
) -> Option<C> {
    while let Some((mut conn, since)) = idle.pop() {
        let now = *now.get_or_insert_with(Instant::now);
        if now.saturating_duration_since(since) <= max_idle && usable(&mut conn) {
            return Some(conn);
        }
    }
    None
}

/// A connection the pool opened, kept so that [`UpstreamPool::cut`] can end it.
#[derive(Debug)]
enum Tracked {
    /// The task driving a hyper connection.
    Task(AbortHandle),
    /// The socket of one of our own connections.
    Socket(Weak<Stream>),
}

impl Tracked {
    fn is_finished(&self) -> bool {
        match self {
            Tracked::Task(task) => task.is_finished(),
            Tracked::Socket(socket) => socket.strong_count() == 0,
        }
    }

    fn end(self) {
        match self {
            Tracked::Task(task) => task.abort(),
            Tracked::Socket(socket) => {
                if let Some(socket) = socket.upgrade() {
                    socket.shutdown_now();
                }
            }
        }
    }
}

/// Idle keep-alive connections to one worker.
///
/// Lives inside the worker's [`Backend`] and dies with it, which closes the idle
/// connections. Taking and returning a connection is one lock-free queue operation.
///
/// Sharded by proxy thread ([`set_thread_shard`]): a thread takes from its own shard first
/// and only then from the others, so idle connections are never stranded on one thread
/// (with a work-stealing runtime, where tasks move between threads, that matters).
/// A shard's queue is allocated when its thread first returns a connection.
#[derive(Debug)]
pub(crate) struct UpstreamPool {
    addr: Endpoint,
    shards: [Shard<SendRequest<ReqBody>>; MAX_SHARDS],
    /// Idle connections of the proxy's own client, sharded the same way.
    h1_shards: [Shard<H1Conn>; MAX_SHARDS],
    /// Set by [`cut`](Self::cut) until [`restore`](Self::restore): no new connection opens.
    cut: AtomicBool,
    /// The connections opened (hyper's tasks, our sockets), ended by [`cut`](Self::cut).
    /// Locked once per new connection, never per request (a token watched by each
    /// connection would be polled, and lock its waiter list, at every wake-up).
    tasks: Mutex<Vec<Tracked>>,
}

impl UpstreamPool {
    /// An empty pool of connections to `addr`.
    pub(crate) fn new(addr: Endpoint) -> Self {
        Self {
            addr,
            shards: std::array::from_fn(|_| OnceLock::new()),
            h1_shards: std::array::from_fn(|_| OnceLock::new()),
            cut: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Closes every connection to the worker, idle or busy, and refuses new ones until
    /// [`restore`](Self::restore): requests waiting on it fail at once, into the retry rules
    /// (HAProxy's `on-marked-down shutdown-sessions`).
    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.end();
        }
    }

    /// Allows connections again after [`cut`](Self::cut).
    pub(crate) fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    /// Keeps a new connection (its task or its socket), so that [`cut`](Self::cut) can end it.
    ///
    /// Finished ones are swept only when the list is full, so the sweep is amortised over
    /// as many new connections as the list holds live ones.
    fn track(&self, task: Tracked) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if tasks.len() == tasks.capacity() {
            tasks.retain(|t| !t.is_finished());
            // At least double the live ones, so that the next sweep is as far away.
            let live = tasks.len();
            tasks.reserve(live.max(4));
        }
        tasks.push(task);
        drop(tasks);
        if self.cut.load(Ordering::SeqCst) {
            // Cut while this connection was opening.
            self.cut();
        }
    }

    /// An idle connection, if one is alive and was idle for at most `max_idle` (kept below
    /// the worker's own keep-alive timeout so we never write to a socket it is closing).
    fn take(&self, max_idle: Duration) -> Option<SendRequest<ReqBody>> {
        let own = SHARD.with(Cell::get);
        let mut now = None;
        (0..MAX_SHARDS).find_map(|step| {
            let idle = self.shards[(own + step) % MAX_SHARDS].get()?;
            // Closed, closing or too old: dropping it closes the connection.
            pop(idle, max_idle, &mut now, |sender| sender.is_ready())
        })
    }

    /// Keeps an idle connection in the calling thread's shard, unless it is full.
    fn put(&self, sender: SendRequest<ReqBody>) {
        push(&self.shards, sender);
    }

    /// An idle connection of our own client, from the calling thread's shard only.
    ///
    /// Unlike hyper's connections, ours are read by the request's own task, while their
    /// socket's readiness comes from the runtime that opened them: a connection used from
    /// another proxy thread would cost a cross-thread wake-up at each read. Each thread
    /// therefore keeps to the connections it opened (a multi-thread runtime, where every
    /// thread is shard 0, shares one queue and one I/O driver).
    fn take_h1(&self, max_idle: Duration) -> Option<H1Conn> {
        let idle = self.h1_shards[SHARD.with(Cell::get)].get()?;
        pop(idle, max_idle, &mut None, H1Conn::is_reusable)
    }

    /// Keeps an idle connection of our own client, as [`put`](Self::put) keeps hyper's.
    pub(crate) fn put_h1(&self, conn: H1Conn) {
        push(&self.h1_shards, conn);
    }
}

/// Returns a connection whose response has been read in full to its worker's pool.
///
/// hyper marks the connection ready once it has processed the end of the response, which
/// has normally happened by the time the body's last frame is seen. If not yet (a
/// multi-thread runtime can observe the frame first, or the request body is still being
/// written after an early response), a small task waits for it instead of losing it.
pub(crate) fn release(backend: Arc<Backend>, mut sender: SendRequest<ReqBody>) {
    if sender.is_ready() {
        backend.pool.put(sender);
    } else if !sender.is_closed() {
        tokio::spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, sender.ready()).await {
                backend.pool.put(sender);
            }
        });
    }
}

/// A response head from a worker, with the connection it came on.
#[derive(Debug)]
pub(crate) struct Sent {
    /// The worker's response; its body is still streaming.
    pub(crate) response: Response<UpstreamBody>,
    /// hyper's connection, busy until the body ends (our own client's connection is inside
    /// the body).
    pub(crate) sender: Option<SendRequest<ReqBody>>,
}

impl Sent {
    fn hyper(response: Response<Incoming>, sender: SendRequest<ReqBody>) -> Self {
        Sent { response: response.map(UpstreamBody::Hyper), sender: Some(sender) }
    }
}

/// A failed send: the error, and the request when it was not written at all.
#[derive(Debug)]
pub(crate) struct SendError {
    /// What went wrong.
    pub(crate) error: ProxyError,
    /// The request, intact, when nothing of it reached the worker; it may be resent anywhere.
    pub(crate) request: Option<Request<ReqBody>>,
    /// The failure happened on a reused keep-alive connection: most likely the worker closed
    /// it just as the request went out, not a sign that the worker is unwell.
    pub(crate) reused: bool,
}

/// Sends `req` to `backend` and waits for the response head.
///
/// Uses an idle pooled connection when there is one; a pooled connection found closed
/// before the request was written gives the request back (hyper's `TrySendError`) and the
/// next one is tried. Otherwise opens a new connection.
///
/// # Errors
///
/// A [`SendError`] carrying the request when it was not sent (connect failure), without it
/// when the worker may have received part of it.
pub(crate) async fn send(
    backend: &Backend,
    mut req: Request<ReqBody>,
    max_idle: Duration,
) -> Result<Sent, SendError> {
    let worker = backend.id();
    for _ in 0..MAX_STALE_TRIES {
        let Some(mut sender) = backend.pool.take(max_idle) else { break };
        match sender.try_send_request(req).await {
            Ok(response) => return Ok(Sent::hyper(response, sender)),
            Err(mut e) => match e.take_message() {
                Some(unsent) => req = unsent,
                None => {
                    let error = ProxyError::from_send(worker, e.into_error());
                    return Err(SendError { error, request: None, reused: true });
                }
            },
        }
    }
    let mut sender = match connect(&backend.pool).await {
        Ok(sender) => sender,
        Err(source) => {
            let error = ProxyError::Connect { worker, addr: backend.pool.addr.clone(), source };
            return Err(SendError { error, request: Some(req), reused: false });
        }
    };
    match sender.try_send_request(req).await {
        Ok(response) => Ok(Sent::hyper(response, sender)),
        Err(mut e) => {
            let request = e.take_message();
            let source = e.into_error();
            let error = match request {
                Some(_) => ProxyError::Unsent { worker, source },
                None => ProxyError::from_send(worker, source),
            };
            Err(SendError { error, request, reused: false })
        }
    }
}

/// A failed send through our own client.
#[derive(Debug)]
pub(crate) struct H1SendError {
    /// What went wrong.
    pub(crate) error: ProxyError,
    /// The failure happened on a reused keep-alive connection (see [`SendError::reused`]).
    pub(crate) reused: bool,
}

/// Sends the encoded bodiless request `head` to `backend` through our own client and waits
/// for the response head: over an idle pooled connection or a new one.
///
/// A pooled connection that fails before any byte of a response (the worker closed it just
/// as the request went out) is dropped and the request goes on the next one, up to
/// [`MAX_STALE_TRIES`], then on a new connection, as hyper's path does with the connections
/// it finds closed: the request is a bodiless `GET` or `HEAD`, safe to send again, and the
/// retry to another worker stays for real failures.
///
/// # Errors
///
/// [`ProxyError::Connect`] when no connection could be opened (nothing was sent),
/// [`ProxyError::Upstream`] when the connection failed before a complete response head,
/// [`ProxyError::BadResponse`] for an invalid head.
pub(crate) async fn send_h1(
    backend: &Backend,
    head: &[u8],
    head_request: bool,
    max_idle: Duration,
) -> Result<Response<H1Body>, H1SendError> {
    let worker = backend.id();
    let mut last = None;
    for _ in 0..MAX_STALE_TRIES {
        let Some(conn) = backend.pool.take_h1(max_idle) else { break };
        match conn.request(head, head_request).await {
            Ok(response) => return Ok(response),
            Err(e) if e.is_no_response() => last = Some(e),
            Err(e) => {
                let error = ProxyError::from_h1(worker, e);
                return Err(H1SendError { error, reused: true });
            }
        }
    }
    let conn = match connect_h1(&backend.pool).await {
        Ok(conn) => conn,
        Err(source) => {
            let error = match last {
                // Stale connections, then no new one: report the worker's last answer.
                Some(e) => ProxyError::from_h1(worker, e),
                None => ProxyError::Connect { worker, addr: backend.pool.addr.clone(), source },
            };
            return Err(H1SendError { error, reused: false });
        }
    };
    conn.request(head, head_request)
        .await
        .map_err(|e| H1SendError { error: ProxyError::from_h1(worker, e), reused: false })
}

/// Opens a connection to the pool's worker, within [`CONNECT_TIMEOUT`], unless the worker
/// is cut off.
async fn open(pool: &UpstreamPool) -> io::Result<Stream> {
    if pool.cut.load(Ordering::SeqCst) {
        return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "worker cut off"));
    }
    tokio::time::timeout(CONNECT_TIMEOUT, pool.addr.connect())
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Opens a new connection of our own client (tracked, so that a cut ends it).
async fn connect_h1(pool: &UpstreamPool) -> io::Result<H1Conn> {
    let conn = H1Conn::new(open(pool).await?);
    pool.track(Tracked::Socket(conn.handle()));
    Ok(conn)
}

/// Opens a new HTTP/1.1 connection to the pool's worker and spawns the task that drives it
/// (tracked, so that a cut ends it).
async fn connect(pool: &UpstreamPool) -> io::Result<SendRequest<ReqBody>> {
    let (sender, task) = match open(pool).await? {
        Stream::Tcp(tcp) => handshake(TokioIo::new(tcp), &pool.addr).await?,
        Stream::Unix(unix) => handshake(TokioIo::new(unix), &pool.addr).await?,
    };
    pool.track(Tracked::Task(task));
    Ok(sender)
}

/// The HTTP/1.1 handshake over `io`, and the spawned task that drives the connection.
async fn handshake<I>(io: I, addr: &Endpoint) -> io::Result<(SendRequest<ReqBody>, AbortHandle)>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new().handshake(io).await.map_err(io::Error::other)?;
    let addr = addr.clone();
    let task = tokio::spawn(async move {
        if let Err(error) = conn.with_upgrades().await {
            tracing::debug!(target: "cluster::proxy", %addr, %error, "worker connection ended");
        }
    });
    Ok((sender, task.abort_handle()))
}
