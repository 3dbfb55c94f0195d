//! Serving the admin API on its own listeners: the control socket (a Unix socket) and the
//! optional admin listener (TCP), HTTP/1.1, each connection on a task of its own, until the
//! returned future is dropped.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

use crate::access::Entry;
use crate::api::AdminApi;

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
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

impl AdminApi {
    /// Serves the control socket until the future is dropped.
    pub async fn serve_socket(&self, listener: UnixListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => self.spawn_connection(stream, Entry::Socket),
                Err(e) => accept_failed(&e).await,
            }
        }
    }

    /// Serves the admin listener (`admin.listen`) until the future is dropped.
    pub async fn serve_listener(&self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    self.spawn_connection(stream, Entry::Listener);
                }
                Err(e) => accept_failed(&e).await,
            }
        }
    }

    fn spawn_connection<S>(&self, stream: S, entry: Entry)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let api = self.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(api.serve(req, entry).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// An accept error (out of file descriptors, mostly): log it and pause, rather than spin.
async fn accept_failed(e: &io::Error) {
    tracing::warn!(target: "cluster::admin", "admin accept failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}
