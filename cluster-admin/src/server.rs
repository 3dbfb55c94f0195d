//! Serving the admin API on its own listeners: the control socket (a Unix socket) and the
//! optional admin listener (TCP), each connection on a task of its own, until the returned
//! future is dropped.
//!
//! Both are bounded: at most [`MAX_CONNECTIONS`] connections at once (more wait in the
//! kernel's backlog), [`HEADER_TIMEOUT`] to send a request head, which is also the longest a
//! kept-alive connection may sit between requests, and a request body must arrive within the
//! same time, so that whoever can reach them cannot hold the primary's file descriptors. The
//! control socket answers only its owner's user (and root): its mode says so, and the
//! peer's credentials are checked too, in case the socket was reachable a moment before its
//! mode was set.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use crate::access::Entry;
use crate::api::AdminApi;

/// Connections served at once on each admin listener.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// Time to send a request head (and, in `api.rs`, its body).
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the control socket at `path`, readable and writable by its owner only (mode 0600):
/// whoever can open it operates the cluster. An old socket file there is replaced (the caller
/// has made sure no live cluster uses it).
///
/// # Errors
///
/// The OS error when the socket cannot be created or its mode set.
pub fn bind_socket(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // Created 0600 under a restrictive umask (set for as long as the bind takes, before any
    // other thread of the primary creates files), then chmod-ed to be sure.
    let previous = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(previous);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

impl AdminApi {
    /// Serves the control socket until the future is dropped.
    pub async fn serve_socket(&self, listener: UnixListener) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let me = rustix::process::getuid();
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
            match listener.accept().await {
                Ok((stream, _)) => {
                    let uid = stream.peer_cred().map(|c| c.uid()).ok();
                    if !uid.is_some_and(|uid| uid == me.as_raw() || uid == 0) {
                        tracing::warn!(target: "cluster::admin", "control socket: refused a connection from uid {uid:?}");
                        continue;
                    }
                    self.spawn_connection(stream, Entry::Socket, slot);
                }
                Err(e) => accept_failed(&e).await,
            }
        }
    }

    /// Serves the admin listener (`admin.listen`) until the future is dropped.
    pub async fn serve_listener(&self, listener: TcpListener) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    self.spawn_connection(stream, Entry::Listener, slot);
                }
                Err(e) => accept_failed(&e).await,
            }
        }
    }

    fn spawn_connection<S>(&self, stream: S, entry: Entry, slot: tokio::sync::OwnedSemaphorePermit)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let api = self.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(api.serve(req, entry).await) }
            });
            // HTTP/1.1 only (curl, browsers, Prometheus, the CLI): its header read timeout also
            // bounds the wait for the next request on a kept-alive connection.
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
            drop(slot);
        });
    }
}

/// An accept error (out of file descriptors, mostly): log it and pause, rather than spin.
async fn accept_failed(e: &io::Error) {
    tracing::warn!(target: "cluster::admin", "admin accept failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}
