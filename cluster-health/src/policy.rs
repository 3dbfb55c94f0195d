//! The [`HealthPolicy`] trait: a stateless rule over one worker's snapshot.

use std::fmt;

use crate::{Verdict, WorkerSnapshot};

/// Decides, from one snapshot, what should happen to one worker.
///
/// This is the extension point for custom rules. The built-in rules that need memory between
/// ticks ([`MemoryPolicy`](crate::MemoryPolicy)'s hysteresis) or need the peers
/// ([`OutlierPolicy`](crate::OutlierPolicy)) take that state explicitly instead, and
/// [`Policies`](crate::Policies) runs them all.
///
/// # Contract
///
/// - `evaluate` is a pure function of the snapshot and the policy's own configuration: no
///   I/O, no clock (the snapshot carries the ages), so the same input gives the same verdict.
/// - It returns [`Verdict::Healthy`] when it has nothing to say; the caller combines the
///   verdicts of all policies and acts on the most severe one.
/// - It is called on every health tick for every worker: keep it cheap.
///
/// # Examples
///
/// A rule of your own: replace a worker after an hour, whatever its health.
///
/// ```
/// use std::time::Duration;
/// use cluster_health::{HealthPolicy, Policies, RecycleReason, Verdict, WorkerSnapshot};
///
/// #[derive(Debug)]
/// struct MaxAge(Duration);
///
/// impl HealthPolicy for MaxAge {
///     fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict {
///         if worker.age > self.0 { Verdict::Recycle(RecycleReason::Requested) } else { Verdict::Healthy }
///     }
/// }
///
/// let policy = MaxAge(Duration::from_secs(3600));
/// let old = WorkerSnapshot { age: Duration::from_secs(4000), ..WorkerSnapshot::default() };
/// assert_eq!(policy.evaluate(&old), Verdict::Recycle(RecycleReason::Requested));
/// let _policies = Policies::new().with_custom(policy);
/// ```
pub trait HealthPolicy: Send + Sync + fmt::Debug {
    /// Judges one worker.
    fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict;
}
