//! Benchmarks of the cluster crates, and the tail-latency simulation of the strategies.
//!
//! - `cargo bench -p benches --bench pick`: the cost of one strategy pick (criterion).
//! - `cargo bench -p benches --bench simulate`: the [`sim`] scenarios, printed as the
//!   Markdown tables of `docs/balancing.md` (deterministic; a few seconds).
//! - `benches/proxy-vs-nginx.sh`: the proxy beside nginx in front of the same workers,
//!   through the shared benchmark harness.
//!
//! # Examples
//!
//! ```
//! use benches::sim::{Scenario, contenders, run_all};
//!
//! assert_eq!(benches::WORKER_COUNTS, &[2, 8, 64, 256]);
//! let equal = &Scenario::standard(2_000)[0];
//! let results = run_all(equal, &contenders()[..2]);
//! assert_eq!(results[0].1.latencies.len(), 2_000);
//! ```
#![forbid(unsafe_code)]

pub mod sim;

/// Worker counts the pick benchmarks run at.
pub const WORKER_COUNTS: &[usize] = &[2, 8, 64, 256];
