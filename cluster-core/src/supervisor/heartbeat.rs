//! Heartbeats: what workers say about themselves over the notify socket or their IPC channel,
//! and what the supervisor does with it.
//!
//! Both channels are optional; a worker that speaks neither is judged by its probe alone.
//!
//! - `Ready`: a starting worker is ready as soon as its port accepts a connection, without
//!   waiting for the next probe (the worker task checks the port, see
//!   [`readiness::announced`](super::readiness::announced)).
//! - `Alive` (`WATCHDOG=1`, `{"type":"heartbeat"}`): from the first one on, the worker is
//!   watched: silent for `health.heartbeatTimeout` and the `WatchdogPolicy` replaces it.
//!   Other IPC messages refresh the timer of a watched worker but do not start it, so an
//!   application that sends one message of its own is not mistaken for a heartbeat sender.
//! - `WatchdogTrigger`: replaced as unresponsive, through the one recycle path.
//! - `Stopping`: out of rotation at once; its exit is then replaced like any other.
//! - `Status`: kept for `WorkerStatus::heartbeat_status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cluster_health::Heartbeat;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::record::LeaveReason;
use super::{Msg, Phase, Supervisor, WorkerState, ipc, notify, owner};

/// Heartbeat messages that may wait in the supervisor's queue at once. Beyond it new ones are
/// dropped, so a worker flooding its channel cannot grow the primary's memory; the supervisor
/// handles one in microseconds, so only a flood ever reaches the limit.
const MAX_PENDING: usize = 1024;

/// Longest status text kept per worker, in bytes.
const MAX_STATUS: usize = 256;

/// Who sent a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A worker's own IPC channel.
    Worker(u64),
    /// A process, by the pid the kernel vouched for (notify socket credentials).
    Process(u32),
}

/// A message of the heartbeat machinery to the supervisor: what a worker reported, in order.
#[derive(Debug)]
pub(crate) struct HeartbeatMsg {
    pub(crate) from: Origin,
    pub(crate) beats: Vec<Heartbeat>,
    pub(crate) _permit: Permit,
}

#[cfg(test)]
impl HeartbeatMsg {
    /// What the readers would post for `beats` from worker `id`.
    pub(crate) fn from_worker(id: u64, beats: Vec<Heartbeat>) -> Self {
        let pending = Arc::new(AtomicUsize::new(1));
        Self { from: Origin::Worker(id), beats, _permit: Permit(pending) }
    }
}

/// One place in the bounded heartbeat queue, given back when the message is dropped.
#[derive(Debug)]
pub(crate) struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where heartbeat readers post what they read: the supervisor's queue, bounded to
/// [`MAX_PENDING`] heartbeat messages.
#[derive(Debug, Clone)]
pub(super) struct Inbox {
    tx: mpsc::UnboundedSender<Msg>,
    pending: Arc<AtomicUsize>,
}

impl Inbox {
    pub(super) fn new(tx: mpsc::UnboundedSender<Msg>) -> Self {
        Self { tx, pending: Arc::new(AtomicUsize::new(0)) }
    }

    /// Queues `beats` from `from`. Returns `false` when they were dropped: the queue is full,
    /// or the supervisor has stopped.
    pub(super) fn send(&self, from: Origin, beats: Vec<Heartbeat>) -> bool {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        let _permit = Permit(Arc::clone(&self.pending));
        self.tx.send(Msg::Heartbeat(HeartbeatMsg { from, beats, _permit })).is_ok()
    }
}

/// The supervisor's heartbeat machinery: the queue and the notify socket.
#[derive(Debug)]
pub(super) struct Heartbeats {
    inbox: Inbox,
    notify: Option<notify::NotifySocket>,
}

impl Heartbeats {
    /// Binds the notify socket (without one, workers simply get no `NOTIFY_SOCKET`). Must run
    /// inside the runtime.
    pub(super) fn start(tx: mpsc::UnboundedSender<Msg>) -> Self {
        let inbox = Inbox::new(tx);
        let notify = match notify::NotifySocket::bind(inbox.clone()) {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::warn!("no notify socket ({e}); workers get no NOTIFY_SOCKET");
                None
            }
        };
        Self { inbox, notify }
    }

    /// The `NOTIFY_SOCKET` value for workers.
    pub(super) fn notify_socket(&self) -> Option<String> {
        self.notify.as_ref().map(|n| n.address().to_owned())
    }

    /// Starts reading `stream`, worker `id`'s IPC channel.
    pub(super) fn attach_ipc(
        &self,
        id: u64,
        stream: std::os::unix::net::UnixStream,
    ) -> Option<ipc::IpcLink> {
        ipc::IpcLink::attach(stream, id, self.inbox.clone())
            .map_err(|e| tracing::warn!(worker = id, "cannot read the worker's IPC channel: {e}"))
            .ok()
    }
}

/// What the supervisor knows of one worker's heartbeats.
#[derive(Debug, Default)]
pub(super) struct WorkerHeartbeat {
    /// Tells the worker task that the worker said it is ready.
    pub(super) announced: Arc<Notify>,
    /// Its last heartbeat, once it has sent one.
    last: Option<Instant>,
    /// The last status it reported.
    status: Option<String>,
}

impl WorkerHeartbeat {
    /// Time from its last heartbeat to `at`; `None` until it sends heartbeats.
    pub(super) fn since_last(&self, at: Instant) -> Option<Duration> {
        self.last.map(|t| at.saturating_duration_since(t))
    }

    /// The last status it reported.
    pub(super) fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }
}

impl Supervisor {
    /// Acts on a heartbeat message.
    pub(super) fn on_heartbeat(&mut self, msg: HeartbeatMsg) {
        let Some(id) = self.sender(msg.from) else {
            tracing::debug!(from = ?msg.from, "heartbeat from a process that is not a worker");
            return;
        };
        for beat in msg.beats {
            self.apply(id, beat);
        }
    }

    /// The worker a heartbeat came from.
    fn sender(&self, from: Origin) -> Option<u64> {
        match from {
            Origin::Worker(id) => Some(id),
            Origin::Process(pid) => {
                let worker_of = |p: u32| self.workers.values().find(|w| w.pid == p).map(|w| w.id);
                owner::owner(pid, worker_of, owner::read_stat)
            }
        }
    }

    fn apply(&mut self, id: u64, beat: Heartbeat) {
        let Some(w) = self.workers.get_mut(&id) else { return };
        tracing::trace!(target: "cluster::heartbeat", worker = id, ?beat, "heartbeat");
        let hb = &mut w.heartbeat;
        match beat {
            Heartbeat::Ready if w.state == WorkerState::Starting => hb.announced.notify_one(),
            Heartbeat::Alive => hb.last = Some(Instant::now()),
            Heartbeat::Message { .. } if hb.last.is_some() => hb.last = Some(Instant::now()),
            Heartbeat::Status(mut status) => {
                if status.len() > MAX_STATUS {
                    let mut end = MAX_STATUS;
                    while !status.is_char_boundary(end) {
                        end -= 1;
                    }
                    status.truncate(end);
                }
                hb.status = Some(status);
            }
            Heartbeat::WatchdogTrigger => {
                let why = "unresponsive (the worker sent WATCHDOG=trigger)";
                self.replace_unresponsive(id, why.into());
            }
            Heartbeat::Stopping => self.leaving(id),
            _ => {}
        }
    }

    /// The worker said it is stopping: it leaves rotation now, finishes by itself (see
    /// `retire`), and its slot is refilled at once (by its replacement, if it had one
    /// starting).
    fn leaving(&mut self, id: u64) {
        if self.phase == Phase::Running {
            // A worker already leaving keeps its course (`retire` ignores it).
            self.retire(id, LeaveReason::SaidStopping);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_and_places_come_back() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let inbox = Inbox::new(tx);
        let sent = (0..MAX_PENDING * 3)
            .filter(|_| inbox.send(Origin::Worker(1), vec![Heartbeat::Alive]))
            .count();
        assert_eq!(sent, MAX_PENDING, "a flood stops at the limit");
        let first = rx.try_recv().expect("queued");
        drop(first);
        assert!(inbox.send(Origin::Process(7), vec![Heartbeat::Ready]), "a place came back");
        assert!(!inbox.send(Origin::Process(7), vec![Heartbeat::Ready]));
        while rx.try_recv().is_ok() {}
        assert_eq!(inbox.pending.load(Ordering::Acquire), 0);
        drop(rx);
        assert!(!inbox.send(Origin::Worker(1), vec![]), "the supervisor is gone");
        assert_eq!(inbox.pending.load(Ordering::Acquire), 0, "a failed send gives its place back");
    }

    #[test]
    fn time_since_the_last_heartbeat() {
        let mut hb = WorkerHeartbeat::default();
        let now = Instant::now();
        assert_eq!(hb.since_last(now), None);
        hb.last = Some(now);
        assert_eq!(hb.since_last(now + Duration::from_secs(2)), Some(Duration::from_secs(2)));
        assert_eq!(hb.since_last(now - Duration::from_secs(1)), Some(Duration::ZERO));
    }
}
