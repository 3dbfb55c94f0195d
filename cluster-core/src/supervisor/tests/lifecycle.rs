//! Health kills, unresponsive workers, crash loops and workers that stop by themselves.

use std::sync::Mutex;
use std::time::Duration;

use cluster_health::{
    HealthPolicy, RecycleReason, ResourceSample, ResourceSampler, SampleError, Verdict,
    WorkerSnapshot,
};

use super::fake::{Behaviour, Failure};
use super::{Harness, spec};
use crate::spawn::StopSignal;
use crate::{ClusterEvent, Rotation};

/// Kills the workers listed, once each.
#[derive(Debug, Default)]
struct KillList(Mutex<Vec<u64>>);

impl HealthPolicy for &'static KillList {
    fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict {
        let mut list = self.0.lock().unwrap();
        match list.iter().position(|id| *id == worker.worker_id) {
            Some(i) => {
                list.remove(i);
                Verdict::Kill(RecycleReason::MemoryHardLimit {
                    rss_bytes: 900 << 20,
                    limit_bytes: 768 << 20,
                })
            }
            None => Verdict::Healthy,
        }
    }
}

/// Resources of a process that is neither big nor busy.
#[derive(Debug)]
struct Quiet;

impl ResourceSampler for Quiet {
    fn sample(&self, _pid: u32) -> Result<ResourceSample, SampleError> {
        Ok(ResourceSample { rss_bytes: 50 << 20, cpu_time: Duration::ZERO, processes: 1 })
    }
}

#[tokio::test(start_paused = true)]
async fn a_health_kill_keeps_its_reason_and_causes_no_back_off() {
    let kills: &'static KillList = Box::leak(Box::default());
    let mut s = spec(1);
    s.health_check_interval = Duration::from_millis(500);
    let mut h =
        Harness::start_with(s, Behaviour::default(), |b| b.health_policy(kills).sampler(Quiet))
            .await;
    // Three young workers killed in a row: a crash loop would back off from the second.
    for round in 1..=3 {
        let w = h.status().await.workers[0].clone();
        h.drain();
        kills.0.lock().unwrap().push(w.worker_id);
        // The slot is refilled the moment the worker is killed, before it has even exited.
        h.next("the kill", |e| {
            matches!(e, ClusterEvent::Killed { worker_id, .. } if *worker_id == w.worker_id)
                .then_some(())
        })
        .await;
        let killed_at = tokio::time::Instant::now();
        h.next("the replacement", |e| {
            matches!(e, ClusterEvent::WorkerStarted { .. }).then_some(())
        })
        .await;
        assert_eq!(killed_at.elapsed(), Duration::ZERO, "round {round}: restart delayed");
        let (expected, reason) = h
            .next("the exit", |e| match e {
                ClusterEvent::WorkerExited { worker_id, expected, reason, .. }
                    if *worker_id == w.worker_id =>
                {
                    Some((*expected, reason.clone()))
                }
                _ => None,
            })
            .await;
        assert!(expected, "a kill the cluster made is expected");
        let reason = reason.unwrap();
        assert!(reason.starts_with("killed: memory"), "{reason}");
        let st =
            h.wait_until("ready again", |s| s.ready_workers == 1 && s.workers.len() == 1).await;
        let last = st.workers[0].last_restart_reason.clone().unwrap();
        assert!(last.starts_with("killed: memory"), "round {round}: {last}");
        assert_eq!(st.workers[0].restarts, round);
        assert!(st.crash_looping_slots.is_empty());
    }
    let seen = h.drain();
    assert!(!seen.iter().any(|e| matches!(e, ClusterEvent::CrashLooping { .. })), "{seen:#?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unresponsive_worker_gets_sigkill_after_the_short_grace_not_the_graceful_timeout() {
    // It ignores SIGTERM, as a SIGSTOPped process does.
    let frozen = Behaviour { exit_on_term_after: None, ..Behaviour::default() };
    let mut s = spec(2);
    s.health_check_interval = Duration::from_millis(500);
    s.unresponsive_timeout = Duration::from_secs(3);
    let mut h = Harness::start_with(s, frozen, |b| b.sampler(Quiet)).await;
    let victim = h.status().await.workers.iter().find(|w| w.slot == 0).unwrap().clone();
    h.world.proc(victim.pid).alive.store(false, std::sync::atomic::Ordering::SeqCst);
    let reason = h
        .next("its recycle", |e| match e {
            ClusterEvent::Recycling { worker_id, reason, .. } if *worker_id == victim.worker_id => {
                Some(reason.clone())
            }
            _ => None,
        })
        .await;
    assert!(reason.contains("unresponsive"), "{reason}");
    // Out of rotation, and replaced at once.
    assert!(h.handle.routes().backends().iter().all(|b| b.id() != victim.worker_id));
    h.wait_until("the victim gone, two ready", |s| {
        s.ready_workers == 2 && s.workers.iter().all(|w| w.worker_id != victim.worker_id)
    })
    .await;
    let signals = h.world.proc(victim.pid).signals.lock().unwrap().clone();
    let kinds: Vec<StopSignal> = signals.iter().map(|s| s.0).collect();
    assert_eq!(kinds, vec![StopSignal::Terminate, StopSignal::Kill]);
    let grace = signals[1].1 - signals[0].1;
    assert_eq!(grace, Duration::from_secs(2), "SIGKILL after health.unresponsiveGrace");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_frozen_worker_queued_for_a_recycle_leaves_rotation_at_once() {
    let mut s = spec(3);
    s.health_check_interval = Duration::from_secs(1);
    s.health.heartbeat_timeout = Duration::from_secs(2);
    s.start_timeout = Duration::from_secs(30);
    let slow = Behaviour { ready_after: Duration::from_secs(10), ..Behaviour::default() };
    let h = Harness::start_with(s, slow, |b| b.sampler(Quiet)).await;
    let status = h.status().await;
    let w = |slot| status.workers.iter().find(|w| w.slot == slot).unwrap().clone();
    let (a, b) = (w(0), w(1));
    h.send_heartbeat(b.worker_id, cluster_health::Heartbeat::Alive);
    h.handle.recycle(a.worker_id, "memory").await.unwrap();
    h.handle.recycle(b.worker_id, "max requests").await.unwrap();
    // B freezes while it waits for its turn: no heartbeat, no answer to its probe.
    h.world.proc(b.pid).alive.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(h.handle.routes().backends().iter().all(|x| x.id() != b.worker_id), "still routed");
    h.wait_until("gone", |s| s.workers.iter().all(|w| w.worker_id != b.worker_id)).await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_loop_backs_off_and_recovers() {
    let crashing = Behaviour {
        good_spawns: Some(1),
        failure: Failure::Crash(Duration::from_millis(100)),
        ..Behaviour::default()
    };
    let mut h = Harness::start(spec(1), crashing).await;
    let first = h.status().await.workers[0].pid;
    h.drain();
    h.world.proc(first).exit(1);
    // Every start after the first crashes; the delays between starts double from 250 ms.
    let mut starts = Vec::new();
    while starts.len() < 6 {
        h.next("a start", |e| matches!(e, ClusterEvent::WorkerStarted { .. }).then_some(())).await;
        starts.push(tokio::time::Instant::now());
    }
    let gaps: Vec<u128> = starts.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    // Each gap is the crash (100 ms) plus the back-off delay (0, 250, 500, 1000, 2000).
    assert_eq!(gaps, vec![350, 600, 1100, 2100, 4100]);
    let st = h.status().await;
    assert_eq!(st.crash_looping_slots, vec![0]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_says_it_is_stopping_leaves_rotation_and_is_replaced_at_once() {
    let mut h = Harness::start(spec(2), Behaviour::default()).await;
    let leaving = h.status().await.workers.iter().find(|w| w.slot == 1).unwrap().clone();
    h.handle.status().await.unwrap();
    // What the heartbeat reader would post for `STOPPING=1`.
    h.send_heartbeat(leaving.worker_id, cluster_health::Heartbeat::Stopping);
    h.next("the replacement", |e| {
        matches!(e, ClusterEvent::WorkerStarted { slot: 1, .. }).then_some(())
    })
    .await;
    let st = h.status().await;
    let old = st.workers.iter().find(|w| w.worker_id == leaving.worker_id).unwrap();
    assert_eq!(old.rotation, Rotation::Leaving);
    assert!(h.world.proc(leaving.pid).signals.lock().unwrap().is_empty(), "it stops by itself");
    // It does, and that is not a crash the slot pays for.
    h.world.proc(leaving.pid).exit(0);
    let st = h.wait_until("replaced", |s| s.ready_workers == 2 && s.workers.len() == 2).await;
    assert!(st.crash_looping_slots.is_empty());
    h.stop().await;
}
