//! The systemd notify protocol (`sd_notify(3)`) from the worker's side: `READY=1`,
//! `WATCHDOG=1`, `STATUS=` and `STOPPING=1` datagrams to `NOTIFY_SOCKET`, which the primary's
//! supervisor reads (it knows the sender by the pid the kernel attaches).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use super::env::{Lookup, process_var};

/// A notify message could not be sent, or the variables that configure it are wrong.
///
/// Not fatal for most servers: the primary then judges the worker by its probe alone.
///
/// # Examples
///
/// ```no_run
/// if let Err(e) = cluster_core::worker::ready() {
///     eprintln!("{e}"); // cannot send "READY=1" to NOTIFY_SOCKET=@cluster/...: ...
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` is not a socket address (`@abstract-name` or a path).
    #[error("NOTIFY_SOCKET={value:?} is not a Unix socket address: {source}")]
    Address {
        /// The value found.
        value: String,
        /// Why it was refused (too long, a NUL byte).
        #[source]
        source: io::Error,
    },
    /// The datagram could not be sent: the primary is gone, or its queue is full.
    #[error("cannot send {message:?} to NOTIFY_SOCKET={socket}: {source}")]
    Send {
        /// What was sent.
        message: String,
        /// The `NOTIFY_SOCKET` value.
        socket: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No datagram socket could be created to send from (out of descriptors).
    #[error("cannot create a socket to send to NOTIFY_SOCKET={socket}: {source}")]
    Socket {
        /// The `NOTIFY_SOCKET` value.
        socket: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `WATCHDOG_USEC` is not a number.
    #[error("WATCHDOG_USEC={value:?} is not a number of microseconds")]
    WatchdogUsec {
        /// The value found.
        value: String,
    },
}

/// Tells the primary this worker is ready for traffic (`READY=1`): it joins the rotation at
/// once instead of at the primary's next probe. Call it once the listener accepts. A no-op
/// without `NOTIFY_SOCKET`.
///
/// # Errors
///
/// [`NotifyError`] when `NOTIFY_SOCKET` is not an address or the datagram cannot be sent.
///
/// # Examples
///
/// ```no_run
/// // Outside a cluster (no NOTIFY_SOCKET) this does nothing.
/// cluster_core::worker::ready()?;
/// # Ok::<(), cluster_core::worker::NotifyError>(())
/// ```
pub fn ready() -> Result<(), NotifyError> {
    send(&process_var, "READY=1").map(drop)
}

/// Sends one heartbeat (`WATCHDOG=1`). From the first one on, the primary watches this worker:
/// silent for `health.heartbeatTimeout`, it is replaced as unresponsive. [`heartbeats`] sends
/// them on a timer. A no-op without `NOTIFY_SOCKET`.
///
/// # Errors
///
/// [`NotifyError`] when `NOTIFY_SOCKET` is not an address or the datagram cannot be sent.
///
/// # Examples
///
/// A worker that proves its own work loop is alive, from inside that loop:
///
/// ```no_run
/// for _job in 0..3 {
///     // ... one unit of work ...
///     cluster_core::worker::heartbeat()?;
/// }
/// # Ok::<(), cluster_core::worker::NotifyError>(())
/// ```
pub fn heartbeat() -> Result<(), NotifyError> {
    send(&process_var, "WATCHDOG=1").map(drop)
}

/// Reports a one-line status (`STATUS=`), shown for the worker in `cluster status` and the
/// dashboard (at most 256 bytes are kept). A no-op without `NOTIFY_SOCKET`.
///
/// # Errors
///
/// [`NotifyError`] when `NOTIFY_SOCKET` is not an address or the datagram cannot be sent.
///
/// # Examples
///
/// ```no_run
/// cluster_core::worker::status("warming the cache")?;
/// # Ok::<(), cluster_core::worker::NotifyError>(())
/// ```
pub fn status(text: &str) -> Result<(), NotifyError> {
    // One line: a newline would start another assignment.
    let line = text.replace('\n', " ");
    send(&process_var, &format!("STATUS={line}")).map(drop)
}

/// How often to send heartbeats: half of `WATCHDOG_USEC`, which the cluster sets to
/// `health.heartbeatTimeout` together with `NOTIFY_SOCKET`. `None` when there is no watchdog
/// (unset or 0, or `WATCHDOG_PID` names another process).
///
/// # Errors
///
/// [`NotifyError::WatchdogUsec`] when `WATCHDOG_USEC` is not a number.
///
/// # Examples
///
/// ```
/// if let Some(every) = cluster_core::worker::watchdog_interval()? {
///     println!("a heartbeat every {every:?}");
/// }
/// # Ok::<(), cluster_core::worker::NotifyError>(())
/// ```
pub fn watchdog_interval() -> Result<Option<Duration>, NotifyError> {
    interval(&process_var, std::process::id())
}

/// Sends `WATCHDOG=1` every [`watchdog_interval`] from a task on the current tokio runtime,
/// for as long as the runtime runs (abort the handle to stop). `None` when the cluster
/// expects no heartbeats (no `NOTIFY_SOCKET` or no `WATCHDOG_USEC`). A send that fails is
/// logged at debug level and the task goes on.
///
/// The heartbeats prove that the runtime schedules tasks: a runtime blocked by a handler that
/// never yields stops them, and the worker is replaced. To watch a loop of your own instead,
/// call [`heartbeat`] from it.
///
/// # Errors
///
/// [`NotifyError`] when `NOTIFY_SOCKET` or `WATCHDOG_USEC` is malformed, or the socket cannot
/// be created.
///
/// # Panics
///
/// Outside a tokio runtime, as `tokio::spawn` does.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cluster_core::worker::NotifyError> {
/// // Keep the handle, or drop it: the task runs on either way.
/// if let Some(task) = cluster_core::worker::heartbeats()? {
///     # task.abort();
/// }
/// # Ok(())
/// # }
/// ```
pub fn heartbeats() -> Result<Option<tokio::task::JoinHandle<()>>, NotifyError> {
    let Some(every) = watchdog_interval()? else { return Ok(None) };
    let Some(target) = Target::from_env(&process_var)? else { return Ok(None) };
    let socket = unbound(&target)?;
    Ok(Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = target.send_on(&socket, "WATCHDOG=1") {
                tracing::debug!("heartbeat not sent: {e}");
            }
        }
    })))
}

/// Sends `message`; `Ok(false)` without `NOTIFY_SOCKET`.
pub(super) fn send(lookup: Lookup<'_>, message: &str) -> Result<bool, NotifyError> {
    let Some(target) = Target::from_env(lookup)? else { return Ok(false) };
    target.send_on(&unbound(&target)?, message)?;
    Ok(true)
}

/// Where notify datagrams go.
#[derive(Debug)]
struct Target {
    value: String,
    addr: SocketAddr,
}

impl Target {
    /// `NOTIFY_SOCKET`, parsed; `None` when unset.
    fn from_env(lookup: Lookup<'_>) -> Result<Option<Self>, NotifyError> {
        let Some(value) = lookup("NOTIFY_SOCKET") else { return Ok(None) };
        let addr = match value.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(&value),
        };
        match addr {
            Ok(addr) => Ok(Some(Self { value, addr })),
            Err(source) => Err(NotifyError::Address { value, source }),
        }
    }

    /// Sends `message` on `socket`, without waiting: a full queue is an error, not a stall.
    fn send_on(&self, socket: &UnixDatagram, message: &str) -> Result<(), NotifyError> {
        socket.send_to_addr(message.as_bytes(), &self.addr).map(drop).map_err(|source| {
            NotifyError::Send { message: message.to_owned(), socket: self.value.clone(), source }
        })
    }
}

/// A non-blocking unbound datagram socket to send from.
fn unbound(target: &Target) -> Result<UnixDatagram, NotifyError> {
    let error = |source| NotifyError::Socket { socket: target.value.clone(), source };
    let socket = UnixDatagram::unbound().map_err(error)?;
    socket.set_nonblocking(true).map_err(error)?;
    Ok(socket)
}

/// [`watchdog_interval`] for the process `pid`.
fn interval(lookup: Lookup<'_>, pid: u32) -> Result<Option<Duration>, NotifyError> {
    let Some(value) = lookup("WATCHDOG_USEC") else { return Ok(None) };
    let usec: u64 =
        value.trim().parse().map_err(|_| NotifyError::WatchdogUsec { value: value.clone() })?;
    // As sd_watchdog_enabled(3): the variables are for another process when WATCHDOG_PID says so.
    if lookup("WATCHDOG_PID").is_some_and(|p| p.trim().parse::<u32>().ok() != Some(pid)) {
        return Ok(None);
    }
    Ok((usec > 0).then(|| Duration::from_micros(usec) / 2))
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::super::env::fake;
    use super::*;

    #[test]
    fn messages_reach_the_socket_named_by_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let env = fake::vars(&[("NOTIFY_SOCKET", path.to_str().unwrap())]);
        assert!(send(&env, "READY=1").unwrap());
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        // The abstract namespace (`@name`), as the cluster's primary uses.
        let name = format!("cluster-test/{}/notify", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_receiver = UnixDatagram::bind_addr(&addr).unwrap();
        let env = fake::vars(&[("NOTIFY_SOCKET", &format!("@{name}"))]);
        assert!(send(&env, "WATCHDOG=1").unwrap());
        let n = abstract_receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn without_notify_socket_nothing_is_sent() {
        assert!(!send(&fake::vars(&[]), "READY=1").unwrap());
        assert!(!send(&fake::vars(&[("NOTIFY_SOCKET", "")]), "READY=1").unwrap());
    }

    #[test]
    fn errors_name_the_variable_and_the_socket() {
        let long = format!("/{}", "x".repeat(200));
        let error = send(&fake::vars(&[("NOTIFY_SOCKET", &long)]), "READY=1").unwrap_err();
        assert!(matches!(error, NotifyError::Address { .. }), "{error:?}");
        assert!(error.to_string().starts_with("NOTIFY_SOCKET=\"/xxx"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let env = fake::vars(&[("NOTIFY_SOCKET", gone.to_str().unwrap())]);
        let error = send(&env, "READY=1").unwrap_err();
        let expected = format!("cannot send \"READY=1\" to NOTIFY_SOCKET={}: ", gone.display());
        assert!(error.to_string().starts_with(&expected), "{error}");
    }

    #[test]
    fn the_heartbeat_interval_is_half_the_watchdog_timeout() {
        let at = |vars: &[(&str, &str)]| interval(&fake::vars(vars), 77);
        assert_eq!(at(&[("WATCHDOG_USEC", "10000000")]).unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(at(&[]).unwrap(), None);
        assert_eq!(at(&[("WATCHDOG_USEC", "0")]).unwrap(), None);
        let ours = [("WATCHDOG_USEC", "2000000"), ("WATCHDOG_PID", "77")];
        assert_eq!(at(&ours).unwrap(), Some(Duration::from_secs(1)));
        assert_eq!(at(&[("WATCHDOG_USEC", "2000000"), ("WATCHDOG_PID", "1")]).unwrap(), None);
        let error = at(&[("WATCHDOG_USEC", "5s")]).unwrap_err();
        assert_eq!(error.to_string(), r#"WATCHDOG_USEC="5s" is not a number of microseconds"#);
    }
}
