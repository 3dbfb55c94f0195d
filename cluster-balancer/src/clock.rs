//! Time as strategies see it: nanoseconds since a process-wide epoch, from an injectable clock.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A source of "now" for time-aware strategies ([`PeakEwma`](crate::PeakEwma),
/// [`SlowStart`](crate::SlowStart)), in nanoseconds since an epoch the clock chooses.
///
/// The timestamps a [`BackendLoad`](crate::BackendLoad) stores must come from the same clock
/// the strategy reads: the proxy uses [`SystemClock`] for both (the `*_at`-less methods of
/// `BackendLoad` do so), tests and simulations use a `ManualClock` (the `test-util` feature) for both.
///
/// # Contract
///
/// `now` never goes backwards and is cheap (it is called once per pick).
///
/// # Examples
///
/// A clock of your own, for a time-aware strategy:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use cluster_balancer::{Clock, LeastConnections, SlowStart, SystemClock};
///
/// #[derive(Debug, Default)]
/// struct Ticks(AtomicU64);
///
/// impl Clock for Ticks {
///     fn now(&self) -> u64 {
///         self.0.fetch_add(1, Ordering::Relaxed) + 1
///     }
/// }
///
/// let lb = SlowStart::with_clock(LeastConnections::new(), Duration::from_secs(30), Ticks::default());
/// assert!(SystemClock.now() > 0);
/// # let _ = lb;
/// ```
pub trait Clock: Send + Sync + fmt::Debug {
    /// Nanoseconds since this clock's epoch.
    fn now(&self) -> u64;
}

/// The monotonic system clock, counted from a process-wide epoch (the first time any
/// `SystemClock` is read), so a `u64` of nanoseconds lasts 584 years.
///
/// # Examples
///
/// ```
/// use cluster_balancer::{Clock, SystemClock};
///
/// let (a, b) = (SystemClock.now(), SystemClock.now());
/// assert!(0 < a && a <= b);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // +1: 0 is reserved in `BackendLoad` for "never stamped".
        nanos(epoch().elapsed()).saturating_add(1)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX`.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
