//! Tail latency per strategy in the standard scenarios (see `benches::sim`).
//!
//! `cargo bench -p benches --bench simulate [-- REQUESTS]` prints one Markdown table per
//! scenario and checks the one-slow-worker target: the p99 of least-connections, p2c and
//! peak-ewma is at most half of round-robin's.
#![allow(missing_docs)]

use std::time::Instant;

use benches::sim::{Scenario, contenders, run_all, table};

fn main() {
    // `cargo bench` passes `--bench`; a bare number sets the request count.
    let requests =
        std::env::args().skip(1).find_map(|a| a.parse::<usize>().ok()).unwrap_or(200_000);
    let t0 = Instant::now();
    let contenders = contenders();
    let mut failed = false;
    for scenario in Scenario::standard(requests) {
        let results = run_all(&scenario, &contenders);
        println!("{}", table(&scenario, &results));
        if scenario.name.starts_with("one worker 5x") {
            let p99 = |name: &str| {
                results.iter().find(|(n, _)| *n == name).map(|(_, o)| o.quantile_ms(0.99)).unwrap()
            };
            let rr = p99("round-robin");
            for name in ["least-connections", "p2c", "peak-ewma"] {
                let ok = p99(name) <= rr / 2.0;
                failed |= !ok;
                println!(
                    "target {}: p99 of {name} {:.2} ms <= half of round-robin's {:.2} ms",
                    if ok { "met" } else { "MISSED" },
                    p99(name),
                    rr
                );
            }
            println!();
        }
    }
    println!("simulated in {:.1} s", t0.elapsed().as_secs_f64());
    if failed {
        std::process::exit(1);
    }
}
