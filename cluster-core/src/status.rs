//! A point-in-time view of the cluster, as returned by
//! [`ClusterHandle::status`](crate::ClusterHandle::status).

use std::net::SocketAddr;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    AccessLogCounts, Endpoint, MetricsSnapshot, OperationKind, Rotation, WindowRates, WorkerState,
};

/// The cluster as the supervisor sees it at one moment.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let status = handle.status().await?;
/// println!("{} on {} ({}): {}/{} ready", status.mode.name(), status.listen, status.strategy, status.ready_workers, status.desired_workers);
/// println!("{}", serde_json::to_string_pretty(&status).unwrap()); // the admin API's JSON
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClusterStatus {
    /// The front address.
    pub listen: SocketAddr,
    /// The data plane: `proxy`, or `shared-socket` (the workers accept on the front socket,
    /// the kernel balances connections, and the per-request figures below stay at zero).
    pub mode: crate::config::Mode,
    /// The balancing strategy in use; `kernel` in shared-socket mode.
    pub strategy: &'static str,
    /// Workers the cluster keeps ready: the configured count, changed by scaling.
    pub desired_workers: usize,
    /// Workers in the routing table now.
    pub ready_workers: usize,
    /// The current deploy generation: new workers belong to it; a rolling restart starts the
    /// next one.
    pub generation: u64,
    /// The operation under way (rolling restart, restart, rollback), if any.
    pub operation: Option<OperationStatus>,
    /// The scaling bounds and whether autoscaling is on.
    pub scaling: ScalingStatus,
    /// The control plane's counters since the cluster started.
    pub counters: ControlCounters,
    /// Whether shutdown has begun.
    pub shutting_down: bool,
    /// Every live worker process.
    pub workers: Vec<WorkerStatus>,
    /// Slots whose worker keeps exiting soon after start.
    pub crash_looping_slots: Vec<usize>,
    /// Requests the proxy has completed or failed on the live workers.
    pub total_requests: u64,
    /// Errors (5xx, unreachable, timed out) among them.
    pub total_errors: u64,
    /// Mean time to response head over those requests, in milliseconds.
    pub average_response_time_ms: Option<f64>,
    /// The summary block of the original Node design's status.
    pub health: HealthSummary,
    /// Cluster totals of the per-worker rates over the sliding window.
    pub rates: WindowRates,
    /// Lines of the access log written and dropped since start; `None` when the access log
    /// is off (`security.enableRequestLogging`).
    pub access_log: Option<AccessLogCounts>,
}

/// An operation under way.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let status = handle.status().await?;
/// if let Some(op) = &status.operation {
///     println!("{} {}: {}/{} workers replaced", op.kind, op.id, op.done, op.total);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OperationStatus {
    /// Its id (events carry it too).
    pub id: u64,
    /// What it does.
    pub kind: OperationKind,
    /// Workers replaced so far.
    pub done: usize,
    /// Workers it replaces in all, as things stand (a scale change moves it).
    pub total: usize,
    /// The generation it moves the workers to.
    pub generation: u64,
}

/// The control plane's counters since the cluster started (the Prometheus counters of the
/// control plane).
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let status = handle.status().await?;
/// let counters = &status.counters;
/// println!("{} recycles for memory", counters.recycles.get("memory").copied().unwrap_or(0));
/// println!("{} scale changes, {} by the autoscaler", counters.scale_changes, counters.autoscale_up + counters.autoscale_down);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ControlCounters {
    /// Worker exits by reason: `crash`, `failed-start`, `killed`, `unresponsive`, `recycled`,
    /// `rolling-restart`, `restart`, `scale-down`, `stopped-by-itself`, `cancelled`,
    /// `shutdown`.
    pub exits: BTreeMap<String, u64>,
    /// Recycles started, by cause: `memory`, `max-requests`, `unresponsive`, `error-rate`,
    /// `requested`, `other`.
    pub recycles: BTreeMap<String, u64>,
    /// Operations by kind (`rolling-restart`, `restart`, `rollback`).
    pub operations: BTreeMap<String, OperationCounts>,
    /// Workers the autoscaler added.
    pub autoscale_up: u64,
    /// Workers the autoscaler removed.
    pub autoscale_down: u64,
    /// Changes of the worker count, by anyone.
    pub scale_changes: u64,
}

/// How many operations of one kind started, finished and failed.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let status = handle.status().await?;
/// if let Some(rolls) = status.counters.operations.get("rolling-restart") {
///     println!("{} started, {} finished, {} failed", rolls.started, rolls.finished, rolls.failed);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OperationCounts {
    /// Started.
    pub started: u64,
    /// Completed.
    pub finished: u64,
    /// Failed or interrupted.
    pub failed: u64,
}

/// The scaling bounds.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let status = handle.status().await?;
/// let scaling = &status.scaling;
/// println!("{}..={} workers, autoscale {}", scaling.min_workers, scaling.max_workers, scaling.auto_scale);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ScalingStatus {
    /// `scaling.minWorkers`.
    pub min_workers: usize,
    /// `scaling.maxWorkers`.
    pub max_workers: usize,
    /// `scaling.autoScale`.
    pub auto_scale: bool,
}

/// The `health` block of the original design's status: totals and averages over the live
/// workers. Memory in MB, CPU in percent of one core.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let status = handle.status().await?;
/// let health = &status.health;
/// println!("{}/{} healthy, {:.0} MB in all", health.healthy_workers, health.total_workers, health.memory_usage.total);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HealthSummary {
    /// Live worker processes.
    pub total_workers: usize,
    /// Workers in rotation.
    pub healthy_workers: usize,
    /// Requests over the live workers.
    pub total_requests: u64,
    /// Mean time to response head, ms (0 before the first request).
    pub average_response_time: f64,
    /// Resident memory of the workers' process trees.
    pub memory_usage: Spread,
    /// CPU of the workers' process trees.
    pub cpu_usage: Spread,
    /// Errors over the live workers.
    pub errors: ErrorSummary,
}

/// Total, average and peak of one figure over the sampled workers.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let status = handle.status().await?;
/// let memory = &status.health.memory_usage;
/// println!("memory: {:.0} MB in all, {:.0} on average, {:.0} at most", memory.total, memory.average, memory.peak);
/// println!("CPU: {:.0} % at most", status.health.cpu_usage.peak);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Spread {
    /// Sum over the workers.
    pub total: f64,
    /// Mean over the workers sampled.
    pub average: f64,
    /// Largest value.
    pub peak: f64,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let (mut total, mut peak, mut n) = (0.0, 0.0f64, 0usize);
        for v in values {
            total += v;
            peak = peak.max(v);
            n += 1;
        }
        Spread { total, average: if n == 0 { 0.0 } else { total / n as f64 }, peak }
    }
}

/// Error totals.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let status = handle.status().await?;
/// let errors = &status.health.errors;
/// println!("{} errors, {:.2} per second", errors.total, errors.rate);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ErrorSummary {
    /// Errors counted.
    pub total: u64,
    /// Share of requests that failed, 0 to 1.
    pub rate: f64,
}

impl HealthSummary {
    /// Summarizes `workers`, of which `healthy` are in rotation.
    pub(crate) fn of(workers: &[WorkerStatus], healthy: usize) -> Self {
        let total_requests: u64 = workers.iter().map(|w| w.metrics.requests).sum();
        let total_errors: u64 = workers.iter().map(|w| w.metrics.errors).sum();
        let weighted: f64 = workers
            .iter()
            .filter_map(|w| Some(w.metrics.latency_mean_ms? * w.metrics.requests as f64))
            .sum();
        let per_request =
            |x: f64| if total_requests == 0 { 0.0 } else { x / total_requests as f64 };
        HealthSummary {
            total_workers: workers.len(),
            healthy_workers: healthy,
            total_requests,
            average_response_time: per_request(weighted),
            memory_usage: Spread::of(
                workers.iter().filter_map(|w| w.rss_bytes).map(|b| b as f64 / (1024.0 * 1024.0)),
            ),
            cpu_usage: Spread::of(workers.iter().filter_map(|w| w.cpu_percent)),
            errors: ErrorSummary { total: total_errors, rate: per_request(total_errors as f64) },
        }
    }
}

/// One worker process.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// let status = handle.status().await?;
/// for w in &status.workers {
///     println!("{} (slot {}, pid {}) {} {}: {} in flight", w.worker_id, w.slot, w.pid, w.status.as_str(), w.rotation.as_str(), w.in_flight);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WorkerStatus {
    /// Unique id.
    pub worker_id: u64,
    /// Slot (`NODE_APP_INSTANCE`).
    pub slot: usize,
    /// Process id.
    pub pid: u32,
    /// The deploy generation that started it.
    pub generation: u64,
    /// Lifecycle state.
    pub status: WorkerState,
    /// Whether it receives requests when ready: in, ejected, or leaving.
    pub rotation: Rotation,
    /// Why it is leaving, once it is.
    pub leaving_reason: Option<String>,
    /// The worker it was started to replace, until it takes over.
    pub replaces: Option<u64>,
    /// Private endpoint: `127.0.0.1:40123`, or `unix:/path/w3.sock` (`upstream: "unix"`).
    pub addr: Endpoint,
    /// Requests in flight on it (`connections` in JSON, the original design's name).
    #[serde(rename = "connections")]
    pub in_flight: usize,
    /// Restarts its slot has had after an exit (crash or failed start).
    pub restarts: u32,
    /// Replacements of its slot through the recycle path (memory, max requests, probe, ...).
    pub recycles: u32,
    /// Why its slot's worker was last restarted or recycled.
    pub last_restart_reason: Option<String>,
    /// Out of rotation for now (failing probes, or an error-rate outlier), still running.
    pub ejected: bool,
    /// Milliseconds since it started (`uptime` in JSON).
    #[serde(rename = "uptime")]
    pub uptime_ms: u64,
    /// Resident memory of its process tree, in bytes, at the last health tick.
    pub rss_bytes: Option<u64>,
    /// The same in MB (`memoryUsage`, the original design's name).
    pub memory_usage: Option<f64>,
    /// CPU of its process tree, percent of one core, smoothed over two health intervals
    /// (1 to 10 s).
    pub cpu_percent: Option<f64>,
    /// CPU time its process tree has used (user + system, reaped children included), seconds,
    /// at the last health tick.
    pub cpu_seconds: Option<f64>,
    /// What the proxy measured of it (zero until it became ready).
    #[serde(flatten)]
    pub metrics: MetricsSnapshot,
    /// Its rates over the sliding window, at the last health tick.
    pub rates: WindowRates,
    /// The last status line it reported about itself (`STATUS=...` on the notify socket, or
    /// `{"type":"status","status":"..."}` on its IPC channel), at most 256 bytes.
    pub heartbeat_status: Option<String>,
    /// Milliseconds since its last heartbeat (`WATCHDOG=1`, or a message on its IPC channel);
    /// `None` until it sends heartbeats.
    pub last_heartbeat_ms_ago: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricsSnapshot;

    fn worker(id: u64, rss_mb: u64, cpu: f64, requests: u64, errors: u64) -> WorkerStatus {
        let metrics = MetricsSnapshot {
            requests,
            errors,
            latency_mean_ms: Some(2.0),
            ..MetricsSnapshot::default()
        };
        WorkerStatus {
            worker_id: id,
            slot: id as usize,
            pid: 100 + id as u32,
            generation: 1,
            status: WorkerState::Ready,
            rotation: Rotation::In,
            leaving_reason: None,
            replaces: None,
            addr: Endpoint::Tcp(([127, 0, 0, 1], 4000).into()),
            in_flight: 1,
            restarts: 0,
            recycles: 1,
            last_restart_reason: Some("test".into()),
            ejected: false,
            uptime_ms: 1000,
            rss_bytes: Some(rss_mb * 1024 * 1024),
            memory_usage: Some(rss_mb as f64),
            cpu_percent: Some(cpu),
            cpu_seconds: Some(1.5),
            metrics,
            rates: WindowRates::default(),
            heartbeat_status: None,
            last_heartbeat_ms_ago: None,
        }
    }

    #[test]
    fn the_summary_and_the_json_names_of_the_original_design() {
        let workers = [worker(1, 100, 10.0, 30, 3), worker(2, 300, 30.0, 10, 1)];
        let h = HealthSummary::of(&workers, 2);
        assert_eq!((h.total_workers, h.healthy_workers, h.total_requests), (2, 2, 40));
        assert_eq!(h.memory_usage, Spread { total: 400.0, average: 200.0, peak: 300.0 });
        assert_eq!(h.cpu_usage.peak, 30.0);
        assert_eq!(h.errors, ErrorSummary { total: 4, rate: 0.1 });
        assert!((h.average_response_time - 2.0).abs() < 1e-9);
        let json = serde_json::to_value(&workers[0]).unwrap();
        for key in
            ["workerId", "pid", "status", "connections", "requestsHandled", "errors", "uptime"]
                .into_iter()
                .chain(["memoryUsage", "latencyP99Ms", "lastRestartReason", "rates"])
        {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        let json = serde_json::to_value(&h).unwrap();
        for key in ["totalWorkers", "healthyWorkers", "totalRequests", "averageResponseTime"] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        assert_eq!(json["memoryUsage"]["peak"], 300.0);
        assert_eq!(json["errors"]["rate"], 0.1);
        assert_eq!(serde_json::to_value(&workers[1]).unwrap()["memoryUsage"], 300.0);
    }
}
