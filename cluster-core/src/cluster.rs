//! [`Cluster`]: binds the front port and runs the supervisor and the proxy together.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use cluster_balancer::{Balancer, SlowStart, Sticky};
use cluster_health::{HealthPolicy, ResourceSampler};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::access_log::AccessLog;
use crate::config::{ClusterSpec, Upstream};
use crate::handle::{ClusterHandle, ConfigSource};
use crate::proxy::{Proxy, ProxyConfig};
use crate::ratelimit::{RateLimit, RateLimitError};
use crate::routing::Router;
use crate::spawn::{ProcessSpawner, SharedListener, Spawner, WorkerHardening};
use crate::supervisor::{Checks, SocketDir, SocketDirError, Supervisor, SupervisorParts};

/// Events buffered per subscriber before the oldest are dropped.
const EVENT_BUFFER: usize = 1024;

/// Pending connections the kernel queues on the front port.
const LISTEN_BACKLOG: u32 = 4096;

/// A cluster could not start or failed while running.
///
/// # Examples
///
/// ```
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{Cluster, ClusterError};
///
/// # async fn example() {
/// let spec = ClusterSpec::default(); // no command to run
/// match Cluster::builder(spec).build().await {
///     Err(ClusterError::NoCommand) => eprintln!("give the cluster a command"),
///     Err(e) => eprintln!("cannot start: {e}"),
///     Ok(cluster) => cluster.run().await.unwrap(),
/// }
/// # }
/// ```
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
    /// The spec breaks a rule the control plane relies on (one built by hand rather than by
    /// `config::load`).
    #[error("invalid cluster spec: {0}")]
    InvalidSpec(String),
    /// The worker hardening settings cannot be applied (`user` set while not root).
    #[error(transparent)]
    Hardening(#[from] crate::spawn::HardeningError),
    /// The access log (`security.enableRequestLogging`) could not be started.
    #[error(transparent)]
    AccessLog(#[from] crate::AccessLogError),
    /// The control plane's thread could not be started, or it failed.
    #[error("the control plane failed: {0}")]
    ControlPlane(String),
    /// The rate limit could not be built (a bad `redisUrl`).
    #[error("cannot set up the rate limit: {0}")]
    RateLimit(#[from] RateLimitError),
    /// The directory of the workers' Unix sockets (`upstream: "unix"`) could not be made.
    #[error(transparent)]
    SocketDir(#[from] SocketDirError),
}

/// Builds a [`Cluster`]; see [`Cluster::builder`].
///
/// # Examples
///
/// A cluster with its own balancer and health rule, reloading its configuration from a file:
///
/// ```no_run
/// use std::sync::Arc;
/// use cluster_balancer::P2c;
/// use cluster_core::config::{self, Environment, Overrides};
/// use cluster_core::{Cluster, ProcessSpawner};
/// use cluster_health::{HealthPolicy, ProcfsSampler, RecycleReason, Verdict, WorkerSnapshot};
///
/// #[derive(Debug)]
/// struct RecycleAfter(u64);
///
/// impl HealthPolicy for RecycleAfter {
///     fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict {
///         if worker.requests_served >= self.0 {
///             Verdict::Recycle(RecycleReason::Requested)
///         } else {
///             Verdict::Healthy
///         }
///     }
/// }
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let mut overrides = Overrides::default();
/// overrides.config_path = Some("cluster.config.json".into());
/// let spec = config::load(&overrides, &Environment::capture())?.spec;
/// let cluster = Cluster::builder(spec)
///     .spawner(ProcessSpawner::new("node", ["build/index.js"]))
///     .balancer(Arc::new(P2c::new()))
///     .health_policy(RecycleAfter(100_000))
///     .sampler(ProcfsSampler::new())
///     .config_source(move || Ok(config::load(&overrides, &Environment::capture())?.spec))
///     .build()
///     .await?;
/// cluster.run().await?;
/// # Ok(())
/// # }
/// ```
pub struct ClusterBuilder {
    spec: ClusterSpec,
    spawner: Option<Arc<dyn Spawner>>,
    balancer: Option<Arc<dyn Balancer>>,
    hooks: HealthHooks,
    source: Option<ConfigSource>,
    checks: Option<Arc<dyn Checks>>,
    successor: Option<crate::upgrade::SuccessorCommand>,
}

impl std::fmt::Debug for ClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBuilder")
            .field("spec", &self.spec)
            .field("spawner", &self.spawner)
            .field("balancer", &self.balancer)
            .field("reloadable", &self.source.is_some())
            .finish_non_exhaustive()
    }
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

    /// Where [`ClusterHandle::reload_config`] (and SIGUSR2) loads the configuration again
    /// from; `cluster start` passes its file, environment and flags.
    pub fn config_source(
        mut self,
        load: impl Fn() -> Result<ClusterSpec, crate::config::ConfigError> + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Arc::new(load));
        self
    }

    /// Makes the cluster upgradable in place ([`ClusterHandle::upgrade`], SIGURG): `successor`
    /// is how a new primary is started, with the front socket handed to it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use cluster_core::Cluster;
    /// use cluster_core::config::ClusterSpec;
    /// use cluster_core::upgrade::SuccessorCommand;
    ///
    /// # async fn example(spec: ClusterSpec) -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = Cluster::builder(spec)
    ///     .upgradable(SuccessorCommand::current_process()?) // this binary, found again then
    ///     .build()
    ///     .await?;
    /// cluster.run().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn upgradable(mut self, successor: crate::upgrade::SuccessorCommand) -> Self {
        self.successor = Some(successor);
        self
    }

    /// Checks readiness and liveness with `checks` instead of over HTTP (tests with a fake
    /// spawner, under paused time).
    #[cfg(test)]
    pub(crate) fn checks(mut self, checks: Arc<dyn Checks>) -> Self {
        self.checks = Some(checks);
        self
    }

    /// Binds the front port. Workers start when [`Cluster::run`] is called.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Bind`] when the port cannot be bound; [`ClusterError::NoCommand`] when
    /// there is nothing to run; [`ClusterError::InvalidSpec`] for a spec built by hand that
    /// breaks a rule `config::load` enforces (`scaling.minWorkers` above `maxWorkers`);
    /// [`ClusterError::Hardening`] when no spawner was given and the spec's hardening cannot
    /// be applied (a given spawner is used as it is: see [`Spawner::with_hardening`]);
    /// [`ClusterError::SocketDir`] when `upstream` is `"unix"` and the workers' socket
    /// directory cannot be made (or its socket paths would be too long).
    pub async fn build(self) -> Result<Cluster, ClusterError> {
        crate::supervisor::check_spec(&self.spec).map_err(ClusterError::InvalidSpec)?;
        let spawner = match self.spawner {
            Some(s) => s,
            None => {
                let mut spawner = ProcessSpawner::from_command(&self.spec.command)
                    .ok_or(ClusterError::NoCommand)?;
                if self.spec.hardening.is_active() {
                    let hardening = WorkerHardening::prepare(&self.spec.hardening)?;
                    for notice in hardening.notices() {
                        tracing::warn!("{notice}");
                    }
                    spawner = spawner.hardening(Arc::new(hardening));
                }
                Arc::new(spawner)
            }
        };
        let shared_socket = self.spec.mode.is_shared_socket();
        let access_log = if self.spec.security.enable_request_logging && !shared_socket {
            Some(AccessLog::start(&self.spec.access_log)?)
        } else {
            None
        };
        let socket_dir = match self.spec.upstream {
            Upstream::Unix => Some(SocketDir::create(&self.spec.hardening)?),
            Upstream::Tcp => None,
        };
        let addr = self.spec.listen;
        let bind_error = |source| ClusterError::Bind { addr, source };
        // Socket activation (systemd's `ListenStream=`): the front socket is given, not bound.
        let listener = match (activated_listener().map_err(bind_error)?, shared_socket) {
            (Some(given), true) => FrontListener::Shared(SharedListener::new(OwnedFd::from(given))),
            (Some(given), false) => {
                given.set_nonblocking(true).map_err(bind_error)?;
                FrontListener::Proxy(TcpListener::from_std(given).map_err(bind_error)?)
            }
            (None, true) => FrontListener::Shared(bind_shared(addr).map_err(bind_error)?),
            (None, false) => FrontListener::Proxy(bind(addr).map_err(bind_error)?),
        };
        // Read from the socket, not the configuration: port 0 picks one.
        let local_addr =
            listener.local_addr().map_err(|source| ClusterError::Bind { addr, source })?;
        let upgrade = match self.successor {
            Some(command) => {
                let front = listener.duplicate().map_err(bind_error)?;
                Some(Arc::new(crate::upgrade::Plan {
                    command,
                    front: Mutex::new(Some(front)),
                    handed_over: Default::default(),
                }))
            }
            None => None,
        };
        let custom_balancer = self.balancer.is_some();
        let balancer = self.balancer.unwrap_or_else(|| configured_balancer(&self.spec));
        let router = Arc::new(Router::new(balancer));
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let handle = ClusterHandle::new(
            tx.clone(),
            events.clone(),
            local_addr,
            Arc::clone(&router),
            self.source,
            upgrade.clone(),
        );
        Ok(Cluster {
            spec: Arc::new(self.spec),
            hooks: self.hooks,
            spawner,
            router,
            custom_balancer,
            checks: self.checks,
            front_door: None,
            access_log,
            listener,
            events,
            tx,
            rx,
            handle,
            socket_dir,
            upgrade,
        })
    }
}

/// The balancer a configuration asks for: the strategy, ramped up for new workers under
/// `slowStartWindow`, and sticky when `enableStickySession` is on.
pub(crate) fn configured_balancer(spec: &ClusterSpec) -> Arc<dyn Balancer> {
    let mut strategy = spec.strategy.build();
    if let Some(window) = spec.performance.slow_start_window {
        strategy = Arc::new(SlowStart::new(strategy, window));
    }
    if spec.sticky_sessions {
        // Affinity by client address, bounded so that one busy client cannot overload a
        // worker (consistent hashing with bounded loads).
        Arc::new(Sticky::new(strategy)) as Arc<dyn Balancer>
    } else {
        strategy
    }
}

/// The front listener: the proxy's, or the socket the workers share.
#[derive(Debug)]
enum FrontListener {
    /// Proxy mode: the primary accepts on it.
    Proxy(TcpListener),
    /// Shared-socket mode: the workers accept on it; the primary only holds it open.
    Shared(SharedListener),
}

impl FrontListener {
    /// A close-on-exec duplicate of the socket, for a successor (hot upgrade).
    fn duplicate(&self) -> io::Result<OwnedFd> {
        use std::os::fd::AsFd;
        let fd = match self {
            FrontListener::Proxy(l) => l.as_fd(),
            FrontListener::Shared(s) => s.as_fd(),
        };
        fd.try_clone_to_owned()
    }

    /// The address the socket is bound to (`getsockname`), whoever bound it.
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            FrontListener::Proxy(l) => l.local_addr(),
            FrontListener::Shared(s) => {
                let sock = socket2::SockRef::from(s);
                sock.local_addr()?.as_socket().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "the front socket is not TCP")
                })
            }
        }
    }
}

/// The front socket passed by a service manager (`LISTEN_FDS`/`LISTEN_PID` naming this
/// process, fd 3), made close-on-exec so that no worker inherits it by accident (in
/// shared-socket mode the spawner passes it on explicitly). `None` when there is none; the
/// address it is bound to replaces `host` and `port`, which is logged.
fn activated_listener() -> io::Result<Option<std::net::TcpListener>> {
    let Some(given) = crate::spawn::inherited_listener() else { return Ok(None) };
    rustix::io::fcntl_setfd(&given, rustix::io::FdFlags::CLOEXEC)?;
    let at = given.local_addr()?;
    let from = if std::env::var_os(crate::upgrade::FDS_ENV).is_some() {
        "the old primary (hot upgrade)"
    } else {
        "socket activation (LISTEN_FDS)"
    };
    tracing::info!(target: "cluster", "front socket {at} from {from}; `host` and `port` are not used");
    Ok(Some(given))
}

/// Binds the shared front socket. It is not registered with the primary's runtime: the
/// primary never accepts on it, and must not be woken by every connection.
fn bind_shared(addr: SocketAddr) -> io::Result<SharedListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM.cloexec(),
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG as i32)?;
    Ok(SharedListener::new(OwnedFd::from(socket)))
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A cluster with its front port bound, ready to [`run`](Cluster::run).
///
/// # Examples
///
/// ```no_run
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{Cluster, ShutdownMode};
///
/// # async fn example(spec: ClusterSpec) -> Result<(), Box<dyn std::error::Error>> {
/// # let front_door: std::sync::Arc<dyn cluster_core::FrontDoor> = unimplemented!();
/// let cluster = Cluster::builder(spec).build().await?; // binds the front port
/// println!("listening on {}", cluster.local_addr());
/// let cluster = cluster.with_front_door(front_door); // e.g. cluster-admin's API
/// let handle = cluster.handle();
/// tokio::spawn(async move {
///     tokio::signal::ctrl_c().await.ok();
///     handle.shutdown(ShutdownMode::Graceful).ok();
/// });
/// cluster.run().await?; // starts the workers, returns once they have all stopped
/// # Ok(())
/// # }
/// ```
///
/// [`with_front_door`](Self::with_front_door) answers some requests before they reach a
/// worker; see [`FrontDoor`](crate::FrontDoor).
pub struct Cluster {
    spec: Arc<ClusterSpec>,
    hooks: HealthHooks,
    spawner: Arc<dyn Spawner>,
    router: Arc<Router>,
    custom_balancer: bool,
    checks: Option<Arc<dyn Checks>>,
    front_door: Option<Arc<dyn crate::FrontDoor>>,
    access_log: Option<AccessLog>,
    listener: FrontListener,
    events: broadcast::Sender<crate::ClusterEvent>,
    tx: mpsc::UnboundedSender<crate::supervisor::Msg>,
    rx: mpsc::UnboundedReceiver<crate::supervisor::Msg>,
    handle: ClusterHandle,
    socket_dir: Option<SocketDir>,
    /// What a hot upgrade needs (the successor command, a copy of the front socket).
    upgrade: Option<Arc<crate::upgrade::Plan>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("local_addr", &self.handle.local_addr())
            .field("spawner", &self.spawner)
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts building a cluster for `spec`.
    pub fn builder(spec: ClusterSpec) -> ClusterBuilder {
        ClusterBuilder {
            spec,
            spawner: None,
            balancer: None,
            hooks: HealthHooks::default(),
            source: None,
            checks: None,
            successor: None,
        }
    }

    /// The bound front address.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Puts `front_door` in front of the proxy on the front port: the requests it claims are
    /// answered by it and never reach a worker. The binary puts the admin API there; a front
    /// door is built after the cluster because it usually needs its [`handle`](Self::handle).
    #[must_use]
    pub fn with_front_door(mut self, front_door: Arc<dyn crate::FrontDoor>) -> Self {
        self.front_door = Some(front_door);
        self
    }

    /// A handle to control the cluster once it runs.
    pub fn handle(&self) -> ClusterHandle {
        self.handle.clone()
    }

    /// Starts the workers and serves the front port until shutdown completes (see
    /// [`ClusterHandle::shutdown`]). Returns once every worker has exited.
    ///
    /// The proxy serves on the calling runtime (and on `performance.proxyThreads - 1` threads
    /// of its own); in shared-socket mode (`mode: "shared-socket"`) there is no proxy: every
    /// worker gets the front socket as fd 3 and accepts on it, and the primary only holds it
    /// open (see [`SharedListener`]). The control plane runs on a thread of its own, with its own runtime, so a
    /// saturated proxy never delays a health tick or a control command. Workers are started
    /// from that thread, which lives until the last worker has exited (Linux ties a worker's
    /// parent-death signal to the thread that started it).
    ///
    /// # Errors
    ///
    /// [`ClusterError::ControlPlane`] when its thread cannot be started or panics.
    pub async fn run(self) -> Result<(), ClusterError> {
        self.run_with(ControlPlane::OwnThread).await
    }

    /// Runs the control plane on the calling runtime: for tests under paused time.
    #[cfg(test)]
    pub(crate) async fn run_here(self) -> Result<(), ClusterError> {
        self.run_with(ControlPlane::Here).await
    }

    async fn run_with(self, control: ControlPlane) -> Result<(), ClusterError> {
        let mut proxy_cfg = ProxyConfig::from_spec(&self.spec);
        proxy_cfg.front_door = self.front_door;
        let handover = proxy_cfg.handover.clone();
        proxy_cfg.access_log = self.access_log.clone();
        let reopen = self.access_log.clone().map(|log| {
            let events = self.events.subscribe();
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(reopen_on_request(log, events)))
        });
        let proxy_stop = CancellationToken::new();
        if !self.spec.mode.is_shared_socket() {
            // Shared-socket mode has no request path to limit (see `notices` in the binary).
            proxy_cfg.rate_limit = RateLimit::from_spec(&self.spec, self.events.clone())?;
        }
        if let Some(limit) = proxy_cfg.rate_limit.clone() {
            let stop = proxy_stop.clone();
            tokio::spawn(async move { limit.run_background(stop).await });
        }
        let (done_tx, proxy_done) = oneshot::channel();
        let stop = proxy_stop.clone();
        let (proxy_task, shared) = match self.listener {
            FrontListener::Proxy(listener) => {
                let proxy = Proxy::new(Arc::clone(&self.router), proxy_cfg);
                let threads = self.spec.performance.proxy_threads;
                // A new primary of a hot upgrade accepts once its workers are ready: until
                // then the old primary serves every connection, and none gets a 503.
                let gate = crate::upgrade::started_by_upgrade().then(|| self.handle.clone());
                let task = tokio::spawn(async move {
                    let open = match gate {
                        Some(handle) => tokio::select! {
                            ready = crate::upgrade::until_workers_ready(&handle) => ready,
                            () = stop.cancelled() => false,
                        },
                        None => true,
                    };
                    if open {
                        proxy.serve_threads(listener, threads, stop).await;
                    }
                    let _ = done_tx.send(());
                });
                (task, None)
            }
            FrontListener::Shared(listener) => {
                // No proxy: the workers accept on the socket and finish their own
                // connections when asked to stop, so there is nothing to drain here.
                let task = tokio::spawn(async move {
                    stop.cancelled().await;
                    let _ = done_tx.send(());
                });
                (task, Some(listener))
            }
        };
        let events = self.events.clone();
        let _ = events.send(crate::ClusterEvent::Listening { addr: self.handle.local_addr() });
        let parts = SupervisorParts {
            spec: self.spec,
            hooks: self.hooks,
            spawner: self.spawner,
            router: self.router,
            custom_balancer: self.custom_balancer,
            checks: self.checks,
            events: self.events,
            tx: self.tx,
            rx: self.rx,
            listen: self.handle.local_addr(),
            proxy_stop: proxy_stop.clone(),
            proxy_done,
            access_log: self.access_log.clone(),
            socket_dir: self.socket_dir,
            shared,
            handover,
        };
        let result = match control {
            ControlPlane::Here => {
                Supervisor::new(parts).run().await;
                Ok(())
            }
            ControlPlane::OwnThread => run_on_own_thread(parts).await,
        };
        // However the control plane ended, stop serving.
        if let Some(upgrade) = &self.upgrade {
            upgrade.close();
        }
        proxy_stop.cancel();
        proxy_task.abort();
        crate::spawn::output_drained(std::time::Duration::from_secs(1)).await;
        drop(reopen);
        if let Some(log) = self.access_log {
            // The last lines are queued: write them before the process ends.
            let closed = tokio::task::spawn_blocking(move || log.close(ACCESS_LOG_FLUSH)).await;
            if !matches!(closed, Ok(true)) {
                tracing::warn!(target: "cluster::access", "the access log was not flushed within {} ms", ACCESS_LOG_FLUSH.as_millis());
            }
        }
        let _ = events.send(crate::ClusterEvent::Stopped);
        result
    }
}

/// How long shutdown waits for the access log's last lines to be written.
const ACCESS_LOG_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// Reopens the access log on every [`ClusterEvent::LogReopenRequested`](crate::ClusterEvent)
/// (SIGUSR1, after logrotate moved the file away), until the cluster's events end.
async fn reopen_on_request(log: AccessLog, mut events: broadcast::Receiver<crate::ClusterEvent>) {
    loop {
        match events.recv().await {
            Ok(crate::ClusterEvent::LogReopenRequested) => log.reopen(),
            Ok(_) => {}
            // Events were missed, perhaps a reopen among them: reopening costs one `open`.
            Err(broadcast::error::RecvError::Lagged(_)) => log.reopen(),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Where the supervisor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ControlPlane {
    /// A thread of its own (production).
    OwnThread,
    /// The calling runtime (tests with paused time).
    #[cfg_attr(not(test), allow(dead_code))]
    Here,
}

/// Runs the supervisor on a new thread with a current-thread runtime, until it returns.
async fn run_on_own_thread(parts: SupervisorParts) -> Result<(), ClusterError> {
    let (done_tx, done) = oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClusterError::ControlPlane(format!("cannot build its runtime: {e}")))?;
    let thread = std::thread::Builder::new()
        .name("cluster-control".into())
        .spawn(move || {
            runtime.block_on(async move { Supervisor::new(parts).run().await });
            let _ = done_tx.send(());
        })
        .map_err(|e| ClusterError::ControlPlane(format!("cannot start its thread: {e}")))?;
    let finished = done.await.is_ok();
    // The thread has returned or is about to; join it off the runtime.
    let joined = tokio::task::spawn_blocking(move || thread.join()).await;
    match (finished, joined) {
        (true, Ok(Ok(()))) => Ok(()),
        _ => Err(ClusterError::ControlPlane("its thread panicked".into())),
    }
}
