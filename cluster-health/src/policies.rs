//! [`Policies`]: the configured policies run together, most severe verdict wins.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::{
    HealthPolicy, MaxRequestsPolicy, MemoryPolicy, MemoryState, OutlierPolicy, OutlierState,
    ProbePolicy, Verdict, WatchdogPolicy, WorkerSnapshot,
};

/// The health policies a cluster is configured with, evaluated together once per tick.
///
/// Each field is one rule, `None` (or empty) when not configured, so the configuration maps onto
/// it field by field. [`evaluate_all`](Self::evaluate_all) returns, per worker, the most severe
/// verdict of all rules ([`Verdict::max`]); on a tie the first rule in this order gives the
/// reason: memory, probe, watchdog, max requests, outlier, custom.
///
/// Not `Clone`: custom policies are trait objects. Build it once from the validated
/// configuration and share it behind an `Arc` if needed.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::{
///     HealthPolicy, HealthState, MemoryPolicy, Policies, ProbePolicy, UnhealthyReason, Verdict,
///     WorkerSnapshot,
/// };
///
/// /// Out of rotation while the worker reports more than 10 % errors.
/// #[derive(Debug)]
/// struct ErrorBudget;
///
/// impl HealthPolicy for ErrorBudget {
///     fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict {
///         if worker.error_rate > 0.1 {
///             Verdict::Unhealthy(UnhealthyReason::Other("over the error budget".into()))
///         } else {
///             Verdict::Healthy
///         }
///     }
/// }
///
/// let mut policies = Policies::new().with_custom(ErrorBudget);
/// policies.memory = Some(MemoryPolicy::new(512));
/// policies.probe = Some(ProbePolicy::new(Duration::from_secs(30)));
/// let mut state = HealthState::default();
/// let worker = WorkerSnapshot { worker_id: 1, error_rate: 0.5, ..WorkerSnapshot::default() };
/// let verdicts = policies.evaluate_all(&[worker], &mut state, Instant::now());
/// assert!(!verdicts[0].routable());
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Policies {
    /// Soft and hard memory limits (`maxMemoryUsage`, `restartOnHighMemory`).
    pub memory: Option<MemoryPolicy>,
    /// Active probe results and `unresponsiveTimeout`.
    pub probe: Option<ProbePolicy>,
    /// Heartbeat timeout for workers that send heartbeats.
    pub watchdog: Option<WatchdogPolicy>,
    /// `performance.maxRequestsPerWorker`, with per-worker jitter.
    pub max_requests: Option<MaxRequestsPolicy>,
    /// Error-rate outlier ejection.
    pub outlier: Option<OutlierPolicy>,
    /// Custom stateless rules, asked last.
    pub custom: Vec<Box<dyn HealthPolicy>>,
}

/// Everything the stateful policies remember between ticks, for all workers.
///
/// Owned by the supervisor and passed to every [`Policies::evaluate_all`] call, which forgets
/// workers absent from the call; keeping it outside the policies keeps them pure and lets a
/// test replay a sequence of ticks.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use cluster_health::{HealthState, MemoryPolicy, Policies, WorkerSnapshot};
///
/// let mut policies = Policies::new();
/// policies.memory = Some(MemoryPolicy::new(100));
/// let mut state = HealthState::default();
/// let worker = WorkerSnapshot { worker_id: 4, age: Duration::from_secs(600), rss_bytes: Some(150 << 20), ..WorkerSnapshot::default() };
/// policies.evaluate_all(&[worker], &mut state, Instant::now());
/// assert_eq!(state.memory(4).over_soft_limit, 1); // what the memory policy remembers of worker 4
/// assert!(!state.outlier().is_ejected(4, Instant::now()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct HealthState {
    memory: BTreeMap<u64, MemoryState>,
    outlier: OutlierState,
}

impl HealthState {
    /// The memory hysteresis of one worker.
    pub fn memory(&self, worker_id: u64) -> MemoryState {
        self.memory.get(&worker_id).copied().unwrap_or_default()
    }

    /// The outlier ejections (who is ejected or on probation).
    pub fn outlier(&self) -> &OutlierState {
        &self.outlier
    }
}

impl Policies {
    /// No policy: every worker is healthy.
    pub fn new() -> Self {
        Policies::default()
    }

    /// Adds a custom rule.
    #[must_use]
    pub fn with_custom(mut self, policy: impl HealthPolicy + 'static) -> Self {
        self.custom.push(Box::new(policy));
        self
    }

    /// Judges every worker at `now` and advances `state`; one verdict per snapshot, in order.
    ///
    /// Verdicts are levels, not edges: a worker over its limit is reported on every tick until
    /// it is gone, and the supervisor starts one replacement for it, not one per tick.
    pub fn evaluate_all(
        &self,
        workers: &[WorkerSnapshot],
        state: &mut HealthState,
        now: Instant,
    ) -> Vec<Verdict> {
        state.memory.retain(|id, _| workers.iter().any(|w| w.worker_id == *id));
        let outliers = match &self.outlier {
            Some(p) => p.evaluate_all(workers, &mut state.outlier, now),
            None => vec![Verdict::Healthy; workers.len()],
        };
        workers
            .iter()
            .zip(outliers)
            .map(|(w, outlier)| {
                let mut v = Verdict::Healthy;
                if let Some(p) = &self.memory {
                    v = v.max(p.evaluate(w, state.memory.entry(w.worker_id).or_default()));
                }
                let stateless: [Option<&dyn HealthPolicy>; 3] = [
                    self.probe.as_ref().map(|p| p as &dyn HealthPolicy),
                    self.watchdog.as_ref().map(|p| p as &dyn HealthPolicy),
                    self.max_requests.as_ref().map(|p| p as &dyn HealthPolicy),
                ];
                for p in stateless.into_iter().flatten() {
                    v = v.max(p.evaluate(w));
                }
                v = v.max(outlier);
                for p in &self.custom {
                    v = v.max(p.evaluate(w));
                }
                v
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{RecycleReason, UnhealthyReason};

    const MB: u64 = 1024 * 1024;

    #[derive(Debug)]
    struct AlwaysUnhealthy;

    impl HealthPolicy for AlwaysUnhealthy {
        fn evaluate(&self, _: &WorkerSnapshot) -> Verdict {
            Verdict::Unhealthy(UnhealthyReason::Other("custom".into()))
        }
    }

    fn worker(id: u64) -> WorkerSnapshot {
        WorkerSnapshot {
            worker_id: id,
            age: Duration::from_secs(600),
            rss_bytes: Some(10 * MB),
            ..Default::default()
        }
    }

    #[test]
    fn no_policy_means_healthy() {
        let v =
            Policies::new().evaluate_all(&[worker(1)], &mut HealthState::default(), Instant::now());
        assert_eq!(v, [Verdict::Healthy]);
    }

    #[test]
    fn the_most_severe_verdict_wins_with_its_reason() {
        let mut policies = Policies::new().with_custom(AlwaysUnhealthy);
        policies.memory = Some(MemoryPolicy { consecutive_samples: 1, ..MemoryPolicy::new(100) });
        policies.max_requests = Some(MaxRequestsPolicy { max_requests: 10, jitter: 0.0 });
        let mut state = HealthState::default();
        let now = Instant::now();
        let over_soft =
            WorkerSnapshot { rss_bytes: Some(120 * MB), requests_served: 50, ..worker(1) };
        let over_hard =
            WorkerSnapshot { rss_bytes: Some(200 * MB), requests_served: 50, ..worker(2) };
        let quiet = worker(3);
        let v = policies.evaluate_all(&[over_soft, over_hard, quiet], &mut state, now);
        // Memory and max requests both recycle worker 1: memory, asked first, names the reason.
        assert_eq!(
            v[0],
            Verdict::Recycle(RecycleReason::Memory { rss_bytes: 120 * MB, limit_bytes: 100 * MB })
        );
        assert!(matches!(v[1], Verdict::Kill(RecycleReason::MemoryHardLimit { .. })));
        assert_eq!(v[2], Verdict::Unhealthy(UnhealthyReason::Other("custom".into())));
        assert_eq!(state.memory(1).over_soft_limit, 1);
    }

    #[test]
    fn state_follows_the_workers_present() {
        let mut policies = Policies::new();
        policies.memory = Some(MemoryPolicy::new(100));
        policies.probe = Some(ProbePolicy::new(Duration::from_secs(5)));
        policies.outlier = Some(OutlierPolicy::default());
        let mut state = HealthState::default();
        let now = Instant::now();
        let high = WorkerSnapshot { rss_bytes: Some(120 * MB), ..worker(1) };
        policies.evaluate_all(std::slice::from_ref(&high), &mut state, now);
        policies.evaluate_all(std::slice::from_ref(&high), &mut state, now);
        assert_eq!(state.memory(1).over_soft_limit, 2);
        policies.evaluate_all(&[worker(2)], &mut state, now);
        assert_eq!(state.memory(1).over_soft_limit, 0, "a departed worker is forgotten");
        let failing = WorkerSnapshot {
            consecutive_probe_failures: 3,
            since_last_probe_ok: Some(Duration::from_secs(3)),
            ..worker(2)
        };
        let v = policies.evaluate_all(&[failing], &mut state, now);
        assert!(matches!(
            v[0],
            Verdict::Unhealthy(UnhealthyReason::ProbeFailing { consecutive_failures: 3 })
        ));
        assert!(!state.outlier().is_ejected(2, now));
    }
}
