//! The health policies acting on real worker processes, with bounded load running through the
//! proxy: a leaking worker is recycled, a frozen one leaves rotation and is replaced, workers
//! are recycled after `maxRequestsPerWorker`, a worker answering 500s is ejected and
//! re-admitted, and the CPU figure of a busy worker agrees with `ps`.
//!
//! Each test runs an [`Embedded`] cluster of the `hello` example worker, so it can follow
//! `ClusterEvent`s and `ClusterHandle::status`; the workers are real processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cluster_core::{ClusterEvent, WorkerState};
use cluster_health::{
    HealthPolicy, ProcfsSampler, RecycleReason, ResourceSample, ResourceSampler, SampleError,
    UnhealthyReason, Verdict, WorkerSnapshot,
};
use tokio::time::Instant;

use crate::embedded::{Embedded, WAIT, failures, get, load, open};
use crate::util::alive;

#[tokio::test]
async fn a_leaking_worker_is_recycled_without_a_failed_request() {
    let mut c = Embedded::start(
        2,
        r#""env": {"HELLO_FAULT_SLOT": "0", "HELLO_LEAK_MB_PER_SEC": "40"},
           "maxMemoryUsage": 80, "healthCheckInterval": 250,
           "health": {"memoryMinAge": 1000, "memorySamples": 2, "hardMemoryLimit": 0}"#,
    )
    .await;
    let (old, leaking) = c.worker_in_slot(0).await;
    let addr = c.handle.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let load = load(addr, "/pid", 4, 5_000, Arc::clone(&stop));

    let started = Instant::now();
    let reason = c.recycling_of(old).await;
    println!("leaking worker recycled after {:?}: {reason}", started.elapsed());
    assert!(reason.contains("memory") && reason.contains("soft limit"), "{reason}");
    c.next_event("recycled", |ev| {
        matches!(ev, ClusterEvent::Recycled { worker_id, .. } if *worker_id == old).then_some(())
    })
    .await;
    c.wait_until("the leaking worker gone", |s| {
        s.ready_workers == 2 && s.workers.iter().all(|w| w.worker_id != old)
    })
    .await;
    assert!(!alive(leaking), "the leaking worker {leaking} still runs");
    stop.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();
    println!("{} requests during the recycle, failures: {:?}", seen.len(), failures(&seen));
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    let status = c.status().await;
    let slot0 = status.workers.iter().find(|w| w.slot == 0).unwrap();
    // The replacement leaks too (same slot, same fault) and may be recycled in turn.
    let last = slot0.last_restart_reason.as_deref().unwrap_or_default();
    assert!(slot0.recycles >= 1 && last.starts_with("memory"), "{slot0:#?}");
    c.stop().await;
}

#[tokio::test]
async fn a_frozen_worker_leaves_rotation_at_once_and_is_replaced() {
    // Probes often enough that two fail before the unresponsive timeout: out of rotation
    // first, replaced at the timeout.
    frozen_worker(
        r#""healthCheckInterval": 200, "unresponsiveTimeout": 2000,
           "gracefulShutdownTimeout": 1000,
           "health": {"probeTimeout": 300, "probeFailures": 2}"#,
        &["probes failed"],
    )
    .await;
}

#[tokio::test]
async fn a_frozen_worker_leaves_rotation_at_the_timeout_with_sparse_probes() {
    // The defaults' proportions (5 s interval, 2 s probe timeout, 10 s unresponsive) divided
    // by 5: the timeout may come before the second failed probe; the worker then leaves
    // rotation as its replacement starts.
    frozen_worker(
        r#""healthCheckInterval": 1000, "unresponsiveTimeout": 2000,
           "gracefulShutdownTimeout": 1000, "health": {"probeTimeout": 400}"#,
        &["probes failed", "unresponsive"],
    )
    .await;
}

/// Freezes the worker of slot 0 with SIGSTOP under load; it must leave rotation (for one of
/// the reasons `ejected_for`), be replaced and killed, and no request may fail.
async fn frozen_worker(config: &str, ejected_for: &[&str]) {
    let mut c = Embedded::start(2, config).await;
    let (frozen_id, frozen) = c.worker_in_slot(0).await;
    let addr = c.handle.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let load = load(addr, "/pid", 4, 5_000, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(300)).await;

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(frozen as i32).unwrap(),
        rustix::process::Signal::STOP,
    )
    .unwrap();
    let frozen_at = Instant::now();
    let reason = c.ejection_of(frozen_id).await;
    let out_after = frozen_at.elapsed();
    println!("frozen worker out of rotation after {out_after:?}: {reason}");
    assert!(ejected_for.iter().any(|r| reason.contains(r)), "{reason}");
    let reason = c.recycling_of(frozen_id).await;
    println!("replacement started after {:?}: {reason}", frozen_at.elapsed());
    assert!(reason.contains("unresponsive"), "{reason}");
    c.wait_until("the frozen worker gone", |s| {
        s.ready_workers == 2 && s.workers.iter().all(|w| w.worker_id != frozen_id)
    })
    .await;
    let deadline = Instant::now() + WAIT;
    while alive(frozen) {
        assert!(Instant::now() < deadline, "the frozen worker {frozen} still runs");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    println!("frozen worker replaced and killed after {:?}", frozen_at.elapsed());
    stop.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();
    let served_by_frozen = seen.iter().filter(|(_, body)| body == &frozen.to_string()).count();
    println!(
        "{} requests, {served_by_frozen} answered by the frozen worker before it froze, failures: {:?}",
        seen.len(),
        failures(&seen)
    );
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    c.stop().await;
}

#[tokio::test]
async fn max_requests_per_worker_recycles_under_load_without_a_failed_request() {
    let mut c = Embedded::start(
        2,
        r#""healthCheckInterval": 200, "performance": {"maxRequestsPerWorker": 150}"#,
    )
    .await;
    let addr = c.handle.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    // 4 x 200 = 800 requests: each worker passes its limit (150 +- 10 %) at least once.
    let load = load(addr, "/pid", 4, 200, Arc::clone(&stop));
    let mut reasons = Vec::new();
    let mut min_ready = usize::MAX;
    let deadline = Instant::now() + WAIT;
    // The limit is judged on every tick, so a worker over it is recycled even if the load
    // has ended by then.
    while reasons.len() < 2 {
        assert!(Instant::now() < deadline, "only {} recycles: {reasons:?}", reasons.len());
        let ev = tokio::time::timeout(Duration::from_millis(50), c.events.recv()).await;
        if let Ok(Ok(ClusterEvent::Recycling { reason, .. })) = ev {
            reasons.push(reason);
        }
        min_ready = min_ready.min(c.status().await.ready_workers);
    }
    let seen = load.await.unwrap();
    println!("{} requests, recycles: {reasons:?}, min ready {min_ready}", seen.len());
    for reason in &reasons {
        assert!(reason.starts_with("served ") && reason.contains("requests"), "{reason}");
    }
    assert!(min_ready >= 2, "ready workers dropped to {min_ready}");
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    c.stop().await;
}

#[tokio::test]
async fn a_worker_answering_500s_is_ejected_and_readmitted_once_healthy() {
    let mut c = Embedded::start(
        3,
        r#""env": {"HELLO_FAULT_SLOT": "0", "HELLO_FAIL_FOR_MS": "2500"},
           "healthCheckInterval": 200,
           "health": {"outlierMinRequests": 10, "ejectionTime": 2000, "metricsWindow": 1000}"#,
    )
    .await;
    let (faulty_id, faulty) = c.worker_in_slot(0).await;
    let addr = c.handle.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let load = load(addr, "/pid", 4, 20_000, Arc::clone(&stop));

    let reason = c.ejection_of(faulty_id).await;
    println!("faulty worker ejected: {reason}");
    assert!(reason.contains("error rate"), "{reason}");
    let ejected = c.status().await;
    assert!(ejected.workers.iter().any(|w| w.worker_id == faulty_id && w.ejected));
    assert_eq!(ejected.ready_workers, 2, "one worker out of rotation");
    // Re-admitted when its ejection ends; if it still fails then, it is ejected again for
    // longer, and re-admitted after that.
    c.next_event("re-admission while healthy", |ev| match ev {
        ClusterEvent::Readmitted { worker_id, .. } if *worker_id == faulty_id => Some(()),
        _ => None,
    })
    .await;
    let readmitted = Instant::now();
    // Now healthy: it stays in rotation and serves its share.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = c.status().await;
    let w = status.workers.iter().find(|w| w.worker_id == faulty_id);
    let w = w.expect("the worker was re-admitted, not replaced");
    stop.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();
    let errors = seen.iter().filter(|(s, _)| *s == 500).count();
    println!(
        "{} requests, {errors} answered 500 by the faulty worker, other failures: {:?}, \
         worker after re-admission: ejected {} rates {:?}",
        seen.len(),
        failures(&seen).into_iter().filter(|(s, _)| *s != 500).collect::<Vec<_>>(),
        w.ejected,
        w.rates
    );
    assert!(!w.ejected && w.rates.requests > 0, "not serving since {readmitted:?}: {w:#?}");
    assert_eq!(w.rates.errors, 0, "errors after re-admission");
    assert!(seen.iter().any(|(s, body)| *s == 200 && body == &faulty.to_string()));
    // The only failures are the faulty worker's own 500s, and ejection bounds them.
    assert!(failures(&seen).iter().all(|(s, _)| *s == 500), "{:?}", failures(&seen));
    assert!(errors * 5 < seen.len(), "{errors} of {} requests answered 500", seen.len());
    c.stop().await;
}

#[tokio::test]
async fn the_cpu_figure_of_a_busy_worker_agrees_with_ps() {
    let c =
        Embedded::start(1, r#""env": {"HELLO_BURN_PERCENT": "60"}, "healthCheckInterval": 500"#)
            .await;
    let pid = c.pid_of_slot(0).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut diffs = Vec::new();
    for _ in 0..3 {
        let ours = c.status().await.workers[0].cpu_percent.expect("a CPU figure");
        let out = std::process::Command::new("ps")
            .args(["-o", "%cpu=", "-p", &pid.to_string()])
            .output()
            .expect("run ps");
        let ps: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("ps %cpu");
        println!("cpu of the busy worker: ours {ours:.1} %, ps {ps:.1} %");
        diffs.push((ours - ps).abs());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    diffs.sort_by(f64::total_cmp);
    assert!(diffs[1] <= 10.0, "CPU figures differ by {diffs:?} percentage points");
    c.stop().await;
}

/// Reports what /proc says, except for one pid, which it says uses 1 GiB.
#[derive(Debug)]
struct Inflating {
    real: ProcfsSampler,
    pid: Arc<std::sync::atomic::AtomicU32>,
}

impl ResourceSampler for Inflating {
    fn sample(&self, pid: u32) -> Result<ResourceSample, SampleError> {
        let mut sample = self.real.sample(pid)?;
        if pid == self.pid.load(Ordering::Relaxed) {
            sample.rss_bytes = 1 << 30;
        }
        Ok(sample)
    }
}

/// Healthy always; counts the workers it judged.
#[derive(Debug)]
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl HealthPolicy for Counting {
    fn evaluate(&self, _worker: &WorkerSnapshot) -> Verdict {
        self.0.fetch_add(1, Ordering::Relaxed);
        Verdict::Healthy
    }
}

#[tokio::test]
async fn an_embedder_can_feed_samples_and_add_a_policy() {
    let pid = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let judged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampler = Inflating { real: ProcfsSampler::new(), pid: Arc::clone(&pid) };
    let policy = Counting(Arc::clone(&judged));
    let mut c = Embedded::start_with(
        2,
        r#""maxMemoryUsage": 256, "healthCheckInterval": 100,
           "health": {"memoryMinAge": 0, "memorySamples": 2, "hardMemoryLimit": 0}"#,
        |b| b.sampler(sampler).health_policy(policy),
    )
    .await;
    let (id, target) = c.worker_in_slot(1).await;
    pid.store(target, Ordering::Relaxed);
    let reason = c.recycling_of(id).await;
    assert_eq!(reason, "memory 1024 MB over the 256 MB soft limit");
    c.wait_until("the inflated worker replaced", |s| {
        s.ready_workers == 2 && s.workers.iter().all(|w| w.pid != target)
    })
    .await;
    assert!(judged.load(Ordering::Relaxed) >= 2, "the custom policy judged the workers");
    c.stop().await;
}

/// Gives `verdict` to the worker whose id is in `target` (none until it is set), whatever
/// the probes say; every other worker is healthy.
#[derive(Debug)]
struct Judging {
    target: Arc<std::sync::atomic::AtomicU64>,
    verdict: Verdict,
}

impl Judging {
    fn new(verdict: Verdict) -> (Self, Arc<std::sync::atomic::AtomicU64>) {
        let target = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
        (Judging { target: Arc::clone(&target), verdict }, target)
    }
}

impl HealthPolicy for Judging {
    fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict {
        if worker.worker_id == self.target.load(Ordering::Relaxed) {
            self.verdict.clone()
        } else {
            Verdict::Healthy
        }
    }
}

#[tokio::test]
async fn a_worker_to_replace_as_unresponsive_leaves_rotation_before_its_replacement_is_ready() {
    let unresponsive = RecycleReason::Unresponsive { silent_for: Duration::from_secs(9) };
    let (policy, target) = Judging::new(Verdict::Recycle(unresponsive));
    // The replacement takes a second to start: the old worker must be out of rotation
    // meanwhile, not serving until the replacement is ready.
    let mut c = Embedded::start_with(
        2,
        r#""healthCheckInterval": 100, "env": {"HELLO_START_DELAY_MS": "1000"}"#,
        |b| b.health_policy(policy),
    )
    .await;
    let (id, _) = c.worker_in_slot(0).await;
    target.store(id, Ordering::Relaxed);
    let reason = c.ejection_of(id).await;
    assert!(reason.contains("unresponsive"), "{reason}");
    let status = c.status().await;
    assert_eq!(status.ready_workers, 1, "out of rotation at once: {status:#?}");
    assert!(c.recycling_of(id).await.contains("unresponsive"));
    c.wait_until("replaced", |s| {
        s.ready_workers == 2 && s.workers.iter().all(|w| w.worker_id != id)
    })
    .await;
    c.stop().await;
}

#[tokio::test]
async fn ejected_workers_come_back_when_none_is_left_in_rotation() {
    let sick = UnhealthyReason::Other("sick for the test".into());
    let (policy, target) = Judging::new(Verdict::Unhealthy(sick));
    // Replacements take 1.5 s to start, so the cluster has a moment with no healthy worker.
    let mut c = Embedded::start_with(
        2,
        r#""healthCheckInterval": 100, "env": {"HELLO_START_DELAY_MS": "1500"}"#,
        |b| b.health_policy(policy),
    )
    .await;
    let (sick, sick_pid) = c.worker_in_slot(0).await;
    let (_, healthy_pid) = c.worker_in_slot(1).await;
    target.store(sick, Ordering::Relaxed);
    assert!(c.ejection_of(sick).await.contains("sick for the test"));
    // The only worker in rotation dies: the sick one is re-admitted rather than answering
    // every request with 503 until the replacement is ready.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(healthy_pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    c.next_event("re-admission", |ev| match ev {
        ClusterEvent::Readmitted { worker_id, .. } if *worker_id == sick => Some(()),
        _ => None,
    })
    .await;
    let addr = c.handle.local_addr();
    let mut sender = open(addr).await.expect("connect");
    let (status, body) = get(&mut sender, addr, "/pid").await.expect("answer");
    assert_eq!((status, body), (200, sick_pid.to_string()), "served by the re-admitted worker");
    // Once the replacement is ready, the sick worker is ejected again.
    c.wait_until("replacement ready", |s| {
        s.workers
            .iter()
            .any(|w| w.slot == 1 && w.pid != healthy_pid && w.status == WorkerState::Ready)
    })
    .await;
    assert!(c.ejection_of(sick).await.contains("sick for the test"));
    c.stop().await;
}
