//! Least-connections: the backend with the fewest requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::balancer::trivial_pick;
use crate::{BackendLoad, Balancer, RequestCtx};

/// Sends each request to the backend with the fewest requests in flight.
///
/// "Connections" is the historical name (nginx `least_conn`, HAProxy `leastconn`); what is
/// counted is in-flight *requests*, including streaming responses and upgraded tunnels, so
/// keep-alive clients do not pin load to one worker. The scan starts at a rotating offset,
/// so ties (the common case at low load) spread over all backends instead of piling onto
/// the first one. Cost: one atomic increment plus one relaxed load per backend.
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
        let n = backends.len();
        let start = self.start.fetch_add(1, Ordering::Relaxed) % n;
        let mut best: Option<(usize, usize)> = None;
        for step in 0..n {
            let i = (start + step) % n;
            let b = &backends[i];
            if ctx.avoid == Some(b.id()) {
                continue;
            }
            let load = b.in_flight();
            if best.is_none_or(|(_, l)| load < l) {
                best = Some((i, load));
                if load == 0 {
                    break;
                }
            }
        }
        best.map(|(i, _)| i)
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
