//! [`SharedListener`]: the front socket handed to workers in shared-socket mode.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// The variables of the socket-activation protocol (`sd_listen_fds(3)`) besides `LISTEN_PID`,
/// which the spawner writes in the child: one descriptor, fd 3, named `http`.
pub(crate) const LISTEN_ENV: [(&str, &str); 2] = [("LISTEN_FDS", "1"), ("LISTEN_FDNAMES", "http")];

/// The front listening socket, shared by the primary and every worker (`mode:
/// "shared-socket"`): each worker finds a copy at fd 3, with `LISTEN_FDS=1`,
/// `LISTEN_FDNAMES=http` and `LISTEN_PID` set to its own pid, and accepts on it itself.
///
/// The primary keeps its copy open for the cluster's life and never accepts on it, so a
/// connection that arrives while workers are replaced waits in the kernel's queue for the
/// next worker that accepts, instead of being refused.
///
/// Cheap to clone (a shared descriptor). Two values are equal when they hold the same
/// descriptor number.
///
/// # Examples
///
/// In a spawner of your own: pass the socket as the worker's fd 3 when there is one.
///
/// ```
/// use std::os::fd::AsFd;
/// use cluster_core::WorkerSpec;
///
/// fn listener_fd(spec: &WorkerSpec) -> Option<std::os::fd::BorrowedFd<'_>> {
///     // Duplicate it onto fd 3 between fork and exec, with LISTEN_FDS=1 and LISTEN_PID.
///     spec.listener.as_ref().map(|shared| shared.as_fd())
/// }
/// # let _ = listener_fd;
/// ```
#[derive(Debug, Clone)]
pub struct SharedListener(Arc<OwnedFd>);

impl SharedListener {
    /// Shares `socket`, a listening stream socket.
    pub(crate) fn new(socket: impl Into<OwnedFd>) -> Self {
        Self(Arc::new(socket.into()))
    }

    /// The inode of the socket, which identifies it in `/proc/<pid>/fdinfo` of the workers
    /// whatever descriptor number they hold it at.
    ///
    /// # Errors
    ///
    /// The OS error of `fstat`.
    pub(crate) fn inode(&self) -> std::io::Result<u64> {
        Ok(rustix::fs::fstat(&*self.0)?.st_ino)
    }
}

/// In a worker: the listening socket the cluster passed in shared-socket mode (fd 3), when
/// `LISTEN_FDS` is at least 1 and `LISTEN_PID` is this process's pid; `None` otherwise (serve on
/// `HOST` and `PORT`). Only the first call can return it.
///
/// For a Rust server run by [`SelfExecSpawner`](super::SelfExecSpawner) or a
/// [`ProcessSpawner`](super::ProcessSpawner): in worker role, accept on this socket when there
/// is one. The socket is blocking, as passed; call `set_nonblocking(true)` before handing it to
/// an async runtime.
///
/// # Examples
///
/// A worker that serves on the socket the cluster passed, or else on its own port:
///
/// ```no_run
/// use std::net::TcpListener;
///
/// # fn example() -> std::io::Result<()> {
/// let listener = match cluster_core::inherited_listener() {
///     Some(shared) => shared, // shared-socket mode, or systemd socket activation
///     None => {
///         let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
///         TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap_or(3000)))?
///     }
/// };
/// listener.set_nonblocking(true)?;
/// let listener = tokio::net::TcpListener::from_std(listener)?;
/// # drop(listener);
/// # Ok(())
/// # }
/// ```
pub fn inherited_listener() -> Option<std::net::TcpListener> {
    let fds = std::env::var("LISTEN_FDS").ok().and_then(|v| v.trim().parse::<u32>().ok());
    if !listen_pid_is_ours() || fds? == 0 {
        return None;
    }
    super::sys::take_listen_fd().map(std::net::TcpListener::from)
}

/// Whether `LISTEN_PID` names this process: the descriptors of socket activation (and of a
/// hot upgrade) are ours to take only then.
pub(crate) fn listen_pid_is_ours() -> bool {
    std::env::var("LISTEN_PID").ok().and_then(|p| p.trim().parse::<u32>().ok())
        == Some(std::process::id())
}

impl AsFd for SharedListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl PartialEq for SharedListener {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_raw_fd() == other.0.as_raw_fd()
    }
}

impl Eq for SharedListener {}
