//! Cost of one health-tick sample of 8 and 64 workers' process trees from /proc: one
//! `sample_many` call (one /proc scan for all workers, as the supervisor does) against one
//! `sample` call per worker (a /proc scan each).
//!
//! The workers are real processes (`sleep`), each the leader of its own process group with a
//! child of its own, started before and killed after the measurement.
#![allow(missing_docs)]

use std::hint::black_box;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use cluster_health::{ProcfsSampler, ResourceSampler};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// `n` process trees: `sh -c 'sleep 60 & wait'` (a shell with one child), own groups.
fn trees(n: usize) -> Vec<Child> {
    (0..n)
        .map(|_| {
            Command::new("sh")
                .args(["-c", "sleep 60 & wait"])
                .stdin(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("spawn sh")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sample");
    for n in [8usize, 64] {
        let mut children = trees(n);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        let sampler = ProcfsSampler::new();
        group.bench_with_input(BenchmarkId::new("sample_many", n), &pids, |b, pids| {
            b.iter(|| black_box(sampler.sample_many(black_box(pids))));
        });
        group.bench_with_input(BenchmarkId::new("sample_each", n), &pids, |b, pids| {
            b.iter(|| {
                for &pid in pids {
                    let _ = black_box(sampler.sample(pid));
                }
            });
        });
        for child in &mut children {
            let group = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            let _ = child.wait();
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
