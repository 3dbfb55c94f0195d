//! Example programs for `cluster` (see the `[[example]]` targets of this package).
//!
//! - `hello`: the example worker, a small hyper server reading `PORT`, with the routes the
//!   tests and benchmarks use (its file's doc comment lists them and its environment knobs).
//! - `node/server.js`: the same contract as a plain Node.js `http` server, for tests that run
//!   Node workers.
//!
//! # Examples
//!
//! ```
//! assert!(examples::HELLO_ROUTES.contains(&"/health"));
//! ```
#![forbid(unsafe_code)]

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
