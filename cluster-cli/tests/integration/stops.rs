//! How real workers leave when a health verdict removes them: a health kill keeps its reason
//! and costs no back-off; a frozen worker is gone within seconds, not the graceful timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cluster_core::ClusterEvent;
use tokio::time::Instant;

use crate::embedded::{Embedded, WAIT, failures, load};
use crate::util::alive;

#[tokio::test]
async fn a_health_kill_keeps_its_reason_and_causes_no_back_off() {
    // Every worker leaks 40 MB/s: over the 100 MB hard limit within about 3 s of its start,
    // younger than the 10 s of a quick exit. Three kills in a row would back off if they were
    // counted as crashes.
    let extra = r#""maxMemoryUsage": 60, "restartOnHighMemory": false, "healthCheckInterval": 200,
        "health": {"hardMemoryLimit": 100, "leakWindow": 1000, "leakMinSlope": 60},
        "env": {"HELLO_LEAK_MB_PER_SEC": "40"}"#;
    let mut c = Embedded::start(1, extra).await;
    let mut pressure = false;
    let mut leak = false;
    for round in 1..=3u32 {
        let id = c.status().await.workers[0].worker_id;
        let killed_at = loop {
            let ev = c.next_event("events of the worker", |e| Some(e.clone())).await;
            match ev {
                ClusterEvent::MemoryPressure { worker_id, notified, .. } if worker_id == id => {
                    assert!(!notified, "the Rust worker has no IPC channel");
                    pressure = true;
                }
                ClusterEvent::LeakSuspected { worker_id, slope_mb_per_min, .. }
                    if worker_id == id =>
                {
                    println!("round {round}: leak suspected at {slope_mb_per_min:.0} MB/min");
                    leak = true;
                }
                ClusterEvent::Killed { worker_id, reason, .. } if worker_id == id => {
                    assert!(reason.contains("hard limit"), "{reason}");
                    break Instant::now();
                }
                ClusterEvent::CrashLooping { .. } => panic!("a health kill counted as a crash"),
                _ => {}
            }
        };
        c.next_event("the replacement", |e| {
            matches!(e, ClusterEvent::WorkerStarted { .. }).then_some(())
        })
        .await;
        assert!(killed_at.elapsed() < Duration::from_secs(2), "round {round}: the restart waited");
        let (expected, reason) = c
            .next_event("the exit", |e| match e {
                ClusterEvent::WorkerExited { worker_id, expected, reason, signal, .. }
                    if *worker_id == id =>
                {
                    assert_eq!(*signal, Some(9));
                    Some((*expected, reason.clone().unwrap_or_default()))
                }
                _ => None,
            })
            .await;
        assert!(expected, "round {round}: the kill was the cluster's own");
        assert!(reason.starts_with("killed: memory"), "{reason}");
        let st = c.wait_until("ready again", |s| s.ready_workers == 1).await;
        let w = &st.workers[0];
        assert_eq!(w.restarts, round);
        let last = w.last_restart_reason.clone().unwrap_or_default();
        assert!(last.starts_with("killed: memory") && last.contains("hard limit"), "{last}");
        assert!(st.crash_looping_slots.is_empty());
    }
    assert!(pressure, "no memory-pressure event before the kills");
    assert!(leak, "no leak warning before the kills");
    c.stop().await;
}

#[tokio::test]
async fn a_sigstopped_worker_is_gone_within_seconds_of_being_judged_unresponsive() {
    // The default graceful timeout (15 s) would hold the frozen process that long after
    // SIGTERM; it has nothing to drain, so it gets `health.unresponsiveGrace` (1 s here).
    let extra = r#""healthCheckInterval": 200, "unresponsiveTimeout": 1500,
        "health": {"probeTimeout": 300, "unresponsiveGrace": 1000}"#;
    let mut c = Embedded::start(2, extra).await;
    let (frozen_id, frozen) = c.worker_in_slot(0).await;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(c.handle.local_addr(), "/pid", 4, 200_000, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(300)).await;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(frozen as i32).unwrap(),
        rustix::process::Signal::STOP,
    )
    .unwrap();
    let reason = c.recycling_of(frozen_id).await;
    assert!(reason.contains("unresponsive"), "{reason}");
    let judged = Instant::now();
    while alive(frozen) {
        assert!(judged.elapsed() < WAIT, "the frozen worker {frozen} still runs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone_after = judged.elapsed();
    println!("frozen worker gone {gone_after:?} after it was judged unresponsive");
    assert!(
        gone_after < Duration::from_secs(6),
        "{gone_after:?}: it waited for the graceful timeout"
    );
    c.wait_until("replaced", |s| s.ready_workers == 2 && s.workers.iter().all(|w| w.pid != frozen))
        .await;
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.unwrap();
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    c.stop().await;
}
