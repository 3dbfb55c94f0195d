//! Hot upgrades on the control path: serialized with the other operations, a failure leaves
//! the cluster as it was, a success hands over and shuts down. The new primary is a shell
//! script speaking the protocol (fd 3 the front socket, `READY=1` on fd 4), in real time.

use std::time::Duration;

use super::fake::Behaviour;
use super::{Harness, spec};
use crate::upgrade::{SuccessorCommand, UpgradeError, UpgradeOptions};
use crate::{ClusterEvent, ControlError};

/// A successor that checks what it was given (the socket at fd 3 with `LISTEN_PID` naming it,
/// `CLUSTER_UPGRADE_FDS`), waits for the file `$1` to say how to end (`ready`, `late`: ready
/// after the old primary's timeout, or an exit code), and then says so.
const SUCCESSOR: &str = r#"
fail() { printf 'ERROR=%s\n' "$1" >&4; exit 1; }
[ "$LISTEN_PID" = "$$" ] || fail "LISTEN_PID=$LISTEN_PID, not $$"
[ "$LISTEN_FDS" = 1 ] && [ "$LISTEN_FDNAMES" = http ] || fail "LISTEN_FDS=$LISTEN_FDS"
[ "$CLUSTER_UPGRADE_FDS" = ready:4 ] || fail "CLUSTER_UPGRADE_FDS=$CLUSTER_UPGRADE_FDS"
case "$(readlink /proc/$$/fd/3)" in socket:*) ;; *) fail "fd 3 is not a socket" ;; esac
while [ ! -s "$1" ]; do sleep 0.02; done
case "$(cat "$1")" in
  ready) printf 'READY=1\n' >&4; exec sleep 30 ;;
  late)
    trap '' TERM PIPE
    sleep 0.6
    if printf 'READY=1\n' >&4 2>/dev/null; then echo heard; else echo refused; fi > "$1.out"
    exit 0 ;;
  *) exit "$(cat "$1")" ;;
esac
"#;

fn successor(control: &std::path::Path) -> SuccessorCommand {
    SuccessorCommand::new("sh", ["-c", SUCCESSOR, "sh", control.to_str().unwrap()]).unwrap()
}

#[tokio::test]
async fn an_upgrade_is_serialized_with_operations_and_a_failure_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    let mut h =
        Harness::start_with(spec(2), Behaviour::default(), |b| b.upgradable(successor(&control)))
            .await;
    let before = Harness::pids(&h.status().await);

    // An upgrade under way: every other operation, and a second upgrade, is busy.
    let handle = h.handle.on_behalf_of("test");
    let upgrade = tokio::spawn(async move { handle.upgrade(UpgradeOptions::default()).await });
    let by = h.next("upgrade started", |e| match e {
        ClusterEvent::UpgradeStarted { by } => Some(by.clone()),
        _ => None,
    });
    assert_eq!(by.await, "test");
    let busy = h.handle.rolling_restart().await.unwrap_err();
    assert!(
        matches!(&busy, ControlError::Busy { operation } if operation.contains("upgrade")),
        "{busy:?}"
    );
    let second = h.handle.upgrade(UpgradeOptions::default()).await.unwrap_err();
    assert!(matches!(second, UpgradeError::Refused(ControlError::Busy { .. })), "{second:?}");

    // It fails: the cluster is as it was, and operations run again.
    std::fs::write(&control, "3").unwrap();
    let failed = upgrade.await.unwrap().unwrap_err();
    assert!(
        matches!(&failed, UpgradeError::Failed { reason, .. } if reason.contains("exit status: 3")),
        "{failed:?}"
    );
    let reason = h
        .next("upgrade failed", |e| match e {
            ClusterEvent::UpgradeFailed { reason } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert!(reason.contains("exit status: 3"), "{reason}");
    assert_eq!(Harness::pids(&h.status().await), before);
    let op = h.handle.rolling_restart().await.expect("not busy any more");
    // And an upgrade is busy while the rolling restart runs.
    let refused = h.handle.upgrade(UpgradeOptions::default()).await.unwrap_err();
    assert!(matches!(refused, UpgradeError::Refused(ControlError::Busy { .. })), "{refused:?}");
    op.finished().await.expect("the rolling restart completes");

    // A successor that cannot be started, or that is not ready in time.
    let missing = UpgradeOptions::default().binary("/nonexistent/cluster");
    let refused = h.handle.upgrade(missing).await.unwrap_err();
    assert!(matches!(refused, UpgradeError::Spawn { .. }), "{refused:?}");
    // Ready too late: the old primary decided, and the successor's word is refused (it must
    // not take over).
    std::fs::write(&control, "late").unwrap();
    let quick = UpgradeOptions::default().timeout(Duration::from_millis(300));
    let timed_out = h.handle.upgrade(quick).await.unwrap_err();
    assert!(matches!(timed_out, UpgradeError::TimedOut { .. }), "{timed_out:?}");
    let out = dir.path().join("control.out");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&out).unwrap_or_default().trim().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the late successor never wrote");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "refused");
    assert_eq!(h.status().await.ready_workers, 2);
    h.stop().await;
}

#[tokio::test]
async fn a_ready_successor_takes_over_and_the_cluster_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    std::fs::write(&control, "ready").unwrap();
    let mut h =
        Harness::start_with(spec(2), Behaviour::default(), |b| b.upgradable(successor(&control)))
            .await;
    let done = h.handle.upgrade(UpgradeOptions::default()).await.expect("upgraded");
    assert_eq!(done.old_pid, std::process::id());
    let new_pid = h
        .next("upgrade finished", |e| match e {
            ClusterEvent::UpgradeFinished { new_pid, .. } => Some(*new_pid),
            _ => None,
        })
        .await;
    assert_eq!(new_pid, done.new_pid);
    h.next("shutdown", |e| {
        matches!(e, ClusterEvent::ShutdownStarted { graceful: true }).then_some(())
    })
    .await;
    h.next("stopped", |e| matches!(e, ClusterEvent::Stopped).then_some(())).await;
    let pid = rustix::process::Pid::from_raw(new_pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
}
