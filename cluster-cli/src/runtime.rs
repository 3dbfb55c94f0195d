//! The runtime directory of one cluster: its control socket and its pid file, which the
//! primary holds locked (`flock`) for as long as it runs.
//!
//! The lock is what says a cluster is alive: the kernel releases it however the primary dies,
//! so a pid file nobody holds is stale, whatever pid it names, and a second `cluster start`
//! on the same directory finds the lock taken and refuses to start.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// Where a cluster keeps its control socket and pid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuntimeDir {
    /// The directory.
    pub(crate) dir: PathBuf,
    /// The control socket.
    pub(crate) socket: PathBuf,
    /// The pid file.
    pub(crate) pid_file: PathBuf,
}

/// The lock a running primary holds on its pid file; released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub(crate) struct PidLock {
    file: File,
    path: PathBuf,
}

/// What a pid file says about the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// No pid file.
    None,
    /// A primary holds it: running, with this pid.
    Running(Option<u32>),
    /// Nobody holds it: the primary that wrote it (this pid) is gone.
    Stale(Option<u32>),
}

impl RuntimeDir {
    /// The runtime directory `dir`, with its socket at `socket` (default `dir/cluster.sock`).
    pub(crate) fn new(dir: PathBuf, socket: Option<PathBuf>) -> Self {
        let socket = socket.unwrap_or_else(|| dir.join("cluster.sock"));
        let pid_file = dir.join("cluster.pid");
        Self { dir, socket, pid_file }
    }

    /// Takes the lock for a primary that starts now, cleaning up after a dead one.
    ///
    /// # Errors
    ///
    /// A message for people: another primary runs here, or the directory cannot be made.
    pub(crate) fn lock(&self) -> Result<PidLock, String> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(|e| {
            format!("cannot create the runtime directory {}: {e}", self.dir.display())
        })?;
        let mut file = loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&self.pid_file)
                .map_err(|e| format!("cannot open {}: {e}", self.pid_file.display()))?;
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                let pid = read_pid(&mut file);
                let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                return Err(format!(
                    "a cluster is already running{who} with the runtime directory {}; stop it first, or choose another with --runtime-dir",
                    self.dir.display()
                ));
            }
            // A command cleaning up after a dead primary may have removed the file between our
            // open and our lock: then the lock is on a file nobody else can see. Start again.
            if same_file(&file, &self.pid_file) {
                break file;
            }
        };
        let stale = read_pid(&mut file);
        if let Some(pid) = stale {
            tracing::info!("cleaning up after a cluster that did not stop cleanly (pid {pid})");
        }
        write_pid(&file)?;
        Ok(PidLock { file, path: self.pid_file.clone() })
    }

    /// Adopts the lock an old primary handed over in a hot upgrade (`fd`, its open pid file:
    /// a `flock` belongs to the open file, so it is held already). The pid file keeps naming
    /// the old primary until [`crate::upgrade::take_over`] writes the new pid.
    ///
    /// # Errors
    ///
    /// A message for people: `fd` is not this directory's pid file, or not locked.
    pub(crate) fn adopt(&self, fd: std::os::fd::OwnedFd) -> Result<PidLock, String> {
        let file = File::from(fd);
        if !same_file(&file, &self.pid_file) {
            return Err(format!(
                "the pid file handed over by the old primary is not {}",
                self.pid_file.display()
            ));
        }
        // Ours already (the same open file): this only checks it.
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|e| {
            format!("the pid file handed over by the old primary is not locked: {e}")
        })?;
        Ok(PidLock { file, path: self.pid_file.clone() })
    }

    /// Whether a primary runs here, without taking the lock for long.
    pub(crate) fn liveness(&self) -> Liveness {
        let Ok(mut file) = OpenOptions::new().read(true).write(true).open(&self.pid_file) else {
            return Liveness::None;
        };
        let pid = read_pid(&mut file);
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            return Liveness::Running(pid);
        }
        let _ = flock(&file, FlockOperation::Unlock);
        Liveness::Stale(pid)
    }

    /// Removes the files a dead primary left behind (pid file, socket); returns the pid it
    /// named, when there was one. Does nothing while a primary runs: the pid file is removed
    /// while its lock is held, and the socket only when nothing answers on it (with
    /// `--socket`, it may be another, live cluster's).
    pub(crate) fn clean_stale(&self) -> Option<u32> {
        let mut file = OpenOptions::new().read(true).write(true).open(&self.pid_file).ok()?;
        flock(&file, FlockOperation::NonBlockingLockExclusive).ok()?;
        let pid = read_pid(&mut file);
        let _ = std::fs::remove_file(&self.pid_file);
        drop(file);
        if std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            let _ = std::fs::remove_file(&self.socket);
        }
        pid
    }
}

impl PidLock {
    /// Removes the pid file and `socket` as the primary stops cleanly, then releases the lock.
    /// After a hot upgrade they are the new primary's (the pid file names it): they stay, and
    /// so does the lock, which the new primary shares.
    pub(crate) fn release(mut self, socket: &Path) {
        if read_pid(&mut self.file) == Some(std::process::id()) {
            let _ = std::fs::remove_file(socket);
            let _ = std::fs::remove_file(&self.path);
        }
        drop(self.file);
    }

    /// A close-on-exec duplicate of the locked pid file, to hand to a new primary.
    pub(crate) fn share(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        Ok(self.file.try_clone()?.into())
    }
}

/// Writes this process's pid into `file`, an open pid file: after a hot upgrade, the new
/// primary once it serves (through its copy of the handed-over, locked file).
pub(crate) fn write_pid(mut file: &File) -> Result<(), String> {
    let pid = std::process::id();
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{pid}"))
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write the pid file: {e}"))
}

/// Whether the open `file` is the file at `path` (same inode on the same device).
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_primary_per_directory_and_stale_files_are_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = RuntimeDir::new(tmp.path().join("rt"), None);
        assert_eq!(rt.liveness(), Liveness::None);
        let lock = rt.lock().expect("first primary");
        assert_eq!(rt.liveness(), Liveness::Running(Some(std::process::id())));
        let second = rt.lock().unwrap_err();
        assert!(
            second.contains("already running") && second.contains(&std::process::id().to_string()),
            "{second}"
        );
        // A primary that dies leaves the file, but not the lock.
        drop(lock);
        assert_eq!(rt.liveness(), Liveness::Stale(Some(std::process::id())));
        std::fs::write(&rt.socket, b"").unwrap();
        assert_eq!(rt.clean_stale(), Some(std::process::id()));
        assert!(!rt.pid_file.exists() && !rt.socket.exists());
        let lock = rt.lock().expect("a new primary after the stale one");
        lock.release(&rt.socket);
        assert_eq!(rt.liveness(), Liveness::None);
    }

    #[test]
    fn a_handed_over_lock_stays_held_and_its_files_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = RuntimeDir::new(tmp.path().join("rt"), None);
        let old = rt.lock().expect("the old primary");
        let new = rt.adopt(old.share().unwrap()).expect("the same open file");
        assert!(rt.lock().unwrap_err().contains("already running"));
        // The successor takes over, then the old primary exits: the lock is still held.
        std::fs::write(&rt.socket, b"").unwrap();
        std::fs::write(&rt.pid_file, b"1\n").unwrap();
        write_pid(&File::from(new.share().unwrap())).unwrap();
        assert_eq!(rt.liveness(), Liveness::Running(Some(std::process::id())));
        // (The pid file names "us", so use a copy that names another process for the old.)
        std::fs::write(&rt.pid_file, b"1\n").unwrap();
        old.release(&rt.socket);
        assert!(rt.pid_file.exists() && rt.socket.exists(), "the new primary's files stay");
        assert!(matches!(rt.liveness(), Liveness::Running(_)));
        // Another directory's pid file is not adopted.
        let other = RuntimeDir::new(tmp.path().join("other"), None);
        let other_lock = other.lock().unwrap();
        assert!(rt.adopt(other_lock.share().unwrap()).unwrap_err().contains("is not"));
    }
}
