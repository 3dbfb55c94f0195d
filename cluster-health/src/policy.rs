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
pub trait HealthPolicy: Send + Sync + fmt::Debug {
    /// Judges one worker.
    fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict;
}
