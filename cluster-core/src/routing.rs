//! The routing table: which workers receive requests right now.
//!
//! The table is an immutable snapshot swapped atomically ([`ArcSwap`]) when a worker becomes
//! ready or leaves, so a request reads it without taking a lock. Per-backend load counters are
//! atomics inside [`BackendLoad`].

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use cluster_balancer::{BackendLoad, Balancer, RequestCtx};

use crate::endpoint::Endpoint;
use crate::metrics::WorkerMetrics;
use crate::proxy::UpstreamPool;

/// Declares a method `pub` with the `test-util` feature and `pub(crate)` without it: the
/// routing table's writers, which only the supervisor and the standalone proxy's tests call.
macro_rules! test_util_pub {
    ($(#[$attr:meta])* fn $($rest:tt)*) => {
        #[cfg(feature = "test-util")]
        $(#[$attr])*
        pub fn $($rest)*
        #[cfg(not(feature = "test-util"))]
        $(#[$attr])*
        pub(crate) fn $($rest)*
    };
}

/// One ready worker as the proxy sees it: where to reach it and how loaded it is.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # fn example(handle: ClusterHandle) {
/// for backend in handle.routes().backends() {
///     println!(
///         "worker {} (slot {}, pid {:?}) on {}: {} requests, {} in flight",
///         backend.id(),
///         backend.slot(),
///         backend.pid(),
///         backend.addr(),
///         backend.metrics().snapshot().requests,
///         backend.load().in_flight(),
///     );
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Backend {
    id: u64,
    slot: usize,
    pid: Option<u32>,
    addr: Endpoint,
    load: Arc<BackendLoad>,
    metrics: WorkerMetrics,
    pub(crate) pool: UpstreamPool,
}

impl Backend {
    test_util_pub! {
        /// Describes worker `id` (unique over the cluster's life) in `slot`, listening on `addr`
        /// (a TCP address or an [`Endpoint`]).
        ///
        /// # Examples
        ///
        /// ```
        /// use std::net::SocketAddr;
        /// use cluster_core::Backend;
        ///
        /// let backend = Backend::new(1, 0, "127.0.0.1:4001".parse::<SocketAddr>().unwrap()).with_pid(4242);
        /// assert_eq!((backend.id(), backend.slot(), backend.pid()), (1, 0, Some(4242)));
        /// ```
        fn new(id: u64, slot: usize, addr: impl Into<Endpoint>) -> Self {
            let addr = addr.into();
            Self {
                id,
                slot,
                pid: None,
                pool: UpstreamPool::new(addr.clone()),
                addr,
                // Sticky clients follow the slot, so they stay with a worker's replacement.
                load: Arc::new(BackendLoad::with_affinity(id, slot as u64)),
                metrics: WorkerMetrics::default(),
            }
        }
    }

    test_util_pub! {
        /// The same backend, recording the worker's process id (for the access log's lines).
        ///
        /// # Examples
        ///
        /// ```
        /// use cluster_core::{Backend, Endpoint};
        ///
        /// let backend = Backend::new(7, 2, Endpoint::Unix("/run/app/w2.sock".into())).with_pid(31337);
        /// assert_eq!(backend.pid(), Some(31337));
        /// ```
        #[must_use]
        fn with_pid(mut self, pid: u32) -> Self {
            self.pid = Some(pid);
            self
        }
    }

    test_util_pub! {
        /// Gives up on the worker: it stopped answering (a frozen process, a deadlocked event
        /// loop). Its connections are closed, so the requests waiting on it fail at once: those
        /// that may be repeated safely (idempotent, without a body) go to another worker, the
        /// others get 502 instead of waiting for the request timeout (HAProxy's
        /// `on-marked-down shutdown-sessions`). No new connection opens until
        /// [`resume`](Self::resume). Call it on a worker already out of rotation. Costs nothing
        /// per request: each connection task watches one token.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::net::SocketAddr;
        /// use cluster_core::Backend;
        ///
        /// let backend = Backend::new(1, 0, "127.0.0.1:4001".parse::<SocketAddr>().unwrap());
        /// backend.abandon(); // frozen: cut its connections, fail or retry what waits on it
        /// backend.resume(); // it answers again
        /// ```
        fn abandon(&self) {
            self.pool.cut();
        }
    }

    test_util_pub! {
        /// The worker answers again: connections to it may open again.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::net::SocketAddr;
        /// use cluster_core::Backend;
        ///
        /// let backend = Backend::new(1, 0, "127.0.0.1:4001".parse::<SocketAddr>().unwrap());
        /// backend.abandon();
        /// backend.resume();
        /// ```
        fn resume(&self) {
            self.pool.restore();
        }
    }

    /// The worker's unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The worker's slot (`NODE_APP_INSTANCE`), stable across its replacements.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The worker's process id, when it was given (`with_pid`, the `test-util` feature); a
    /// cluster's own backends always have it.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The worker's private endpoint.
    pub fn addr(&self) -> &Endpoint {
        &self.addr
    }

    /// What the proxy has measured of this worker.
    pub fn metrics(&self) -> &WorkerMetrics {
        &self.metrics
    }

    /// The worker's load signals.
    pub fn load(&self) -> &Arc<BackendLoad> {
        &self.load
    }
}

/// An immutable set of ready backends, with their load records in a parallel slice for the
/// balancer, and the strategy that picks from them: swapping the table swaps both at once, so
/// a strategy changed by a configuration reload never sees another strategy's table.
///
/// # Examples
///
/// ```
/// use cluster_balancer::RequestCtx;
/// use cluster_core::ClusterHandle;
///
/// # fn example(handle: ClusterHandle) {
/// let table = handle.routes(); // a snapshot: it does not change under you
/// println!("{} ready workers, picked by {}", table.backends().len(), table.strategy());
/// if let Some(backend) = table.pick(&RequestCtx::default()) {
///     println!("the next request would go to worker {}", backend.id());
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct RoutingTable {
    backends: Vec<Arc<Backend>>,
    loads: Vec<Arc<BackendLoad>>,
    balancer: Arc<dyn Balancer>,
}

impl RoutingTable {
    /// The ready backends, ordered by slot.
    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// Picks a backend for a request, as the proxy does; `None` when the table is empty (or
    /// its only backend is `ctx.avoid`). Lock-free.
    pub fn pick(&self, ctx: &RequestCtx) -> Option<&Arc<Backend>> {
        let i = self.balancer.pick(&self.loads, ctx)?;
        self.backends.get(i)
    }

    /// The name of the strategy picking from this table.
    pub fn strategy(&self) -> &'static str {
        self.balancer.name()
    }

    fn with(mut backends: Vec<Arc<Backend>>, balancer: Arc<dyn Balancer>) -> Self {
        backends.sort_by_key(|b| (b.slot, b.id));
        let loads = backends.iter().map(|b| Arc::clone(&b.load)).collect();
        Self { backends, loads, balancer }
    }
}

/// The routing table, swapped atomically, and the strategy that picks from it.
///
/// A standalone [`Proxy`](crate::Proxy) is given backends with [`add`](Self::add) and
/// [`remove`](Self::remove). In a [`Cluster`](crate::Cluster) the supervisor alone writes the
/// table, deriving it from its worker records; nothing outside `cluster-core` can reach that
/// router, only read it through [`ClusterHandle::routes`](crate::ClusterHandle::routes).
///
/// # Examples
///
/// A standalone proxy over two servers (the `test-util` feature):
///
/// ```no_run
/// use std::sync::Arc;
/// use cluster_balancer::{RequestCtx, Strategy};
/// use cluster_core::{Backend, Proxy, ProxyConfig, Router};
/// use tokio_util::sync::CancellationToken;
///
/// # async fn example() -> std::io::Result<()> {
/// let router = Arc::new(Router::new(Strategy::LeastConnections.build()));
/// router.add(Arc::new(Backend::new(1, 0, "127.0.0.1:4001".parse::<std::net::SocketAddr>().unwrap())));
/// router.add(Arc::new(Backend::new(2, 1, "127.0.0.1:4002".parse::<std::net::SocketAddr>().unwrap())));
/// assert_eq!(router.strategy(), "least-connections");
/// assert_eq!(router.snapshot().backends().len(), 2);
/// assert!(router.pick(&RequestCtx::default()).is_some());
/// router.remove(2); // out of rotation; requests already on it finish
///
/// let proxy = Proxy::new(Arc::clone(&router), ProxyConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let stop = CancellationToken::new();
/// proxy.serve(listener, stop).await; // until `stop` is cancelled, then drains
/// # Ok(())
/// # }
/// ```
#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
pub struct Router {
    table: ArcSwap<RoutingTable>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.table.load();
        f.debug_struct("Router")
            .field("balancer", &table.balancer.name())
            .field("ready", &table.backends.len())
            .finish()
    }
}

#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
impl Router {
    /// An empty router using `balancer`.
    pub fn new(balancer: Arc<dyn Balancer>) -> Self {
        Self { table: ArcSwap::from_pointee(RoutingTable::with(Vec::new(), balancer)) }
    }

    /// Picks a ready backend for a request; `None` when none is ready (or the only one is
    /// `ctx.avoid`). Lock-free.
    pub fn pick(&self, ctx: &RequestCtx) -> Option<Arc<Backend>> {
        self.table.load().pick(ctx).cloned()
    }

    /// Puts a backend into rotation.
    pub fn add(&self, backend: Arc<Backend>) {
        self.table.rcu(|t| {
            let mut v = t.backends.clone();
            v.retain(|b| b.id != backend.id);
            v.push(Arc::clone(&backend));
            RoutingTable::with(v, Arc::clone(&t.balancer))
        });
    }

    /// Takes backend `id` out of rotation; returns it if it was there. Requests already
    /// picked keep their `Arc` and finish normally.
    pub fn remove(&self, id: u64) -> Option<Arc<Backend>> {
        let mut removed = None;
        self.table.rcu(|t| {
            removed = t.backends.iter().find(|b| b.id == id).cloned();
            let kept = t.backends.iter().filter(|b| b.id != id).cloned().collect();
            RoutingTable::with(kept, Arc::clone(&t.balancer))
        });
        removed
    }

    /// Makes `backends` the whole rotation, if it differs from the current one (compared by
    /// worker id). The supervisor's one writer of a cluster's table.
    pub(crate) fn replace(&self, backends: Vec<Arc<Backend>>) {
        let current = self.table.load();
        let ids = |list: &[Arc<Backend>]| {
            let mut ids: Vec<u64> = list.iter().map(|b| b.id).collect();
            ids.sort_unstable();
            ids
        };
        if ids(&current.backends) != ids(&backends) {
            self.table.store(Arc::new(RoutingTable::with(backends, Arc::clone(&current.balancer))));
        }
    }

    /// Switches to `balancer` for every pick from now on (a configuration reload).
    pub(crate) fn set_balancer(&self, balancer: Arc<dyn Balancer>) {
        self.table.rcu(|t| RoutingTable::with(t.backends.clone(), Arc::clone(&balancer)));
    }

    /// The current table.
    pub fn snapshot(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    /// The strategy's name.
    pub fn strategy(&self) -> &'static str {
        self.table.load().balancer.name()
    }
}
