//! The admin surface of `cluster` (planned; not implemented yet).
//!
//! This crate will serve a [`cluster_core::ClusterHandle`] over HTTP: a REST API (status,
//! scale, rolling restart, shutdown), a Server-Sent Events stream of
//! [`cluster_core::ClusterEvent`]s, a dashboard page that works offline, and Prometheus
//! metrics. It calls only `ClusterHandle` methods, the one control path, and never reaches
//! into supervisor state. Until then it exposes nothing but the names of the routes it will
//! serve, so that the CLI and documentation can refer to them.
//!
//! # Examples
//!
//! ```
//! assert_eq!(cluster_admin::routes::STATUS, "/api/status");
//! ```
#![forbid(unsafe_code)]

pub mod routes;
