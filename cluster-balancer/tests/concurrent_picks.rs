//! Picks from several threads at once: always in range, and the counters return to zero.

use std::sync::Arc;
use std::time::Duration;

use cluster_balancer::{BackendLoad, Balancer, RequestCtx, SlowStart, Sticky, Strategy};

#[test]
fn concurrent_picks_are_safe() {
    let mut all: Vec<Arc<dyn Balancer>> = Strategy::ALL.iter().map(|s| s.build()).collect();
    all.push(Arc::new(Sticky::new(Strategy::LeastConnections.build())));
    all.push(Arc::new(SlowStart::new(Strategy::P2c.build(), Duration::from_millis(5))));
    let b: Vec<_> = (0..16).map(|id| Arc::new(BackendLoad::new(id))).collect();
    b[3].mark_ready();
    for lb in &all {
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let (lb, b) = (lb, &b);
                s.spawn(move || {
                    let mut held = Vec::new();
                    for r in 0..20_000u32 {
                        let client = Some(std::net::Ipv4Addr::from(r % 300 + t).into());
                        let avoid = (r % 5 == 0).then_some(u64::from(r % 16));
                        let i = lb.pick(b, &RequestCtx { client, avoid, affinity: None }).unwrap();
                        assert!(i < b.len());
                        assert_ne!(Some(b[i].id()), avoid);
                        held.push(b[i].start());
                        b[i].observe_latency(Duration::from_micros(u64::from(r % 97)));
                        if held.len() > 8 {
                            drop(held.swap_remove(r as usize % 8));
                        }
                    }
                });
            }
        });
        assert!(b.iter().all(|x| x.in_flight() == 0), "{} leaked in-flight counts", lb.name());
    }
}
