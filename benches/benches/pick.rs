//! Cost of one pick for each built-in strategy, uncontended and with 2 threads picking.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use cluster_balancer::{BackendLoad, RequestCtx, Strategy};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn backends(n: usize) -> Vec<Arc<BackendLoad>> {
    (0..n as u64).map(|id| Arc::new(BackendLoad::new(id))).collect()
}

fn pick_uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick");
    for &n in benches::WORKER_COUNTS {
        let b = backends(n);
        for s in Strategy::ALL {
            let lb = s.build();
            g.bench_with_input(BenchmarkId::new(s.name(), n), &n, |bench, _| {
                bench.iter(|| black_box(lb.pick(black_box(&b), &RequestCtx::default())))
            });
        }
    }
    g.finish();
}

fn pick_contended(c: &mut Criterion) {
    const THREADS: u64 = 2;
    let mut g = c.benchmark_group("pick-2-threads");
    for &n in benches::WORKER_COUNTS {
        let b = backends(n);
        for s in Strategy::ALL {
            let lb = s.build();
            g.bench_with_input(BenchmarkId::new(s.name(), n), &n, |bench, _| {
                bench.iter_custom(|iters| {
                    let start = Barrier::new(THREADS as usize);
                    let t0 = Instant::now();
                    std::thread::scope(|scope| {
                        for _ in 0..THREADS {
                            scope.spawn(|| {
                                start.wait();
                                for _ in 0..iters / THREADS {
                                    black_box(lb.pick(&b, &RequestCtx::default()));
                                }
                            });
                        }
                    });
                    t0.elapsed()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, pick_uncontended, pick_contended);
criterion_main!(benches);
