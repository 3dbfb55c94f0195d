//! The HTTP data plane: the front listener and the reverse proxy to the workers.
//!
//! CONTRACT FOR THE PROXY HELPER (remove when implemented): see the task text.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::ClusterSpec;
use crate::routing::Router;

/// Settings of the proxy, taken from the [`ClusterSpec`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Time a worker has to send response headers; then the client gets 504.
    pub request_timeout: Duration,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Idle time after which a client keep-alive connection is closed.
    pub keep_alive_timeout: Duration,
    /// Idle time after which a pooled connection to a worker is not reused.
    pub upstream_idle_timeout: Duration,
    /// Peers whose `X-Forwarded-*` headers are extended instead of replaced.
    pub trusted_proxies: Vec<IpNet>,
    /// Log one line per request.
    pub request_logging: bool,
}

impl ProxyConfig {
    /// The proxy settings of a cluster.
    pub fn from_spec(spec: &ClusterSpec) -> Self {
        Self {
            request_timeout: spec.performance.request_timeout,
            header_read_timeout: spec.performance.header_read_timeout,
            keep_alive_timeout: spec.performance.keep_alive_timeout,
            upstream_idle_timeout: spec.performance.upstream_idle_timeout,
            trusted_proxies: spec.security.trusted_proxies.clone(),
            request_logging: spec.security.enable_request_logging,
        }
    }
}

/// The reverse proxy.
#[derive(Debug, Clone)]
pub struct Proxy {
    router: Arc<Router>,
    cfg: Arc<ProxyConfig>,
}

impl Proxy {
    /// A proxy routing through `router`.
    pub fn new(router: Arc<Router>, cfg: ProxyConfig) -> Self {
        Self { router, cfg: Arc::new(cfg) }
    }

    /// Serves `listener` until `stop` is cancelled; then stops accepting, lets each open
    /// connection finish its in-flight requests and close, and returns once all are closed.
    /// Callers bound the drain with a timeout.
    pub async fn serve(&self, listener: TcpListener, stop: CancellationToken) {
        let _ = (listener, stop, &self.router, &self.cfg);
        todo!("proxy helper")
    }
}

/// Idle keep-alive connections to one worker.
#[derive(Debug)]
pub(crate) struct UpstreamPool {
    addr: SocketAddr,
}

impl UpstreamPool {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }
}
