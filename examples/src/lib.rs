//! Example programs for `cluster` (see the `[[example]]` targets of this package).
//!
//! - `hello`: the example worker, a small hyper server reading `PORT`, with the routes the
//!   tests and benchmarks use (its file's doc comment lists them and its environment knobs).
//! - `node/server.js`: the same contract as a plain Node.js `http` server, for tests that run
//!   Node workers.
//! - `embedded`: a server that is its own cluster (`cluster_core::is_primary()`, the self-exec
//!   spawner, the `cluster_core::worker` helpers); `custom_spawner`, `custom_health` and
//!   `custom_strategy`: the `Spawner`, `HealthPolicy` and `Balancer` extension points, each in
//!   a cluster whose workers run [`worker::serve`] (or a given command).
//!
//! # Examples
//!
//! ```
//! assert!(examples::HELLO_ROUTES.contains(&"/health"));
//! ```
#![forbid(unsafe_code)]

pub mod worker;

pub use worker::Error;

/// The routes the `hello` example worker serves.
pub const HELLO_ROUTES: &[&str] = &[
    "/",
    "/pid",
    "/health",
    "/slow?ms=N",
    "/stream?n=N&interval=MS",
    "/ws",
    "/echo",
    "/headers",
    "/env",
    "/crash",
];
