//! [`ClusterHandle`]: the one control path into a running cluster.

use std::net::SocketAddr;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::events::ClusterEvent;
use crate::status::ClusterStatus;
use crate::supervisor::{Control, Msg, ShutdownMode};

/// Controls a running cluster. Cheap to clone; every way of operating the cluster (signals,
/// CLI, admin API, dashboard) goes through these methods and nothing else.
#[derive(Debug, Clone)]
pub struct ClusterHandle {
    tx: mpsc::UnboundedSender<Msg>,
    events: broadcast::Sender<ClusterEvent>,
    local_addr: SocketAddr,
}

/// The cluster has finished running; its handle can no longer reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cluster is no longer running")]
pub struct ClusterGone;

impl ClusterHandle {
    pub(crate) fn new(
        tx: mpsc::UnboundedSender<Msg>,
        events: broadcast::Sender<ClusterEvent>,
        local_addr: SocketAddr,
    ) -> Self {
        Self { tx, events, local_addr }
    }

    /// The address the front listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The current state of the cluster and of every worker.
    ///
    /// # Errors
    ///
    /// [`ClusterGone`] once the cluster has stopped.
    pub async fn status(&self) -> Result<ClusterStatus, ClusterGone> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Control(Control::Status(reply))).map_err(|_| ClusterGone)?;
        rx.await.map_err(|_| ClusterGone)
    }

    /// Asks the cluster to shut down. A graceful request while a graceful shutdown is already
    /// running changes nothing; an immediate one escalates it.
    ///
    /// # Errors
    ///
    /// [`ClusterGone`] once the cluster has stopped.
    pub fn shutdown(&self, mode: ShutdownMode) -> Result<(), ClusterGone> {
        self.tx.send(Msg::Control(Control::Shutdown(mode))).map_err(|_| ClusterGone)
    }

    /// Replaces worker `worker_id` without losing a request: a replacement is started in its
    /// slot, and once it is ready the old worker leaves the rotation, finishes its in-flight
    /// requests and is stopped. Recycles run one at a time; this one is queued behind any
    /// under way. Ignored if the worker is not ready. `reason` appears in the events.
    ///
    /// # Errors
    ///
    /// [`ClusterGone`] once the cluster has stopped.
    pub fn recycle(&self, worker_id: u64, reason: impl Into<String>) -> Result<(), ClusterGone> {
        let reason = reason.into();
        self.tx.send(Msg::Control(Control::Recycle { worker_id, reason })).map_err(|_| ClusterGone)
    }

    /// Subscribes to cluster events from now on. A subscriber that falls more than 1024
    /// events behind misses the oldest (it receives `RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.events.subscribe()
    }
}
