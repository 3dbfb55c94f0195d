//! Health policies and resource sampling for `cluster`.
//!
//! The supervisor watches every worker on a health tick (every 1–5 s, not PM2's 30 s). Each tick:
//!
//! 1. **Sample** the resources of every worker's whole process tree (the worker and its
//!    descendants) with one [`ProcfsSampler::sample_many`](ResourceSampler::sample_many) call:
//!    one scan of `/proc` into a [`ProcessTable`], summed per tree. A [`CpuTracker`] per worker
//!    turns cumulative CPU time into a percent and a smoothed percent.
//! 2. **Build** a [`WorkerSnapshot`] per worker from those figures, the proxy's counters, the
//!    active probe's results and the last [`Heartbeat`] (parsed by [`parse_notify`] and
//!    [`parse_ipc_line`]).
//! 3. **Judge** them all with [`Policies::evaluate_all`], which returns a [`Verdict`] per
//!    worker: healthy, unhealthy (out of rotation), recycle (graceful replacement) or kill,
//!    with the reason ([`UnhealthyReason`], [`RecycleReason`]) for the event log.
//!
//! The policies are pure: [`MemoryPolicy`] (soft and hard limits, hysteresis, minimum age),
//! [`MaxRequestsPolicy`] (with per-worker jitter), [`ProbePolicy`] and [`WatchdogPolicy`]
//! (liveness), [`OutlierPolicy`] (error-rate ejection against peers). What they remember
//! between ticks lives in a [`HealthState`] the caller owns, and time comes in as arguments, so
//! a test replays ticks without processes or clocks. Custom rules implement [`HealthPolicy`].
//!
//! Two more pure pieces read the same samples, with their state owned by the caller too:
//!
//! - [`AutoscalePolicy::decide`] turns a [`LoadSample`] of the whole cluster into an
//!   [`AutoscaleDecision`] (one worker more, one fewer, or hold) with a [`ScaleReason`] and its
//!   [`Trigger`]; an [`AutoscaleState`] carries its timers and cooldown between samples.
//! - [`LeakDetector::observe`] watches one worker's RSS in a [`LeakState`] and raises a
//!   [`LeakWarning`] once when it grows steadily (a leak), not on a step or a sawtooth.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, Instant};
//! use cluster_health::{
//!     HealthState, MaxRequestsPolicy, MemoryPolicy, Policies, RecycleReason, Verdict, WorkerSnapshot,
//! };
//!
//! let mut policies = Policies::new();
//! policies.memory = Some(MemoryPolicy::new(512)); // maxMemoryUsage: 512 MB, hard limit 768 MB
//! policies.max_requests = Some(MaxRequestsPolicy::new(10_000)); // ±10 % per worker
//! let mut state = HealthState::default();
//!
//! let worker = WorkerSnapshot {
//!     worker_id: 1,
//!     age: Duration::from_secs(3600),
//!     rss_bytes: Some(600 * 1024 * 1024),
//!     ..WorkerSnapshot::default()
//! };
//! // Over the soft limit: recycled only after 3 samples in a row (hysteresis).
//! let now = Instant::now();
//! for tick in 0..3 {
//!     let verdicts = policies.evaluate_all(&[worker.clone()], &mut state, now);
//!     let expected = tick == 2;
//!     assert_eq!(matches!(verdicts[0], Verdict::Recycle(RecycleReason::Memory { .. })), expected);
//! }
//! ```
#![forbid(unsafe_code)]

mod autoscale;
mod cpu;
mod heartbeat;
mod leak;
mod max_requests;
mod memory;
mod outlier;
mod policies;
mod policy;
mod probe;
#[cfg(target_os = "linux")]
mod proc_stat;
mod process_table;
mod procfs_sampler;
mod sampler;
mod snapshot;
mod verdict;

pub use autoscale::{
    AutoscaleDecision, AutoscalePolicy, AutoscaleState, LoadSample, ScaleReason, Trigger,
};
pub use cpu::{CpuReading, CpuTracker};
pub use heartbeat::{
    Heartbeat, HeartbeatError, MAX_IPC_LINE, MAX_NOTIFY_DATAGRAM, parse_ipc_line, parse_notify,
};
pub use leak::{LeakDetector, LeakState, LeakWarning};
pub use max_requests::MaxRequestsPolicy;
pub use memory::{MemoryPolicy, MemoryState};
pub use outlier::{OutlierPolicy, OutlierState};
pub use policies::{HealthState, Policies};
pub use policy::HealthPolicy;
pub use probe::{ProbePolicy, WatchdogPolicy};
pub use process_table::{ProcessEntry, ProcessTable};
pub use procfs_sampler::ProcfsSampler;
pub use sampler::{ResourceSample, ResourceSampler, SampleError};
pub use snapshot::WorkerSnapshot;
pub use verdict::{RecycleReason, Severity, UnhealthyReason, Verdict};
