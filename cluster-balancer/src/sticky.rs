//! Sticky sessions: rendezvous hashing with bounded loads, over any strategy.

use std::sync::Arc;

use crate::balancer::trivial_pick;
use crate::least_cost::least_cost;
use crate::rng::mix64;
use crate::{BackendLoad, Balancer, RequestCtx};

/// Keeps each client on one backend while that backend is in the slice and not overloaded;
/// requests without a key go to the inner strategy.
///
/// - **Affinity:** the key ([`RequestCtx::sticky_key`], or [`pick_key`](Self::pick_key)
///   for a key the caller derived, e.g. from a cookie) is hashed against every backend's
///   affinity key and the highest score wins: rendezvous (highest random weight) hashing
///   (Thaler & Ravishankar, "Using name-based mappings to increase hit rates", IEEE/ACM ToN
///   6(1), 1998). When a backend joins, only the keys it now wins move (≈ 1/N); when one
///   leaves, only its own keys move. No ring to rebuild when the slice changes.
/// - **Bounded load:** a backend may hold at most `cap = ⌈c × (in_flight_total + 1) / N⌉`
///   requests (`c` = [`balance_factor`](Self::balance_factor), default 1.25); a key whose
///   home is full goes to its next-highest-scoring backend under the cap (Mirrokni, Thorup
///   & Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018; HAProxy
///   `hash-balance-factor`, Envoy `hash_balance_factor`). One hot client therefore cannot
///   overload a worker, and cold clients keep their affinity.
/// - `cap` never goes below [`min_capacity`](Self::min_capacity) (default 8) so that at low
///   load — where ⌈c × 2 / N⌉ is 1 — a client's parallel requests are not scattered.
///
/// [`name`](Balancer::name) is the inner strategy's name (stickiness is a separate switch
/// in the configuration). Cost: one hash per backend per pick (two scans when the home is
/// full).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use cluster_balancer::{BackendLoad, Balancer, LeastConnections, RequestCtx, Sticky};
///
/// let backends: Vec<_> = (0..4).map(|id| Arc::new(BackendLoad::new(id))).collect();
/// let lb = Sticky::new(LeastConnections::new()).balance_factor(1.25).min_capacity(2);
/// let ctx = RequestCtx { affinity: Some(99), ..RequestCtx::default() };
/// let home = lb.pick(&backends, &ctx);
/// assert_eq!(lb.pick_key(&backends, 99, None), home); // the same key, the same backend
/// assert_eq!(lb.inner().name(), "least-connections"); // keyless requests go there
/// ```
#[derive(Debug)]
pub struct Sticky<B> {
    inner: B,
    factor: f64,
    min_cap: usize,
}

impl<B: Balancer> Sticky<B> {
    /// Sticky sessions over `inner`, with balance factor 1.25 and minimum capacity 8.
    pub fn new(inner: B) -> Self {
        Self { inner, factor: 1.25, min_cap: 8 }
    }

    /// Sets `c`, how far above the average load a home backend may go before its keys spill
    /// (values below 1 count as 1; `f64::INFINITY` disables the bound: strict affinity).
    pub fn balance_factor(mut self, c: f64) -> Self {
        self.factor = if c.is_nan() { 1.25 } else { c.max(1.0) };
        self
    }

    /// Sets the in-flight count below which a home backend is never considered full.
    pub fn min_capacity(mut self, min: usize) -> Self {
        self.min_cap = min.max(1);
        self
    }

    /// The inner strategy, used for requests without a key.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Picks the backend for sticky key `key`, skipping backend id `avoid`.
    pub fn pick_key(
        &self,
        backends: &[Arc<BackendLoad>],
        key: u64,
        avoid: Option<u64>,
    ) -> Option<usize> {
        let ctx = RequestCtx { client: None, avoid, affinity: Some(key) };
        if let Some(pick) = trivial_pick(backends, &ctx) {
            return pick;
        }
        let key = mix64(key);
        // Both inputs are already well mixed (the key here, the affinity key at
        // construction), so one multiply suffices: the product's high bits depend on every
        // bit of `key ^ affinity`, and the argmax is all that is used.
        let score = |b: &BackendLoad| (key ^ b.affinity_hash()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut total = 0usize;
        let (mut home_score, mut home) = (0u64, 0usize);
        for (i, b) in backends.iter().enumerate() {
            total += b.in_flight();
            let s = score(b);
            if s > home_score {
                (home_score, home) = (s, i);
            }
        }
        let cap = (self.factor * (total + 1) as f64 / backends.len() as f64).ceil();
        let cap =
            if cap >= usize::MAX as f64 { usize::MAX } else { (cap as usize).max(self.min_cap) };
        if backends[home].in_flight() < cap && avoid != Some(backends[home].id()) {
            return Some(home);
        }
        // Home is full (or avoided): the highest-scoring backend under the cap (its next choice on the
        // ranking), else the least loaded (only when `avoid` removed every one under it).
        let mut next: Option<(usize, u64)> = None;
        for (i, b) in backends.iter().enumerate() {
            if avoid == Some(b.id()) || b.in_flight() >= cap {
                continue;
            }
            let s = score(b);
            if next.is_none_or(|(_, ns)| s > ns) {
                next = Some((i, s));
            }
        }
        next.map(|(i, _)| i).or_else(|| least_cost(backends, avoid, 0, |b| b.in_flight() as u64))
    }
}

impl<B: Balancer> Balancer for Sticky<B> {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        match ctx.sticky_key() {
            Some(key) => self.pick_key(backends, key, ctx.avoid),
            None => self.inner.pick(backends, ctx),
        }
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RoundRobin;

    fn backends(n: u64) -> Vec<Arc<BackendLoad>> {
        (0..n).map(|id| Arc::new(BackendLoad::new(id))).collect()
    }

    #[test]
    fn a_hot_key_spills_once_its_home_is_full() {
        let b = backends(4);
        let lb = Sticky::new(RoundRobin::new()).min_capacity(1);
        let mut guards = Vec::new();
        for _ in 0..100 {
            let i = lb.pick_key(&b, 42, None).unwrap();
            guards.push(b[i].start());
        }
        let max = b.iter().map(|x| x.in_flight()).max().unwrap();
        assert!(max <= 32, "{max}: more than ⌈1.25 × 100 / 4⌉");
    }

    #[test]
    fn infinite_factor_is_strict_affinity() {
        let b = backends(4);
        let lb = Sticky::new(RoundRobin::new()).balance_factor(f64::INFINITY);
        let home = lb.pick_key(&b, 7, None).unwrap();
        let _g: Vec<_> = (0..50).map(|_| b[home].start()).collect();
        assert_eq!(lb.pick_key(&b, 7, None), Some(home));
    }

    #[test]
    fn keyless_requests_use_the_inner_strategy() {
        let b = backends(3);
        let lb = Sticky::new(RoundRobin::new());
        let picks: Vec<_> = (0..3).map(|_| lb.pick(&b, &RequestCtx::default()).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2]);
        assert_eq!(lb.name(), "round-robin");
    }
}
