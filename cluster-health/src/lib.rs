//! Health policies and resource sampling for `cluster`.
//!
//! A [`HealthPolicy`] looks at one worker's [`WorkerSnapshot`] (memory, CPU, requests served,
//! error rate, last successful probe, age) and returns a [`Verdict`]: keep routing to it,
//! stop routing to it, or recycle it with a [`RecycleReason`]. Policies are pure functions of
//! snapshots, so they are unit-tested without processes, and they compose: the supervisor
//! asks each configured policy and acts on the most severe verdict.
//!
//! A [`ResourceSampler`] produces the resource part of the snapshots (RSS and CPU of each
//! worker's process tree). It is a trait so that tests can feed samples.
//!
//! This crate holds the contracts today; the built-in policies (memory limits, maximum
//! requests, active probes, outlier ejection) and the procfs sampler are the health issue's
//! work and are not implemented yet: the supervisor currently applies no policy.
//!
//! # Examples
//!
//! A policy that recycles a worker after it has served a fixed number of requests:
//!
//! ```
//! use cluster_health::{HealthPolicy, RecycleReason, Verdict, WorkerSnapshot};
//!
//! #[derive(Debug)]
//! struct MaxRequests(u64);
//!
//! impl HealthPolicy for MaxRequests {
//!     fn evaluate(&self, w: &WorkerSnapshot) -> Verdict {
//!         if w.requests_served >= self.0 {
//!             Verdict::Recycle(RecycleReason::MaxRequests { served: w.requests_served, limit: self.0 })
//!         } else {
//!             Verdict::Healthy
//!         }
//!     }
//! }
//!
//! let snap = WorkerSnapshot { requests_served: 1_000, ..WorkerSnapshot::default() };
//! assert!(matches!(MaxRequests(1_000).evaluate(&snap), Verdict::Recycle(_)));
//! ```
#![forbid(unsafe_code)]

mod cpu;
mod max_requests;
mod memory;
mod policy;
mod probe;
mod process_table;
mod procfs_sampler;
mod sampler;
mod snapshot;
mod verdict;

pub use cpu::{CpuReading, CpuTracker};
pub use max_requests::MaxRequestsPolicy;
pub use memory::{MemoryPolicy, MemoryState};
pub use policy::HealthPolicy;
pub use probe::{ProbePolicy, WatchdogPolicy};
pub use process_table::{ProcessEntry, ProcessTable};
pub use procfs_sampler::ProcfsSampler;
pub use sampler::{ResourceSample, ResourceSampler, SampleError};
pub use snapshot::WorkerSnapshot;
pub use verdict::{RecycleReason, Severity, UnhealthyReason, Verdict};
