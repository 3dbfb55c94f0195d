//! Scaling, and its races with recycles; sticky affinity across a scale-down.

use std::time::Duration;

use cluster_balancer::RequestCtx;

use super::fake::Behaviour;
use super::{Harness, spec};
use crate::{ClusterEvent, ControlError, WorkerState};

#[tokio::test(start_paused = true)]
async fn scaling_up_and_down_within_the_bounds() {
    let mut s = spec(2);
    s.scaling.max_workers = 6;
    let mut h = Harness::start(s, Behaviour::default()).await;
    let scaled = h.handle.on_behalf_of("test").scale(6).await.unwrap();
    assert_eq!((scaled.from, scaled.to), (2, 6));
    let by = h
        .next("scaled", |e| match e {
            ClusterEvent::Scaled { from: 2, to: 6, by } => Some(by.clone()),
            _ => None,
        })
        .await;
    assert_eq!(by, "test");
    h.wait_until("six ready", |s| s.ready_workers == 6).await;
    let scaled = h.handle.scale_by(-5).await.unwrap();
    assert_eq!((scaled.from, scaled.to), (6, 1));
    // The highest slots leave; slot 0 stays.
    let after = h.wait_until("one left", |s| s.workers.len() == 1).await;
    assert_eq!(after.workers[0].slot, 0);
    for (n, expected) in [(0, (0, 1, 6)), (7, (7, 1, 6))] {
        match h.handle.scale(n).await {
            Err(ControlError::OutOfRange { requested, min, max }) => {
                assert_eq!((requested, min, max), expected)
            }
            other => panic!("scale({n}) not refused: {other:?}"),
        }
    }
    let e = h.handle.scale_by(-1).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot run 0 workers: the count must stay between scaling.minWorkers (1) and scaling.maxWorkers (6)"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_scale_down_during_a_recycle_retires_the_worker_and_its_replacement() {
    let slow = Behaviour { ready_after: Duration::from_secs(2), ..Behaviour::default() };
    let mut h = Harness::start(spec(4), slow).await;
    let status = h.status().await;
    let in_slot_3 = status.workers.iter().find(|w| w.slot == 3).unwrap().worker_id;
    h.handle.recycle(in_slot_3, "test").await.unwrap();
    h.next("replacement starting", |e| {
        matches!(e, ClusterEvent::WorkerStarted { slot: 3, .. }).then_some(())
    })
    .await;
    h.handle.scale(2).await.unwrap();
    let after = h.wait_until("two left", |s| s.workers.len() == 2 && s.ready_workers == 2).await;
    let mut slots: Vec<usize> = after.workers.iter().map(|w| w.slot).collect();
    slots.sort_unstable();
    assert_eq!(slots, vec![0, 1]);
    // Nothing starts again for the slots scaled away, and no recycle is reported as failed.
    let seen = h.drain();
    assert!(!seen.iter().any(|e| matches!(e, ClusterEvent::RecycleFailed { .. })), "{seen:#?}");
    let spawns = h.world.spawns.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(h.world.spawns.load(std::sync::atomic::Ordering::SeqCst), spawns);
    let seen = h.drain();
    assert!(!seen.iter().any(|e| matches!(e, ClusterEvent::WorkerStarted { .. })), "{seen:#?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_recycle_queued_behind_one_scaled_away_still_runs() {
    let slow = Behaviour { ready_after: Duration::from_secs(2), ..Behaviour::default() };
    let mut h = Harness::start(spec(4), slow).await;
    let status = h.status().await;
    let id_of = |slot| status.workers.iter().find(|w| w.slot == slot).unwrap().worker_id;
    let (in_3, in_0) = (id_of(3), id_of(0));
    h.handle.recycle(in_3, "first").await.unwrap();
    h.next("replacement starting", |e| {
        matches!(e, ClusterEvent::WorkerStarted { slot: 3, .. }).then_some(())
    })
    .await;
    h.handle.recycle(in_0, "second, queued").await.unwrap();
    h.handle.scale(2).await.unwrap();
    let reason = h
        .next("the queued recycle", |e| match e {
            ClusterEvent::Recycled { worker_id, .. } if *worker_id == in_0 => Some(()),
            _ => None,
        })
        .await;
    let _: () = reason;
    h.wait_until("two, slot 0 replaced", |s| {
        s.workers.len() == 2 && s.workers.iter().all(|w| w.worker_id != in_0)
    })
    .await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_scale_down_drains_before_it_stops() {
    let h = Harness::start(spec(2), Behaviour::default()).await;
    let leaving = h.status().await.workers.iter().find(|w| w.slot == 1).unwrap().clone();
    // A request in flight on the leaving worker: it must not be signalled until it is done.
    let backend =
        h.handle.routes().backends().iter().find(|b| b.id() == leaving.worker_id).cloned().unwrap();
    let guard = backend.load().start();
    h.handle.scale(1).await.unwrap();
    assert!(
        h.handle.routes().backends().iter().all(|b| b.id() != leaving.worker_id),
        "out of rotation at once"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let proc = h.world.proc(leaving.pid);
    assert!(proc.signals.lock().unwrap().is_empty(), "signalled while a request was in flight");
    assert_eq!(
        h.status()
            .await
            .workers
            .iter()
            .find(|w| w.worker_id == leaving.worker_id)
            .map(|w| w.status),
        Some(WorkerState::Draining)
    );
    drop(guard);
    h.wait_until("gone", |s| s.workers.len() == 1).await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn sticky_clients_of_the_kept_slots_keep_their_worker_across_a_scale_down() {
    let mut s = spec(4);
    s.sticky_sessions = true;
    let h = Harness::start(s, Behaviour::default()).await;
    let slot_of = |key: u64| {
        let table = h.handle.routes();
        let ctx = RequestCtx { affinity: Some(key), ..RequestCtx::default() };
        table.pick(&ctx).map(|b| b.slot())
    };
    let before: Vec<usize> = (0..400).map(|k| slot_of(k).unwrap()).collect();
    h.handle.scale(3).await.unwrap();
    h.wait_until("three", |s| s.workers.len() == 3).await;
    let mut moved = 0;
    for (key, was) in before.iter().enumerate() {
        let now = slot_of(key as u64).unwrap();
        if *was < 3 {
            assert_eq!(now, *was, "key {key} moved from a kept slot");
        } else {
            moved += 1;
        }
    }
    // About a quarter of the keys lived on slot 3; only those moved.
    assert!((60..=140).contains(&moved), "{moved} keys moved");
    h.stop().await;
}
