//! Least-connections: the backend with the fewest requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::balancer::trivial_pick;
use crate::least_cost::least_cost;
use crate::{BackendLoad, Balancer, RequestCtx};

/// Sends each request to the backend with the fewest requests in flight: join the shortest
/// queue (JSQ), exact, as nginx `least_conn` and HAProxy `leastconn` do.
///
/// "Connections" is the historical name; what is counted is in-flight *requests*,
/// including streaming responses and upgraded tunnels, so keep-alive clients do not pin
/// load to one worker. The scan starts at a rotating offset, so ties (the common case at
/// low load) spread over all backends instead of piling onto the first one. Cost: one
/// atomic increment and a scan of the in-flight counters (relaxed loads), in two passes
/// over blocks of 8 from 16 backends on: about 40 ns at 64 backends, 0.63 of the time of the
/// single loop it replaced (`docs/balancing.md` has the figures).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use cluster_balancer::{BackendLoad, Balancer, RequestCtx, LeastConnections};
///
/// let backends: Vec<_> = (0..3).map(|id| Arc::new(BackendLoad::new(id))).collect();
/// let lb = LeastConnections::new();
/// assert_eq!(lb.name(), "least-connections");
/// let pick = lb.pick(&backends, &RequestCtx::default()).unwrap();
/// assert!(pick < backends.len());
/// ```
#[derive(Debug, Default)]
pub struct LeastConnections {
    start: AtomicUsize,
}

impl LeastConnections {
    /// Creates a least-connections balancer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for LeastConnections {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        if let Some(pick) = trivial_pick(backends, ctx) {
            return pick;
        }
        let start = self.start.fetch_add(1, Ordering::Relaxed) as u32 % backends.len() as u32;
        least_cost(backends, ctx.avoid, start as usize, |b| b.in_flight() as u64)
    }

    fn name(&self) -> &'static str {
        "least-connections"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: u64) -> Vec<Arc<BackendLoad>> {
        (0..n).map(|id| Arc::new(BackendLoad::new(id))).collect()
    }

    #[test]
    fn prefers_the_least_loaded() {
        let lb = LeastConnections::new();
        let b = backends(3);
        let _g0 = [b[0].start(), b[0].start()];
        let _g2 = b[2].start();
        for _ in 0..5 {
            assert_eq!(lb.pick(&b, &RequestCtx::default()), Some(1));
        }
    }

    #[test]
    fn ties_spread_over_all_backends() {
        let lb = LeastConnections::new();
        let b = backends(4);
        let mut seen = [0usize; 4];
        for _ in 0..400 {
            seen[lb.pick(&b, &RequestCtx::default()).unwrap()] += 1;
        }
        assert_eq!(seen, [100; 4]);
    }

    #[test]
    fn avoids_the_failed_backend_even_when_idle() {
        let lb = LeastConnections::new();
        let b = backends(2);
        let _busy = b[0].start();
        let ctx = RequestCtx { avoid: Some(1), ..RequestCtx::default() };
        assert_eq!(lb.pick(&b, &ctx), Some(0));
    }
}
