//! Cost of one pick for each built-in strategy and wrapper, uncontended and with 2 threads
//! picking at once, over backends that carry load (so that full scans really scan: every
//! backend has 1–4 requests in flight, a latency sample and a CPU share).
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cluster_balancer::{BackendLoad, Balancer, InFlight, RequestCtx, SlowStart, Sticky, Strategy};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// `n` backends with uneven load, and the guards that keep it in flight.
fn backends(n: usize) -> (Vec<Arc<BackendLoad>>, Vec<InFlight>) {
    let b: Vec<_> = (0..n as u64).map(|id| Arc::new(BackendLoad::new(id))).collect();
    let mut held = Vec::new();
    for (i, x) in b.iter().enumerate() {
        for _ in 0..1 + i % 4 {
            held.push(x.start());
        }
        x.observe_latency(Duration::from_micros(200 + 37 * (i as u64 % 11)));
        x.set_cpu_share(0.1 * (i % 7) as f64);
        x.mark_ready();
    }
    (b, held)
}

fn strategies() -> Vec<(String, Arc<dyn Balancer>)> {
    let mut v: Vec<(String, Arc<dyn Balancer>)> =
        Strategy::ALL.iter().map(|s| (s.name().to_owned(), s.build())).collect();
    let sticky = Sticky::new(Strategy::LeastConnections.build());
    v.push(("sticky(least-connections)".into(), Arc::new(sticky)));
    // A window long enough that every backend is still ramping: the slow path.
    let slow = SlowStart::new(Strategy::RoundRobin.build(), Duration::from_secs(3600));
    v.push(("slow-start(round-robin)".into(), Arc::new(slow)));
    v
}

/// A request from a known client (sticky uses it; the others ignore it).
const CTX: RequestCtx = RequestCtx {
    client: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 44))),
    avoid: None,
    affinity: None,
};

fn pick_uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick");
    for &n in benches::WORKER_COUNTS {
        let (b, _held) = backends(n);
        for (name, lb) in strategies() {
            g.bench_with_input(BenchmarkId::new(&name, n), &n, |bench, _| {
                bench.iter(|| black_box(lb.pick(black_box(&b), black_box(&CTX))))
            });
        }
    }
    g.finish();
}

fn pick_contended(c: &mut Criterion) {
    const THREADS: u64 = 2;
    let mut g = c.benchmark_group("pick-2-threads");
    for &n in benches::WORKER_COUNTS {
        let (b, _held) = backends(n);
        for (name, lb) in strategies() {
            g.bench_with_input(BenchmarkId::new(&name, n), &n, |bench, _| {
                bench.iter_custom(|iters| {
                    let start = Barrier::new(THREADS as usize);
                    let t0 = Instant::now();
                    std::thread::scope(|scope| {
                        for _ in 0..THREADS {
                            scope.spawn(|| {
                                start.wait();
                                for _ in 0..iters / THREADS {
                                    black_box(lb.pick(&b, &CTX));
                                }
                            });
                        }
                    });
                    // Wall time for `iters` picks spread over the threads: time per pick
                    // as the proxy sees its throughput.
                    t0.elapsed()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, pick_uncontended, pick_contended);
criterion_main!(benches);
