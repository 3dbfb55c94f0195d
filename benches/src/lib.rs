//! Benchmarks of the cluster crates (no library code).
//!
//! - `cargo bench -p benches --bench pick`: the cost of one strategy pick.
//! - `benches/proxy-vs-nginx.sh`: the proxy beside nginx in front of the same workers,
//!   through the shared benchmark harness.
//!
//! # Examples
//!
//! ```
//! assert_eq!(benches::WORKER_COUNTS, &[2, 8, 64, 256]);
//! ```
#![forbid(unsafe_code)]

/// Worker counts the pick benchmarks run at.
pub const WORKER_COUNTS: &[usize] = &[2, 8, 64, 256];
