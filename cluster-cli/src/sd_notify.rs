//! The primary's side of systemd's notify protocol (`Type=notify`, sd_notify(3)).
//!
//! When systemd (or anything speaking the protocol) starts `cluster` with `NOTIFY_SOCKET`, the
//! primary tells it:
//!
//! - `READY=1` once as many workers are ready as are wanted, with `STATUS=` and `MAINPID=`;
//! - `STATUS=` whenever the count of ready workers changes ("3 of 4 workers ready");
//! - `RELOADING=1` (with `MONOTONIC_USEC=`, as `Type=notify-reload` requires) when a rolling
//!   restart or restart starts, and `READY=1` when it ends, done or failed;
//! - `STOPPING=1` when the shutdown starts, unless it hands over to a new primary (hot
//!   upgrade): then `MAINPID=` with the new primary's pid, sent while this one is still the
//!   main process;
//! - `WATCHDOG=1` every half `WATCHDOG_USEC` (when it names this process), but only while the
//!   control plane answers a status query: a primary whose supervisor hangs stops pinging and
//!   systemd restarts it.
//!
//! The variables are read once at start; the spawners never pass them to the workers (each
//! worker gets a notify socket of the primary's own when heartbeats are on).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use cluster_core::{ClusterEvent, ClusterHandle};
use tokio::sync::broadcast::error::RecvError;

/// Where to send notifications, from `NOTIFY_SOCKET` (a path, or `@name` for the abstract
/// namespace).
pub(crate) struct Notifier {
    socket: UnixDatagram,
    target: SocketAddr,
}

impl Notifier {
    /// The notifier the environment asks for, if any. An unusable `NOTIFY_SOCKET` is logged
    /// and ignored: the cluster still runs, the service manager just hears nothing.
    pub(crate) fn from_env() -> Option<Self> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        let value = value.to_string_lossy().into_owned();
        match Self::new(&value) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!("NOTIFY_SOCKET={value:?} cannot be used ({e}); not notifying");
                None
            }
        }
    }

    fn new(value: &str) -> io::Result<Self> {
        let target = match value.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None => SocketAddr::from_pathname(value)?,
        };
        Ok(Notifier { socket: UnixDatagram::unbound()?, target })
    }

    /// Sends one notification (newline-separated `KEY=VALUE` lines). A failure is logged
    /// at debug level: the service manager may have gone away first.
    pub(crate) fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.target) {
            tracing::debug!("sd_notify {message:?}: {e}");
        }
    }
}

/// `CLOCK_MONOTONIC` in microseconds, for `MONOTONIC_USEC=` beside `RELOADING=1`.
fn monotonic_usec() -> u128 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u128::try_from(now.tv_sec).unwrap_or(0) * 1_000_000
        + u128::try_from(now.tv_nsec).unwrap_or(0) / 1_000
}

fn status_line(ready: usize, desired: usize) -> String {
    format!("STATUS={ready} of {desired} workers ready")
}

/// Runs the protocol for the cluster behind `handle` until it stops. A `successor` (started by
/// a hot upgrade) does not announce `READY=1`: the service is ready already, and the old
/// primary, the main process until then, names it with `MAINPID=` (which `NotifyAccess=main`
/// accepts from the main process only).
pub(crate) async fn run(notifier: Notifier, handle: ClusterHandle, successor: bool) {
    let notifier = Arc::new(notifier);
    let mut events = handle.subscribe();
    // Half of WATCHDOG_USEC, when it is meant for this process (WATCHDOG_PID): the same
    // reading as the worker helpers'.
    match cluster_core::worker::watchdog_interval() {
        Ok(Some(every)) => {
            drop(tokio::spawn(watchdog(Arc::clone(&notifier), handle.clone(), every)));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("{e}; no watchdog pings"),
    }
    let mut announced_ready = successor;
    let mut last_status = String::new();
    let mut reloading = false;
    let mut stopping = false;
    loop {
        // Re-read the counts after every event: the status is the one source of truth.
        if !stopping {
            if let Ok(status) = handle.status().await {
                let line = status_line(status.ready_workers, status.desired_workers);
                let ready_now = status.ready_workers >= status.desired_workers;
                if !announced_ready && ready_now {
                    announced_ready = true;
                    notifier.send(&format!("READY=1\n{line}\nMAINPID={}", std::process::id()));
                } else if line != last_status {
                    notifier.send(&line);
                }
                last_status = line;
            }
        }
        match events.recv().await {
            Ok(ClusterEvent::OperationStarted { .. }) if !reloading && !stopping => {
                reloading = true;
                notifier.send(&format!(
                    "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=rolling the workers",
                    monotonic_usec()
                ));
            }
            Ok(ClusterEvent::OperationFinished { .. } | ClusterEvent::OperationFailed { .. })
                if reloading && !stopping =>
            {
                reloading = false;
                last_status.clear();
                notifier.send("READY=1");
            }
            Ok(ClusterEvent::UpgradeFinished { new_pid, .. }) if !stopping => {
                // The service goes on in the new primary: no STOPPING=1 from us.
                stopping = true;
                notifier.send(&format!(
                    "MAINPID={new_pid}\nSTATUS=handed over to the new primary (pid {new_pid})"
                ));
            }
            Ok(ClusterEvent::ShutdownStarted { .. }) if !stopping => {
                stopping = true;
                notifier.send("STOPPING=1\nSTATUS=stopping the workers");
            }
            Ok(ClusterEvent::Stopped) | Err(RecvError::Closed) => return,
            Ok(_) | Err(RecvError::Lagged(_)) => {}
        }
    }
}

/// Pings the watchdog every `every` while the control plane answers within it.
async fn watchdog(notifier: Arc<Notifier>, handle: ClusterHandle, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match tokio::time::timeout(every, handle.status()).await {
            Ok(Ok(_)) => notifier.send("WATCHDOG=1"),
            Ok(Err(_)) => return,
            Err(_) => tracing::warn!(
                "the control plane did not answer within {every:?}; no watchdog ping"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        Notifier::new(path.to_str().unwrap()).unwrap().send("READY=1\nSTATUS=x");
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=x");

        let name = format!("cluster-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::new(&format!("@{name}")).unwrap().send("STOPPING=1");
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn status_says_ready_of_desired() {
        assert_eq!(status_line(3, 4), "STATUS=3 of 4 workers ready");
    }
}
