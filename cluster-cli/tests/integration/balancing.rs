//! Strategies through the real proxy: one worker of three is slow; the load-aware strategies
//! send it clearly fewer requests than round-robin. The latencies clients saw are printed
//! (`--nocapture`) as figures, not asserted: tests run in parallel on a shared machine.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::util::{ClusterCmd, Conn, Worker};

/// Requests per client connection, and concurrent connections: bounded load.
const PER_CONN: usize = 60;
const CONNS: usize = 8;

struct Outcome {
    slow_share: f64,
    mean_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
}

async fn run(strategy: &str) -> Outcome {
    let cluster = ClusterCmd::workers(3, Worker::Rust)
        .env("HELLO_SLOW_SLOT", "0")
        .env("HELLO_DELAY_MS", "20")
        .config(&format!(r#"{{"loadBalancingStrategy": "{strategy}"}}"#))
        .spawn(3);
    let slow_pid = cluster
        .log()
        .iter()
        .find_map(|l| {
            l.split("worker 0 ready: pid ").nth(1)?.split_whitespace().next().map(str::to_owned)
        })
        .expect("slot 0 pid");
    let mut tasks = Vec::new();
    for _ in 0..CONNS {
        let addr = cluster.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut seen = Vec::with_capacity(PER_CONN);
            for _ in 0..PER_CONN {
                let t0 = Instant::now();
                let (status, body) = conn.send("GET", "/pid", Bytes::new()).await;
                assert_eq!(status, 200);
                seen.push((String::from_utf8_lossy(&body).into_owned(), t0.elapsed()));
            }
            seen
        }));
    }
    let mut by_pid: HashMap<String, usize> = HashMap::new();
    let mut latencies = Vec::new();
    for t in tasks {
        for (pid, latency) in t.await.unwrap() {
            *by_pid.entry(pid).or_default() += 1;
            latencies.push(latency);
        }
    }
    latencies.sort();
    let n = latencies.len();
    let at = |q: f64| latencies[((q * n as f64) as usize).min(n - 1)].as_secs_f64() * 1000.0;
    let outcome = Outcome {
        slow_share: *by_pid.get(&slow_pid).unwrap_or(&0) as f64 / n as f64,
        mean_ms: latencies.iter().sum::<Duration>().as_secs_f64() * 1000.0 / n as f64,
        p90_ms: at(0.90),
        p99_ms: at(0.99),
    };
    println!(
        "{strategy:>17}: slow worker share {:>5.1} %, mean {:>6.2} ms, p90 {:>6.2} ms, p99 {:>6.2} ms",
        outcome.slow_share * 100.0,
        outcome.mean_ms,
        outcome.p90_ms,
        outcome.p99_ms
    );
    outcome
}

#[tokio::test]
async fn load_aware_strategies_avoid_a_slow_worker() {
    let rr = run("round-robin").await;
    assert!(rr.slow_share > 0.25, "round-robin gives each worker a third: {}", rr.slow_share);
    for strategy in ["least-connections", "p2c", "peak-ewma"] {
        let o = run(strategy).await;
        assert!(
            o.slow_share < rr.slow_share * 0.6,
            "{strategy} sent {:.1} % to the slow worker (round-robin {:.1} %)",
            o.slow_share * 100.0,
            rr.slow_share * 100.0
        );
    }
}

#[tokio::test]
async fn a_replacement_worker_ramps_up_under_slow_start() {
    let cluster = ClusterCmd::workers(2, Worker::Rust)
        .config(r#"{"loadBalancingStrategy": "round-robin", "performance": {"slowStartWindow": 60000}}"#)
        .spawn(2);
    let victim = cluster.worker_pids()[0];
    let pid = rustix::process::Pid::from_raw(victim as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    cluster.wait_for_count(" ready: pid ", 3, Duration::from_secs(20));
    let newcomer = cluster.worker_pids()[2].to_string();
    let mut conn = Conn::open(cluster.addr).await;
    let mut to_newcomer = 0;
    for _ in 0..200 {
        let (status, body) = conn.send("GET", "/pid", Bytes::new()).await;
        assert_eq!(status, 200);
        if String::from_utf8_lossy(&body) == newcomer {
            to_newcomer += 1;
        }
    }
    // Round-robin alone would give it half; a minute-long ramp starts near its 10 % floor.
    assert!(to_newcomer < 60, "the cold worker got {to_newcomer} of 200 requests at once");
}

#[tokio::test]
async fn sticky_sessions_keep_a_client_on_one_worker() {
    let cluster = ClusterCmd::workers(3, Worker::Rust)
        .config(r#"{"loadBalancingStrategy": "round-robin", "enableStickySession": true}"#)
        .spawn(3);
    // A first visit gets the affinity cookie; sent back, it keeps the client in place.
    let mut conn = Conn::open(cluster.addr).await;
    let first = conn.request("GET", "/pid", Bytes::new()).await;
    let cookie =
        first.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("cluster_affinity="), "{cookie}");
    let mut pids = std::collections::HashSet::new();
    for key in 1..=6u64 {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let resp = conn
                .request_with(
                    "GET",
                    "/pid",
                    Bytes::new(),
                    &[("cookie", &format!("cluster_affinity={key:016x}"))],
                )
                .await;
            assert!(!resp.headers().contains_key("set-cookie"), "a known key is not set again");
            let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
            seen.insert(String::from_utf8_lossy(&body).into_owned());
        }
        assert_eq!(seen.len(), 1, "key {key} moved between workers: {seen:?}");
        pids.extend(seen);
    }
    assert!(pids.len() >= 2, "six keys all on one worker: {pids:?}");
    // Without the cookie the client address keys it: the same worker every time.
    let mut by_address = std::collections::HashSet::new();
    for _ in 0..20 {
        by_address.insert(
            String::from_utf8_lossy(&conn.send("GET", "/pid", Bytes::new()).await.1).into_owned(),
        );
    }
    assert_eq!(by_address.len(), 1);
}
