//! Load-balancing strategies for `cluster`.
//!
//! A [`Balancer`] picks one backend for a request from the backends that are ready right now.
//! Each backend publishes its load signals in a [`BackendLoad`] (in-flight requests today;
//! latency and CPU share as the health crate fills them), and in-flight work is counted with
//! an RAII [`InFlight`] guard that lives as long as the request, its response body or its
//! upgraded tunnel. The crate is pure: no async runtime, no I/O, so strategies can be
//! benchmarked and tested on their own.
//!
//! Built in: [`RoundRobin`] and [`LeastConnections`], chosen by name with [`Strategy`].
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use cluster_balancer::{BackendLoad, Balancer, LeastConnections, RequestCtx};
//!
//! let backends: Vec<Arc<BackendLoad>> = (0..3).map(|id| Arc::new(BackendLoad::new(id))).collect();
//! let lb = LeastConnections::new();
//! let busy = backends[0].start(); // one request in flight on backend 0
//! let pick = lb.pick(&backends, &RequestCtx::default()).unwrap();
//! assert_ne!(pick, 0);
//! drop(busy);
//! ```
#![forbid(unsafe_code)]

mod balancer;
mod context;
mod least_connections;
mod load;
mod round_robin;
mod strategy;

pub use balancer::Balancer;
pub use context::RequestCtx;
pub use least_connections::LeastConnections;
pub use load::{BackendLoad, InFlight};
pub use round_robin::RoundRobin;
pub use strategy::{Strategy, UnknownStrategy};
