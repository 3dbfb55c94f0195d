//! The core of `cluster`: configuration, worker supervision and the HTTP proxy.
//!
//! - [`config`]: layered configuration (defaults, JSON file, environment, flags) checked
//!   into a [`ClusterSpec`].
//! - [`Spawner`]: how a worker process is started ([`ProcessSpawner`] runs a command,
//!   [`SelfExecSpawner`] re-runs the current binary in worker role).
//! - [`Cluster`]: runs the supervisor (one lifecycle state machine per worker) and the proxy,
//!   and hands out a [`ClusterHandle`], the one control path every operation goes through.
//! - [`Router`]: the lock-free routing table the proxy picks ready workers from.
//!
//! # Examples
//!
//! Run a cluster of two copies of a server command on port 3000 until Ctrl-C:
//!
//! ```no_run
//! use cluster_core::{Cluster, ProcessSpawner};
//! use cluster_core::config::{self, Environment, Overrides};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let overrides = Overrides {
//!     workers: Some("2".into()),
//!     port: Some("3000".into()),
//!     command: vec!["node".into(), "build".into()],
//!     ..Overrides::default()
//! };
//! let loaded = config::load(&overrides, &Environment::capture())?;
//! let cluster = Cluster::builder(loaded.spec).spawner(ProcessSpawner::from_spec).build().await?;
//! let handle = cluster.handle();
//! tokio::spawn(async move {
//!     tokio::signal::ctrl_c().await.ok();
//!     handle.shutdown(true);
//! });
//! cluster.run().await?;
//! # Ok(())
//! # }
//! ```
#![warn(unsafe_code)]

pub mod config;
mod events;
mod proxy;
mod routing;
mod spawn;
mod supervisor;

pub use events::ClusterEvent;
pub use proxy::{Proxy, ProxyConfig};
pub use routing::{Backend, Router, RoutingTable};
pub use supervisor::WorkerState;
