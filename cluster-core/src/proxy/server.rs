//! The front listener: accept loop, per-connection tasks, graceful stop.

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::conn::{self, ConnCtx, Http, ServeState};
use super::headers::ClientInfo;
use super::{ProxyConfig, Shared};

/// Pause after an accept error that means we are out of a resource (file descriptors,
/// memory), so the loop neither spins nor gives up; connections wait in the backlog.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `listener` until `stop`; see [`Proxy::serve`](super::Proxy::serve).
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, stop: CancellationToken) {
    let state = Arc::new(ServeState::default());
    // Dropping this future (the caller's drain timeout) ends every connection and tunnel.
    let _kill_on_drop = KillOnDrop(Arc::clone(&state));
    let http = Arc::new(builder(&shared.cfg));

    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            res = listener.accept() => match res {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !accept_error(&error) {
                        continue;
                    }
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        // Small writes (response heads, SSE events) go out at once.
        let _ = tcp.set_nodelay(true);
        let ctx = Arc::new(ConnCtx {
            client: ClientInfo::new(peer.ip(), &shared.cfg.trusted_proxies),
            shared: Arc::clone(&shared),
            serve: Arc::clone(&state),
            open_streams: AtomicUsize::new(0),
        });
        state.tasks.spawn(conn::serve(Arc::clone(&http), tcp, ctx));
    }

    drop(listener);
    state.drain();
    state.tasks.close();
    state.tasks.wait().await;
}

/// Kills the connections of a `serve` call whose future is dropped.
struct KillOnDrop(Arc<ServeState>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

/// The server builder: HTTP/1.1 with upgrades and h2c (prior knowledge) on one port.
fn builder(cfg: &ProxyConfig) -> Http {
    let mut http = Http::new(TokioExecutor::new());
    http.http1()
        // Without a timer hyper silently ignores the header read timeout.
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .keep_alive(!cfg.keep_alive_timeout.is_zero())
        .max_buf_size(64 * 1024);
    http.http2().timer(TokioTimer::new()).max_concurrent_streams(256);
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
