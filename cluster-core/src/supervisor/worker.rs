//! The task that owns one worker process: readiness, stop requests, exit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};

use super::Msg;
use super::accepting::Accepting;
use super::checks::Checks;
use super::readiness;
use crate::endpoint::Endpoint;
use crate::spawn::{StopSignal, WorkerExit, WorkerProcess};

/// What a worker task is told about its worker besides the process itself.
#[derive(Debug)]
pub(crate) struct Setup {
    /// The worker's id.
    pub(crate) id: u64,
    /// Its private endpoint.
    pub(crate) endpoint: Endpoint,
    /// How its readiness is checked.
    pub(crate) checks: Arc<dyn Checks>,
    /// How long it may take to become ready.
    pub(crate) start_timeout: Duration,
    /// Notified when it says it is ready (`READY=1`, `{"type":"ready"}`).
    pub(crate) announced: Arc<Notify>,
    /// Shared-socket mode: it is ready once it accepts on the front socket (its endpoint is
    /// the front address, which cannot be probed for one worker). `None` in proxy mode.
    pub(crate) accepting: Option<Accepting>,
}

/// What the supervisor can ask of a worker task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGTERM now, SIGKILL at `deadline` if still alive.
    Graceful {
        /// When to give up waiting and kill.
        deadline: Instant,
    },
    /// SIGKILL now.
    Kill,
}

/// What a worker task reports to the supervisor.
#[derive(Debug)]
pub(crate) enum WorkerMsg {
    /// The worker passed its readiness probe, or said it is ready while its port accepts.
    Ready { id: u64 },
    /// The worker did not pass its probe within the start timeout.
    StartTimedOut { id: u64 },
    /// The process has exited (or could not be waited for).
    Exited { id: u64, exit: Result<WorkerExit, String> },
}

/// Runs until the worker process has exited, then reports it. Never returns early: every
/// process the supervisor starts is waited for.
pub(crate) async fn run(
    mut process: Box<dyn WorkerProcess>,
    setup: Setup,
    mut stops: mpsc::UnboundedReceiver<Stop>,
    report: mpsc::UnboundedSender<Msg>,
) {
    let Setup { id, endpoint, checks, start_timeout, announced, accepting } = setup;
    let send = |m: WorkerMsg| {
        let _ = report.send(Msg::Worker(m));
    };
    let start_deadline = Instant::now() + start_timeout;
    let mut stop: Option<Stop> = tokio::select! {
        exit = process.wait() => {
            send(WorkerMsg::Exited { id, exit: exit.map_err(|e| e.to_string()) });
            return;
        }
        () = ready(&*checks, &endpoint, accepting) => {
            send(WorkerMsg::Ready { id });
            None
        }
        () = announced_ready(&endpoint, &announced, accepting.is_some()) => {
            send(WorkerMsg::Ready { id });
            None
        }
        () = sleep_until(start_deadline) => {
            // The supervisor retires it: wait for its stop like any other.
            send(WorkerMsg::StartTimedOut { id });
            None
        }
        s = stops.recv() => Some(s.unwrap_or(Stop::Kill)),
    };
    loop {
        match stop {
            None => {
                stop = tokio::select! {
                    exit = process.wait() => {
                        send(WorkerMsg::Exited { id, exit: exit.map_err(|e| e.to_string()) });
                        return;
                    }
                    s = stops.recv() => Some(s.unwrap_or(Stop::Kill)),
                };
            }
            Some(Stop::Kill) => {
                let _ = process.signal(StopSignal::Kill);
                break;
            }
            Some(Stop::Graceful { mut deadline }) => {
                let _ = process.signal(StopSignal::Terminate);
                loop {
                    tokio::select! {
                        exit = process.wait() => {
                            send(WorkerMsg::Exited { id, exit: exit.map_err(|e| e.to_string()) });
                            return;
                        }
                        () = sleep_until(deadline) => break,
                        s = stops.recv() => match s {
                            // A second graceful request may only bring the deadline closer.
                            Some(Stop::Graceful { deadline: other }) => deadline = deadline.min(other),
                            _ => break,
                        },
                    }
                }
                stop = Some(Stop::Kill);
            }
        }
    }
    let exit = process.wait().await.map_err(|e| e.to_string());
    send(WorkerMsg::Exited { id, exit });
}

/// Resolves once the worker passes its readiness check: accepting on the shared socket in
/// shared-socket mode, the configured probe of its endpoint otherwise.
async fn ready(checks: &dyn Checks, endpoint: &Endpoint, accepting: Option<Accepting>) {
    match accepting {
        Some(accepting) => accepting.wait().await,
        None => checks.ready(endpoint).await,
    }
}

/// Resolves once the worker has said it is ready. In proxy mode its endpoint must accept a
/// connection too; in shared-socket mode the front socket always does (the primary holds it
/// open), so its word is enough.
async fn announced_ready(endpoint: &Endpoint, said: &Notify, shared: bool) {
    if shared {
        said.notified().await;
    } else {
        readiness::announced(endpoint, said).await;
    }
}
