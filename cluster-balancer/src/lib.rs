//! Load-balancing strategies for `cluster`.
//!
//! A [`Balancer`] picks one backend for a request from the backends that are ready right now.
//! Each backend publishes its load signals in a [`BackendLoad`]: requests in flight (counted
//! by an RAII [`InFlight`] guard that lives as long as the request, its response body or its
//! upgraded tunnel), a peak-EWMA response time, a CPU share, a weight and when it became
//! ready. All are atomics; no pick takes a lock. The crate is pure — no async runtime, no
//! I/O — so strategies can be benchmarked, simulated and tested on their own; time comes
//! from an injectable [`Clock`].
//!
//! Built in, chosen by name with [`Strategy`]:
//!
//! | name | type | signal | origin |
//! |---|---|---|---|
//! | `round-robin` | [`RoundRobin`] | none | everyone |
//! | `least-connections` | [`LeastConnections`] | in-flight, full scan | nginx, HAProxy |
//! | `cpu-based` | [`CpuBased`] | CPU share × in-flight | this project |
//! | `p2c` | [`P2c`] | in-flight of 2 random | Mitzenmacher 2001, Envoy |
//! | `peak-ewma` | [`PeakEwma`] | latency × in-flight of 2 random | Finagle, linkerd, tower |
//!
//! and two wrappers over any of them: [`Sticky`] (client affinity by rendezvous hashing with
//! bounded loads) and [`SlowStart`] (weights, and a share that ramps up after a backend
//! becomes ready). `docs/balancing.md` compares them in a simulation.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cluster_balancer::{BackendLoad, Balancer, LeastConnections, RequestCtx, SlowStart, Sticky};
//!
//! let backends: Vec<Arc<BackendLoad>> = (0..3).map(|id| Arc::new(BackendLoad::new(id))).collect();
//! let lb = LeastConnections::new();
//! let busy = backends[0].start(); // one request in flight on backend 0
//! let pick = lb.pick(&backends, &RequestCtx::default()).unwrap();
//! assert_ne!(pick, 0);
//! drop(busy);
//!
//! // The same client keeps reaching the same backend; new backends ramp up over 30 s.
//! let lb = Sticky::new(SlowStart::new(LeastConnections::new(), Duration::from_secs(30)));
//! let ctx = RequestCtx { client: Some("192.0.2.7".parse().unwrap()), ..RequestCtx::default() };
//! let home = lb.pick(&backends, &ctx);
//! assert!((0..100).all(|_| lb.pick(&backends, &ctx) == home));
//! ```
#![forbid(unsafe_code)]

mod balancer;
mod clock;
mod context;
mod cpu_based;
mod least_connections;
mod least_cost;
mod load;
#[cfg(any(test, feature = "test-util"))]
mod manual_clock;
mod p2c;
mod peak_ewma;
mod rng;
mod round_robin;
mod slow_start;
mod sticky;
mod strategy;

pub use balancer::Balancer;
pub use clock::{Clock, SystemClock};
pub use context::RequestCtx;
pub use cpu_based::CpuBased;
pub use least_connections::LeastConnections;
pub use load::{BackendLoad, DEFAULT_RTT_DECAY, InFlight};
#[cfg(any(test, feature = "test-util"))]
pub use manual_clock::ManualClock;
pub use p2c::P2c;
pub use peak_ewma::PeakEwma;
pub use round_robin::RoundRobin;
pub use slow_start::SlowStart;
pub use sticky::Sticky;
pub use strategy::{Strategy, UnknownStrategy};
