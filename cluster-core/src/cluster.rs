//! [`Cluster`]: binds the front port and runs the supervisor and the proxy together.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use cluster_balancer::{Balancer, SlowStart, Sticky};
use cluster_health::{HealthPolicy, ResourceSampler};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::ClusterSpec;
use crate::handle::ClusterHandle;
use crate::proxy::{Proxy, ProxyConfig};
use crate::routing::Router;
use crate::spawn::{ProcessSpawner, Spawner};
use crate::supervisor::{Supervisor, SupervisorParts};

/// Events buffered per subscriber before the oldest are dropped.
const EVENT_BUFFER: usize = 1024;

/// Pending connections the kernel queues on the front port.
const LISTEN_BACKLOG: u32 = 4096;

/// A cluster could not start or failed while running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The front port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No worker command is configured and no spawner was given.
    #[error("no worker command: set `command` in the configuration or give one after `--`")]
    NoCommand,
}

/// Builds a [`Cluster`]; see [`Cluster::builder`].
#[derive(Debug)]
pub struct ClusterBuilder {
    spec: ClusterSpec,
    spawner: Option<Arc<dyn Spawner>>,
    balancer: Option<Arc<dyn Balancer>>,
    hooks: HealthHooks,
}

/// What an embedder added to the configured health checks.
#[derive(Debug, Default)]
pub(crate) struct HealthHooks {
    /// Replaces the /proc sampler.
    pub(crate) sampler: Option<Arc<dyn ResourceSampler>>,
    /// Judged after the configured policies.
    pub(crate) policies: Vec<Box<dyn HealthPolicy>>,
}

impl ClusterBuilder {
    /// Uses `spawner` to start workers instead of the configured command.
    pub fn spawner(mut self, spawner: impl Spawner + 'static) -> Self {
        self.spawner = Some(Arc::new(spawner));
        self
    }

    /// Uses `balancer` instead of the configured strategy.
    pub fn balancer(mut self, balancer: Arc<dyn Balancer>) -> Self {
        self.balancer = Some(balancer);
        self
    }

    /// Adds a health rule of your own, judged on every health tick after the configured ones
    /// (memory, probe, max requests, outlier); the most severe verdict wins.
    pub fn health_policy(mut self, policy: impl HealthPolicy + 'static) -> Self {
        self.hooks.policies.push(Box::new(policy));
        self
    }

    /// Samples workers' resources with `sampler` instead of reading /proc (another platform,
    /// or a test that feeds its own figures).
    pub fn sampler(mut self, sampler: impl ResourceSampler + 'static) -> Self {
        self.hooks.sampler = Some(Arc::new(sampler));
        self
    }

    /// Binds the front port. Workers start when [`Cluster::run`] is called.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Bind`] when the port cannot be bound; [`ClusterError::NoCommand`] when
    /// there is nothing to run.
    pub async fn build(self) -> Result<Cluster, ClusterError> {
        let spawner = match self.spawner {
            Some(s) => s,
            None => Arc::new(
                ProcessSpawner::from_command(&self.spec.command).ok_or(ClusterError::NoCommand)?,
            ),
        };
        let addr = self.spec.listen;
        let listener = bind(addr).map_err(|source| ClusterError::Bind { addr, source })?;
        let local_addr =
            listener.local_addr().map_err(|source| ClusterError::Bind { addr, source })?;
        let balancer = self.balancer.unwrap_or_else(|| {
            let mut strategy = self.spec.strategy.build();
            if let Some(window) = self.spec.performance.slow_start_window {
                strategy = Arc::new(SlowStart::new(strategy, window));
            }
            if self.spec.sticky_sessions {
                // Affinity by client address, bounded so that one busy client cannot
                // overload a worker (consistent hashing with bounded loads).
                Arc::new(Sticky::new(strategy)) as Arc<dyn Balancer>
            } else {
                strategy
            }
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let handle = ClusterHandle::new(tx.clone(), events.clone(), local_addr);
        Ok(Cluster {
            spec: Arc::new(self.spec),
            hooks: self.hooks,
            spawner,
            router: Arc::new(Router::new(balancer)),
            listener,
            events,
            tx,
            rx,
            handle,
        })
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A cluster with its front port bound, ready to [`run`](Cluster::run).
#[derive(Debug)]
pub struct Cluster {
    spec: Arc<ClusterSpec>,
    hooks: HealthHooks,
    spawner: Arc<dyn Spawner>,
    router: Arc<Router>,
    listener: TcpListener,
    events: broadcast::Sender<crate::ClusterEvent>,
    tx: mpsc::UnboundedSender<crate::supervisor::Msg>,
    rx: mpsc::UnboundedReceiver<crate::supervisor::Msg>,
    handle: ClusterHandle,
}

impl Cluster {
    /// Starts building a cluster for `spec`.
    pub fn builder(spec: ClusterSpec) -> ClusterBuilder {
        ClusterBuilder { spec, spawner: None, balancer: None, hooks: HealthHooks::default() }
    }

    /// The bound front address.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// A handle to control the cluster once it runs.
    pub fn handle(&self) -> ClusterHandle {
        self.handle.clone()
    }

    /// The routing table, for embedders that want to watch it.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// Starts the workers and serves the front port until shutdown completes (see
    /// [`ClusterHandle::shutdown`]). Returns once every worker has exited.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for failures that end a running cluster.
    pub async fn run(self) -> Result<(), ClusterError> {
        let proxy = Proxy::new(Arc::clone(&self.router), ProxyConfig::from_spec(&self.spec));
        let proxy_stop = CancellationToken::new();
        let (done_tx, proxy_done) = oneshot::channel();
        let stop = proxy_stop.clone();
        let listener = self.listener;
        let threads = self.spec.performance.proxy_threads;
        let proxy_task = tokio::spawn(async move {
            proxy.serve_threads(listener, threads, stop).await;
            let _ = done_tx.send(());
        });
        let events = self.events.clone();
        let _ = events.send(crate::ClusterEvent::Listening { addr: self.handle.local_addr() });
        let supervisor = Supervisor::new(SupervisorParts {
            spec: self.spec,
            hooks: self.hooks,
            spawner: self.spawner,
            router: self.router,
            events: self.events,
            tx: self.tx,
            rx: self.rx,
            listen: self.handle.local_addr(),
            proxy_stop,
            proxy_done,
        });
        supervisor.run().await;
        proxy_task.abort();
        let _ = events.send(crate::ClusterEvent::Stopped);
        Ok(())
    }
}
