//! A clock for tests and simulations (the `test-util` feature).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, nanos};

/// A clock that moves only when told to: for tests and the tail-latency simulation (the
/// `test-util` feature).
///
/// Starts at 1 ns (0 means "never" in [`BackendLoad`](crate::BackendLoad) timestamps).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cluster_balancer::{BackendLoad, Clock, LeastConnections, ManualClock, SlowStart};
///
/// let clock = Arc::new(ManualClock::new());
/// let lb = SlowStart::with_clock(LeastConnections::new(), Duration::from_secs(10), Arc::clone(&clock));
/// let load = BackendLoad::new(1);
/// load.mark_ready_at(clock.now());
/// clock.advance(Duration::from_secs(5)); // half-way through the ramp
/// assert!(lb.share(&load) < 1.0);
/// clock.set(Duration::from_secs(60).as_nanos() as u64);
/// assert_eq!(lb.share(&load), 1.0);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self { now: AtomicU64::new(1) }
    }
}

impl ManualClock {
    /// A clock reading 1 ns.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the time to `nanos` (callers keep it monotonic).
    pub fn set(&self, nanos: u64) {
        self.now.store(nanos.max(1), Ordering::Relaxed);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(nanos(by), Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}
