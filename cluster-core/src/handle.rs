//! [`ClusterHandle`]: the one control path into a running cluster.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::{ClusterSpec, ConfigError};
use crate::control::{ConfigReport, ControlError, Operation, Scaled, ShutdownMode};
use crate::events::ClusterEvent;
use crate::routing::{Router, RoutingTable};
use crate::status::ClusterStatus;
use crate::supervisor::{Control, Count, Msg};

/// Loads the configuration again, for [`ClusterHandle::reload_config`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use cluster_core::ConfigSource;
/// use cluster_core::config::{self, Environment, Overrides};
///
/// let source: ConfigSource = Arc::new(|| {
///     let mut overrides = Overrides::default();
///     overrides.config_path = Some("cluster.config.json".into());
///     config::load(&overrides, &Environment::capture()).map(|loaded| loaded.spec)
/// });
/// # let _ = source;
/// ```
pub type ConfigSource = Arc<dyn Fn() -> Result<ClusterSpec, ConfigError> + Send + Sync>;

/// Controls a running cluster. Cheap to clone; every way of operating the cluster (signals,
/// the CLI, the admin API, the dashboard, autoscaling, dev mode) goes through these methods
/// and nothing else. Each operation answers with a typed result; operations are serialized by
/// the supervisor, so concurrent callers cannot interleave them.
///
/// # Examples
///
/// Every operation of a running cluster, as an embedder calls them:
///
/// ```
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{ClusterEvent, ClusterHandle, ShutdownMode};
///
/// # async fn example(handle: ClusterHandle, edited: ClusterSpec) -> Result<(), Box<dyn std::error::Error>> {
/// let handle = handle.on_behalf_of("deploy-bot"); // named in the events' `by`
/// println!("serving on {}", handle.local_addr());
/// let status = handle.status().await?;
/// println!("{} of {} workers ready", status.ready_workers, status.desired_workers);
/// for backend in handle.routes().backends() {
///     println!("worker {} in rotation", backend.id());
/// }
///
/// let mut events = handle.subscribe();
/// handle.scale(4).await?; // exactly four workers
/// handle.scale_by(-1).await?; // one fewer
/// let deploy = handle.rolling_restart().await?; // one by one, no request lost
/// deploy.finished().await?;
/// handle.restart().await?.finished().await?; // every worker at once
/// let id = status.workers[0].worker_id;
/// handle.recycle(id, "suspected leak").await?; // replaced before it is stopped
/// handle.restart_worker(id).await.ok(); // stopped, then started again (it may be gone by now)
/// let report = handle.apply_config(edited).await?; // or `reload_config()` from its source
/// for change in &report.changes {
///     println!("{} = {} ({:?})", change.key, change.to, change.applies);
/// }
/// if handle.reload_config().await.is_err() {
///     // No configuration source, or the file does not load.
/// }
/// handle.reopen_logs()?; // after logrotate moved the access log
/// while let Ok(event) = events.try_recv() {
///     if let ClusterEvent::Scaled { from, to, .. } = event {
///         println!("scaled {from} -> {to}");
///     }
/// }
/// handle.shutdown(ShutdownMode::Graceful)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ClusterHandle {
    tx: mpsc::UnboundedSender<Msg>,
    events: broadcast::Sender<ClusterEvent>,
    local_addr: SocketAddr,
    router: Arc<Router>,
    source: Option<ConfigSource>,
    /// How to start a new primary (hot upgrade), when the cluster is upgradable.
    upgrade: Option<Arc<crate::upgrade::Plan>>,
    /// Who operates through this handle, for the events (`by`).
    by: Arc<str>,
}

impl fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("local_addr", &self.local_addr)
            .field("by", &self.by)
            .field("reloadable", &self.source.is_some())
            .finish_non_exhaustive()
    }
}

/// The cluster has finished running; its handle can no longer reach it.
///
/// # Examples
///
/// ```
/// use cluster_core::{ClusterGone, ClusterHandle};
///
/// async fn ready_workers(handle: &ClusterHandle) -> Result<usize, ClusterGone> {
///     Ok(handle.status().await?.ready_workers)
/// }
/// assert_eq!(ClusterGone.to_string(), "the cluster is no longer running");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cluster is no longer running")]
pub struct ClusterGone;

impl ClusterHandle {
    pub(crate) fn new(
        tx: mpsc::UnboundedSender<Msg>,
        events: broadcast::Sender<ClusterEvent>,
        local_addr: SocketAddr,
        router: Arc<Router>,
        source: Option<ConfigSource>,
        upgrade: Option<Arc<crate::upgrade::Plan>>,
    ) -> Self {
        Self { tx, events, local_addr, router, source, upgrade, by: Arc::from("handle") }
    }

    /// A handle whose operations are attributed to `who` in the events (`Scaled.by`,
    /// `OperationStarted.by`): `"signal SIGTTIN"`, `"admin API"`, `"dev mode"`.
    pub fn on_behalf_of(&self, who: impl Into<String>) -> Self {
        Self { by: Arc::from(who.into()), ..self.clone() }
    }

    /// The address the front listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The routing table as it is now: the workers requests go to. Lock-free; read-only
    /// (only the supervisor writes it).
    pub fn routes(&self) -> Arc<RoutingTable> {
        self.router.snapshot()
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

    /// Runs `n` workers. New slots start at once and enter rotation once ready; a scale-down
    /// retires the highest slots (out of rotation, drain, stop), so sticky clients of the
    /// other slots keep their worker. Allowed during a rolling restart, whose result keeps it.
    ///
    /// # Errors
    ///
    /// [`ControlError::OutOfRange`] outside `scaling.minWorkers..=scaling.maxWorkers`;
    /// [`ControlError::ShuttingDown`]; [`ControlError::Gone`].
    pub async fn scale(&self, n: usize) -> Result<Scaled, ControlError> {
        self.ask(|reply, by| Control::Scale { count: Count::To(n), by, reply }).await
    }

    /// Adds `delta` workers (removes them when negative); see [`scale`](Self::scale).
    ///
    /// # Errors
    ///
    /// As [`scale`](Self::scale).
    pub async fn scale_by(&self, delta: i64) -> Result<Scaled, ControlError> {
        self.ask(|reply, by| Control::Scale { count: Count::By(delta), by, reply }).await
    }

    /// Starts a rolling restart: a new generation (the command is run again, so a new build on
    /// disk is picked up), replacing `rollingRestart.maxSurge` workers at a time (1 by
    /// default): each replacement starts, enters rotation once ready, and only then is the old
    /// worker drained and stopped, so the ready count never drops. If a new worker fails to
    /// become ready, the rolling restart stops, the previous generation keeps serving and what
    /// was already replaced is rolled back. Progress comes as
    /// [`ClusterEvent::OperationProgress`] events; [`Operation::finished`] waits for the end.
    ///
    /// # Errors
    ///
    /// [`ControlError::Busy`] while another operation runs; [`ControlError::ShuttingDown`];
    /// [`ControlError::Gone`].
    pub async fn rolling_restart(&self) -> Result<Operation, ControlError> {
        self.ask(|reply, by| Control::RollingRestart { by, reply }).await
    }

    /// Restarts every worker at once: all are drained and stopped while a new generation
    /// starts in every slot. Capacity dips (requests get 503 while no worker is ready): use
    /// [`rolling_restart`](Self::rolling_restart) for zero downtime. For applications that
    /// must never run two generations side by side.
    ///
    /// # Errors
    ///
    /// As [`rolling_restart`](Self::rolling_restart).
    pub async fn restart(&self) -> Result<Operation, ControlError> {
        self.ask(|reply, by| Control::Restart { by, reply }).await
    }

    /// Replaces worker `worker_id` without losing a request (the recycle path: replacement
    /// first, then drain and stop); `restart requested` is the reason in the events.
    ///
    /// # Errors
    ///
    /// As [`recycle`](Self::recycle).
    pub async fn restart_worker(&self, worker_id: u64) -> Result<(), ControlError> {
        let reason = format!("restart requested by {}", self.by);
        self.recycle(worker_id, reason).await
    }

    /// Replaces worker `worker_id` without losing a request: a replacement is started in its
    /// slot, and once it is ready the old worker leaves the rotation, finishes its in-flight
    /// requests and is stopped. Recycles run one at a time (`health.maxConcurrentRecycles`);
    /// this one is queued behind any under way. `reason` appears in the events.
    ///
    /// # Errors
    ///
    /// [`ControlError::NoSuchWorker`]; [`ControlError::NotServing`] for a worker starting or
    /// leaving; [`ControlError::ShuttingDown`]; [`ControlError::Gone`].
    pub async fn recycle(
        &self,
        worker_id: u64,
        reason: impl Into<String>,
    ) -> Result<(), ControlError> {
        let reason = reason.into();
        self.ask(|reply, _| Control::Recycle { worker_id, reason, reply }).await
    }

    /// Asks the cluster to shut down. A graceful request while a graceful shutdown is already
    /// running changes nothing; an immediate one escalates it. An operation under way ends
    /// with [`OperationError::ShuttingDown`](crate::OperationError::ShuttingDown).
    ///
    /// # Errors
    ///
    /// [`ClusterGone`] once the cluster has stopped.
    pub fn shutdown(&self, mode: ShutdownMode) -> Result<(), ClusterGone> {
        self.tx.send(Msg::Control(Control::Shutdown(mode))).map_err(|_| ClusterGone)
    }

    /// Applies `spec` as far as a running cluster can: see [`ConfigReport`] and
    /// [`Applies`](crate::config::Applies) for what changes when.
    ///
    /// # Errors
    ///
    /// [`ControlError::ShuttingDown`]; [`ControlError::Gone`].
    pub async fn apply_config(&self, spec: ClusterSpec) -> Result<ConfigReport, ControlError> {
        let spec = Box::new(spec);
        self.ask(|reply, _| Control::ApplyConfig { spec, reply }).await
    }

    /// Loads the configuration again from where it came from (the file, the environment and
    /// the flags of `cluster start`; see
    /// [`ClusterBuilder::config_source`](crate::ClusterBuilder::config_source)) and applies
    /// it with [`apply_config`](Self::apply_config). An invalid file changes nothing and is
    /// reported, also as a [`ClusterEvent::ConfigReloadFailed`] event.
    ///
    /// # Errors
    ///
    /// [`ControlError::Config`] with every problem found; [`ControlError::NoConfigSource`];
    /// as [`apply_config`](Self::apply_config).
    pub async fn reload_config(&self) -> Result<ConfigReport, ControlError> {
        let source = self.source.clone().ok_or(ControlError::NoConfigSource)?;
        let loaded = tokio::task::spawn_blocking(move || source()).await;
        let spec = match loaded {
            Ok(Ok(spec)) => spec,
            Ok(Err(e)) => {
                let error = e.to_string();
                let _ = self.events.send(ClusterEvent::ConfigReloadFailed { error: error.clone() });
                return Err(ControlError::Config { message: error });
            }
            Err(e) => return Err(ControlError::Config { message: e.to_string() }),
        };
        self.apply_config(spec).await
    }

    /// Asks whoever writes log files to reopen them (after a log rotation): publishes
    /// [`ClusterEvent::LogReopenRequested`].
    ///
    /// # Errors
    ///
    /// [`ClusterGone`] once the cluster has stopped.
    pub fn reopen_logs(&self) -> Result<(), ClusterGone> {
        if self.tx.is_closed() {
            return Err(ClusterGone);
        }
        let _ = self.events.send(ClusterEvent::LogReopenRequested);
        Ok(())
    }

    /// Hot upgrade of the primary: starts a new primary process (the program this one was
    /// started from, found again now, or `options.binary`) and hands it the front socket; it
    /// starts its own workers, and once they are ready it serves and this primary stops
    /// accepting, lets its clients go (keep-alive connections close after their next
    /// response), drains and shuts down. No connection is refused and no request fails on
    /// the way. Returns once the new primary serves; this cluster's shutdown follows.
    ///
    /// If the new primary cannot start, fails (an invalid configuration) or is not ready in
    /// time, it is stopped and this primary keeps serving as before. Refused while another
    /// operation runs, as they are while an upgrade runs. See the [`upgrade`](crate::upgrade)
    /// module for the protocol.
    ///
    /// # Errors
    ///
    /// [`UpgradeError`](crate::upgrade::UpgradeError): refused (PID 1, not upgradable, busy,
    /// shutting down) or failed (with the reason).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cluster_core::ClusterHandle;
    /// use cluster_core::upgrade::{UpgradeError, UpgradeOptions};
    ///
    /// # async fn example(handle: ClusterHandle) {
    /// let options = UpgradeOptions::default().timeout(Duration::from_secs(120));
    /// match handle.upgrade(options).await {
    ///     Ok(done) => println!("pid {} serves; this primary drains and exits", done.new_pid),
    ///     Err(UpgradeError::NotUpgradable) => eprintln!("built without `upgradable`"),
    ///     Err(e) => eprintln!("not upgraded, still serving: {e}"),
    /// }
    /// # }
    /// ```
    pub async fn upgrade(
        &self,
        options: crate::upgrade::UpgradeOptions,
    ) -> Result<crate::upgrade::Upgraded, crate::upgrade::UpgradeError> {
        use crate::supervisor::UpgradeStep;
        use crate::upgrade::UpgradeError;
        if self.tx.is_closed() {
            return Err(UpgradeError::Refused(ControlError::Gone));
        }
        let plan = self.upgrade.clone().ok_or(UpgradeError::NotUpgradable)?;
        if std::process::id() == 1 {
            return Err(UpgradeError::Pid1);
        }
        let default_timeout =
            self.ask(|reply, by| Control::Upgrade(UpgradeStep::Begin { by, reply })).await?;
        let tx = self.tx.clone();
        // On a task of its own: a caller that goes away (a client that disconnects) does not
        // leave the cluster claimed, nor a successor unwatched.
        let task = tokio::spawn(async move {
            let outcome = crate::upgrade::run(&plan, &options, default_timeout).await;
            let end = match &outcome {
                Ok(done) => {
                    // Before the shutdown starts: whoever sees it shutting down sees this.
                    plan.handed_over.store(true, std::sync::atomic::Ordering::Release);
                    Ok((done.new_pid, done.took))
                }
                Err(e) => {
                    tracing::error!(target: "cluster::upgrade", "upgrade failed: {e}; this primary keeps serving");
                    Err(e.to_string())
                }
            };
            let _ = tx.send(Msg::Control(Control::Upgrade(UpgradeStep::End { outcome: end })));
            outcome
        });
        task.await.unwrap_or(Err(UpgradeError::Refused(ControlError::Gone)))
    }

    /// Whether this cluster has handed over to a new primary ([`upgrade`](Self::upgrade)): it
    /// is shutting down, but the service goes on in the new primary. Set before the shutdown
    /// starts, so a status that says `shutting_down` is seen with it. The admin API's health
    /// route answers 200 then, so that a probe on a listener both primaries share never
    /// hears "stopping" from the old one.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use cluster_core::ClusterHandle;
    ///
    /// # async fn example(handle: ClusterHandle) -> Result<(), Box<dyn std::error::Error>> {
    /// let status = handle.status().await?;
    /// let stopping = status.shutting_down && !handle.handed_over();
    /// println!("{}", if stopping { "stopping" } else { "serving" });
    /// # Ok(())
    /// # }
    /// ```
    pub fn handed_over(&self) -> bool {
        self.upgrade
            .as_ref()
            .is_some_and(|plan| plan.handed_over.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Subscribes to cluster events from now on. A subscriber that falls more than 1024
    /// events behind misses the oldest (it receives `RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.events.subscribe()
    }

    /// Posts `msg` to the supervisor as if one of its own tasks had (tests).
    #[cfg(test)]
    pub(crate) fn post(&self, msg: Msg) {
        let _ = self.tx.send(msg);
    }

    /// Sends a control message built with a reply channel and `by`, and waits for the answer.
    async fn ask<T>(
        &self,
        build: impl FnOnce(oneshot::Sender<Result<T, ControlError>>, String) -> Control,
    ) -> Result<T, ControlError> {
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Control(build(reply, self.by.to_string()));
        self.tx.send(msg).map_err(|_| ControlError::Gone)?;
        rx.await.map_err(|_| ControlError::Gone)?
    }
}
