//! [`MaxRequestsPolicy`]: recycle after a number of requests, staggered per worker.

use crate::{HealthPolicy, RecycleReason, Verdict, WorkerSnapshot};

/// Recycles a worker once it has served its maximum number of requests
/// (`performance.maxRequestsPerWorker`), a guard against slow leaks in the application.
///
/// Each worker's limit is the configured one moved by a deterministic jitter of up to
/// ± `jitter` (a fraction, 0.1 by default) derived from a hash of the worker id. Workers started
/// together therefore reach their limits at different times and are not recycled together:
/// gunicorn's `max_requests` restarted almost all of Reddit's workers at once until
/// `max_requests_jitter` was added (gunicorn PR #862, #3427). Deterministic (unlike gunicorn's
/// random jitter) so that the limit of a worker can be shown and tested; a replacement gets a
/// new id and so a new limit. The supervisor still runs at most one recycle at a time.
///
/// # Examples
///
/// ```
/// use cluster_health::{HealthPolicy, MaxRequestsPolicy, RecycleReason, Verdict, WorkerSnapshot};
///
/// let policy = MaxRequestsPolicy::new(10_000); // ±10 %, fixed per worker id
/// let limit = policy.limit_for(7);
/// assert!((9_000..=11_000).contains(&limit));
/// let worker = WorkerSnapshot { worker_id: 7, requests_served: limit, ..WorkerSnapshot::default() };
/// assert_eq!(
///     policy.evaluate(&worker),
///     Verdict::Recycle(RecycleReason::MaxRequests { served: limit, limit })
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MaxRequestsPolicy {
    /// The configured maximum before jitter (at least 1).
    pub max_requests: u64,
    /// The jitter as a fraction of `max_requests`, from 0 (none) to 0.5.
    pub jitter: f64,
}

impl MaxRequestsPolicy {
    /// A policy with limit `max_requests` and the default ±10 % jitter.
    pub fn new(max_requests: u64) -> Self {
        MaxRequestsPolicy { max_requests, jitter: 0.1 }
    }

    /// The limit of the worker with id `worker_id`, after jitter; never below 1.
    pub fn limit_for(&self, worker_id: u64) -> u64 {
        let base = self.max_requests.max(1);
        let span = (base as f64 * self.jitter.clamp(0.0, 0.5)) as u64;
        if span == 0 {
            return base;
        }
        let offset = splitmix64(worker_id) % (2 * span + 1);
        (base - span + offset).max(1)
    }
}

impl HealthPolicy for MaxRequestsPolicy {
    fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict {
        let limit = self.limit_for(worker.worker_id);
        if worker.requests_served >= limit {
            Verdict::Recycle(RecycleReason::MaxRequests { served: worker.requests_served, limit })
        } else {
            Verdict::Healthy
        }
    }
}

/// A fixed, well-mixing 64-bit hash (SplitMix64's finalizer): consecutive ids spread evenly.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(id: u64, n: u64) -> WorkerSnapshot {
        WorkerSnapshot { worker_id: id, requests_served: n, ..WorkerSnapshot::default() }
    }

    #[test]
    fn recycles_at_the_worker_s_own_limit() {
        let p = MaxRequestsPolicy::new(1000);
        let limit = p.limit_for(7);
        assert_eq!(p.evaluate(&served(7, limit - 1)), Verdict::Healthy);
        assert_eq!(
            p.evaluate(&served(7, limit)),
            Verdict::Recycle(RecycleReason::MaxRequests { served: limit, limit })
        );
        assert_eq!(p.limit_for(7), limit, "deterministic");
    }

    #[test]
    fn jitter_spreads_100_workers_over_the_band() {
        let p = MaxRequestsPolicy::new(10_000);
        let limits: Vec<u64> = (0..100).map(|id| p.limit_for(id)).collect();
        assert!(limits.iter().all(|&l| (9_000..=11_000).contains(&l)), "{limits:?}");
        let (min, max) = (*limits.iter().min().unwrap(), *limits.iter().max().unwrap());
        assert!(max - min >= 1_600, "spread {min}..{max}");
        let mut distinct = limits.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() >= 95, "{} distinct limits", distinct.len());
        // No 1 % band (100 requests) holds many workers: they do not recycle together.
        let crowded =
            limits.iter().map(|&l| limits.iter().filter(|&&m| m >= l && m < l + 100).count()).max();
        assert!(crowded.unwrap() <= 15, "{crowded:?} workers within 100 requests of each other");
    }

    #[test]
    fn no_jitter_and_tiny_limits() {
        let p = MaxRequestsPolicy { max_requests: 50, jitter: 0.0 };
        assert!((0..100).all(|id| p.limit_for(id) == 50));
        let tiny = MaxRequestsPolicy::new(0);
        assert!((0..100).all(|id| tiny.limit_for(id) == 1));
        assert!(
            (0..100).all(|id| MaxRequestsPolicy::new(5).limit_for(id) == 5),
            "10 % of 5 rounds to 0"
        );
    }
}
