//! Weights and slow start: a reduced share for weak backends and for ones that just
//! became ready.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock, nanos};
use crate::rng::{SharedRng, unit};
use crate::{BackendLoad, Balancer, RequestCtx};

/// Wraps a strategy so that each backend gets at most its *share* of the requests the inner
/// strategy would give it:
///
/// ```text
/// share = weight / 100 × max(min_share, time since ready / window)
/// ```
///
/// The ramp is Envoy's slow start (`slow_start_config`, aggression 1, minimum weight
/// percent 10 %): a worker that just became ready ([`BackendLoad::mark_ready`]) — cold
/// caches, a JIT that has not compiled its hot paths — starts at `min_share` and reaches a
/// full share after `window`. The weight is [`BackendLoad::set_weight`] (100 = full).
///
/// **How:** the inner strategy picks; a backend with share `s < 1` is kept with probability
/// `s`, otherwise the inner strategy picks again with that backend avoided. Over a
/// load-blind inner strategy ([`RoundRobin`](crate::RoundRobin)) the shares act as weights:
/// a backend gets `s / Σ shares` of the traffic. Load-aware strategies already shield a slow cold worker through
/// its in-flight count; with them the wrapper only caps how eagerly its low count is
/// filled, so the effect is softer. A retried request (`ctx.avoid` set) is kept on its
/// first pick. As Envoy notes, slow start helps when few workers come up at once, not when
/// the whole pool restarts.
///
/// Cost when no backend is ramping or weighted: two relaxed loads on top of the inner pick.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cluster_balancer::{BackendLoad, Balancer, RequestCtx, RoundRobin, SlowStart, SystemClock};
///
/// let lb = SlowStart::new(RoundRobin::new(), Duration::from_secs(30)).min_share(0.1).seed(3);
/// let backends: Vec<_> = (0..2).map(|id| Arc::new(BackendLoad::new(id))).collect();
/// backends[1].mark_ready(); // just started: its share ramps up from 10 % over 30 s
/// assert!(lb.share(&backends[1]) < 0.5);
/// assert_eq!(lb.share(&backends[0]), 1.0); // never marked ready: a full share
/// backends[0].set_weight(50); // and weights apply at all times
/// assert!(lb.pick(&backends, &RequestCtx::default()).is_some());
///
/// // The same ramp read from a clock of your own.
/// let lb = SlowStart::with_clock(RoundRobin::new(), Duration::from_secs(30), SystemClock);
/// assert_eq!(lb.share(&backends[0]), 0.5); // its weight
/// ```
#[derive(Debug)]
pub struct SlowStart<B, C: Clock = SystemClock> {
    inner: B,
    window: u64,
    min_share: f64,
    rng: SharedRng,
    clock: C,
}

impl<B: Balancer> SlowStart<B> {
    /// Slow start over `window` with the system clock, starting at a 10 % share.
    pub fn new(inner: B, window: Duration) -> Self {
        Self::with_clock(inner, window, SystemClock)
    }
}

impl<B: Balancer, C: Clock> SlowStart<B, C> {
    /// Like [`new`](SlowStart::new) reading `clock` (ready times must come from it too).
    pub fn with_clock(inner: B, window: Duration, clock: C) -> Self {
        let window = nanos(window).max(1);
        Self { inner, window, min_share: 0.1, rng: SharedRng::new(0x5105_7A57), clock }
    }

    /// Sets the share a backend starts with (clamped to `0.01..=1`; default 0.1).
    pub fn min_share(mut self, share: f64) -> Self {
        self.min_share = if share.is_nan() { 0.1 } else { share.clamp(0.01, 1.0) };
        self
    }

    /// Reseeds the random acceptance (for reproducible simulations).
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = SharedRng::new(seed);
        self
    }

    /// The backend's current share in `0..=1` (see the type's documentation).
    pub fn share(&self, backend: &BackendLoad) -> f64 {
        let weight = f64::from(backend.weight()) / 100.0;
        let Some(ready) = backend.ready_at() else { return weight };
        let age = self.clock.now().saturating_sub(ready);
        if age >= self.window {
            backend.finish_warmup(ready);
            return weight;
        }
        weight * (age as f64 / self.window as f64).max(self.min_share)
    }
}

impl<B: Balancer, C: Clock> Balancer for SlowStart<B, C> {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        let first = self.inner.pick(backends, ctx)?;
        let b = &backends[first];
        if ctx.avoid.is_some() || (b.weight() >= 100 && b.ready_at().is_none()) {
            return Some(first);
        }
        if unit(self.rng.next_u64()) < self.share(b) {
            return Some(first);
        }
        let retry = RequestCtx { avoid: Some(b.id()), ..*ctx };
        self.inner.pick(backends, &retry).or(Some(first))
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, RoundRobin};

    #[test]
    fn a_new_backend_ramps_up_over_the_window() {
        let clock = Arc::new(ManualClock::new());
        let b: Vec<_> = (0..4).map(|id| Arc::new(BackendLoad::new(id))).collect();
        let lb = SlowStart::with_clock(RoundRobin::new(), Duration::from_secs(10), clock.clone());
        b[3].mark_ready_at(clock.now());
        let share_of_3 = |n: usize| {
            (0..n).filter(|_| lb.pick(&b, &RequestCtx::default()) == Some(3)).count() as f64
                / n as f64
        };
        let early = share_of_3(40_000);
        // Shares act as weights: 0.1 / (3 + 0.1) at first, 0.5 / 3.5 half-way.
        assert!((0.027..0.038).contains(&early), "at start {early}");
        clock.advance(Duration::from_secs(5));
        let mid = share_of_3(40_000);
        assert!((0.135..0.15).contains(&mid), "at half {mid}");
        clock.advance(Duration::from_secs(5));
        assert!((share_of_3(4_000) - 0.25).abs() < 1e-9);
        assert_eq!(b[3].ready_at(), None, "warm-up is over and forgotten");
    }

    #[test]
    fn weights_scale_the_share() {
        let b: Vec<_> = (0..2).map(|id| Arc::new(BackendLoad::new(id))).collect();
        b[1].set_weight(50);
        let lb = SlowStart::new(RoundRobin::new(), Duration::from_secs(1));
        let on_1 = (0..30_000).filter(|_| lb.pick(&b, &RequestCtx::default()) == Some(1)).count();
        // Weights 100 and 50: backend 1 gets a third.
        assert!((9_500..10_500).contains(&on_1), "{on_1}");
    }
}
