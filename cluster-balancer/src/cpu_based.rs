//! CPU-based: prefer the backend whose processes used the least CPU recently.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::balancer::trivial_pick;
use crate::least_cost::least_cost;
use crate::{BackendLoad, Balancer, RequestCtx};

/// Sends each request to the backend with the lowest recent CPU share, with in-flight
/// requests bounding how far that preference goes.
///
/// The CPU share comes from the health sampler through [`BackendLoad::set_cpu_share`]
/// (cores used by the worker's process tree over the last sample window). Samples are
/// coarse (≥ 100 ms) and lag: picking purely the lowest-CPU worker would herd every request
/// between two samples onto it. So the cost is
///
/// ```text
/// cost = (in_flight + 1) × (1 + cpu_cores)
/// ```
///
/// With equal in-flight counts (an idle or evenly loaded cluster) the lowest CPU wins; a
/// backend at 0 cores next to ones at 1 core is preferred only until it holds about twice
/// their in-flight requests, so a stale sample can tilt the split but never send a burst to
/// one worker. This follows the reasoning in `BALANCING.md` (CPU as a slow weight, in-flight
/// as the per-request signal); no published balancer routes per request on CPU (uWSGI and
/// Circus use it to scale and to restart). Ties spread from a rotating offset, as in
/// [`LeastConnections`](crate::LeastConnections).
///
/// Cost: the scan of [`LeastConnections`](crate::LeastConnections) with one integer multiply
/// per backend: [`BackendLoad::set_cpu_share`] keeps `1 + cpu_cores` precomputed in
/// thousandths, so the cost compared is `(in_flight + 1) × (1000 + milli-cores)`, the formula
/// above times 1000, exact (in-flight counts are 32-bit, so it fits in 64 bits). About 60 ns
/// at 64 backends, 0.71 of the time of the single loop before (`docs/balancing.md`).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use cluster_balancer::{BackendLoad, Balancer, RequestCtx, CpuBased};
///
/// let backends: Vec<_> = (0..3).map(|id| Arc::new(BackendLoad::new(id))).collect();
/// let lb = CpuBased::new();
/// assert_eq!(lb.name(), "cpu-based");
/// let pick = lb.pick(&backends, &RequestCtx::default()).unwrap();
/// assert!(pick < backends.len());
/// ```
#[derive(Debug, Default)]
pub struct CpuBased {
    start: AtomicUsize,
}

impl CpuBased {
    /// Creates a CPU-based balancer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for CpuBased {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        if let Some(pick) = trivial_pick(backends, ctx) {
            return pick;
        }
        let start = self.start.fetch_add(1, Ordering::Relaxed) as u32 % backends.len() as u32;
        least_cost(backends, ctx.avoid, start as usize, |b| {
            // In-flight counts are 32-bit: at most 2^32 × (2^32 - 1), one multiply.
            (b.in_flight() as u64 + 1) * u64::from(b.cpu_factor())
        })
    }

    fn name(&self) -> &'static str {
        "cpu-based"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(cpu: &[f64]) -> Vec<Arc<BackendLoad>> {
        cpu.iter()
            .enumerate()
            .map(|(id, &c)| {
                let b = BackendLoad::new(id as u64);
                b.set_cpu_share(c);
                Arc::new(b)
            })
            .collect()
    }

    #[test]
    fn prefers_the_idlest_cpu() {
        let b = backends(&[0.9, 0.1, 0.5]);
        let lb = CpuBased::new();
        for _ in 0..5 {
            assert_eq!(lb.pick(&b, &RequestCtx::default()), Some(1));
        }
    }

    #[test]
    fn a_stale_sample_cannot_send_a_burst_to_one_worker() {
        // Backend 1 looks idle, the others busy; the sample does not change during the burst.
        let b = backends(&[1.0, 0.0, 1.0, 1.0]);
        let lb = CpuBased::new();
        let mut guards = Vec::new();
        for _ in 0..100 {
            let i = lb.pick(&b, &RequestCtx::default()).unwrap();
            guards.push(b[i].start());
        }
        let on_idle = b[1].in_flight();
        assert!(on_idle <= 45, "{on_idle} of 100 went to the idle-looking worker");
        assert!(b.iter().all(|x| x.in_flight() >= 15));
    }
}
