//! [`Successor`]: the new primary's side of a hot upgrade.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

/// What a new primary was handed by the old one (see the [module](super) documentation):
/// `None` from [`Successor::from_env`] when this process was not started by an upgrade.
///
/// # Examples
///
/// A new primary's part, as `cluster start` plays it: the descriptors the old primary
/// passed, then its word once the workers are ready.
///
/// ```no_run
/// use std::net::TcpListener;
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::upgrade::{self, Successor};
/// use cluster_core::{Cluster, ShutdownMode};
///
/// # async fn example(spec: ClusterSpec) -> Result<(), Box<dyn std::error::Error>> {
/// let Some(successor) = Successor::from_env() else {
///     return Ok(()); // not started by an upgrade (the module example plays both parts)
/// };
/// // Passed with `SuccessorCommand::pass("admin", ...)`; bind it anew when absent.
/// let admin = match successor.take("admin") {
///     Some(fd) => TcpListener::from(fd),
///     None => TcpListener::bind("127.0.0.1:9000")?,
/// };
/// # drop(admin);
/// let cluster = match Cluster::builder(spec).build().await {
///     Ok(cluster) => cluster,
///     Err(e) => {
///         let _ = successor.failed(&e.to_string()); // the old primary keeps serving
///         return Err(e.into());
///     }
/// };
/// let handle = cluster.handle();
/// tokio::spawn(async move {
///     if !upgrade::until_workers_ready(&handle).await {
///         return;
///     }
///     if successor.ready().is_err() {
///         // The old primary gave up waiting and keeps serving: this one leaves.
///         let _ = handle.shutdown(ShutdownMode::Graceful);
///         return;
///     }
///     // The old primary drains and exits: now take the shared paths (pid file, socket).
/// });
/// cluster.run().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Successor {
    /// The old primary's readiness socket; `None` once reported.
    ready: Mutex<Option<std::os::unix::net::UnixStream>>,
    /// The other descriptors, by name.
    fds: Mutex<HashMap<String, OwnedFd>>,
}

/// The successor could not tell the old primary.
///
/// # Examples
///
/// ```
/// use std::io;
/// use cluster_core::upgrade::SuccessorError;
///
/// let error = SuccessorError::from(io::Error::new(io::ErrorKind::BrokenPipe, "broken pipe"));
/// assert_eq!(error.to_string(), "cannot report to the old primary: broken pipe");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("cannot report to the old primary: {0}")]
pub struct SuccessorError(#[from] std::io::Error);

impl Successor {
    /// The handover this process was started for: `CLUSTER_UPGRADE_FDS` is set and
    /// `LISTEN_PID` names this process (as the old primary writes it in the child). Takes
    /// ownership of the descriptors it names (made close-on-exec); only the first call can
    /// return them. The front socket itself is taken by the cluster (fd 3), as under socket
    /// activation.
    pub fn from_env() -> Option<Self> {
        static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let list = std::env::var(super::FDS_ENV).ok()?;
        if !crate::spawn::listen_pid_is_ours()
            || TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return None;
        }
        let mut fds = HashMap::new();
        for (name, raw) in parse(&list) {
            // Never the standard streams or the front socket.
            if raw > crate::spawn::LISTEN_FDS_START {
                if let Some(fd) = crate::spawn::take_inherited_fd(raw) {
                    fds.insert(name, fd);
                }
            }
        }
        let ready = fds.remove("ready").map(std::os::unix::net::UnixStream::from);
        Some(Self { ready: Mutex::new(ready), fds: Mutex::new(fds) })
    }

    /// Takes the descriptor the old primary passed as `name`
    /// ([`SuccessorCommand::pass`](super::SuccessorCommand::pass)); `None` if there is none or
    /// it was taken.
    pub fn take(&self, name: &str) -> Option<OwnedFd> {
        self.fds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name)
    }

    /// Tells the old primary that this one serves: it stops accepting, drains and exits.
    /// Call it once the workers are ready, and take the shared paths (control socket, pid
    /// file) only when it succeeds. Only the first report counts.
    ///
    /// # Errors
    ///
    /// The old primary no longer listens (it gave up waiting, and keeps serving): this
    /// process must not take over.
    pub fn ready(&self) -> Result<(), SuccessorError> {
        self.report("READY=1\n")
    }

    /// Tells the old primary why this one cannot start; the old one keeps serving and reports
    /// `reason` to whoever asked for the upgrade. Only the first report counts.
    ///
    /// # Errors
    ///
    /// The old primary is gone.
    pub fn failed(&self, reason: &str) -> Result<(), SuccessorError> {
        let one_line = reason.trim().replace('\n', "; ");
        self.report(&format!("ERROR={one_line}\n"))
    }

    fn report(&self, line: &str) -> Result<(), SuccessorError> {
        let taken = self.ready.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        match taken {
            Some(mut socket) => Ok(socket.write_all(line.as_bytes())?),
            None => Ok(()),
        }
    }
}

/// The `name:fd` pairs of `CLUSTER_UPGRADE_FDS`.
pub(crate) fn parse(list: &str) -> Vec<(String, i32)> {
    list.split(',')
        .filter_map(|item| {
            let (name, fd) = item.split_once(':')?;
            Some((name.trim().to_owned(), fd.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_descriptors() {
        assert_eq!(
            parse("ready:4,pidfile:5"),
            [("ready".to_owned(), 4), ("pidfile".to_owned(), 5)]
        );
        assert_eq!(parse("ready:x,,bad"), []);
    }

    #[test]
    fn not_a_successor_without_the_variables() {
        // The test runner is not started by an upgrade (LISTEN_PID does not name it).
        assert!(Successor::from_env().is_none());
    }
}
