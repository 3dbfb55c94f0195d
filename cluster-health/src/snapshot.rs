//! What a policy knows about one worker at one moment.

use std::time::Duration;

/// One worker's state as the supervisor last measured it.
///
/// Plain data, cheap to clone; built by the supervisor for every health tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerSnapshot {
    /// The worker's unique id.
    pub worker_id: u64,
    /// Resident memory of the worker's whole process tree, in bytes (`None` until sampled).
    pub rss_bytes: Option<u64>,
    /// CPU share of the worker's process tree over the last interval, in percent of one core.
    pub cpu_percent: Option<f64>,
    /// Requests the proxy has completed on this worker.
    pub requests_served: u64,
    /// Share of the recent requests that failed (5xx or connection errors), from 0 to 1.
    pub error_rate: f64,
    /// Time since the last successful active probe (`None`: no probe configured or none yet).
    pub since_last_probe_ok: Option<Duration>,
    /// Time since the worker became ready.
    pub age: Duration,
}
