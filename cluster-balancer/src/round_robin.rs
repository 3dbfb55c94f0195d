//! Round-robin: each backend in turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::balancer::trivial_pick;
use crate::{BackendLoad, Balancer, RequestCtx};

/// Sends each request to the next backend in turn, per request (not per connection).
///
/// One relaxed atomic increment per pick. Ignores load: a slow backend gets the same share
/// as a fast one, which is why [`LeastConnections`](crate::LeastConnections) is usually the
/// better default.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use cluster_balancer::{BackendLoad, Balancer, RequestCtx, RoundRobin};
///
/// let backends: Vec<_> = (0..3).map(|id| Arc::new(BackendLoad::new(id))).collect();
/// let lb = RoundRobin::new();
/// assert_eq!(lb.name(), "round-robin");
/// let pick = lb.pick(&backends, &RequestCtx::default()).unwrap();
/// assert!(pick < backends.len());
/// ```
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// Creates a round-robin balancer starting at the first backend.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for RoundRobin {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        if let Some(pick) = trivial_pick(backends, ctx) {
            return pick;
        }
        let n = backends.len();
        // 32-bit remainder: cheaper than 64-bit; the cycle skips once per 2^32 picks.
        let i = (self.next.fetch_add(1, Ordering::Relaxed) as u32 % n as u32) as usize;
        if ctx.avoid == Some(backends[i].id()) {
            return Some((i + 1) % n);
        }
        Some(i)
    }

    fn name(&self) -> &'static str {
        "round-robin"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: u64) -> Vec<Arc<BackendLoad>> {
        (0..n).map(|id| Arc::new(BackendLoad::new(id))).collect()
    }

    #[test]
    fn cycles_over_every_backend() {
        let lb = RoundRobin::new();
        let b = backends(3);
        let picks: Vec<_> = (0..6).map(|_| lb.pick(&b, &RequestCtx::default()).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn empty_and_single() {
        let lb = RoundRobin::new();
        assert_eq!(lb.pick(&[], &RequestCtx::default()), None);
        let one = backends(1);
        assert_eq!(lb.pick(&one, &RequestCtx::default()), Some(0));
        let avoid = RequestCtx { avoid: Some(0), ..RequestCtx::default() };
        assert_eq!(lb.pick(&one, &avoid), None);
    }

    #[test]
    fn avoids_the_failed_backend() {
        let lb = RoundRobin::new();
        let b = backends(2);
        let ctx = RequestCtx { avoid: Some(1), ..RequestCtx::default() };
        for _ in 0..10 {
            assert_eq!(lb.pick(&b, &ctx), Some(0));
        }
    }
}
