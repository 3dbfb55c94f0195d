//! What is simulated: workers, arrivals and scenarios.

use std::time::Duration;

/// Nanoseconds in a millisecond, the simulation's natural unit.
pub const MS: u64 = 1_000_000;

/// One worker process: how fast it serves and what happens to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerModel {
    /// Service rate relative to a normal worker (0.2 = five times slower).
    pub speed: f64,
    /// `(from, until)`: the worker makes no progress in this window (a GC pause, a blocked
    /// event loop); requests in service or queued wait it out.
    pub stall: Option<(u64, u64)>,
    /// When the worker becomes ready and enters the routing table (0 = from the start).
    pub join_at: u64,
    /// Cold start: service takes `1 + extra × e^(-age / tau)` times as long at first.
    pub cold: Option<(f64, u64)>,
}

impl WorkerModel {
    /// A normal worker, ready from the start.
    pub const NORMAL: WorkerModel = WorkerModel { speed: 1.0, stall: None, join_at: 0, cold: None };

    /// How many times longer than normal a request started at `t` takes to serve.
    pub(crate) fn slowdown(&self, t: u64) -> f64 {
        let cold = match self.cold {
            Some((extra, tau)) => {
                1.0 + extra * (-(t.saturating_sub(self.join_at) as f64) / tau as f64).exp()
            }
            None => 1.0,
        };
        cold / self.speed
    }

    /// When a request that starts service at `start` and needs `work` ns finishes.
    pub(crate) fn finish(&self, start: u64, work: u64) -> u64 {
        let end = start + work;
        match self.stall {
            Some((a, b)) if start < b && end > a => end + (b - start.max(a)),
            _ => end,
        }
    }
}

/// How requests arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// A Poisson process: exponential gaps (open loop, so stalls are not hidden).
    Poisson,
    /// Poisson at `1 / duty` times the mean rate for `on` ns, then nothing for the rest of
    /// each `period` ns (a crowd that arrives in waves).
    Bursty {
        /// Length of one on/off cycle, ns.
        period: u64,
        /// Fraction of the cycle during which requests arrive.
        duty: f64,
    },
}

/// One simulated situation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name for the report.
    pub name: &'static str,
    /// The workers, in routing-table order.
    pub workers: Vec<WorkerModel>,
    /// Requests each worker serves at once (1: a single-threaded event loop per process).
    pub concurrency: usize,
    /// Mean service time of a normal worker (exponentially distributed).
    pub mean_service: Duration,
    /// Offered load as a fraction of the pool's total capacity (all workers, at full speed).
    pub load: f64,
    /// How requests arrive.
    pub arrivals: Arrivals,
    /// Requests to simulate.
    pub requests: usize,
    /// Seed of every random choice in the run.
    pub seed: u64,
}

impl Scenario {
    fn base(name: &'static str, requests: usize) -> Self {
        Scenario {
            name,
            workers: vec![WorkerModel::NORMAL; 8],
            concurrency: 1,
            mean_service: Duration::from_millis(1),
            load: 0.8,
            arrivals: Arrivals::Poisson,
            requests,
            seed: 0xC1_u64 << 32 | requests as u64,
        }
    }

    /// The simulated time `requests` take to arrive at the offered load.
    pub fn duration(&self) -> u64 {
        (self.requests as f64 / self.rate_per_ns()) as u64
    }

    /// Mean arrival rate, requests per ns.
    pub fn rate_per_ns(&self) -> f64 {
        let capacity: f64 = self.workers.iter().map(|w| w.speed).sum::<f64>()
            * self.concurrency as f64
            / self.mean_service.as_nanos() as f64;
        self.load * capacity
    }

    /// The standard set, each with `requests` requests: equal workers; one worker five
    /// times slower; one worker stalled for a second; bursty arrivals; a worker that joins
    /// cold. Eight single-concurrency workers, 1 ms mean service, 80 % load (70 % bursty).
    pub fn standard(requests: usize) -> Vec<Scenario> {
        let equal = Scenario::base("equal workers", requests);
        let mut slow = Scenario::base("one worker 5x slower", requests);
        slow.workers[0].speed = 0.2;
        let mut stall = Scenario::base("one worker stalled 1 s", requests);
        let t = stall.duration() / 3;
        stall.workers[0].stall = Some((t, t + 1000 * MS));
        let mut bursty = Scenario::base("bursty arrivals (70 %)", requests);
        bursty.load = 0.7;
        bursty.arrivals = Arrivals::Bursty { period: 50 * MS, duty: 0.4 };
        let mut cold = Scenario::base("one worker joins cold", requests);
        let join = cold.duration() / 4;
        cold.workers[7] =
            WorkerModel { join_at: join, cold: Some((9.0, 500 * MS)), ..WorkerModel::NORMAL };
        vec![equal, slow, stall, bursty, cold]
    }
}
