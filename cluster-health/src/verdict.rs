//! What a policy wants done with a worker: [`Verdict`] and its reasons.

use std::fmt;
use std::time::Duration;

/// What a policy wants done with a worker, from least to most severe (see [`Severity`]).
///
/// The actions are separate on purpose (PEER-LESSONS theme 6, gunicorn#3136): taking a worker out
/// of rotation, replacing it gracefully and killing it are three different answers, so that a
/// slow worker is not killed with its in-flight requests when a drain would do.
///
/// # Examples
///
/// ```
/// use cluster_health::{RecycleReason, Severity, UnhealthyReason, Verdict};
///
/// let out = Verdict::Unhealthy(UnhealthyReason::Other("maintenance".into()));
/// let recycle = Verdict::Recycle(RecycleReason::Requested);
/// assert!(Verdict::Healthy.routable() && !out.routable());
/// assert_eq!(out.severity(), Severity::Unhealthy);
/// // Several policies: the most severe verdict wins.
/// assert_eq!(Verdict::Healthy.max(recycle.clone()).max(out), recycle);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Verdict {
    /// Keep routing to it.
    Healthy,
    /// Stop routing to it for now, but keep it running: it may recover.
    Unhealthy(UnhealthyReason),
    /// Replace it gracefully: start a replacement, wait until it is ready, take this one out of
    /// rotation, drain it, stop it (SIGTERM, then SIGKILL at the deadline).
    Recycle(RecycleReason),
    /// Stop it now, without a drain (SIGKILL to its process group), then start a replacement.
    /// Only for a worker that endangers the host, such as one over the hard memory limit.
    Kill(RecycleReason),
}

/// How severe a [`Verdict`] is; the composition acts on the most severe one.
///
/// # Examples
///
/// ```
/// use cluster_health::{RecycleReason, Severity, Verdict};
///
/// assert!(Severity::Healthy < Severity::Unhealthy && Severity::Recycle < Severity::Kill);
/// assert_eq!(Verdict::Kill(RecycleReason::Requested).severity(), Severity::Kill);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// [`Verdict::Healthy`].
    Healthy,
    /// [`Verdict::Unhealthy`].
    Unhealthy,
    /// [`Verdict::Recycle`].
    Recycle,
    /// [`Verdict::Kill`].
    Kill,
}

impl Verdict {
    /// How severe this verdict is.
    pub fn severity(&self) -> Severity {
        match self {
            Verdict::Healthy => Severity::Healthy,
            Verdict::Unhealthy(_) => Severity::Unhealthy,
            Verdict::Recycle(_) => Severity::Recycle,
            Verdict::Kill(_) => Severity::Kill,
        }
    }

    /// Whether the proxy may route requests to the worker under this verdict.
    pub fn routable(&self) -> bool {
        matches!(self, Verdict::Healthy)
    }

    /// The more severe of `self` and `other`; on a tie, `self` (the earlier policy) wins.
    #[must_use]
    pub fn max(self, other: Verdict) -> Verdict {
        if other.severity() > self.severity() { other } else { self }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Healthy => f.write_str("healthy"),
            Verdict::Unhealthy(r) => write!(f, "unhealthy: {r}"),
            Verdict::Recycle(r) => write!(f, "recycle: {r}"),
            Verdict::Kill(r) => write!(f, "kill: {r}"),
        }
    }
}

/// Why a worker is out of rotation while it keeps running.
///
/// # Examples
///
/// ```
/// use cluster_health::UnhealthyReason;
///
/// let reason = UnhealthyReason::ProbeFailing { consecutive_failures: 3 };
/// assert_eq!(reason.to_string(), "3 probes failed in a row");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum UnhealthyReason {
    /// Its active probe failed this many times in a row.
    ProbeFailing {
        /// Consecutive failed probes.
        consecutive_failures: u32,
    },
    /// Its error rate stands far above its peers' (outlier ejection); it returns on probation.
    Ejected {
        /// Its error rate over the window, from 0 to 1.
        error_rate: f64,
        /// The peers' median error rate it was compared with.
        peer_rate: f64,
        /// How long this ejection lasts.
        duration: Duration,
    },
    /// A custom policy's reason.
    Other(String),
}

impl fmt::Display for UnhealthyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnhealthyReason::ProbeFailing { consecutive_failures } => {
                write!(f, "{consecutive_failures} probes failed in a row")
            }
            UnhealthyReason::Ejected { error_rate, peer_rate, duration } => write!(
                f,
                "ejected for {} s: error rate {:.1} % against {:.1} % for its peers",
                duration.as_secs(),
                error_rate * 100.0,
                peer_rate * 100.0
            ),
            UnhealthyReason::Other(reason) => f.write_str(reason),
        }
    }
}

/// Why a worker is being replaced; every recycle is published as an event with its reason.
///
/// # Examples
///
/// ```
/// use cluster_health::RecycleReason;
///
/// let reason = RecycleReason::MaxRequests { served: 10_000, limit: 10_000 };
/// println!("recycling: {reason}"); // the event log's wording
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RecycleReason {
    /// Its memory stayed over the soft limit.
    Memory {
        /// Resident memory of its process tree, in bytes.
        rss_bytes: u64,
        /// The soft limit, in bytes.
        limit_bytes: u64,
    },
    /// Its memory went over the hard limit (comes with [`Verdict::Kill`]).
    MemoryHardLimit {
        /// Resident memory of its process tree, in bytes.
        rss_bytes: u64,
        /// The hard limit, in bytes.
        limit_bytes: u64,
    },
    /// It has served its maximum number of requests (its own, jittered, limit).
    MaxRequests {
        /// Requests served so far.
        served: u64,
        /// This worker's limit after jitter.
        limit: u64,
    },
    /// It has not answered its active probe, or sent a heartbeat, for this long.
    Unresponsive {
        /// Time since the last sign of life.
        silent_for: Duration,
    },
    /// It was ejected as an error-rate outlier this many times in a row.
    ErrorRate {
        /// Consecutive ejections.
        ejections: u32,
    },
    /// An operator asked for it (rolling restart).
    Requested,
    /// A custom policy's reason (see [`HealthPolicy`](crate::HealthPolicy)): a worker past a
    /// maximum age, one that reported itself degraded.
    Other(String),
}

impl fmt::Display for RecycleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MB: u64 = 1024 * 1024;
        match self {
            RecycleReason::Memory { rss_bytes, limit_bytes } => {
                write!(
                    f,
                    "memory {} MB over the {} MB soft limit",
                    rss_bytes / MB,
                    limit_bytes / MB
                )
            }
            RecycleReason::MemoryHardLimit { rss_bytes, limit_bytes } => {
                write!(
                    f,
                    "memory {} MB over the {} MB hard limit",
                    rss_bytes / MB,
                    limit_bytes / MB
                )
            }
            RecycleReason::MaxRequests { served, limit } => {
                write!(f, "served {served} requests (limit {limit})")
            }
            RecycleReason::Unresponsive { silent_for } => {
                write!(f, "unresponsive for {:.1} s", silent_for.as_secs_f64())
            }
            RecycleReason::ErrorRate { ejections } => {
                write!(f, "ejected {ejections} times in a row for its error rate")
            }
            RecycleReason::Requested => f.write_str("restart requested"),
            RecycleReason::Other(reason) => f.write_str(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_keeps_the_most_severe_and_the_first_on_ties() {
        let a = Verdict::Recycle(RecycleReason::Requested);
        let b = Verdict::Recycle(RecycleReason::ErrorRate { ejections: 3 });
        assert_eq!(a.clone().max(b.clone()), a);
        assert_eq!(Verdict::Healthy.max(b.clone()), b);
        let k = Verdict::Kill(RecycleReason::Requested);
        assert_eq!(k.clone().max(a), k);
        assert!(Severity::Kill > Severity::Recycle && Severity::Recycle > Severity::Unhealthy);
    }
}
