//! The simulation is deterministic and, even at a small size, shows the headline effect.

use benches::sim::{Scenario, contenders, run_all};

#[test]
fn same_seed_same_numbers() {
    let scenario = &Scenario::standard(5_000)[2];
    let a = run_all(scenario, &contenders());
    let b = run_all(scenario, &contenders());
    assert_eq!(a, b);
}

#[test]
fn load_aware_strategies_halve_the_p99_next_to_a_slow_worker() {
    let scenario = Scenario::standard(30_000).into_iter().nth(1).unwrap();
    assert!(scenario.name.contains("5x slower"));
    let results = run_all(&scenario, &contenders()[..5]);
    let p99 = |name: &str| results.iter().find(|r| r.0 == name).unwrap().1.quantile_ms(0.99);
    for name in ["least-connections", "p2c", "peak-ewma"] {
        assert!(p99(name) <= p99("round-robin") / 2.0, "{name}: {} ms", p99(name));
    }
}

#[test]
fn every_request_completes_once() {
    for scenario in Scenario::standard(3_000) {
        for (name, outcome) in run_all(&scenario, &contenders()) {
            assert_eq!(outcome.latencies.len(), 3_000, "{} / {name}", scenario.name);
            assert_eq!(outcome.served.iter().sum::<usize>(), 3_000);
        }
    }
}
