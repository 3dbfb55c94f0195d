//! The core of `cluster`: configuration, worker supervision and the HTTP proxy.
//!
//! - [`config`]: layered configuration (defaults, JSON file, environment, flags) checked
//!   into a [`ClusterSpec`](config::ClusterSpec).
//! - [`Spawner`]: how a worker process is started ([`ProcessSpawner`] runs a command,
//!   [`SelfExecSpawner`] re-runs the current binary in worker role).
//! - [`Cluster`]: runs the supervisor (the control plane, on a thread of its own: one record
//!   per worker with its [`WorkerState`] and [`Rotation`]) and the proxy, and hands out a
//!   [`ClusterHandle`], the one control path every operation goes through: status, scale,
//!   rolling restart, restart, restart one worker, reload the configuration, shutdown, each
//!   answering with a typed result ([`ControlError`], [`Operation`]). [`ClusterEvent`]s report
//!   what happens. On every health tick the supervisor samples each worker's process tree,
//!   probes it, applies the configured `cluster_health` policies and, with
//!   `scaling.autoScale`, the autoscaler; every recycle (memory, request count,
//!   [`ClusterHandle::recycle`]) and every rolling restart takes the same path: start the
//!   replacement, wait until it is ready, drain the old worker, stop it. [`forward_signals`]
//!   turns Unix signals into the same calls.
//!   Workers may also report readiness and liveness themselves, over the systemd notify
//!   protocol (`NOTIFY_SOCKET`) or a Node IPC channel (`NODE_CHANNEL_FD`); a worker that
//!   announced heartbeats and falls silent is replaced the same way.
//! - [`RoutingTable`]: the lock-free routing table the proxy picks ready workers from, read
//!   with [`ClusterHandle::routes`]; each [`Backend`] carries the [`WorkerMetrics`] the proxy
//!   measures (requests, errors, bytes, latency percentiles).
//! - [`FrontDoor`]: a service of your own in front of the proxy, answering some requests on
//!   the front port before they reach a worker (`cluster-admin` serves its API this way).
//!
//! # Features
//!
//! - `redis`: the shared rate limit store (`security.rateLimitStore: "redis"`).
//! - `test-util`: the standalone proxy (`Proxy`, `ProxyConfig`), the routing table's writers
//!   (`Router`, `Backend::new`, `Backend::abandon`) and the stages a `Cluster` builds from its
//!   spec (`AccessLog`, `RateLimit`, `Compression`), for tests that drive a proxy without a
//!   supervisor.
//!
//! # Embedding: the primary and its workers in one binary
//!
//! As with Node's `cluster.isPrimary`, a server can be its own cluster: [`is_primary`] runs
//! the [`Cluster`] with a [`SelfExecSpawner`], which starts the same binary again as each
//! worker; there [`is_worker`] is true and the [`worker`] helpers find the socket to serve on
//! ([`worker::listener`]), tell the primary it is ready and alive ([`worker::ready`],
//! [`worker::heartbeats`]) and catch the signal to drain ([`worker::stopping`]). The same
//! helpers serve a Rust program run by `cluster start` as its command. See
//! `examples/embedded.rs` and `docs/embedding.md`.
//!
//! # Examples
//!
//! Run a cluster of two copies of a server command on port 3000 until SIGTERM or Ctrl-C:
//!
//! ```no_run
//! use cluster_core::config::{self, Environment, Overrides};
//! use cluster_core::{Cluster, forward_signals};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut overrides = Overrides::default();
//! overrides.workers = Some("2".into());
//! overrides.port = Some("3000".into());
//! overrides.command = vec!["node".into(), "build".into()];
//! let loaded = config::load(&overrides, &Environment::capture())?;
//! let cluster = Cluster::builder(loaded.spec).build().await?;
//! let handle = cluster.handle();
//! tokio::spawn(forward_signals(handle.clone()));
//! tokio::spawn(async move {
//!     // Later: one more worker, then a zero-downtime deploy of a new build.
//!     handle.scale_by(1).await?;
//!     let deploy = handle.rolling_restart().await?;
//!     println!("{} workers replaced", deploy.finished().await?.replaced);
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//! });
//! cluster.run().await?;
//! # Ok(())
//! # }
//! ```
#![warn(unsafe_code)]

mod access_log;
mod cluster;
pub mod config;
mod control;
mod endpoint;
mod events;
mod handle;
mod metrics;
mod proxy;
mod ratelimit;
mod role;
mod routing;
mod signals;
mod spawn;
mod status;
mod supervisor;
pub mod upgrade;
pub mod worker;

#[cfg(feature = "test-util")]
pub use access_log::AccessLog;
pub use access_log::{AccessLogCounts, AccessLogError};
pub use cluster::{Cluster, ClusterBuilder, ClusterError};
pub use control::{
    ConfigReport, ControlError, Operation, OperationError, OperationKind, OperationReport, Scaled,
    ShutdownMode,
};
pub use endpoint::Endpoint;
pub use events::ClusterEvent;
pub use handle::{ClusterGone, ClusterHandle, ConfigSource};
pub use metrics::{
    FailureCounts, LATENCY_BUCKETS, LatencyBuckets, MetricsSnapshot, ResponseClasses, WindowRates,
    WorkerMetrics,
};
pub use proxy::{
    AcceptEncoding, BoxError, ContentCoding, EndsOnDrain, FrontBody, FrontDoor, FrontFuture,
    FrontPeer,
};
#[cfg(feature = "test-util")]
pub use proxy::{Compression, Proxy, ProxyConfig};
#[cfg(feature = "test-util")]
pub use ratelimit::RateLimit;
pub use ratelimit::RateLimitError;
pub use role::{is_primary, is_worker};
#[cfg(feature = "test-util")]
pub use routing::Router;
pub use routing::{Backend, RoutingTable};
pub use signals::forward_signals;
pub use spawn::{
    Guardian, HardeningError, ProcessSpawner, SelfExecSpawner, SharedListener, SpawnError, Spawner,
    StopSignal, WorkerExit, WorkerHardening, WorkerProcess, WorkerSpec, inherited_listener,
    run_guardian,
};
pub use status::{
    ClusterStatus, ControlCounters, ErrorSummary, HealthSummary, OperationCounts, OperationStatus,
    ScalingStatus, Spread, WorkerStatus,
};
pub use supervisor::{Rotation, SocketDirError, WorkerState};
