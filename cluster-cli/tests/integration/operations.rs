//! Live operations on an embedded cluster of real workers under load: rolling restarts,
//! scaling, a bad deploy, and operations refused while another runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cluster_core::{ClusterEvent, ControlError, OperationError};

use crate::embedded::{Embedded, failures, load};
use crate::util::{Worker, hello_bin};

/// Four rolling restarts of four workers of `worker` while eight keep-alive clients send
/// requests: no request may fail, and every pid changes each time.
async fn rolling_restarts_under_load(worker: Worker) {
    let c = Embedded::start_worker(worker, 4, "", |b| b).await;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(c.handle.local_addr(), "/pid", 8, 200_000, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut took = Vec::new();
    for round in 1..=4 {
        let before = c.status().await;
        let op = c.handle.rolling_restart().await.expect("started");
        let report = op.finished().await.expect("completed");
        assert_eq!(report.replaced, 4, "round {round}");
        took.push(report.took);
        let after = c.wait_until("old workers gone", |s| s.workers.len() == 4).await;
        for old in &before.workers {
            assert!(
                after.workers.iter().all(|w| w.pid != old.pid),
                "round {round}: pid {} survived: {after:#?}",
                old.pid
            );
        }
        assert_eq!(after.generation, round + 1);
    }
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.unwrap();
    let failed: usize = failures(&seen).iter().map(|f| f.1).sum();
    println!(
        "{worker:?}: 4 rolling restarts of 4 workers took {:?}; {} requests sent, {failed} failed",
        took,
        seen.len()
    );
    assert!(seen.len() > 200, "too little load: {}", seen.len());
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    c.stop().await;
}

#[tokio::test]
async fn rolling_restarts_of_rust_workers_under_load_lose_no_request() {
    rolling_restarts_under_load(Worker::Rust).await;
}

#[tokio::test]
async fn rolling_restarts_of_node_workers_under_load_lose_no_request() {
    rolling_restarts_under_load(Worker::Node).await;
}

#[tokio::test]
async fn scaling_2_6_1_under_load_loses_no_request_and_out_of_range_is_refused() {
    let extra = r#""scaling": {"minWorkers": 1, "maxWorkers": 6}"#;
    let c = Embedded::start(2, extra).await;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(c.handle.local_addr(), "/pid", 6, 200_000, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let up = c.handle.on_behalf_of("test").scale(6).await.unwrap();
    assert_eq!((up.from, up.to), (2, 6));
    c.wait_until("six ready", |s| s.ready_workers == 6).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let down = c.handle.scale(1).await.unwrap();
    assert_eq!((down.from, down.to), (6, 1));
    let after = c.wait_until("one left", |s| s.workers.len() == 1 && s.ready_workers == 1).await;
    assert_eq!(after.workers[0].slot, 0, "scale-down keeps the lowest slot");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.unwrap();
    let served_by: std::collections::BTreeSet<&str> =
        seen.iter().map(|(_, pid)| pid.as_str()).collect();
    println!(
        "{} requests over {} workers, failures {:?}",
        seen.len(),
        served_by.len(),
        failures(&seen)
    );
    assert!(served_by.len() >= 6, "the new workers served: {}", served_by.len());
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    for n in [0, 7] {
        let e = c.handle.scale(n).await.unwrap_err();
        assert!(
            matches!(e, ControlError::OutOfRange { requested, min: 1, max: 6 } if requested == n)
        );
        let text = e.to_string();
        assert!(
            text.contains("scaling.minWorkers (1)") && text.contains("scaling.maxWorkers (6)"),
            "{text}"
        );
    }
    assert_eq!(c.status().await.desired_workers, 1);
    c.stop().await;
}

/// A worker command that is a script, so that a test can "deploy" a broken build.
struct Script {
    dir: tempfile::TempDir,
}

impl Script {
    fn new(body: &str) -> Script {
        let s = Script { dir: tempfile::tempdir().unwrap() };
        s.deploy(body);
        s
    }

    fn path(&self) -> String {
        self.dir.path().join("worker.sh").display().to_string()
    }

    /// Replaces the script atomically, as a deploy would.
    fn deploy(&self, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let tmp = self.dir.path().join("worker.sh.new");
        std::fs::write(&tmp, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("worker.sh")).unwrap();
    }
}

#[tokio::test]
async fn a_bad_deploy_leaves_the_old_workers_serving_and_reports_the_failure() {
    let hello = hello_bin().display().to_string();
    let script = Script::new(&format!("exec {hello}"));
    let mut c = Embedded::start_command(&[script.path()], 3, "", |b| b).await;
    let before = c.status().await;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(c.handle.local_addr(), "/pid", 4, 200_000, Arc::clone(&stop));
    script.deploy("echo 'worker.sh: broken build' >&2; exit 1");
    let op = c.handle.rolling_restart().await.unwrap();
    let id = op.id();
    match op.finished().await {
        Err(OperationError::Failed { reason, rolled_back }) => {
            println!("bad deploy: {reason}");
            assert!(reason.contains("exited with code 1 before it was ready"), "{reason}");
            assert_eq!(rolled_back, 0);
        }
        other => panic!("{other:?}"),
    }
    let failed = c
        .next_event("failure event", |e| match e {
            ClusterEvent::OperationFailed { operation, reason, .. } if *operation == id => {
                Some(reason.clone())
            }
            _ => None,
        })
        .await;
    assert!(failed.contains("did not become ready"), "{failed}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = c.status().await;
    let pids = |s: &cluster_core::ClusterStatus| {
        let mut p: Vec<u32> = s.workers.iter().map(|w| w.pid).collect();
        p.sort_unstable();
        p
    };
    assert_eq!(pids(&after), pids(&before), "the old generation keeps serving");
    assert_eq!(after.ready_workers, 3);
    assert_eq!(after.generation, 1);

    // Fixed: a slow-starting build, so that a second rolling restart finds the first under way.
    script.deploy(&format!("sleep 1; exec {hello}"));
    let op = c.handle.rolling_restart().await.unwrap();
    match c.handle.rolling_restart().await {
        Err(ControlError::Busy { operation }) => {
            assert!(operation.starts_with(&format!("rolling restart #{}", op.id())), "{operation}")
        }
        other => panic!("second rolling restart not refused: {other:?}"),
    }
    assert!(matches!(c.handle.restart().await, Err(ControlError::Busy { .. })));
    assert_eq!(op.finished().await.unwrap().replaced, 3);
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.unwrap();
    println!(
        "{} requests during the bad deploy and the fix, failures {:?}",
        seen.len(),
        failures(&seen)
    );
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    c.stop().await;
}
