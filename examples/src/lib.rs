//! Example programs for `cluster` (see the `[[example]]` targets of this package).
//!
//! - `hello`: the example worker, a small hyper server reading `PORT`, with the routes the
//!   tests and benchmarks use.
//!
//! # Examples
//!
//! ```
//! assert!(examples::HELLO_ROUTES.contains(&"/health"));
//! ```
#![forbid(unsafe_code)]

/// The routes the `hello` example worker serves.
pub const HELLO_ROUTES: &[&str] =
    &["/", "/pid", "/slow?ms=N", "/stream", "/ws", "/echo", "/crash", "/health"];
