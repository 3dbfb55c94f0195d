//! Sticky sessions: affinity over many requests, and how many clients a scale change moves.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use cluster_balancer::{BackendLoad, Balancer, LeastConnections, RequestCtx, Sticky};

const CLIENTS: u32 = 10_000;

fn backends(ids: std::ops::Range<u64>) -> Vec<Arc<BackendLoad>> {
    ids.map(|id| Arc::new(BackendLoad::new(id))).collect()
}

fn ctx(client: u32) -> RequestCtx {
    let ip = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + client));
    RequestCtx { client: Some(ip), avoid: None, affinity: None }
}

/// The backend id each client lands on.
fn homes(lb: &impl Balancer, b: &[Arc<BackendLoad>]) -> Vec<u64> {
    (0..CLIENTS).map(|c| b[lb.pick(b, &ctx(c)).unwrap()].id()).collect()
}

#[test]
fn each_client_keeps_its_backend_across_10000_requests() {
    let b = backends(0..4);
    let lb = Sticky::new(LeastConnections::new());
    let first = homes(&lb, &b);
    // 10,000 requests from 100 clients in turn, each held in flight for a while.
    let mut window = std::collections::VecDeque::new();
    for r in 0..10_000u32 {
        let c = r % 100;
        let i = lb.pick(&b, &ctx(c)).unwrap();
        assert_eq!(b[i].id(), first[c as usize], "request {r} of client {c} moved");
        window.push_back(b[i].start());
        if window.len() > 4 {
            window.pop_front();
        }
    }
    // The clients are spread, not piled on one backend.
    for id in 0..4 {
        let share = first.iter().filter(|&&h| h == id).count();
        assert!((2_000..3_000).contains(&share), "backend {id} homes {share} clients");
    }
}

#[test]
fn scaling_from_4_to_5_moves_about_a_fifth_of_the_clients() {
    let lb = Sticky::new(LeastConnections::new());
    let before = homes(&lb, &backends(0..4));
    let after = homes(&lb, &backends(0..5));
    let moved: Vec<_> = (0..CLIENTS as usize).filter(|&c| before[c] != after[c]).collect();
    assert!(moved.len() < CLIENTS as usize / 4, "{} of {CLIENTS} moved", moved.len());
    assert!(
        moved.len() > CLIENTS as usize / 7,
        "{} moved: the new backend is starved",
        moved.len()
    );
    // Every client that moved went to the new backend.
    assert!(moved.iter().all(|&c| after[c] == 4));
}

#[test]
fn removing_a_backend_moves_only_its_clients() {
    let lb = Sticky::new(LeastConnections::new());
    let before = homes(&lb, &backends(0..5));
    let without_2: Vec<_> = backends(0..5).into_iter().filter(|b| b.id() != 2).collect();
    let after = homes(&lb, &without_2);
    for c in 0..CLIENTS as usize {
        if before[c] != 2 {
            assert_eq!(before[c], after[c], "client {c} moved though its backend stayed");
        }
    }
}

#[test]
fn a_replacement_with_the_same_affinity_key_keeps_the_clients() {
    let lb = Sticky::new(LeastConnections::new());
    let old: Vec<_> = (0..4).map(|slot| Arc::new(BackendLoad::with_affinity(slot, slot))).collect();
    let mut new = old.clone();
    new[1] = Arc::new(BackendLoad::with_affinity(99, 1)); // worker 1 restarted as id 99
    let (before, after) = (homes(&lb, &old), homes(&lb, &new));
    let moved = (0..CLIENTS as usize).filter(|&c| (before[c] == 1) != (after[c] == 99)).count();
    assert_eq!(moved, 0);
}

#[test]
fn a_hot_client_cannot_overload_its_backend() {
    let b = backends(0..4);
    let lb = Sticky::new(LeastConnections::new());
    let mut held = Vec::new();
    for _ in 0..400 {
        let i = lb.pick(&b, &ctx(7)).unwrap();
        held.push(b[i].start());
    }
    let max = b.iter().map(|x| x.in_flight()).max().unwrap();
    assert!(max <= 126, "{max} in flight on one backend: above ⌈1.25 × 400 / 4⌉ + 1");
}
