//! Peak-EWMA: latency-aware choice between two random backends.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::rng::{SharedRng, two_candidates};
use crate::{BackendLoad, Balancer, RequestCtx};

/// Picks two distinct backends at random and sends the request to the one with the lower
/// expected wait: its peak-sensitive moving average of response time multiplied by its
/// requests in flight plus one.
///
/// This is Finagle's `PeakEwma` load metric with power-of-two-choices selection, as linkerd
/// and tower (`tower::load::PeakEwma` + `tower::balance::p2c`) use it. linkerd measured that
/// with one backend stalled at 2 s, latency stays fast up to p99.9 where round-robin holds
/// only to p95 (linkerd blog, "Beyond Round Robin", 2016).
///
/// - The estimate jumps to any slower sample at once and decays toward faster ones with a
///   time constant (default 10 s, [`BackendLoad::set_rtt_decay`]); it also decays toward
///   zero while no sample arrives, so a backend that was slow is tried again later.
/// - The proxy feeds it with [`BackendLoad::observe_latency`]; the estimate is read at this
///   balancer's [`Clock`] (inject a `ManualClock`, the `test-util` feature, to test or simulate).
/// - A backend with no sample yet is costed with the other candidate's estimate (compared on
///   in-flight alone), neither favoured nor starved; tower instead assumes a default RTT,
///   which with a high default starves a new worker at low load and with a low one sends it
///   a burst.
///
/// Cost: one random draw, one clock read and two `exp` per pick, whatever the pool size.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cluster_balancer::{BackendLoad, Balancer, PeakEwma, RequestCtx, SystemClock};
///
/// let backends: Vec<_> = (0..2).map(|id| Arc::new(BackendLoad::new(id))).collect();
/// backends[0].observe_latency(Duration::from_millis(500)); // slow
/// backends[1].observe_latency(Duration::from_millis(5)); // fast
/// let lb = PeakEwma::new();
/// assert_eq!(lb.pick(&backends, &RequestCtx::default()), Some(1));
/// // The same with an explicit clock and a fixed seed.
/// let lb = PeakEwma::with_clock(SystemClock).seed(1);
/// assert_eq!(lb.pick(&backends, &RequestCtx::default()), Some(1));
/// ```
#[derive(Debug)]
pub struct PeakEwma<C: Clock = SystemClock> {
    rng: SharedRng,
    clock: C,
}

impl Default for PeakEwma {
    fn default() -> Self {
        Self::new()
    }
}

impl PeakEwma {
    /// A peak-EWMA balancer reading the system clock (the timestamps
    /// [`BackendLoad::observe_latency`] writes).
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }
}

impl<C: Clock> PeakEwma<C> {
    /// A peak-EWMA balancer reading `clock`; samples must be stamped with the same clock
    /// ([`BackendLoad::observe_latency_at`]).
    pub fn with_clock(clock: C) -> Self {
        Self { rng: SharedRng::new(0xE3A7_5EED), clock }
    }

    /// Reseeds the random choice of candidates (for reproducible simulations).
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = SharedRng::new(seed);
        self
    }
}

impl<C: Clock> Balancer for PeakEwma<C> {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        let (a, b) = match two_candidates(&self.rng, backends, ctx) {
            Ok(pair) => pair,
            Err(decided) => return decided,
        };
        let (ba, bb) = (&backends[a], &backends[b]);
        let now = self.clock.now();
        let (ea, eb) = match (ba.rtt_estimate_at(now), bb.rtt_estimate_at(now)) {
            (Some(x), Some(y)) => (x, y),
            (Some(x), None) | (None, Some(x)) => (x, x),
            (None, None) => (1.0, 1.0),
        };
        let cost = |est: f64, load: &BackendLoad| est.max(1.0) * (load.in_flight() as f64 + 1.0);
        Some(if cost(eb, bb) < cost(ea, ba) { b } else { a })
    }

    fn name(&self) -> &'static str {
        "peak-ewma"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ManualClock;

    fn setup() -> (Vec<Arc<BackendLoad>>, PeakEwma<Arc<ManualClock>>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let b = (0..2).map(|id| Arc::new(BackendLoad::new(id))).collect();
        (b, PeakEwma::with_clock(Arc::clone(&clock)), clock)
    }

    #[test]
    fn prefers_the_faster_backend() {
        let (b, lb, clock) = setup();
        b[0].observe_latency_at(Duration::from_millis(50), clock.now());
        b[1].observe_latency_at(Duration::from_millis(5), clock.now());
        for _ in 0..20 {
            assert_eq!(lb.pick(&b, &RequestCtx::default()), Some(1));
        }
    }

    #[test]
    fn in_flight_multiplies_the_estimate() {
        let (b, lb, clock) = setup();
        b[0].observe_latency_at(Duration::from_millis(10), clock.now());
        b[1].observe_latency_at(Duration::from_millis(5), clock.now());
        let _busy = [b[1].start(), b[1].start()]; // 5 ms × 3 > 10 ms × 1
        assert_eq!(lb.pick(&b, &RequestCtx::default()), Some(0));
    }

    #[test]
    fn a_slow_backend_is_retried_after_its_estimate_decays() {
        let (b, lb, clock) = setup();
        b[0].set_rtt_decay(Duration::from_secs(1));
        b[0].observe_latency_at(Duration::from_secs(2), clock.now());
        b[1].observe_latency_at(Duration::from_millis(10), clock.now());
        b[1].set_rtt_decay(Duration::from_secs(1000));
        assert_eq!(lb.pick(&b, &RequestCtx::default()), Some(1));
        clock.advance(Duration::from_secs(10)); // 2 s × e^-10 ≈ 0.09 ms
        assert_eq!(lb.pick(&b, &RequestCtx::default()), Some(0));
    }

    #[test]
    fn a_backend_without_samples_competes_on_in_flight() {
        let (b, lb, clock) = setup();
        b[0].observe_latency_at(Duration::from_millis(10), clock.now());
        let _busy = b[0].start();
        assert_eq!(lb.pick(&b, &RequestCtx::default()), Some(1));
    }
}
