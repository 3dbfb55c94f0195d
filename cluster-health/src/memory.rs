//! [`MemoryPolicy`]: soft and hard memory limits with hysteresis and a minimum age.

use std::time::Duration;

use crate::{RecycleReason, Verdict, WorkerSnapshot};

/// Replaces a worker whose process tree holds too much memory.
///
/// - **Soft limit** (`maxMemoryUsage`, with `restartOnHighMemory`): once the worker has been
///   over it for `consecutive_samples` samples in a row and is at least `min_age` old, the
///   verdict is [`Verdict::Recycle`] (spawn, ready, drain, stop: no request is cut off).
/// - **Hard limit** (by default 1.5 × the soft limit): one sample over it gives
///   [`Verdict::Kill`], whatever the worker's age, because a tree growing that fast endangers
///   the host more than the requests it holds; the supervisor's crash back-off bounds the
///   restarts if the limit is set too low.
///
/// This answers PM2's coarse 30 s memory check that cuts in-flight work (pm2#1857, #5562) and
/// the worker killers that thrash (puma_worker_killer, gitlab#32646): the caller samples every
/// few seconds, the soft path drains, and hysteresis plus `min_age` keep a limit set below a
/// worker's start-up footprint from recycling it in a loop.
///
/// Hysteresis needs memory between ticks; it is carried in a [`MemoryState`] per worker that
/// the caller owns (or that [`Policies`](crate::Policies) keeps), so `evaluate` stays a pure
/// function of (configuration, snapshot, state).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_health::{MemoryPolicy, MemoryState, RecycleReason, Verdict, WorkerSnapshot};
///
/// let policy = MemoryPolicy::new(512); // 512 MB soft, 768 MB hard, 3 samples in a row
/// let mut state = MemoryState::default();
/// let worker = WorkerSnapshot {
///     worker_id: 1,
///     age: Duration::from_secs(600),
///     rss_bytes: Some(800 << 20),
///     ..WorkerSnapshot::default()
/// };
/// // Over the hard limit: stopped at once, no hysteresis.
/// assert!(matches!(policy.evaluate(&worker, &mut state), Verdict::Kill(RecycleReason::MemoryHardLimit { .. })));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPolicy {
    /// The soft limit, in bytes.
    pub soft_limit_bytes: u64,
    /// The hard limit, in bytes (`None`: no hard limit).
    pub hard_limit_bytes: Option<u64>,
    /// Whether going over the soft limit recycles (`restartOnHighMemory`); when false, only
    /// the hard limit acts.
    pub recycle_on_soft_limit: bool,
    /// Samples in a row over the soft limit before a recycle (at least 1).
    pub consecutive_samples: u32,
    /// Minimum age (since ready) before a soft-limit recycle.
    pub min_age: Duration,
}

/// Per-worker memory of a [`MemoryPolicy`]: how many samples in a row were over the soft limit.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_health::{MemoryPolicy, MemoryState, Verdict, WorkerSnapshot};
///
/// let policy = MemoryPolicy::new(100);
/// let mut state = MemoryState::default();
/// let worker = WorkerSnapshot { age: Duration::from_secs(600), rss_bytes: Some(120 << 20), ..WorkerSnapshot::default() };
/// assert_eq!(policy.evaluate(&worker, &mut state), Verdict::Healthy); // 1 of 3 samples over
/// assert_eq!(state.over_soft_limit, 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryState {
    /// Consecutive samples over the soft limit (0 after a sample under it).
    pub over_soft_limit: u32,
}

impl MemoryPolicy {
    /// A policy with soft limit `soft_limit_mb` MiB (`maxMemoryUsage`) and the defaults: hard
    /// limit 1.5 × soft, recycle on the soft limit, 3 samples in a row, minimum age 30 s.
    pub fn new(soft_limit_mb: u64) -> Self {
        let soft = soft_limit_mb.saturating_mul(1024 * 1024);
        MemoryPolicy {
            soft_limit_bytes: soft,
            hard_limit_bytes: Some(soft.saturating_add(soft / 2)),
            recycle_on_soft_limit: true,
            consecutive_samples: 3,
            min_age: Duration::from_secs(30),
        }
    }

    /// Judges one worker and advances its `state`. A snapshot without an RSS figure leaves the
    /// state as it was.
    pub fn evaluate(&self, worker: &WorkerSnapshot, state: &mut MemoryState) -> Verdict {
        let Some(rss) = worker.rss_bytes else {
            return Verdict::Healthy;
        };
        if rss > self.soft_limit_bytes {
            state.over_soft_limit = state.over_soft_limit.saturating_add(1);
        } else {
            state.over_soft_limit = 0;
        }
        if let Some(hard) = self.hard_limit_bytes.filter(|&hard| rss > hard) {
            return Verdict::Kill(RecycleReason::MemoryHardLimit {
                rss_bytes: rss,
                limit_bytes: hard,
            });
        }
        if self.recycle_on_soft_limit
            && state.over_soft_limit >= self.consecutive_samples.max(1)
            && worker.age >= self.min_age
        {
            return Verdict::Recycle(RecycleReason::Memory {
                rss_bytes: rss,
                limit_bytes: self.soft_limit_bytes,
            });
        }
        Verdict::Healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    fn snap(rss_mb: u64, age_s: u64) -> WorkerSnapshot {
        WorkerSnapshot {
            rss_bytes: Some(rss_mb * MB),
            age: Duration::from_secs(age_s),
            ..WorkerSnapshot::default()
        }
    }

    #[test]
    fn recycles_only_after_k_samples_in_a_row_over_the_soft_limit() {
        let p = MemoryPolicy::new(100);
        let mut st = MemoryState::default();
        assert_eq!(p.evaluate(&snap(120, 60), &mut st), Verdict::Healthy);
        assert_eq!(p.evaluate(&snap(120, 61), &mut st), Verdict::Healthy);
        // A dip under the limit resets the count.
        assert_eq!(p.evaluate(&snap(90, 62), &mut st), Verdict::Healthy);
        assert_eq!(st.over_soft_limit, 0);
        for _ in 0..2 {
            assert_eq!(p.evaluate(&snap(120, 63), &mut st), Verdict::Healthy);
        }
        assert_eq!(
            p.evaluate(&snap(120, 64), &mut st),
            Verdict::Recycle(RecycleReason::Memory { rss_bytes: 120 * MB, limit_bytes: 100 * MB })
        );
    }

    #[test]
    fn a_young_worker_is_not_recycled_for_the_soft_limit() {
        let p = MemoryPolicy::new(100);
        let mut st = MemoryState::default();
        for age in 0..29 {
            assert_eq!(p.evaluate(&snap(120, age), &mut st), Verdict::Healthy, "age {age}");
        }
        assert!(matches!(p.evaluate(&snap(120, 30), &mut st), Verdict::Recycle(_)));
    }

    #[test]
    fn the_hard_limit_kills_at_once_at_any_age() {
        let p = MemoryPolicy::new(100);
        let mut st = MemoryState::default();
        assert_eq!(
            p.evaluate(&snap(151, 0), &mut st),
            Verdict::Kill(RecycleReason::MemoryHardLimit {
                rss_bytes: 151 * MB,
                limit_bytes: 150 * MB
            })
        );
        assert_eq!(
            p.evaluate(&snap(150, 0), &mut st),
            Verdict::Healthy,
            "at the limit is not over it"
        );
    }

    #[test]
    fn without_restart_on_high_memory_only_the_hard_limit_acts() {
        let p = MemoryPolicy { recycle_on_soft_limit: false, ..MemoryPolicy::new(100) };
        let mut st = MemoryState::default();
        for _ in 0..10 {
            assert_eq!(p.evaluate(&snap(140, 100), &mut st), Verdict::Healthy);
        }
        assert!(matches!(p.evaluate(&snap(200, 100), &mut st), Verdict::Kill(_)));
        let no_hard = MemoryPolicy { hard_limit_bytes: None, ..p };
        assert_eq!(no_hard.evaluate(&snap(10_000, 100), &mut st), Verdict::Healthy);
    }

    #[test]
    fn an_unsampled_worker_keeps_its_count() {
        let p = MemoryPolicy {
            consecutive_samples: 2,
            min_age: Duration::ZERO,
            ..MemoryPolicy::new(100)
        };
        let mut st = MemoryState::default();
        p.evaluate(&snap(120, 1), &mut st);
        let none = WorkerSnapshot { rss_bytes: None, ..snap(0, 1) };
        assert_eq!(p.evaluate(&none, &mut st), Verdict::Healthy);
        assert_eq!(st.over_soft_limit, 1);
        assert!(matches!(p.evaluate(&snap(120, 1), &mut st), Verdict::Recycle(_)));
    }
}
