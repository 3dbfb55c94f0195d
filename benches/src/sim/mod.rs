//! A deterministic, seeded, discrete-event simulation of tail latency behind each strategy.
//!
//! N workers, each with a FIFO queue and a fixed number of requests served at once, take
//! open-loop arrivals (Poisson or bursty, so a stall is never hidden by a waiting client).
//! Every arrival is placed by the **real** strategy code: the simulation keeps a
//! [`BackendLoad`](cluster_balancer::BackendLoad) per worker, holds an
//! [`InFlight`](cluster_balancer::InFlight) guard from pick to completion, feeds
//! `observe_latency_at` and `set_cpu_share` (sampled every 100 ms) as the proxy and the
//! health sampler will, and moves a `ManualClock` that time-aware strategies read.
//! Same seed, same numbers.
//!
//! Run the standard scenarios with `cargo bench -p benches --bench simulate`.

mod engine;
mod model;
mod report;

pub use engine::{CLIENTS, CPU_SAMPLE_EVERY, Outcome, RTT_DECAY, run};
pub use model::{Arrivals, MS, Scenario, WorkerModel};
pub use report::{Contender, SLOW_START, contenders, run_all, table};
