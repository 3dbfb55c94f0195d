//! The worker side: helpers for a Rust server that runs under `cluster`, embedded (the same
//! binary re-run by [`SelfExecSpawner`](crate::SelfExecSpawner)) or as the configured command of
//! `cluster start`.
//!
//! The cluster tells each worker everything through its environment; these helpers read it:
//!
//! - [`listener`]: the socket to serve on: the front socket inherited at fd 3 in
//!   shared-socket mode (`LISTEN_FDS`, `LISTEN_PID`), else the Unix socket `SOCKET_PATH`
//!   (`upstream: "unix"`), else `HOST`:`PORT`. [`Listener::into_tokio`] turns it into an
//!   [`AsyncListener`] whose [`accept`](AsyncListener::accept) gives a [`Connection`] for
//!   hyper, whichever kind it is.
//! - [`ready`], [`heartbeat`], [`status`]: the systemd notify protocol on `NOTIFY_SOCKET`
//!   (`READY=1`, `WATCHDOG=1`, `STATUS=`), which the primary reads: `READY=1` puts a starting
//!   worker in rotation without waiting for the next probe, and once a worker has sent one
//!   `WATCHDOG=1` it must keep sending them, or it is replaced as unresponsive after
//!   `health.heartbeatTimeout`. [`heartbeats`] sends them from a task, at half that timeout.
//!   Each is a no-op without `NOTIFY_SOCKET` (a worker started by hand).
//! - [`stopping`]: resolves on SIGTERM or SIGINT after telling the primary `STOPPING=1` (the
//!   worker leaves rotation at once and its slot is refilled), so the server can drain.
//! - [`id`] and [`generation`]: which worker this is.
//!
//! # Examples
//!
//! A worker that serves with hyper, says when it is ready, sends heartbeats and drains on
//! SIGTERM:
//!
//! ```no_run
//! use cluster_core::worker;
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//! use hyper_util::rt::TokioIo;
//! use hyper_util::server::graceful::GracefulShutdown;
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = worker::listener()?.into_tokio()?;
//! let mut stop = worker::stopping()?;
//! worker::ready()?;
//! let _heartbeats = worker::heartbeats()?;
//! let graceful = GracefulShutdown::new();
//! loop {
//!     let connection = tokio::select! {
//!         accepted = listener.accept() => accepted?,
//!         _ = &mut stop => break,
//!     };
//!     let service = service_fn(|_: Request<Incoming>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(String::from("hello\n")))
//!     });
//!     let conn = hyper::server::conn::http1::Builder::new()
//!         .serve_connection(TokioIo::new(connection), service);
//!     tokio::spawn(graceful.watch(conn));
//! }
//! graceful.shutdown().await; // in-flight requests finish
//! # Ok(())
//! # }
//! ```

mod connection;
mod env;
mod listener;
mod notify;
mod stopping;

pub use connection::{AsyncListener, Connection};
pub use listener::{ListenSource, Listener, ListenerError, listener};
pub use notify::{NotifyError, heartbeat, heartbeats, ready, status, watchdog_interval};
pub use stopping::{Stop, Stopping, stopping};

use crate::role::{WORKER_GENERATION, WORKER_ID};

/// This worker's slot, `0..workers` (`CLUSTER_WORKER_ID`, also given as PM2's
/// `NODE_APP_INSTANCE`): a replacement keeps its predecessor's slot. `None` outside a cluster
/// (or when the variable is not a number).
///
/// # Examples
///
/// ```
/// let name = match cluster_core::worker::id() {
///     Some(slot) => format!("worker {slot}"),
///     None => "standalone".to_owned(),
/// };
/// # let _ = name;
/// ```
pub fn id() -> Option<usize> {
    env::parse(&env::process_var, WORKER_ID)
}

/// How many workers this slot has had, counting this one (1 for the first; a restart or a
/// recycle starts the next generation): `CLUSTER_WORKER_GENERATION`. `None` outside a
/// cluster.
///
/// # Examples
///
/// ```
/// if cluster_core::worker::generation().is_some_and(|g| g > 1) {
///     println!("a replacement: warming caches less eagerly");
/// }
/// ```
pub fn generation() -> Option<u32> {
    env::parse(&env::process_var, WORKER_GENERATION)
}
