//! The private directory of the workers' Unix sockets (`upstream: "unix"`).
//!
//! One directory per cluster, mode 0700, created at start (or when a reload first asks for
//! Unix sockets) under `$XDG_RUNTIME_DIR` when it is set, else under the system temporary
//! directory (`$TMPDIR`, `/tmp`); removed with everything in it when the cluster stops. Each
//! worker's socket is named after its unique id (`w7.sock`), so a replacement never binds
//! the path its predecessor may still hold; a socket file left by a worker that crashed is
//! removed when its exit is seen, and any file at a new worker's path is removed before it
//! starts.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::config::HardeningSpec;

/// The longest path a Unix socket address holds (the configuration's check of
/// `admin.socket` uses the same limit).
pub(crate) use crate::config::MAX_SOCKET_PATH;

/// The widest worker id the length check at start allows for (ids count up from 1).
const WIDE_ID: u64 = 9_999_999;

/// Directories made by this process so far (two clusters in one process get two).
static MADE: AtomicU32 = AtomicU32::new(0);

/// The workers' socket directory could not be set up.
///
/// # Examples
///
/// ```
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{Cluster, ClusterError, SocketDirError};
///
/// # async fn example(spec: ClusterSpec) {
/// match Cluster::builder(spec).build().await {
///     Err(ClusterError::SocketDir(SocketDirError::TooLong { .. })) => {
///         eprintln!("socket paths too long: set a shorter runtime directory")
///     }
///     Err(other) => eprintln!("{other}"),
///     Ok(cluster) => drop(cluster),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketDirError {
    /// The directory could not be created (or given to the workers' account).
    #[error("cannot create the workers' socket directory {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A socket path would not fit in a Unix socket address.
    #[error(
        "the worker socket path {path} is {len} bytes, longer than the {MAX_SOCKET_PATH} a Unix \
         socket address holds: point XDG_RUNTIME_DIR (or TMPDIR) at a shorter directory, or set \
         `upstream` to \"tcp\""
    )]
    TooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
}

/// The directory of one cluster's worker sockets; removed (with its sockets) on drop.
#[derive(Debug)]
pub(crate) struct SocketDir {
    path: PathBuf,
}

impl SocketDir {
    /// Creates the directory under `$XDG_RUNTIME_DIR` or the temporary directory, owned by
    /// the account `hardening` runs workers as (so that they can create their sockets).
    /// Workers of another account could not reach into our `$XDG_RUNTIME_DIR` (0700): the
    /// temporary directory is used for them.
    ///
    /// # Errors
    ///
    /// [`SocketDirError::Create`] when it cannot be created; [`SocketDirError::TooLong`] when
    /// socket paths in it would be too long.
    pub(crate) fn create(hardening: &HardeningSpec) -> Result<Self, SocketDirError> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute() && p.is_dir() && other_account(hardening).is_none())
            .unwrap_or_else(std::env::temp_dir);
        Self::create_in(&base, hardening)
    }

    /// Creates the directory in `base`.
    pub(crate) fn create_in(
        base: &Path,
        hardening: &HardeningSpec,
    ) -> Result<Self, SocketDirError> {
        let pid = std::process::id();
        loop {
            let n = MADE.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("cluster-{pid}-{n}"));
            // Checked before anything is created, so that the error comes at start.
            check_len(&path.join(socket_name(WIDE_ID)))?;
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    let dir = Self { path };
                    dir.give_to(hardening)?;
                    return Ok(dir);
                }
                // Left by an earlier process with the same pid: take the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(SocketDirError::Create { path, source }),
            }
        }
    }

    /// Gives the directory to the account workers run as (`user`), when that is another
    /// account than ours: they must be able to create their sockets in it. Root, which the
    /// primary is then, still reaches them.
    pub(crate) fn give_to(&self, hardening: &HardeningSpec) -> Result<(), SocketDirError> {
        let Some((uid, gid)) = other_account(hardening) else { return Ok(()) };
        std::os::unix::fs::chown(&self.path, Some(uid), Some(gid))
            .map_err(|source| SocketDirError::Create { path: self.path.clone(), source })
    }

    /// The directory.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The socket path of worker `id`, with nothing left at it.
    ///
    /// # Errors
    ///
    /// [`SocketDirError::TooLong`] when the path does not fit in a socket address.
    pub(crate) fn socket_for(&self, id: u64) -> Result<PathBuf, SocketDirError> {
        let path = self.path.join(socket_name(id));
        check_len(&path)?;
        remove_socket(&path);
        Ok(path)
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            if error.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), %error, "cannot remove the workers' socket directory");
            }
        }
    }
}

/// Removes the socket file at `path`, if there is one (a worker that exited leaves it).
pub(crate) fn remove_socket(path: &Path) {
    if let Err(error) = std::fs::remove_file(path) {
        if error.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), %error, "cannot remove a worker socket");
        }
    }
}

/// The uid and gid workers run as, when `user` names another account than ours.
fn other_account(hardening: &HardeningSpec) -> Option<(u32, u32)> {
    let user = hardening.user.as_ref()?;
    if user.uid == nix::unistd::geteuid().as_raw() {
        return None;
    }
    Some((user.uid, hardening.group.as_ref().map_or(user.gid, |g| g.gid)))
}

fn socket_name(id: u64) -> String {
    format!("w{id}.sock")
}

fn check_len(path: &Path) -> Result<(), SocketDirError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(SocketDirError::TooLong { path: path.to_owned(), len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn private_unique_and_removed_on_drop() {
        let base = tempfile::tempdir().unwrap();
        let spec = HardeningSpec::default();
        let a = SocketDir::create_in(base.path(), &spec).unwrap();
        let b = SocketDir::create_in(base.path(), &spec).unwrap();
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let sock = a.socket_for(3).unwrap();
        assert_eq!(sock, a.path().join("w3.sock"));
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists(), "the directory and its sockets are removed");
        assert!(b.path().exists());
    }

    #[test]
    fn a_stale_socket_is_removed_before_its_path_is_given_out() {
        let base = tempfile::tempdir().unwrap();
        let dir = SocketDir::create_in(base.path(), &HardeningSpec::default()).unwrap();
        let stale = dir.path().join("w5.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        assert!(stale.exists(), "a listener dropped without unlinking leaves its file");
        assert_eq!(dir.socket_for(5).unwrap(), stale);
        assert!(!stale.exists());
        // The path is free: a new worker can bind it.
        std::os::unix::net::UnixListener::bind(&stale).unwrap();
        remove_socket(&stale);
        assert!(!stale.exists());
    }

    #[test]
    fn too_long_a_path_is_refused_at_creation() {
        let base = tempfile::tempdir().unwrap();
        let deep = base.path().join("d".repeat(90));
        std::fs::create_dir(&deep).unwrap();
        let error = SocketDir::create_in(&deep, &HardeningSpec::default()).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, SocketDirError::TooLong { len, .. } if len > MAX_SOCKET_PATH));
        assert!(message.contains("longer than the 107"), "{message}");
        assert!(message.contains("XDG_RUNTIME_DIR"), "{message}");
        assert_eq!(std::fs::read_dir(&deep).unwrap().count(), 0, "nothing created");
    }
}
