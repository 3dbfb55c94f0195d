//! The `Balancer` contract, checked for every built-in strategy and wrapper.

use std::sync::Arc;
use std::time::Duration;

use cluster_balancer::{BackendLoad, Balancer, RequestCtx, SlowStart, Sticky, Strategy};

fn backends(n: u64) -> Vec<Arc<BackendLoad>> {
    (0..n).map(|id| Arc::new(BackendLoad::new(id))).collect()
}

/// Every strategy by name, plus the wrappers over one of them.
fn all() -> Vec<Arc<dyn Balancer>> {
    let mut v: Vec<Arc<dyn Balancer>> = Strategy::ALL.iter().map(|s| s.build()).collect();
    v.push(Arc::new(Sticky::new(Strategy::P2c.build())));
    v.push(Arc::new(SlowStart::new(Strategy::RoundRobin.build(), Duration::from_secs(10))));
    v
}

fn ctx_avoid(id: u64) -> RequestCtx {
    RequestCtx { avoid: Some(id), ..RequestCtx::default() }
}

#[test]
fn no_backends_means_no_pick() {
    for lb in all() {
        assert_eq!(lb.pick(&[], &RequestCtx::default()), None, "{}", lb.name());
        assert_eq!(lb.pick(&[], &ctx_avoid(3)), None, "{}", lb.name());
    }
}

#[test]
fn one_backend_is_picked_unless_avoided() {
    let one = backends(1);
    let _busy = one[0].start();
    for lb in all() {
        assert_eq!(lb.pick(&one, &RequestCtx::default()), Some(0), "{}", lb.name());
        assert_eq!(lb.pick(&one, &ctx_avoid(0)), None, "{}", lb.name());
        assert_eq!(lb.pick(&one, &ctx_avoid(9)), Some(0), "{}", lb.name());
    }
}

#[test]
fn picks_stay_in_the_slice_and_off_the_avoided_backend() {
    for n in [2u64, 3, 7, 64] {
        let b = backends(n);
        // Uneven load so that load-aware strategies have something to prefer.
        let _held: Vec<_> = b.iter().step_by(2).map(|x| x.start()).collect();
        b[0].observe_latency(Duration::from_millis(1));
        for lb in all() {
            for round in 0..500u64 {
                let avoid = round % n;
                let client = Some(std::net::Ipv4Addr::from(round as u32).into());
                let ctx = RequestCtx { client, avoid: Some(avoid), affinity: None };
                let i = lb.pick(&b, &ctx).expect("a backend exists");
                assert!(i < b.len(), "{} picked {i} of {n}", lb.name());
                assert_ne!(b[i].id(), avoid, "{} picked the avoided backend", lb.name());
            }
        }
    }
}

#[test]
fn requests_spread_evenly_over_equal_backends() {
    const N: usize = 8;
    const PICKS: usize = 16_000;
    for lb in all() {
        let b = backends(N as u64);
        let mut seen = [0usize; N];
        // Hold a window of requests in flight, as a loaded proxy would.
        let mut window = std::collections::VecDeque::new();
        for _ in 0..PICKS {
            let i = lb.pick(&b, &RequestCtx::default()).unwrap();
            seen[i] += 1;
            window.push_back(b[i].start());
            if window.len() > 2 * N {
                window.pop_front();
            }
        }
        let fair = PICKS / N;
        for (i, &count) in seen.iter().enumerate() {
            assert!(
                count.abs_diff(fair) < fair / 10,
                "{}: backend {i} got {count}, fair is {fair}: {seen:?}",
                lb.name()
            );
        }
    }
}

#[test]
fn a_busy_backend_is_passed_over_by_load_aware_strategies() {
    let b = backends(4);
    let _held: Vec<_> = (0..20).map(|_| b[2].start()).collect();
    for s in [Strategy::LeastConnections, Strategy::CpuBased, Strategy::P2c, Strategy::PeakEwma] {
        let lb = s.build();
        let hits = (0..1000).filter(|_| lb.pick(&b, &RequestCtx::default()) == Some(2)).count();
        assert_eq!(hits, 0, "{s} sent {hits} requests to the backend with 20 in flight");
    }
}
