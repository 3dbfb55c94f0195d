//! The discrete-event engine: arrivals, per-worker queues, completions, CPU samples.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use cluster_balancer::{BackendLoad, Balancer, Clock, InFlight, ManualClock, RequestCtx};

use super::model::{Arrivals, MS, Scenario};

/// How often the simulated health sampler refreshes each worker's CPU share.
pub const CPU_SAMPLE_EVERY: u64 = 100 * MS;

/// Latency decay the simulated proxy gives every backend (see `BackendLoad::set_rtt_decay`):
/// 1 s, a thousand mean service times, as linkerd's 10 s is for its slower RPCs.
pub const RTT_DECAY: Duration = Duration::from_secs(1);

/// Distinct clients, for sticky sessions (each request comes from one at random).
pub const CLIENTS: u32 = 1000;

/// What one run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Every request's latency (arrival to completion), ns, sorted.
    pub latencies: Vec<u64>,
    /// Requests each worker served.
    pub served: Vec<usize>,
}

impl Outcome {
    /// The latency at quantile `q` (0..=1), in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1] as f64 / MS as f64
    }

    /// Each worker's share of the requests, in percent.
    pub fn shares(&self) -> Vec<f64> {
        let total = self.served.iter().sum::<usize>().max(1) as f64;
        self.served.iter().map(|&s| 100.0 * s as f64 / total).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrival,
    Join(usize),
    Sample,
    Done { worker: usize, slot: usize },
}

struct Worker {
    load: Arc<BackendLoad>,
    queue: VecDeque<usize>,
    busy: usize,
    busy_ns: u64,
    sampled_ns: u64,
    last_change: u64,
}

struct Request {
    arrived: u64,
    guard: Option<InFlight>,
}

/// A tiny seeded generator for the model's own randomness (not the balancer's).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An exponential sample with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        let u = ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -mean * u.ln()
    }
}

/// Runs `scenario` with `balancer`, whose clock must be `clock` (the engine moves it).
pub fn run(scenario: &Scenario, balancer: &dyn Balancer, clock: &ManualClock) -> Outcome {
    let mut rng = Rng(scenario.seed);
    let mut workers: Vec<Worker> = (0..scenario.workers.len())
        .map(|id| {
            let load = Arc::new(BackendLoad::new(id as u64));
            load.set_rtt_decay(RTT_DECAY);
            let queue = VecDeque::new();
            Worker { load, queue, busy: 0, busy_ns: 0, sampled_ns: 0, last_change: 0 }
        })
        .collect();
    // The routing table: backends that have joined, and their worker index.
    let mut table: Vec<Arc<BackendLoad>> = Vec::new();
    let mut table_ix: Vec<usize> = Vec::new();
    let mut events = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |events: &mut BinaryHeap<_>, at: u64, ev: Event| {
        seq += 1;
        events.push(Reverse((at, seq, ev)));
    };
    for (i, w) in scenario.workers.iter().enumerate() {
        push(&mut events, w.join_at, Event::Join(i));
    }
    push(&mut events, 0, Event::Arrival);
    push(&mut events, CPU_SAMPLE_EVERY, Event::Sample);

    let mean_service = scenario.mean_service.as_nanos() as f64;
    let mean_gap = 1.0 / scenario.rate_per_ns();
    let mut requests: Vec<Request> = Vec::with_capacity(scenario.requests);
    let mut served = vec![0usize; workers.len()];
    let mut latencies = Vec::with_capacity(scenario.requests);
    let mut t_arrival = 0.0f64;

    while let Some(Reverse((now, _, ev))) = events.pop() {
        clock.set(now);
        match ev {
            Event::Join(i) => {
                workers[i].load.mark_ready_at(clock.now());
                table.push(Arc::clone(&workers[i].load));
                table_ix.push(i);
            }
            Event::Sample => {
                for w in &mut workers {
                    w.busy_ns += w.busy as u64 * (now - w.last_change);
                    w.last_change = now;
                    let cores = (w.busy_ns - w.sampled_ns) as f64 / CPU_SAMPLE_EVERY as f64;
                    w.load.set_cpu_share(cores);
                    w.sampled_ns = w.busy_ns;
                }
                if latencies.len() < scenario.requests {
                    push(&mut events, now + CPU_SAMPLE_EVERY, Event::Sample);
                }
            }
            Event::Arrival => {
                let client = Ipv4Addr::from(0x0A00_0000 + (rng.next() % u64::from(CLIENTS)) as u32);
                let ctx = RequestCtx { client: Some(client.into()), ..RequestCtx::default() };
                let pick = balancer.pick(&table, &ctx).expect("a worker is ready");
                let wi = table_ix[pick];
                let slot = requests.len();
                requests.push(Request { arrived: now, guard: Some(table[pick].start()) });
                served[wi] += 1;
                workers[wi].queue.push_back(slot);
                start_next(
                    scenario,
                    &mut workers[wi],
                    wi,
                    now,
                    mean_service,
                    &mut rng,
                    &mut |at, ev| push(&mut events, at, ev),
                );
                if requests.len() < scenario.requests {
                    t_arrival = next_arrival(scenario, t_arrival, mean_gap, &mut rng);
                    push(&mut events, t_arrival as u64, Event::Arrival);
                }
            }
            Event::Done { worker, slot } => {
                let req = &mut requests[slot];
                let latency = now - req.arrived;
                workers[worker].load.observe_latency_at(Duration::from_nanos(latency), clock.now());
                drop(req.guard.take());
                latencies.push(latency);
                let w = &mut workers[worker];
                w.busy_ns += w.busy as u64 * (now - w.last_change);
                w.last_change = now;
                w.busy -= 1;
                start_next(scenario, w, worker, now, mean_service, &mut rng, &mut |at, ev| {
                    push(&mut events, at, ev)
                });
            }
        }
    }
    latencies.sort_unstable();
    Outcome { latencies, served }
}

/// Starts serving queued requests while the worker has a free slot.
fn start_next(
    scenario: &Scenario,
    w: &mut Worker,
    wi: usize,
    now: u64,
    mean_service: f64,
    rng: &mut Rng,
    push: &mut dyn FnMut(u64, Event),
) {
    while w.busy < scenario.concurrency {
        let Some(slot) = w.queue.pop_front() else { return };
        w.busy_ns += w.busy as u64 * (now - w.last_change);
        w.last_change = now;
        w.busy += 1;
        let model = &scenario.workers[wi];
        let work = rng.exp(mean_service * model.slowdown(now)) as u64;
        push(model.finish(now, work.max(1)), Event::Done { worker: wi, slot });
    }
}

/// The next arrival time after `t` (ns, fractional to keep the rate exact).
fn next_arrival(scenario: &Scenario, t: f64, mean_gap: f64, rng: &mut Rng) -> f64 {
    match scenario.arrivals {
        Arrivals::Poisson => t + rng.exp(mean_gap),
        Arrivals::Bursty { period, duty } => {
            // Poisson at rate / duty on a clock that runs only during the first `duty` of
            // each period: map real time to that "on" time, step, and map back.
            let (period, on) = (period as f64, period as f64 * duty);
            let v = (t / period).floor() * on + (t % period).min(on);
            let v = v + rng.exp(mean_gap * duty);
            (v / on).floor() * period + v % on
        }
    }
}
