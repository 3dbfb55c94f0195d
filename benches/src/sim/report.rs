//! The strategies a simulation compares, and the table it prints.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use cluster_balancer::{
    Balancer, CpuBased, LeastConnections, ManualClock, P2c, PeakEwma, RoundRobin, SlowStart, Sticky,
};

use super::{Outcome, Scenario, run};

/// Slow-start window of the `+slow-start` contenders.
pub const SLOW_START: Duration = Duration::from_secs(5);

/// A named way to build a balancer on the simulation's clock.
#[derive(Debug, Clone, Copy)]
pub struct Contender {
    /// Name in the table.
    pub name: &'static str,
    /// Builds the balancer reading `clock`, seeded with `seed`.
    pub build: fn(clock: Arc<ManualClock>, seed: u64) -> Box<dyn Balancer>,
}

/// Every built-in strategy, sticky sessions over least-connections, and slow start over
/// round-robin and least-connections.
pub fn contenders() -> Vec<Contender> {
    vec![
        Contender { name: "round-robin", build: |_, _| Box::new(RoundRobin::new()) },
        Contender { name: "least-connections", build: |_, _| Box::new(LeastConnections::new()) },
        Contender { name: "cpu-based", build: |_, _| Box::new(CpuBased::new()) },
        Contender { name: "p2c", build: |_, s| Box::new(P2c::with_seed(s)) },
        Contender { name: "peak-ewma", build: |c, s| Box::new(PeakEwma::with_clock(c).seed(s)) },
        Contender {
            name: "sticky(least-connections)",
            build: |_, _| Box::new(Sticky::new(LeastConnections::new())),
        },
        Contender {
            name: "round-robin+slow-start",
            build: |c, s| Box::new(SlowStart::with_clock(RoundRobin::new(), SLOW_START, c).seed(s)),
        },
        Contender {
            name: "least-connections+slow-start",
            build: |c, s| {
                Box::new(SlowStart::with_clock(LeastConnections::new(), SLOW_START, c).seed(s))
            },
        },
    ]
}

/// Runs `scenario` once per contender.
pub fn run_all(scenario: &Scenario, contenders: &[Contender]) -> Vec<(&'static str, Outcome)> {
    contenders
        .iter()
        .map(|c| {
            let clock = Arc::new(ManualClock::new());
            let lb = (c.build)(Arc::clone(&clock), scenario.seed ^ 0xBA1A);
            (c.name, run(scenario, lb.as_ref(), &clock))
        })
        .collect()
}

/// A Markdown table of one scenario's results: p50, p99, p99.9 (ms), and each worker's
/// share of requests (%).
pub fn table(scenario: &Scenario, results: &[(&'static str, Outcome)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} ({} workers, {:.0} % load, {} requests)\n",
        scenario.name,
        scenario.workers.len(),
        scenario.load * 100.0,
        scenario.requests
    );
    let _ = writeln!(out, "| strategy | p50 ms | p99 ms | p99.9 ms | share per worker % |");
    let _ = writeln!(out, "|---|---:|---:|---:|---|");
    for (name, o) in results {
        let shares: Vec<String> = o.shares().iter().map(|s| format!("{s:.1}")).collect();
        let _ = writeln!(
            out,
            "| {name} | {:.2} | {:.2} | {:.2} | {} |",
            o.quantile_ms(0.5),
            o.quantile_ms(0.99),
            o.quantile_ms(0.999),
            shares.join(" ")
        );
    }
    out
}
