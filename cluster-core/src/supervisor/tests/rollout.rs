//! Rolling restarts, restarts and rollbacks, and their races with crashes, scaling and
//! shutdown.

use std::time::Duration;

use super::fake::{Behaviour, Failure};
use super::{Harness, spec};
use crate::config::WorkerCommand;
use crate::{ClusterEvent, ControlError, OperationError, OperationKind, WorkerState};

/// A spec whose worker command is `program`: a reload to another program prepares the
/// fake spawner registered for it.
fn with_program(mut spec: crate::config::ClusterSpec, program: &str) -> crate::config::ClusterSpec {
    spec.command = WorkerCommand {
        program: Some(program.into()),
        args: Vec::new(),
        cwd: None,
        env: Default::default(),
    };
    spec
}

#[tokio::test(start_paused = true)]
async fn a_rolling_restart_replaces_one_worker_at_a_time_and_never_drops_below_n() {
    let slow = Behaviour { ready_after: Duration::from_secs(1), ..Behaviour::default() };
    let mut h = Harness::start(spec(4), slow).await;
    let before = Harness::pids(&h.status().await);
    let started = tokio::time::Instant::now();
    let op = h.handle.rolling_restart().await.expect("started");
    assert_eq!((op.kind(), op.workers()), (OperationKind::RollingRestart, 4));
    let id = op.id();
    // Watch every event until the end: never fewer than 4 in rotation, never more than one
    // replacement starting, and progress 1..=4 of 4.
    let mut progress = Vec::new();
    loop {
        let ev = h.next("operation events", |e| Some(e.clone())).await;
        assert!(h.handle.routes().backends().len() >= 4, "capacity dropped at {ev:?}");
        let starting =
            h.status().await.workers.iter().filter(|w| w.status == WorkerState::Starting).count();
        assert!(starting <= 1, "{starting} replacements at once");
        match ev {
            ClusterEvent::OperationProgress {
                operation, done, total, old_pid, new_pid, ..
            } => {
                assert_eq!(operation, id);
                assert!(old_pid.is_some_and(|p| p != new_pid));
                progress.push((done, total));
            }
            ClusterEvent::OperationFinished { operation, replaced, .. } => {
                assert_eq!((operation, replaced), (id, 4));
                break;
            }
            ClusterEvent::OperationFailed { reason, .. } => panic!("failed: {reason}"),
            _ => {}
        }
    }
    assert_eq!(progress, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
    let report = op.finished().await.expect("completed");
    assert_eq!(report.replaced, 4);
    // One at a time: four starts of a second each, at least.
    assert!(started.elapsed() >= Duration::from_secs(4), "{:?}", started.elapsed());
    let after = h.wait_until("old workers gone", |s| s.workers.len() == 4).await;
    assert_eq!(after.generation, 2);
    assert!(after.workers.iter().all(|w| w.generation == 2), "{after:#?}");
    for ((slot, old), (_, new)) in before.iter().zip(Harness::pids(&after)) {
        assert_ne!(*old, new, "slot {slot} kept its pid");
    }
    let world = h.stop().await;
    assert!(world.running().is_empty());
}

#[tokio::test(start_paused = true)]
async fn max_surge_replaces_several_at_once() {
    let mut s = spec(4);
    s.rolling_restart.max_surge = 2;
    let slow = Behaviour { ready_after: Duration::from_secs(1), ..Behaviour::default() };
    let h = Harness::start(s, slow).await;
    let started = tokio::time::Instant::now();
    let op = h.handle.rolling_restart().await.unwrap();
    let peak = async {
        let mut peak = 0;
        loop {
            let st = h.status().await;
            peak =
                peak.max(st.workers.iter().filter(|w| w.status == WorkerState::Starting).count());
            if st.operation.is_none() {
                return peak;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let peak = peak.await;
    op.finished().await.unwrap();
    assert_eq!(peak, 2);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_second_rolling_restart_or_restart_while_one_runs_is_refused() {
    let slow = Behaviour { ready_after: Duration::from_secs(1), ..Behaviour::default() };
    let h = Harness::start(spec(2), slow).await;
    let op = h.handle.rolling_restart().await.unwrap();
    for second in [h.handle.rolling_restart().await, h.handle.restart().await] {
        match second {
            Err(ControlError::Busy { operation }) => {
                assert!(
                    operation.starts_with(&format!("rolling restart #{}", op.id())),
                    "{operation}"
                )
            }
            other => panic!("not refused: {other:?}"),
        }
    }
    op.finished().await.unwrap();
    // Once it is done, the next one may start.
    let next = h.handle.rolling_restart().await.unwrap();
    assert_eq!(next.id(), 2);
    next.finished().await.unwrap();
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_bad_deploy_stops_the_rolling_restart_and_rolls_back() {
    let base = with_program(spec(4), "good");
    let mut h = Harness::start(base.clone(), Behaviour::default()).await;
    let before = Harness::pids(&h.status().await);
    // The new command starts one worker that works, then workers that never become ready.
    let broken =
        Behaviour { good_spawns: Some(1), failure: Failure::NeverReady, ..Behaviour::default() };
    h.world.command("broken", broken);
    let report = h.handle.apply_config(with_program(base.clone(), "broken")).await.unwrap();
    assert!(report.changes.iter().any(|c| c.key == "command"), "{report:?}");
    let op = h.handle.rolling_restart().await.unwrap();
    match op.finished().await {
        Err(OperationError::Failed { reason, rolled_back }) => {
            assert!(reason.contains("not ready within 5000 ms"), "{reason}");
            assert_eq!(rolled_back, 1);
        }
        other => panic!("{other:?}"),
    }
    // The one replaced worker goes back to the first generation; the others never left.
    let done = h
        .next("rollback done", |e| match e {
            ClusterEvent::OperationFinished { kind: OperationKind::Rollback, replaced, .. } => {
                Some(*replaced)
            }
            _ => None,
        })
        .await;
    assert_eq!(done, 1);
    let after = h
        .wait_until("four of generation 1", |s| {
            s.workers.len() == 4
                && s.workers.iter().all(|w| w.generation == 1 && w.status == WorkerState::Ready)
        })
        .await;
    assert_eq!(after.generation, 1);
    let kept: Vec<_> = Harness::pids(&after).into_iter().filter(|p| before.contains(p)).collect();
    assert_eq!(
        kept.len(),
        3,
        "three old workers never left: {before:?} -> {:?}",
        Harness::pids(&after)
    );
    // The new command stays prepared: the next rolling restart tries it again (and fails
    // again, rolling nothing back this time)...
    let op = h.handle.rolling_restart().await.unwrap();
    assert!(matches!(op.finished().await, Err(OperationError::Failed { rolled_back: 0, .. })));
    // ...until a reload fixes it.
    h.world.command("fixed", Behaviour::default());
    h.handle.apply_config(with_program(base, "fixed")).await.unwrap();
    let op = h.handle.rolling_restart().await.unwrap();
    assert_eq!(op.finished().await.unwrap().replaced, 4);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_replacement_that_cannot_be_spawned_fails_the_rolling_restart_at_once() {
    let base = with_program(spec(3), "good");
    let h = Harness::start(base.clone(), Behaviour::default()).await;
    let before = Harness::pids(&h.status().await);
    h.world.command(
        "missing",
        Behaviour { good_spawns: Some(0), failure: Failure::SpawnError, ..Behaviour::default() },
    );
    h.handle.apply_config(with_program(base, "missing")).await.unwrap();
    let op = h.handle.rolling_restart().await.unwrap();
    assert!(matches!(op.finished().await, Err(OperationError::Failed { rolled_back: 0, .. })));
    let after = h.status().await;
    assert_eq!(Harness::pids(&after), before, "the old generation keeps serving");
    assert_eq!(after.ready_workers, 3);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_old_worker_crashing_during_a_rolling_restart_neither_stops_it_nor_leaves_extra_workers()
{
    let slow = Behaviour { ready_after: Duration::from_secs(1), ..Behaviour::default() };
    let mut h = Harness::start(spec(3), slow).await;
    h.drain();
    let op = h.handle.rolling_restart().await.unwrap();
    // The worker being replaced crashes while its replacement starts.
    let old = h
        .next("first replacement", |e| match e {
            ClusterEvent::WorkerStarted { slot, .. } => Some(*slot),
            _ => None,
        })
        .await;
    let victim =
        h.status().await.workers.iter().find(|w| w.slot == old && w.generation == 1).unwrap().pid;
    h.world.proc(victim).exit(3);
    // And so does another old worker, waiting for its turn: its slot restarts in the new
    // generation at once.
    let other =
        h.status().await.workers.iter().find(|w| w.slot != old && w.generation == 1).unwrap().pid;
    h.world.proc(other).exit(3);
    let report = op.finished().await.expect("completes despite the crashes");
    assert!(report.replaced >= 1, "{report:?}");
    let after = h
        .wait_until("three of generation 2", |s| {
            s.workers.len() == 3
                && s.workers.iter().all(|w| w.generation == 2 && w.status == WorkerState::Ready)
        })
        .await;
    let mut slots: Vec<usize> = after.workers.iter().map(|w| w.slot).collect();
    slots.sort_unstable();
    assert_eq!(slots, vec![0, 1, 2]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_new_generation_that_crashes_soon_after_ready_fails_and_rolls_back() {
    let mut base = with_program(spec(3), "good");
    base.rolling_restart.min_ready = Duration::from_secs(5);
    let h = Harness::start(base.clone(), Behaviour::default()).await;
    // The new build becomes ready, then crashes (on its first request, say) 2 s later.
    let crashing =
        Behaviour { crash_after_ready: Some(Duration::from_secs(2)), ..Behaviour::default() };
    h.world.command("crashing", crashing);
    h.handle.apply_config(with_program(base, "crashing")).await.unwrap();
    let op = h.handle.rolling_restart().await.unwrap();
    match op.finished().await {
        Err(OperationError::Failed { reason, .. }) => {
            assert!(reason.contains("after it became ready"), "{reason}")
        }
        other => panic!("a crashing generation was rolled out: {other:?}"),
    }
    let after = h
        .wait_until("back to generation 1", |s| {
            s.operation.is_none()
                && s.workers.len() == 3
                && s.workers.iter().all(|w| w.generation == 1 && w.status == WorkerState::Ready)
        })
        .await;
    assert!(after.crash_looping_slots.is_empty(), "{after:#?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_whose_workers_crash_after_ready_ends_and_frees_the_next_operation() {
    let mut base = with_program(spec(2), "good");
    base.rolling_restart.min_ready = Duration::from_secs(1);
    let h = Harness::start(base.clone(), Behaviour::default()).await;
    let crashing =
        Behaviour { crash_after_ready: Some(Duration::from_millis(10)), ..Behaviour::default() };
    h.world.command("crashing", crashing);
    h.handle.apply_config(with_program(base.clone(), "crashing")).await.unwrap();
    let op = h.handle.restart().await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), op.finished()).await;
    assert!(matches!(outcome, Ok(Err(OperationError::Failed { .. }))), "{outcome:?}");
    assert_eq!(h.status().await.operation, None);
    // The fix can be deployed.
    h.world.command("fixed", Behaviour::default());
    h.handle.apply_config(with_program(base, "fixed")).await.unwrap();
    let op = h.handle.rolling_restart().await.expect("not busy");
    op.finished().await.unwrap();
    h.wait_until("two healthy", |s| s.ready_workers == 2 && s.crash_looping_slots.is_empty()).await;
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_scale_change_during_a_rolling_restart_persists() {
    let slow = Behaviour { ready_after: Duration::from_secs(1), ..Behaviour::default() };
    let mut h = Harness::start(spec(2), slow).await;
    let op = h.handle.rolling_restart().await.unwrap();
    h.next("first progress", |e| matches!(e, ClusterEvent::OperationProgress { .. }).then_some(()))
        .await;
    assert_eq!(h.handle.scale(4).await.unwrap().to, 4);
    let report = op.finished().await.unwrap();
    let after = h
        .wait_until("four of generation 2", |s| {
            s.workers.len() == 4
                && s.workers.iter().all(|w| w.generation == 2 && w.status == WorkerState::Ready)
        })
        .await;
    assert_eq!(after.desired_workers, 4);
    // The two old workers were replaced; the two new slots started in the new generation.
    assert_eq!(report.replaced, 2);
    // And a scale-down in the middle of the next one persists too.
    let op = h.handle.rolling_restart().await.unwrap();
    h.handle.scale(1).await.unwrap();
    op.finished().await.unwrap();
    let after = h.wait_until("one left", |s| s.workers.len() == 1).await;
    assert_eq!(
        (after.desired_workers, after.workers[0].slot, after.workers[0].generation),
        (1, 0, 3)
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_rolling_restart_ends_it_and_stops_every_worker() {
    let slow = Behaviour { ready_after: Duration::from_secs(1), ..Behaviour::default() };
    let mut h = Harness::start(spec(3), slow).await;
    let op = h.handle.rolling_restart().await.unwrap();
    h.next("a replacement starting", |e| {
        matches!(e, ClusterEvent::WorkerStarted { .. }).then_some(())
    })
    .await;
    h.handle.shutdown(crate::ShutdownMode::Graceful).unwrap();
    assert_eq!(op.finished().await.unwrap_err(), OperationError::ShuttingDown);
    assert!(matches!(h.handle.rolling_restart().await, Err(ControlError::ShuttingDown)));
    let world = h.stop().await;
    assert!(world.running().is_empty(), "{:?}", world.running());
}

#[tokio::test(start_paused = true)]
async fn restart_replaces_every_worker_at_once() {
    let slow = Behaviour { ready_after: Duration::from_secs(1), ..Behaviour::default() };
    let h = Harness::start(spec(3), slow).await;
    let before = Harness::pids(&h.status().await);
    let started = tokio::time::Instant::now();
    let op = h.handle.restart().await.unwrap();
    assert_eq!(op.kind(), OperationKind::Restart);
    // All old workers leave rotation at once: capacity dips to nothing, as documented.
    assert!(h.handle.routes().backends().is_empty());
    let report = op.finished().await.unwrap();
    assert_eq!(report.replaced, 3);
    assert!(started.elapsed() < Duration::from_secs(2), "all at once: {:?}", started.elapsed());
    let after = h.wait_until("old gone", |s| s.workers.len() == 3).await;
    assert!(Harness::pids(&after).iter().all(|p| !before.contains(p)));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn hardening_a_spawner_cannot_apply_waits_for_a_restart() {
    let h = Harness::start(spec(1), Behaviour::default()).await;
    let mut hardened = spec(1);
    hardened.hardening.nofile = Some(1024);
    // The fake spawner has no `with_hardening`: like an embedder's own spawner, it cannot
    // confine its workers, so the change is reported as waiting for a restart.
    let report = h.handle.apply_config(hardened).await.unwrap();
    let change = report.changes.iter().find(|c| c.key == "limits.nofile").expect("reported");
    assert_eq!(change.applies, crate::config::Applies::Restart, "{report:?}");
    assert_eq!((change.from.as_str(), change.to.as_str()), ("unset", "1024"));
    h.stop().await;
}
