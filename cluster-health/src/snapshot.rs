//! What a policy knows about one worker at one moment.

use std::time::Duration;

/// One worker's state as the supervisor last measured it.
///
/// Plain data, cheap to clone; the supervisor builds one per worker on every health tick from
/// the sampler ([`ResourceSampler`](crate::ResourceSampler)), the proxy's counters, the prober
/// and the heartbeat channel. Ages are durations, not instants, so that policies need no clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_health::{MaxRequestsPolicy, Policies, WorkerSnapshot};
///
/// // What the supervisor knows of worker 3 on one tick.
/// let worker = WorkerSnapshot {
///     worker_id: 3,
///     age: Duration::from_secs(120),
///     rss_bytes: Some(90 << 20),
///     cpu_percent: Some(35.0),
///     requests_served: 1_200,
///     ..WorkerSnapshot::default()
/// };
/// let mut policies = Policies::new();
/// policies.max_requests = Some(MaxRequestsPolicy::new(1_000_000));
/// let verdicts = policies.evaluate_all(&[worker], &mut Default::default(), std::time::Instant::now());
/// assert!(verdicts[0].routable());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerSnapshot {
    /// The worker's unique id (a replacement gets a new one). Per-worker jitter derives from it.
    pub worker_id: u64,
    /// Time since the worker became ready.
    pub age: Duration,
    /// Resident memory of the worker's whole process tree, in bytes (`None` until sampled).
    pub rss_bytes: Option<u64>,
    /// CPU share of the worker's process tree, in percent of one core (`None` until two samples).
    pub cpu_percent: Option<f64>,
    /// Requests the proxy has completed on this worker since it started.
    pub requests_served: u64,
    /// Requests completed within the proxy's recent window (the volume behind `error_rate`).
    pub window_requests: u64,
    /// Share of the requests in the recent window that failed (5xx or connection errors), 0 to 1.
    pub error_rate: f64,
    /// Active probes that failed in a row since the last success (0 when the last one passed).
    pub consecutive_probe_failures: u32,
    /// Time since the last successful active probe (`None`: no probe configured).
    pub since_last_probe_ok: Option<Duration>,
    /// Time since the last heartbeat (`READY=1`/`WATCHDOG=1` or an IPC heartbeat); `None` when
    /// the worker never sent one, which is allowed: heartbeats are optional.
    pub since_last_heartbeat: Option<Duration>,
    /// Out of rotation for now for another reason than its error rate (failing probes):
    /// it counts against the outlier policy's cap on ejected workers, and is not judged.
    pub out_of_rotation: bool,
}
