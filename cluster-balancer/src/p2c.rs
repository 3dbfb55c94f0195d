//! Power of two random choices on in-flight requests.

use std::sync::Arc;

use crate::rng::{SharedRng, two_candidates};
use crate::{BackendLoad, Balancer, RequestCtx};

/// Samples two distinct backends at random and sends the request to the one with fewer
/// requests in flight (Mitzenmacher, "The Power of Two Choices in Randomized Load
/// Balancing", IEEE TPDS 12(10), 2001; Envoy `LEAST_REQUEST`, linkerd, tower `p2c`).
///
/// Two choices bring the maximum imbalance from Θ(ln n / ln ln n) (one random choice) down
/// to ln ln n / ln 2 + O(1), at a constant cost: one random draw and two loads, whatever the
/// number of backends. With one balancer holding exact counts, a full scan
/// ([`LeastConnections`](crate::LeastConnections)) balances at least as well; P2C is the
/// choice when the pool is large or the pick must stay O(1). The busiest backend never
/// receives a new request until it is no busier than some other one.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use cluster_balancer::{BackendLoad, Balancer, P2c, RequestCtx};
///
/// let backends: Vec<_> = (0..4).map(|id| Arc::new(BackendLoad::new(id))).collect();
/// let _busy: Vec<_> = (0..3).map(|i| backends[i].start()).collect();
/// let lb = P2c::new();
/// assert!(lb.pick(&backends, &RequestCtx::default()).is_some());
/// // A fixed seed makes the random choices repeatable (tests, simulations).
/// let (a, b) = (P2c::with_seed(7), P2c::with_seed(7));
/// let picks = |lb: &P2c| (0..10).map(|_| lb.pick(&backends, &RequestCtx::default())).collect::<Vec<_>>();
/// assert_eq!(picks(&a), picks(&b));
/// ```
#[derive(Debug)]
pub struct P2c {
    rng: SharedRng,
}

impl Default for P2c {
    fn default() -> Self {
        Self::with_seed(0x0DDB_A11C_0FFE_E000)
    }
}

impl P2c {
    /// Creates a P2C balancer with a fixed default seed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a P2C balancer whose random choices follow `seed` (reproducible when picks
    /// come from one thread, as in the simulation).
    pub fn with_seed(seed: u64) -> Self {
        Self { rng: SharedRng::new(seed) }
    }
}

impl Balancer for P2c {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        let (a, b) = match two_candidates(&self.rng, backends, ctx) {
            Ok(pair) => pair,
            Err(decided) => return decided,
        };
        let (ba, bb) = (&backends[a], &backends[b]);
        Some(if bb.in_flight() < ba.in_flight() { b } else { a })
    }

    fn name(&self) -> &'static str {
        "p2c"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_picks_the_busiest_of_two() {
        let b: Vec<_> = (0..2).map(|id| Arc::new(BackendLoad::new(id))).collect();
        let _busy = b[1].start();
        let lb = P2c::new();
        for _ in 0..50 {
            assert_eq!(lb.pick(&b, &RequestCtx::default()), Some(0));
        }
    }

    #[test]
    fn the_busiest_of_many_gets_nothing() {
        let b: Vec<_> = (0..5).map(|id| Arc::new(BackendLoad::new(id))).collect();
        let _busy = b[3].start();
        let lb = P2c::with_seed(3);
        for _ in 0..500 {
            assert_ne!(lb.pick(&b, &RequestCtx::default()), Some(3));
        }
    }
}
