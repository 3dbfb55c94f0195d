//! Unix signals turned into [`ClusterHandle`] calls: the one module that listens for signals,
//! so tests and embedders can drive the same operations through the handle instead. Each
//! signal is logged with the target `cluster::signal`.
//!
//! | signal | action |
//! |---|---|
//! | SIGTERM | graceful shutdown |
//! | SIGINT (Ctrl-C) | graceful shutdown; a second one stops at once |
//! | SIGQUIT | immediate shutdown |
//! | SIGHUP | rolling restart (refused while another operation runs) |
//! | SIGTTIN | one worker more (within `scaling.maxWorkers`) |
//! | SIGTTOU | one worker fewer (within `scaling.minWorkers`) |
//! | SIGUSR1 | reopen log files |
//! | SIGUSR2 | reload the configuration file; what cannot change live is reported and kept |
//! | SIGURG | hot upgrade: start a new primary (the binary on disk now), hand it the front socket, then drain and exit (see [`ClusterHandle::upgrade`]) |
//!
//! SIGURG is otherwise unused: the kernel sends it only to the owner of a socket with
//! out-of-band data, which the primary never claims, and it is ignored by default, so sending
//! it to a version without hot upgrade does nothing.

use tokio::signal::unix::{SignalKind, signal};

use crate::{ClusterHandle, ShutdownMode};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Shutdown(ShutdownMode),
    RollingRestart,
    ScaleBy(i64),
    ReopenLogs,
    ReloadConfig,
    Upgrade,
}

/// Listens for the signals of the table above and turns each into a [`ClusterHandle`] call,
/// until the cluster is gone. Operations run in tasks of their own, so a slow one (a rolling
/// restart) never delays the next signal; their outcome is logged.
///
/// # Errors
///
/// The OS error if a signal handler cannot be installed.
///
/// # Examples
///
/// ```no_run
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{Cluster, forward_signals};
///
/// # async fn example(spec: ClusterSpec) -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = Cluster::builder(spec).build().await?;
/// tokio::spawn(forward_signals(cluster.handle())); // SIGHUP rolls, SIGTERM drains, ...
/// cluster.run().await?;
/// # Ok(())
/// # }
/// ```
pub async fn forward_signals(handle: ClusterHandle) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut ttin = signal(SignalKind::from_raw(rustix::process::Signal::TTIN.as_raw()))?;
    let mut ttou = signal(SignalKind::from_raw(rustix::process::Signal::TTOU.as_raw()))?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut urg = signal(SignalKind::from_raw(rustix::process::Signal::URG.as_raw()))?;
    let mut interrupted = false;
    loop {
        let (name, command) = tokio::select! {
            Some(()) = term.recv() => ("SIGTERM", Command::Shutdown(ShutdownMode::Graceful)),
            Some(()) = int.recv() => {
                let mode = if interrupted { ShutdownMode::Immediate } else { ShutdownMode::Graceful };
                interrupted = true;
                ("SIGINT", Command::Shutdown(mode))
            }
            Some(()) = quit.recv() => ("SIGQUIT", Command::Shutdown(ShutdownMode::Immediate)),
            Some(()) = hup.recv() => ("SIGHUP", Command::RollingRestart),
            Some(()) = ttin.recv() => ("SIGTTIN", Command::ScaleBy(1)),
            Some(()) = ttou.recv() => {
                if background_terminal_write() {
                    // The kernel's, not an operator's: we are a background job writing to a
                    // terminal with `tostop` set. Scaling down on it would empty the cluster.
                    tracing::debug!(target: "cluster::signal", "SIGTTOU from a background terminal write: ignored");
                    continue;
                }
                ("SIGTTOU", Command::ScaleBy(-1))
            }
            Some(()) = usr1.recv() => ("SIGUSR1", Command::ReopenLogs),
            Some(()) = usr2.recv() => ("SIGUSR2", Command::ReloadConfig),
            Some(()) = urg.recv() => ("SIGURG", Command::Upgrade),
            else => return Ok(()),
        };
        if !run(&handle.on_behalf_of(format!("signal {name}")), name, command) {
            return Ok(());
        }
    }
}

/// Whether a SIGTTOU most likely came from the terminal driver: our stderr or stdout is a
/// terminal with `tostop` set whose foreground process group is not ours (we run as a
/// background job, and writing to the terminal raises SIGTTOU). An operator's
/// `kill -TTOU` in any other situation scales down.
fn background_terminal_write() -> bool {
    use rustix::termios::{LocalModes, tcgetattr, tcgetpgrp};
    let ours = rustix::process::getpgrp();
    let check = |fd: std::os::fd::BorrowedFd<'_>| {
        let Ok(foreground) = tcgetpgrp(fd) else { return false };
        let tostop = tcgetattr(fd).is_ok_and(|t| t.local_modes.contains(LocalModes::TOSTOP));
        tostop && foreground != ours
    };
    check(rustix::stdio::stderr()) || check(rustix::stdio::stdout())
}

/// Carries out `command`; returns `false` once the cluster is gone.
fn run(handle: &ClusterHandle, name: &'static str, command: Command) -> bool {
    match command {
        Command::Shutdown(mode) => {
            match mode {
                ShutdownMode::Graceful => {
                    tracing::info!(target: "cluster::signal", "{name}: graceful shutdown")
                }
                ShutdownMode::Immediate => {
                    tracing::warn!(target: "cluster::signal", "{name}: stopping now")
                }
            }
            return handle.shutdown(mode).is_ok();
        }
        Command::ReopenLogs => {
            tracing::info!(target: "cluster::signal", "{name}: reopening log files");
            return handle.reopen_logs().is_ok();
        }
        Command::RollingRestart => {
            tracing::info!(target: "cluster::signal", "{name}: rolling restart");
            let handle = handle.clone();
            tokio::spawn(async move {
                match handle.rolling_restart().await {
                    Ok(op) => match op.finished().await {
                        Ok(done) => tracing::info!(
                            target: "cluster::signal",
                            "{name}: rolling restart #{} done: {} workers replaced in {:.1} s",
                            done.id, done.replaced, done.took.as_secs_f64()
                        ),
                        Err(e) => {
                            tracing::error!(target: "cluster::signal", "{name}: rolling restart failed: {e}")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(target: "cluster::signal", "{name}: rolling restart refused: {e}")
                    }
                }
            });
        }
        Command::ScaleBy(delta) => {
            let handle = handle.clone();
            tokio::spawn(async move {
                match handle.scale_by(delta).await {
                    Ok(s) => {
                        tracing::info!(target: "cluster::signal", "{name}: scaled from {} to {} workers", s.from, s.to)
                    }
                    Err(e) => tracing::warn!(target: "cluster::signal", "{name}: not scaled: {e}"),
                }
            });
        }
        Command::Upgrade => {
            tracing::info!(target: "cluster::signal", "{name}: hot upgrade of the primary");
            let handle = handle.clone();
            tokio::spawn(async move {
                match handle.upgrade(crate::upgrade::UpgradeOptions::default()).await {
                    Ok(done) => tracing::info!(
                        target: "cluster::signal",
                        "{name}: the new primary (pid {}) serves; this one drains and exits", done.new_pid
                    ),
                    // The failure itself is logged by the upgrade.
                    Err(e) => tracing::warn!(target: "cluster::signal", "{name}: no upgrade: {e}"),
                }
            });
        }
        Command::ReloadConfig => {
            tracing::info!(target: "cluster::signal", "{name}: reloading the configuration");
            let handle = handle.clone();
            tokio::spawn(async move {
                match handle.reload_config().await {
                    Ok(report) => tracing::info!(
                        target: "cluster::signal",
                        "{name}: configuration reloaded ({} changes)", report.changes.len()
                    ),
                    Err(e) => tracing::error!(target: "cluster::signal", "{name}: {e}"),
                }
            });
        }
    }
    true
}
