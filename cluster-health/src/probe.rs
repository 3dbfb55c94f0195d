//! [`ProbePolicy`] and [`WatchdogPolicy`]: liveness from active probes and heartbeats.

use std::time::Duration;

use crate::{HealthPolicy, RecycleReason, UnhealthyReason, Verdict, WorkerSnapshot};

/// Acts on the results of the active HTTP probe (health path, interval and timeout are the
/// prober's, in cluster-core; this policy reads their outcome from the snapshot).
///
/// - `failure_threshold` failed probes in a row: [`Verdict::Unhealthy`], so the worker is out
///   of rotation at once but keeps running and may recover (one passing probe brings it back).
/// - No passing probe for `unresponsive_timeout` (`unresponsiveTimeout`):
///   [`Verdict::Recycle`] with [`RecycleReason::Unresponsive`].
///
/// PM2 has no built-in probe, so hung workers stay "online" and in rotation (pm2#2197); and
/// gunicorn's timeout kills the whole worker with no graceful path (gunicorn#3136). Here a hung
/// worker first stops getting traffic, then is replaced through the graceful path, whose stop
/// deadline ends in SIGKILL if it is truly frozen.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_health::{HealthPolicy, ProbePolicy, RecycleReason, UnhealthyReason, Verdict, WorkerSnapshot};
///
/// let policy = ProbePolicy::new(Duration::from_secs(30)); // out after 2 failures, replaced after 30 s
/// let failing = WorkerSnapshot {
///     consecutive_probe_failures: 2,
///     since_last_probe_ok: Some(Duration::from_secs(5)),
///     ..WorkerSnapshot::default()
/// };
/// assert_eq!(
///     policy.evaluate(&failing),
///     Verdict::Unhealthy(UnhealthyReason::ProbeFailing { consecutive_failures: 2 })
/// );
/// let silent = WorkerSnapshot { since_last_probe_ok: Some(Duration::from_secs(31)), ..failing };
/// assert!(matches!(policy.evaluate(&silent), Verdict::Recycle(RecycleReason::Unresponsive { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePolicy {
    /// Failed probes in a row that take the worker out of rotation (at least 1).
    pub failure_threshold: u32,
    /// Time without a passing probe after which the worker is replaced.
    pub unresponsive_timeout: Duration,
}

impl ProbePolicy {
    /// A policy with the given timeout and a failure threshold of 2.
    pub fn new(unresponsive_timeout: Duration) -> Self {
        ProbePolicy { failure_threshold: 2, unresponsive_timeout }
    }
}

impl HealthPolicy for ProbePolicy {
    fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict {
        let Some(since_ok) = worker.since_last_probe_ok else {
            return Verdict::Healthy;
        };
        if since_ok >= self.unresponsive_timeout {
            return Verdict::Recycle(RecycleReason::Unresponsive { silent_for: since_ok });
        }
        let failures = worker.consecutive_probe_failures;
        if failures >= self.failure_threshold.max(1) {
            return Verdict::Unhealthy(UnhealthyReason::ProbeFailing {
                consecutive_failures: failures,
            });
        }
        Verdict::Healthy
    }
}

/// Replaces a worker that announced heartbeats and then stopped sending them, like systemd's
/// `WatchdogSec=` for `WATCHDOG=1`. Workers that never sent a heartbeat are left alone:
/// heartbeats are optional, and such workers are covered by the [`ProbePolicy`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_health::{HealthPolicy, RecycleReason, Verdict, WatchdogPolicy, WorkerSnapshot};
///
/// let policy = WatchdogPolicy { timeout: Duration::from_secs(10) };
/// let quiet = WorkerSnapshot { since_last_heartbeat: Some(Duration::from_secs(12)), ..WorkerSnapshot::default() };
/// assert!(matches!(policy.evaluate(&quiet), Verdict::Recycle(RecycleReason::Unresponsive { .. })));
/// // A worker that never sent a heartbeat is left to the probe.
/// assert_eq!(policy.evaluate(&WorkerSnapshot::default()), Verdict::Healthy);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogPolicy {
    /// Time without a heartbeat after which the worker is replaced.
    pub timeout: Duration,
}

impl HealthPolicy for WatchdogPolicy {
    fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict {
        match worker.since_last_heartbeat {
            Some(silent_for) if silent_for >= self.timeout => {
                Verdict::Recycle(RecycleReason::Unresponsive { silent_for })
            }
            _ => Verdict::Healthy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probed(failures: u32, since_ok_ms: Option<u64>) -> WorkerSnapshot {
        WorkerSnapshot {
            consecutive_probe_failures: failures,
            since_last_probe_ok: since_ok_ms.map(Duration::from_millis),
            ..WorkerSnapshot::default()
        }
    }

    #[test]
    fn failures_eject_then_silence_recycles() {
        let p = ProbePolicy::new(Duration::from_secs(10));
        assert_eq!(p.evaluate(&probed(0, Some(500))), Verdict::Healthy);
        assert_eq!(p.evaluate(&probed(1, Some(1500))), Verdict::Healthy);
        assert_eq!(
            p.evaluate(&probed(2, Some(2500))),
            Verdict::Unhealthy(UnhealthyReason::ProbeFailing { consecutive_failures: 2 })
        );
        assert_eq!(
            p.evaluate(&probed(9, Some(10_000))),
            Verdict::Recycle(RecycleReason::Unresponsive { silent_for: Duration::from_secs(10) })
        );
        // A passing probe brings it back.
        assert_eq!(p.evaluate(&probed(0, Some(0))), Verdict::Healthy);
    }

    #[test]
    fn no_probe_configured_means_no_verdict() {
        let p = ProbePolicy { failure_threshold: 0, unresponsive_timeout: Duration::ZERO };
        assert_eq!(p.evaluate(&probed(5, None)), Verdict::Healthy);
        assert!(matches!(p.evaluate(&probed(1, Some(0))), Verdict::Recycle(_)));
    }

    #[test]
    fn watchdog_acts_only_on_workers_that_send_heartbeats() {
        let w = WatchdogPolicy { timeout: Duration::from_secs(5) };
        let silent = |s| WorkerSnapshot { since_last_heartbeat: s, ..WorkerSnapshot::default() };
        assert_eq!(w.evaluate(&silent(None)), Verdict::Healthy);
        assert_eq!(w.evaluate(&silent(Some(Duration::from_secs(4)))), Verdict::Healthy);
        assert!(matches!(w.evaluate(&silent(Some(Duration::from_secs(5)))), Verdict::Recycle(_)));
    }
}
