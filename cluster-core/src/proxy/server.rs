//! The front listener: accept loop, per-connection tasks, graceful stop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::conn::{self, ConnCtx, Http, ServeState};
use super::headers::ClientInfo;
use super::threads::{Accepted, OpenGuard, Place};
use super::{ProxyConfig, Shared};

/// Pause after an accept error that means we are out of a resource (file descriptors,
/// memory), so the loop neither spins nor gives up; connections wait in the backlog.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `listener` until `stop`; see [`Proxy::serve`](super::Proxy::serve). With a
/// `place` among several proxy threads, connections are spread over them (see
/// [`threads`](super::threads)): this thread also serves those handed to it.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    stop: CancellationToken,
    mut place: Option<Place>,
) {
    let state = Arc::new(ServeState::default());
    // Dropping this future (the caller's drain timeout) ends every connection and tunnel.
    let _kill_on_drop = KillOnDrop(Arc::clone(&state));
    let http = Arc::new(builder(&shared.cfg));
    let serve_one =
        |tcp: TcpStream, peer: SocketAddr, permit: Option<OwnedSemaphorePermit>, open| {
            // Small writes (response heads, SSE events) go out at once.
            let _ = tcp.set_nodelay(true);
            let client = ClientInfo::new(peer.ip(), &shared.cfg.trusted_proxies);
            let ctx = Arc::new(ConnCtx::new(Arc::clone(&shared), client, Arc::clone(&state)));
            let serve = conn::serve(Arc::clone(&http), tcp, ctx);
            state.tasks.spawn(async move {
                serve.await;
                drop(permit);
                drop(open);
            });
        };
    // A connection another thread accepted (or this one could not hand over), counted as
    // open here by `open`: onto this thread's reactor, then served.
    let serve_handed = |Accepted { tcp, peer, permit }: Accepted, open: OpenGuard| {
        match TcpStream::from_std(tcp) {
            Ok(tcp) => serve_one(tcp, peer, permit, Some(open)),
            Err(error) => tracing::debug!(target: "cluster::proxy", %error, "handed connection"),
        }
    };

    loop {
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            Some(handed) = recv(&mut place) => Next::Handed(handed),
            // At `maxConnections`, wait here: the listener is not polled, and new
            // connections wait in the kernel's backlog until one of ours closes.
            (permit, accepted) = accept(&shared, &listener) => Next::Accepted(permit, accepted),
        };
        let (tcp, peer, permit) = match next {
            Next::Handed(handed) => {
                // Counted as open here by the thread that accepted it.
                if let Some(place) = &place {
                    serve_handed(handed, OpenGuard::new(&place.spread, place.index));
                }
                continue;
            }
            Next::Accepted(permit, Ok(accepted)) => (accepted.0, accepted.1, permit),
            Next::Accepted(_, Err(error)) => {
                if !accept_error(&error) {
                    continue;
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Some(place) = &place else {
            serve_one(tcp, peer, permit, None);
            continue;
        };
        let to = place.spread.assign(place.index);
        if to == place.index {
            serve_one(tcp, peer, permit, Some(OpenGuard::new(&place.spread, to)));
            continue;
        }
        // Off this thread's reactor, onto the other's.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(error) => {
                place.spread.closed(to);
                tracing::debug!(target: "cluster::proxy", %error, "cannot hand a connection over");
                continue;
            }
        };
        if let Err(back) = place.spread.hand(to, Accepted { tcp, peer, permit }) {
            // That thread has stopped: serve it here.
            place.spread.opened(place.index);
            serve_handed(back, OpenGuard::new(&place.spread, place.index));
        }
    }

    drop(listener);
    if let Some(place) = &mut place {
        // Connections other threads handed over and this one had not started yet: served
        // like every other connection of this thread (the drain below ends them in
        // turn). Threads that hand one over from now on serve it themselves.
        place.inbox.close();
        while let Ok(handed) = place.inbox.try_recv() {
            serve_handed(handed, OpenGuard::new(&place.spread, place.index));
        }
    }
    state.tasks.close();
    if let Some(window) = shared.cfg.handover.window() {
        // A new primary accepts now: let the keep-alive clients go by themselves, each after
        // its next response (`Connection: close`), so that none sends a request on a
        // connection we close; then close the idle rest.
        state.let_clients_go();
        let _ = tokio::time::timeout(window, state.tasks.wait()).await;
    }
    state.drain();
    state.tasks.wait().await;
}

/// What the accept loop got next.
enum Next {
    /// A connection another proxy thread accepted for this one.
    Handed(Accepted),
    /// A connection this thread accepted (or the error), with its `maxConnections` permit.
    Accepted(Option<OwnedSemaphorePermit>, io::Result<(TcpStream, SocketAddr)>),
}

/// The next connection handed to this thread; never ready without a place.
async fn recv(place: &mut Option<Place>) -> Option<Accepted> {
    match place {
        Some(place) => place.inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// A `maxConnections` permit, then a connection from `listener`. Cancel safe: a permit
/// taken before the future is dropped is given back.
async fn accept(
    shared: &Shared,
    listener: &TcpListener,
) -> (Option<OwnedSemaphorePermit>, io::Result<(TcpStream, SocketAddr)>) {
    let permit = shared.connections.acquire().await;
    (permit, listener.accept().await)
}

/// Kills the connections of a `serve` call whose future is dropped.
struct KillOnDrop(Arc<ServeState>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

/// hyper's default number of header fields, parsed into a stack buffer; any other count
/// makes hyper allocate one per request.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// The server builder: HTTP/1.1 with upgrades and h2c (prior knowledge) on one port.
///
/// The head limits are hyper's: an HTTP/1.1 head larger than `maxHeaderSize` (the read
/// buffer cannot grow past it while the head is incomplete) or with more than `maxHeaders`
/// fields gets hyper's own `431` and the connection closes; an HTTP/2 header list larger
/// than `maxHeaderSize` is refused by the h2 layer.
fn builder(cfg: &ProxyConfig) -> Http {
    let mut http = Http::new(TokioExecutor::new());
    let limits = &cfg.limits;
    let mut http1 = http.http1();
    // No timer for HTTP/1: the header read timeout is the connection task's (conn.rs,
    // `HeadClock`), which costs nothing per request.
    http1
        .keep_alive(!cfg.keep_alive_timeout.is_zero())
        // Validation keeps it at or above hyper's 8 KiB floor (below it hyper panics).
        .max_buf_size(limits.max_header_size.max(8 * 1024));
    if limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        http1.max_headers(limits.max_headers);
    }
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX));
    http
}

/// Logs an accept error; returns whether to back off before accepting again.
fn accept_error(error: &io::Error) -> bool {
    match error.kind() {
        // The peer gave up between SYN and accept: nothing wrong on our side.
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset => {
            tracing::debug!(target: "cluster::proxy", %error, "accept");
            false
        }
        // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unexpected.
        _ => {
            tracing::warn!(target: "cluster::proxy", %error, "accept failed; backing off");
            true
        }
    }
}
