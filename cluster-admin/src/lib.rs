//! The admin surface of `cluster`: a REST API, a Server-Sent Events stream and Prometheus
//! metrics, served on the control socket, on an optional admin listener and (with a token) on
//! the front port.
//!
//! - [`AdminApi`]: the routes (status, health, scale, restart, restart one worker, shutdown,
//!   events, metrics, OpenAPI) and the dashboard page at `/admin/cluster`, each calling a [`cluster_core::ClusterHandle`] method and
//!   nothing else. [`AdminApi::serve_socket`] and [`AdminApi::serve_listener`] serve it on a
//!   socket of its own; [`AdminApi::front_door`] puts it in front of the proxy.
//! - [`Entry`]: where a request came in, which decides who may use it (see `access.rs`).
//!
//! # Examples
//!
//! ```no_run
//! use cluster_admin::{AdminApi, AdminConfig, bind_socket};
//! use cluster_core::Cluster;
//! use cluster_core::config::ClusterSpec;
//!
//! # async fn run(spec: ClusterSpec) -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = Cluster::builder(spec.clone()).build().await?;
//! let api = AdminApi::new(cluster.handle(), AdminConfig::from_spec(&spec));
//! let cluster = cluster.with_front_door(api.front_door());
//! let socket = bind_socket(std::path::Path::new(".cluster/cluster.sock"))?;
//! tokio::spawn(async move { api.serve_socket(socket).await });
//! cluster.run().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod access;
mod api;
mod control;
mod dashboard;
mod front;
mod hub;
mod metrics;
mod openapi;
mod origin;
pub mod routes;
mod server;
mod sse;
mod upgrade;

pub use access::Entry;
pub use api::{AdminApi, AdminConfig};
pub use dashboard::{CONTENT_SECURITY_POLICY_VALUE, assets_dir as dashboard_assets_dir};
pub use openapi::DOCUMENT as OPENAPI_DOCUMENT;
pub use server::bind_socket;
