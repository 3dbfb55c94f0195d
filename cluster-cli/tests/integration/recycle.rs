//! The replacement path, driven through `ClusterHandle::recycle` on an [`Embedded`] cluster
//! with real worker processes: no request fails and ready capacity never drops.

use std::time::Duration;

use bytes::Bytes;
use cluster_core::{ClusterEvent, WorkerState};

use crate::embedded::Embedded;
use crate::util::{Conn, alive};

#[tokio::test]
async fn recycling_every_worker_under_load_loses_no_request() {
    let c = Embedded::start(2, "").await;
    let (handle, mut events) = (c.handle.clone(), c.handle.subscribe());
    let addr = handle.local_addr();
    let before = handle.status().await.unwrap();
    let old: Vec<(u64, u32)> = before.workers.iter().map(|w| (w.worker_id, w.pid)).collect();

    let load = tokio::spawn(async move {
        let mut conn = Conn::open(addr).await;
        let mut statuses = Vec::new();
        for _ in 0..300 {
            statuses.push(conn.send("GET", "/slow?ms=10", Bytes::new()).await.0);
        }
        statuses
    });
    for (id, _) in &old {
        handle.recycle(*id, "test").await.unwrap();
    }
    // Both recycles complete (one at a time); capacity stays at two ready workers throughout.
    let mut recycled = 0;
    let mut min_ready = usize::MAX;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while recycled < old.len() {
        assert!(tokio::time::Instant::now() < deadline, "recycles did not finish");
        if let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_millis(10), events.recv()).await {
            if matches!(ev, ClusterEvent::Recycled { .. }) {
                recycled += 1;
            }
        }
        min_ready = min_ready.min(handle.status().await.unwrap().ready_workers);
    }
    assert!(min_ready >= 2, "ready workers dropped to {min_ready} during the recycle");
    let statuses = load.await.unwrap();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "failed requests: {:?}",
        statuses.iter().filter(|&&s| s != 200).count()
    );

    // The old workers drain and stop; new ones serve.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = handle.status().await.unwrap();
        let ids: Vec<u64> = status.workers.iter().map(|w| w.worker_id).collect();
        let done = status.workers.len() == 2
            && status.workers.iter().all(|w| w.status == WorkerState::Ready)
            && old.iter().all(|(id, _)| !ids.contains(id));
        if done {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "old workers still there: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (_, pid) in &old {
        assert!(!alive(*pid), "old worker {pid} still running");
    }
    c.stop().await;
}
