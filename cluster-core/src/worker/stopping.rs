//! [`stopping`]: the worker's cue to drain.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::signal::unix::{SignalKind, signal};

use super::env::process_var;

/// The signal that asked the worker to stop.
///
/// # Examples
///
/// ```no_run
/// use cluster_core::worker::{self, Stop};
///
/// # async fn run() -> std::io::Result<()> {
/// if worker::stopping()?.await == Stop::Interrupt {
///     eprintln!("Ctrl-C: draining");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: the cluster stops or replaces this worker (a rolling restart, a recycle,
    /// scaling down, shutdown), or an operator ran `kill`.
    Terminate,
    /// SIGINT: Ctrl-C, when the worker runs in a terminal by itself.
    Interrupt,
}

/// A future that resolves with the first SIGTERM or SIGINT, once the primary was told
/// `STOPPING=1`; made by [`stopping`].
///
/// # Examples
///
/// Racing it against the accept loop, as a server does:
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = cluster_core::worker::listener()?.into_tokio()?;
/// let mut stop = cluster_core::worker::stopping()?;
/// loop {
///     tokio::select! {
///         accepted = listener.accept() => drop(accepted?),
///         _ = &mut stop => break,
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[must_use = "a future does nothing unless awaited"]
pub struct Stopping(Pin<Box<dyn Future<Output = Stop> + Send>>);

impl std::fmt::Debug for Stopping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopping").finish_non_exhaustive()
    }
}

impl Future for Stopping {
    type Output = Stop;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Stop> {
        self.0.as_mut().poll(cx)
    }
}

/// Catches SIGTERM and SIGINT from now on, and returns a future that resolves with the first
/// one, after telling the primary `STOPPING=1` over `NOTIFY_SOCKET` (when set): the worker
/// leaves the rotation at once, the primary starts its replacement, and the server can stop
/// accepting and let its in-flight requests finish. The primary sends SIGKILL when
/// `gracefulShutdownTimeout` runs out.
///
/// Call it early, before the server starts: the handlers are installed by this call, not when
/// the future is first polled, so a signal that comes in between is not lost. Once caught,
/// these signals no longer end the process; a server that wants a second Ctrl-C to end it
/// at once calls `stopping()` again after the first.
///
/// # Errors
///
/// The OS error when the signal handlers cannot be installed.
///
/// # Panics
///
/// Outside a tokio runtime (with I/O enabled), as `tokio::signal` does.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let stop = cluster_core::worker::stopping()?;
/// // ... start serving ...
/// let signal = stop.await;
/// eprintln!("{signal:?}: draining");
/// # Ok(())
/// # }
/// ```
pub fn stopping() -> io::Result<Stopping> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(Stopping(Box::pin(async move {
        let stop = tokio::select! {
            _ = term.recv() => Stop::Terminate,
            _ = int.recv() => Stop::Interrupt,
        };
        if let Err(e) = super::notify::send(&process_var, "STOPPING=1") {
            tracing::debug!("STOPPING=1 not sent: {e}");
        }
        stop
    })))
}
