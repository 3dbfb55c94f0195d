//! Upgraded connections (WebSocket and any other `Upgrade`): once the worker answers 101,
//! the client's and the worker's sockets are joined byte for byte.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cluster_balancer::InFlight;
use http::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::Shared;
use super::body::{ProxyBody, UpstreamBody};
use super::conn::ConnCtx;

/// Returns the worker's 101 for the client and spawns the tunnel that joins both sockets
/// once hyper has handed them over.
///
/// The tunnel holds the request's [`InFlight`] guard for its whole life, so least-connections
/// counts an open WebSocket as load. It is tracked so `serve` waits for it when stopping,
/// and ends at once when `serve` is dropped.
pub(crate) fn tunnel(
    conn: &ConnCtx,
    downstream: OnUpgrade,
    mut response: Response<UpstreamBody>,
    guard: InFlight,
) -> Response<ProxyBody> {
    let upstream = hyper::upgrade::on(&mut response);
    let open = OpenTunnel::new(Arc::clone(&conn.shared));
    let kill = conn.serve.kill_token();
    conn.serve.tasks.spawn(async move {
        let _open = open;
        let _guard = guard;
        let (down, up) = match tokio::try_join!(downstream, upstream) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(target: "cluster::proxy", %error, "upgrade failed");
                return;
            }
        };
        let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
        tokio::select! {
            res = tokio::io::copy_bidirectional(&mut down, &mut up) => {
                if let Err(error) = res {
                    tracing::debug!(target: "cluster::proxy", %error, "tunnel ended");
                }
            }
            () = kill.cancelled() => {}
        }
    });
    response.map(|_| ProxyBody::empty())
}

/// Counts one open tunnel in [`Shared::tunnels`] while it lives.
struct OpenTunnel(Arc<Shared>);

impl OpenTunnel {
    fn new(shared: Arc<Shared>) -> Self {
        shared.tunnels.fetch_add(1, Ordering::Relaxed);
        OpenTunnel(shared)
    }
}

impl Drop for OpenTunnel {
    fn drop(&mut self) {
        self.0.tunnels.fetch_sub(1, Ordering::Relaxed);
    }
}
