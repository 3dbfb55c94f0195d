//! The opt-in systemd notify heartbeat (`HELLO_NOTIFY=1`): `READY=1` once bound, then
//! `WATCHDOG=1` every `WATCHDOG_USEC`/2 on `NOTIFY_SOCKET`, sent from the runtime, so a stuck
//! runtime stops them. `HELLO_NOTIFY_HANG_AFTER_MS` stops them while HTTP goes on being served.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use crate::{number, var};

/// Starts the heartbeat if `HELLO_NOTIFY=1`; call once bound. A socket error is reported on
/// stderr and the worker goes on serving.
///
/// # Errors
///
/// A message naming the variable when a value does not parse.
pub(crate) fn start_from_env() -> Result<(), String> {
    if let Some(notify) = Notify::from_env()? {
        if let Err(e) = notify.start() {
            eprintln!("hello: cannot send to NOTIFY_SOCKET: {e}");
        }
    }
    Ok(())
}

/// The notify settings, read from the environment.
#[derive(Debug)]
pub(crate) struct Notify {
    /// Where to send.
    socket: SocketAddr,
    /// Time between two `WATCHDOG=1`; `None` without `WATCHDOG_USEC`.
    interval: Option<Duration>,
    /// Stop sending `WATCHDOG=1` this long after start.
    hang_after: Option<Duration>,
}

impl Notify {
    /// `None` unless `HELLO_NOTIFY=1` and `NOTIFY_SOCKET` are set.
    ///
    /// # Errors
    ///
    /// A message naming the variable when a value does not parse.
    fn from_env() -> Result<Option<Self>, String> {
        if var("HELLO_NOTIFY").as_deref() != Some("1") {
            return Ok(None);
        }
        let Some(path) = var("NOTIFY_SOCKET") else { return Ok(None) };
        let socket = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(&path),
        }
        .map_err(|e| format!("NOTIFY_SOCKET={path:?} is not a socket address: {e}"))?;
        let interval = number::<u64>("WATCHDOG_USEC")?
            .filter(|&us| us > 0)
            .map(|us| Duration::from_micros(us) / 2);
        let hang_after = number::<u64>("HELLO_NOTIFY_HANG_AFTER_MS")?.map(Duration::from_millis);
        Ok(Some(Notify { socket, interval, hang_after }))
    }

    /// Sends `READY=1` now and starts the `WATCHDOG=1` task.
    ///
    /// # Errors
    ///
    /// The OS error when the socket cannot be created or `READY=1` cannot be sent.
    fn start(self) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        // A full queue on the other side drops a heartbeat rather than stalling the runtime.
        socket.set_nonblocking(true)?;
        socket.send_to_addr(b"READY=1\nSTATUS=serving", &self.socket)?;
        let Some(interval) = self.interval else { return Ok(()) };
        let started = tokio::time::Instant::now();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                if self.hang_after.is_some_and(|after| started.elapsed() >= after) {
                    let _ =
                        socket.send_to_addr(b"STATUS=hanging (no more heartbeats)", &self.socket);
                    return;
                }
                if let Err(e) = socket.send_to_addr(b"WATCHDOG=1", &self.socket) {
                    eprintln!("hello: WATCHDOG=1 not sent: {e}");
                }
            }
        });
        Ok(())
    }
}
