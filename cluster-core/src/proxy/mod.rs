//! The HTTP data plane: the front listener and the reverse proxy to the workers.
//!
//! One [`Proxy`] serves a listener ([`Proxy::serve`]): each accepted connection speaks
//! HTTP/1.1 (with upgrades) or h2c, and each request goes to a worker the [`Router`] picks,
//! over a pooled keep-alive HTTP/1.1 connection, with both bodies streamed. Failures become
//! 502/503/504 responses, retried once on another worker when that is safe.
//!
//! Files, one concept each: `server` (accept loop, graceful stop), `conn` (one client
//! connection, idle timeout), `handler` (one request, retry), `headers` (hop-by-hop,
//! `Host`, `X-Forwarded-*`), `pool` (connections to a worker), `h1` (our own HTTP/1.1
//! client for bodiless `GET` and `HEAD`), `body` (streaming bodies
//! that carry the in-flight guard), `upgrade` (tunnels), `error` (`ProxyError`),
//! `client_addr` (the client behind trusted proxies), `host` (the `Host` grammar), `limits`
//! (body, head and connection limits, the 408 for slow heads), `compress` (the compression
//! stage).

mod affinity;
mod body;
mod client_addr;
mod compress;
mod conn;
mod error;
mod front;
mod h1;
mod handler;
mod headers;
mod host;
mod lean;
mod limits;
mod pool;
mod server;
mod spans;
mod threads;
mod upgrade;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::access_log::AccessLog;
use crate::config::{ClusterSpec, RequestLimits};
use crate::ratelimit::RateLimit;
use crate::routing::Router;

#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
pub use compress::Compression;
pub use compress::{AcceptEncoding, ContentCoding};
pub use front::{BoxError, EndsOnDrain, FrontBody, FrontDoor, FrontFuture, FrontPeer};
pub(crate) use pool::UpstreamPool;

/// Settings of the proxy, taken from the [`ClusterSpec`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{Compression, ProxyConfig};
///
/// let mut spec = ClusterSpec::default();
/// spec.performance.enable_compression = true;
/// let mut config = ProxyConfig::from_spec(&spec); // or ProxyConfig::default()
/// config.request_timeout = Duration::from_secs(5);
/// config.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
/// assert_eq!(config.compression, Compression::from_spec(&spec.performance));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
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
    /// Where one line per request is written, once its response has been sent; `None` (the
    /// default): no access log, and nothing of it on the request path. [`ProxyConfig::from_spec`]
    /// leaves it `None`: a [`Cluster`](crate::Cluster) starts the log of its spec
    /// (`security.enableRequestLogging`, `accessLog`) and sets it.
    pub access_log: Option<AccessLog>,
    /// Sticky sessions: key each request by its affinity cookie (set when missing) so that
    /// a sticky strategy keeps the client on one worker.
    pub affinity_cookie: bool,
    /// Answers the requests it claims before they are routed (the admin API on the front
    /// port); `None` routes every request.
    pub front_door: Option<std::sync::Arc<dyn FrontDoor>>,
    /// Body, head and connection limits (413, 431, paused accepting).
    pub limits: RequestLimits,
    /// The rate limit stage, after the front door and before a worker is picked; `None`
    /// (`security.enableRateLimit` off) leaves it out of the request path.
    pub rate_limit: Option<Arc<RateLimit>>,
    /// The compression stage: `None` (off, the default) keeps it out of the request path.
    pub compression: Option<Compression>,
    /// Set by the supervisor before a shutdown that hands over to a new primary.
    pub(crate) handover: crate::upgrade::HandoverDrain,
}

#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
impl ProxyConfig {
    /// The proxy settings of a cluster; the front door and the rate limit are set by the
    /// caller (they need the cluster's handle and its events).
    pub fn from_spec(spec: &ClusterSpec) -> Self {
        Self {
            request_timeout: spec.performance.request_timeout,
            header_read_timeout: spec.performance.header_read_timeout,
            keep_alive_timeout: spec.performance.keep_alive_timeout,
            upstream_idle_timeout: spec.performance.upstream_idle_timeout,
            trusted_proxies: spec.security.trusted_proxies.clone(),
            access_log: None,
            affinity_cookie: spec.sticky_sessions,
            front_door: None,
            limits: spec.performance.limits.clone(),
            rate_limit: None,
            compression: Compression::from_spec(&spec.performance),
            handover: crate::upgrade::HandoverDrain::default(),
        }
    }
}

impl Default for ProxyConfig {
    /// Settings for embedding and tests: 30 s to response headers, 10 s to read request
    /// headers, 5 s keep-alive, 4 s upstream idle (below Node's 5 s), nobody trusted, no
    /// access log, the default [`RequestLimits`], no rate limit, no compression.
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            upstream_idle_timeout: Duration::from_secs(4),
            trusted_proxies: Vec::new(),
            access_log: None,
            affinity_cookie: false,
            front_door: None,
            limits: RequestLimits::default(),
            rate_limit: None,
            compression: None,
            handover: crate::upgrade::HandoverDrain::default(),
        }
    }
}

/// The reverse proxy.
///
/// Cheap to clone (one `Arc`); clones share the router, settings and counters.
///
/// # Examples
///
/// Serve on up to two threads, stop after a minute, and report what was still in flight:
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cluster_balancer::RoundRobin;
/// use cluster_core::{Proxy, ProxyConfig, Router};
/// use tokio_util::sync::CancellationToken;
///
/// # async fn example() -> std::io::Result<()> {
/// let router = Arc::new(Router::new(Arc::new(RoundRobin::new())));
/// let proxy = Proxy::new(router, ProxyConfig::default());
/// let stop = CancellationToken::new();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let serving = tokio::spawn({
///     let (proxy, stop) = (proxy.clone(), stop.clone());
///     let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
///     async move {
///         match threads {
///             1 => proxy.serve(listener, stop).await, // on the caller's runtime
///             n => proxy.serve_threads(listener, n, stop).await,
///         }
///     }
/// });
/// tokio::time::sleep(Duration::from_secs(60)).await;
/// println!("{} requests, {} tunnels open", proxy.in_flight(), proxy.open_tunnels());
/// stop.cancel();
/// serving.await.ok();
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
pub struct Proxy {
    shared: Arc<Shared>,
}

/// What every connection of a proxy shares.
#[derive(Debug)]
pub(crate) struct Shared {
    router: Arc<Router>,
    cfg: ProxyConfig,
    /// Upgraded tunnels open right now.
    tunnels: AtomicUsize,
    /// `maxConnections`, shared by every proxy thread.
    connections: limits::ConnectionLimit,
}

#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
impl Proxy {
    /// A proxy routing through `router`.
    pub fn new(router: Arc<Router>, cfg: ProxyConfig) -> Self {
        let connections = limits::ConnectionLimit::new(cfg.limits.max_connections);
        let shared = Shared { router, cfg, tunnels: AtomicUsize::new(0), connections };
        Self { shared: Arc::new(shared) }
    }

    /// Serves `listener` until `stop` is cancelled, then drains.
    ///
    /// Each connection is served on its own task (`tokio::spawn`; any runtime flavour).
    /// When `stop` fires, the listener is closed first, then every connection finishes the
    /// requests it is serving and closes (an idle keep-alive connection closes at once, a
    /// busy one after its response; HTTP/2 clients get a GOAWAY), and upgraded tunnels run
    /// until either side closes them. The future completes when all of that is over.
    ///
    /// A client connection with no traffic for `keep_alive_timeout` is closed (after its
    /// current response, if any); HTTP/1.1 clients also get `header_read_timeout` to send
    /// each request head, including the wait for the next request on a kept-alive
    /// connection (hyper starts that timer as soon as the connection is idle). A client
    /// part-way through a head when it expires gets `408 Request Timeout`; an idle one is
    /// just closed.
    ///
    /// With `limits.max_connections`, accepting pauses while that many connections are
    /// open (see [`RequestLimits`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future (for example when a drain timeout elapses) closes every remaining
    /// connection and tunnel at once; in-flight requests are then cut off.
    pub async fn serve(&self, listener: TcpListener, stop: CancellationToken) {
        server::serve(Arc::clone(&self.shared), listener, stop, None).await;
    }

    /// Serves `listener` like [`serve`](Proxy::serve), on `threads` single-threaded runtimes:
    /// the caller's and `threads - 1` OS threads of their own, all accepting from the same
    /// socket. A thread that serves more connections than the others hands a new one to
    /// the least busy thread; each thread serves its connections to their end and keeps its
    /// own idle connections to the workers, so no request crosses threads. Returns when every
    /// thread has drained; dropping the future ends every thread's connections at once.
    pub async fn serve_threads(
        &self,
        listener: TcpListener,
        threads: usize,
        stop: CancellationToken,
    ) {
        threads::serve_threads(self, listener, threads.max(1), stop).await;
    }

    /// Requests (with streaming bodies) and tunnels in flight on the workers currently in
    /// the routing table; a worker already removed from the table is not counted.
    pub fn in_flight(&self) -> usize {
        self.shared.router.snapshot().backends().iter().map(|b| b.load().in_flight()).sum()
    }

    /// Upgraded connections (WebSocket and others) open right now.
    pub fn open_tunnels(&self) -> usize {
        self.shared.tunnels.load(Ordering::Relaxed)
    }
}
