//! Unix signals turned into commands on the control path.
//!
//! This is the only module that listens for signals, so tests and embedders can drive the
//! same commands through [`ClusterHandle`] instead. Each signal is logged with the target
//! `cluster::signal`.
//!
//! | signal | action |
//! |---|---|
//! | SIGTERM | graceful shutdown |
//! | SIGINT (Ctrl-C) | graceful shutdown; a second one stops at once |
//! | SIGQUIT | immediate shutdown |

use tokio::signal::unix::{SignalKind, signal};

use crate::ClusterHandle;
use crate::supervisor::ShutdownMode;

/// Listens for SIGTERM, SIGINT and SIGQUIT and forwards them to `handle` until the cluster
/// is gone.
///
/// # Errors
///
/// The OS error if a signal handler cannot be installed.
pub async fn forward_signals(handle: ClusterHandle) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut interrupted = false;
    loop {
        let mode = tokio::select! {
            Some(()) = term.recv() => {
                tracing::info!(target: "cluster::signal", "SIGTERM: graceful shutdown");
                ShutdownMode::Graceful
            }
            Some(()) = int.recv() => {
                if interrupted {
                    tracing::warn!(target: "cluster::signal", "second SIGINT: stopping now");
                    ShutdownMode::Immediate
                } else {
                    interrupted = true;
                    tracing::info!(target: "cluster::signal", "SIGINT: graceful shutdown (again to stop now)");
                    ShutdownMode::Graceful
                }
            }
            Some(()) = quit.recv() => {
                tracing::warn!(target: "cluster::signal", "SIGQUIT: stopping now");
                ShutdownMode::Immediate
            }
            else => return Ok(()),
        };
        if handle.shutdown(mode).is_err() {
            return Ok(());
        }
    }
}
